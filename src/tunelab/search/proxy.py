"""Optuna's gRPC storage proxy in front of the study database, for many workers.

Every Optuna process holds its own database connections (PostgreSQL allows 100 by default), so
hundreds of workers exhaust the server. Behind the proxy the database sees one process with a
small, fixed pool; workers talk gRPC to it (`grpc://host:port` wherever a storage URL goes).
`tunelab proxy` serves it standalone; `search.storage_proxy: true` makes `tune` serve it for the
workers it starts. The proxy has no authentication: keep it on a private network.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna

from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError
from tunelab.search.storage import connect, make_storage, mask_url, require_grpc

log = logging.getLogger(__name__)
POOL_SIZE = 4  # database connections held by the proxy, whatever the number of workers
SERVER_THREADS = 16  # concurrent worker requests; the rest queue in gRPC


def proxied_storage(url: str) -> optuna.storages.BaseStorage:
    """The database behind the proxy: a small bounded pool and Optuna's in-process cache (which
    Optuna recommends in front of the proxy), with tunelab's heartbeat settings."""

    if url.startswith("grpc://"):
        raise ConfigError("the proxy needs a database URL (postgresql://... or sqlite:///...), not another proxy",
                          key="--storage")
    storage = make_storage(url, pool_size=POOL_SIZE)
    return optuna.storages.get_storage(storage)


class ProxyServer:
    """A running proxy: its gRPC server and the database pool behind it, stopped together (a
    stopped server used to leave its pool's connections open until the process ended)."""

    def __init__(self, server: Any, storage: optuna.storages.BaseStorage) -> None:
        self.server, self.storage = server, storage

    def stop(self, grace: float) -> None:
        self.server.stop(grace=grace).wait()
        engine = getattr(getattr(self.storage, "_backend", self.storage), "engine", None)
        if engine is not None:
            engine.dispose()

    def wait_for_termination(self) -> None:
        self.server.wait_for_termination()


def start_server(url: str, host: str, port: int) -> tuple[ProxyServer, int]:
    """Start a proxy for `url` on host:port (0: a free port) in background threads; returns the
    server (stop it with `.stop(grace)`) and the port it listens on."""
    grpc = require_grpc()
    from optuna.storages._grpc.auto_generated import api_pb2_grpc  # Optuna 5's own proxy service
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    server = grpc.server(ThreadPoolExecutor(max_workers=SERVER_THREADS))
    storage = proxied_storage(url)
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise ConfigError(f"cannot listen on {host}:{port} (in use, or not this machine's address)", key="--port")
    server.start()
    return ProxyServer(server, storage), bound


def serve_forever(url: str, host: str, port: int) -> None:
    """`tunelab proxy`: serve until interrupted."""

    server, bound = start_server(url, host, port)
    log.warning("storage proxy for %s listening on grpc://%s:%d", mask_url(url), host, bound)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(grace=2)


def serve_storage(exp: Experiment, url: str) -> tuple[str, Callable[[], None]]:
    """The storage URL `tune`'s workers use, and how to stop what serves it: `url` itself, or,
    with `search.storage_proxy`, a proxy started here (reachable from other nodes on Ray)."""
    if not exp.search.storage_proxy:
        return url, lambda: None
    on_cluster = exp.search.backend == "ray"
    bind = "0.0.0.0" if on_cluster else "127.0.0.1"
    server, port = start_server(url, bind, 0)
    host = socket.gethostbyname(socket.gethostname()) if on_cluster else "127.0.0.1"
    return f"grpc://{host}:{port}", lambda: server.stop(grace=5)


__all__ = ["connect", "require_grpc", "serve_forever", "serve_storage"]
