"""Open the study: an ordinary Optuna study named after the experiment, SQLite by default."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any
from urllib.parse import urlsplit

import optuna

from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError
from tunelab.runs.claim import mask_url
from tunelab.search.resilient_storage import ResilientRDBStorage
from tunelab.search.strategies import make_pruner

optuna.logging.set_verbosity(optuna.logging.WARNING)
# We drive trials with ask/tell and send heartbeats ourselves (search/heartbeat.py).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
log = logging.getLogger(__name__)


WORKER_CONNECTIONS = 4


def make_storage(url: str, *, pool_size: int | None = None) -> optuna.storages.BaseStorage:
    """RDB storage with heartbeats (dead workers' trials are found and retried) and, for SQLite,
    a busy timeout so several processes can share one file; grpc://host:port: a storage proxy
    (search/proxy.py). `pool_size`: at most this many database connections (the proxy's); a worker
    keeps at most WORKER_CONNECTIONS (its ask/tell thread and its heartbeat thread share them): with
    SQLAlchemy's default of 15 a machine's workers ran PostgreSQL out of its 100 connections."""
    from tunelab.search.heartbeat import grace_s, interval_s
    from tunelab.search.shared_study import stale_trial_callback

    if url.startswith("grpc://"):
        return connect(url)
    sqlite = url.startswith("sqlite")
    # SQLite: the pragmas as a pool listener given to create_engine (SQLAlchemy's `pool_events`), so they
    # hold from the first connection, the one Optuna creates its tables on
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}, "pool_events": [(_fast_sqlite, "connect")]} \
        if sqlite else {"pool_pre_ping": True}
    if not sqlite:
        kwargs |= {"pool_size": pool_size or WORKER_CONNECTIONS, "max_overflow": 0}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats are marked experimental in Optuna
            storage = ResilientRDBStorage(  # survives dropped connections and a shared first start
                url,
                engine_kwargs=kwargs,
                heartbeat_interval=interval_s(),
                grace_period=grace_s(),
                heartbeat_stale_trial_callback=stale_trial_callback,
            )
        return storage
    except Exception as exc:  # bad URL, server down, corrupted file: one line, no traceback
        raise ConfigError(
            f"cannot open study storage {mask_url(url)} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            key="search.storage",
        ) from None


def check_storage(url: str | None) -> None:
    """Open (and close) an explicit storage before anything is written to the run folder, so a bad
    URL or a server that is down leaves no half-made folder behind. None: the folder's own SQLite.

    Raises:
        ConfigError: the storage cannot be opened (password masked).
    """
    if url is None:
        return
    storage = make_storage(url)
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def _fast_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Every SQLite connection, from the first (Optuna's schema set-up) on: write-ahead log with
    `synchronous=NORMAL`. A commit no longer waits for an fsync (a few ms each, a dozen per trial and
    more while Optuna creates its tables: a new study opened in 0.13 s instead of 0.35 s on the
    2-core VM), readers never block the writer, and a crashed process still loses nothing it
    committed (only a power cut could lose the last commits). Needs a local disk: use PostgreSQL
    for a study shared between machines."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_study(exp: Experiment, url: str, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """Create or load the study; the resolved experiment travels with it in the study's attributes."""
    storage = make_storage(url)
    try:
        study = optuna.create_study(
            study_name=exp.name,
            storage=storage,
            sampler=sampler,
            pruner=make_pruner(exp.search.pruner),
            direction=exp.search.objective.resolved_direction(),
            load_if_exists=True,
        )
    except ValueError as exc:  # e.g. an existing study with another direction
        raise ConfigError(f"study {exp.name!r}: {exc}", key="search.objective.direction") from None
    if "experiment" not in study.user_attrs:
        data = json.loads(exp.model_dump_json())
        if data["search"].get("storage"):
            data["search"]["storage"] = mask_url(data["search"]["storage"])
        study.set_user_attr("experiment", data)
    return study


def close_storage(study: optuna.Study) -> None:
    """Close the study's database connections: SQLite then folds its write-ahead log back into
    study.db, so a copy of that one file holds the whole study."""
    backend = getattr(study._storage, "_backend", study._storage)
    if type(backend).__name__ == "GrpcStorageProxy":  # a proxy client: its channel
        backend.close()
        return
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


CONNECT_TIMEOUT_S = 30  # how long a worker waits for a storage proxy (tunelab proxy) to answer
INSTALL_GRPC = "pip install 'tunelab[ray]' (or grpcio)"


def require_grpc() -> Any:
    """The `grpc` module, or the one-line error that says how to install it."""
    try:
        import grpc
    except ImportError:
        raise ConfigError(f"the gRPC storage proxy needs grpcio, which is not installed; {INSTALL_GRPC}",
                          key="search.storage_proxy") from None
    return grpc


def connect(url: str) -> optuna.storages.BaseStorage:
    """A client of the proxy at grpc://host:port, once it answers."""
    require_grpc()
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise ConfigError(f"a proxy URL is grpc://HOST:PORT, got {url!r}", key="--storage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the proxy is marked experimental in Optuna
        client = optuna.storages.GrpcStorageProxy(host=parts.hostname, port=parts.port)
    try:
        client.wait_server_ready(timeout=CONNECT_TIMEOUT_S)
    except Exception:
        client.close()
        raise ConfigError(f"no storage proxy answers at {url} within {CONNECT_TIMEOUT_S} s; start it with "
                          "tunelab proxy --storage URL --port N", key="--storage") from None
    return client
