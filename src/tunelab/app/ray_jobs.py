"""`search.backend: ray`: the study's trial workers as Ray tasks on a cluster.

Each task runs the same code as a local trial process (`tunelab worker`, i.e.
`app.work.work`) on the study's storage and the run folder, which every node must see at
the same path (a shared file system; docs/cluster.md). Tasks ask for `resources` (cores, a GPU
fraction, memory), so Ray starts as many as the cluster holds and places them. A task lost with
its node is started again by Ray elsewhere; the dead trial itself is found by the surviving
workers (its pid on this host, or its stale heartbeat) and retried from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunelab.config.schema import Experiment
from tunelab.config.vocabulary import SEQUENTIAL_STRATEGIES
from tunelab.errors import ConfigError, TunelabError
from tunelab.search import placement
from tunelab.search.placement import workers_that_fit

log = logging.getLogger(__name__)
INSTALL = "pip install 'tunelab[ray]'"
NODE_RETRIES = 3  # a task whose node or worker process died is started again this often
PASSED_ENV = ("PYTHONPATH", "TUNELAB_DATA_DIR")  # the driver's, so every worker imports and reads the same
PROBE_S = 3.0  # a cluster's port answers at once; Ray itself retries a dead address for minutes
ADDRESS_FORMS = "auto, local, ray://HOST:PORT or HOST:PORT"


def check_backend(exp: Experiment) -> None:
    """Refuse, in one line and before anything is written, a backend or resources this machine lacks."""
    if exp.search.storage_proxy:
        from tunelab.search.proxy import require_grpc

        require_grpc()
    if exp.search.backend == "ray":
        if exp.search.strategy == "staged":
            raise ConfigError("a staged search runs its stage studies one by one on this machine; "
                              "use backend local, or search each stage as its own study on Ray", key="search.backend")
        import_ray()
        check_reachable(exp.search.ray.address)
    elif exp.resources.gpus_per_trial > 0 and not placement.local_devices():
        raise ConfigError(
            f"{exp.resources.gpus_per_trial} of a GPU per trial was asked for, but no CUDA device is visible "
            "here; set it to 0 or run on a machine (or Ray cluster: search.backend: ray) with GPUs",
            key="resources.gpus_per_trial",
        )


def ray_overrides(address: str | None) -> list[str]:
    """`--ray ADDRESS` as the two settings it stands for."""
    if address is None:
        return []
    return ["search.backend=ray", f"search.ray.address={json.dumps(address)}"]


def import_ray() -> Any:
    """The `ray` module, or the one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"Ray is not installed; install it with: {INSTALL}", key="search.backend") from None
    return ray


def run_on_ray(
    exp: Experiment,
    units: int,
    run_dir: Path,
    storage_url: str,
    data_dir: str | None,
    *,
    n_trials: int | None = None,
    limited: bool = False,
) -> tuple[int, int]:
    """Train the study on the cluster and wait for it; returns (trial workers started, trials they trained).

    Called once the explicit points are queued, so workers never race to queue them. The caller
    then checks the study itself: a trial still unfinished (a node died after its task gave up)
    is trained by the caller."""
    if limited:
        raise ConfigError(
            "--timeout and --n-trials over explicit points bind one process; with search.backend: ray "
            "set search.timeout_s or drop them", key="search.backend",
        )
    ray = import_ray()
    with ray_output_to_stderr():
        return _run_connected(ray, exp, units, run_dir, storage_url, data_dir, n_trials)


def _run_connected(
    ray: Any, exp: Experiment, units: int, run_dir: Path, storage_url: str, data_dir: str | None, n_trials: int | None
) -> tuple[int, int]:
    _connect(ray, exp.search.ray.address)
    try:
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        if storage_url.startswith("sqlite") and nodes > 1:
            log.warning("a SQLite study on a %d-node cluster: every node must share this disk with working file "
                        "locks; use PostgreSQL (search.storage) for real clusters", nodes)
        total = ray.cluster_resources()
        n = cluster_workers(exp, units, total.get("CPU", 0.0), total.get("GPU", 0.0))
        res = exp.resources
        options: dict[str, Any] = {
            "num_cpus": res.cpus_per_trial,
            "num_gpus": res.gpus_per_trial,
            "max_retries": NODE_RETRIES,
            "retry_exceptions": False,  # a worker's own error (bad data, other code) would fail again
            "name": f"tunelab-worker:{exp.name}",
        }
        if res.memory_mb_per_trial:
            options["memory"] = res.memory_mb_per_trial * 2**20
        task = ray.remote(train_on_node).options(**options)
        refs = [task.remote(str(run_dir), storage_url, data_dir, n_trials) for _ in range(n)]
        return n, _wait_all(ray, refs)
    finally:
        ray.shutdown()


def cluster_workers(exp: Experiment, units: int, cpus: float, gpus: float) -> int:
    """Trial workers to start: as many as the cluster holds, no more than the units of work, one
    for model-based samplers (unless `search.n_jobs` says otherwise), at most an explicit n_jobs."""
    res = exp.resources
    fit = workers_that_fit(cpus, gpus, res.cpus_per_trial, res.gpus_per_trial)
    if fit < 1:
        raise ConfigError(
            f"one trial worker needs {res.cpus_per_trial} CPU and {res.gpus_per_trial} GPU; the Ray cluster has "
            f"{cpus:g} CPU and {gpus:g} GPU", key="resources",
        )
    setting = exp.search.n_jobs
    if setting != "auto":
        return min(int(setting), fit)
    if exp.search.strategy in SEQUENTIAL_STRATEGIES:
        return 1
    return max(1, min(fit, units))


def train_on_node(run_dir: str, storage_url: str, data_dir: str | None, n_trials: int | None) -> int:
    """The body of one Ray task: a trial worker, exactly as `tunelab worker RUN_DIR --no-outputs`."""
    from tunelab.app.work import work

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    result = work(run_dir, storage=storage_url, data_dir=data_dir, n_trials=n_trials, write_outputs=False)
    return result.ran_trials


def _connect(ray: Any, address: str) -> None:
    env = {name: os.environ[name] for name in PASSED_ENV if os.environ.get(name)}
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}} if env else {}
    try:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, **kwargs)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"cannot join the Ray cluster at {address!r}: {first}; start one with `ray start --head` "
            "or give its address (--ray ray://HOST:10001)", key="search.ray.address",
        ) from None


def check_reachable(address: str, timeout_s: float = PROBE_S) -> None:
    """Refuse at once an address where no cluster listens: `ray.init` would retry it for minutes."""
    target = _target(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot join the Ray cluster at {address!r}: nothing answers at {host}:{port} ({reason}); start one "
            "with `ray start --head` or give its address (--ray ray://HOST:10001)", key="search.ray.address",
        ) from None


def _target(address: str) -> tuple[str, int] | None:
    """The host and port `address` leads to; None where Ray finds (or starts) the cluster itself."""
    if address == "local":
        return None
    if address == "auto":
        found = os.environ.get("RAY_ADDRESS") or _current_cluster()
        return _target(found) if found and found != "auto" else None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{address!r} is not a Ray cluster address; use {ADDRESS_FORMS}", key="search.ray.address")
    return host.strip("[]"), int(port)


def _current_cluster() -> str | None:
    """The address `ray start` left for `auto` on this machine (Ray's own bootstrap file), if any."""
    path = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


@contextlib.contextmanager
def ray_output_to_stderr() -> Iterator[None]:
    """Ray's own lines (its processes' and its Python prints) go to stderr, so stdout (`--json`) stays ours.

    The processes Ray starts inherit file descriptor 1, so it is pointed at stderr while Ray runs."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (an embedding host): only Python-level prints are moved
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _wait_all(ray: Any, refs: list[Any]) -> int:
    """Wait for every task. A task that failed for good is reported; when every task failed with a
    worker error (other code, other data), that error is the study's: nothing else will train it."""
    own: list[str] = []
    trained = 0
    for ref in refs:
        try:
            trained += int(ray.get(ref))
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None) or exc
            line = cause.one_line() if isinstance(cause, TunelabError) else f"{type(cause).__name__}: {cause}"
            own.append(" ".join(line.split())[:300])
            log.warning("a Ray trial worker failed: %s", own[-1])
        except ray.exceptions.RayError as exc:  # its node was lost more often than the retries allow
            log.warning("a Ray trial worker was lost: %s", type(exc).__name__)
    if own and len(own) == len(refs):
        raise ConfigError(f"every Ray trial worker failed: {own[0]}", key="search.backend")
    return trained
