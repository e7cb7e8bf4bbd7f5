"""Open the study: an ordinary Optuna study named after the experiment, SQLite by default."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import optuna

from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError
from tunelab.masking import mask_secrets
from tunelab.search.strategies import make_pruner

optuna.logging.set_verbosity(optuna.logging.WARNING)
# We drive trials with ask/tell and send heartbeats ourselves (search/workers.py).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
log = logging.getLogger(__name__)


def mask_url(url: str) -> str:
    """The storage URL with any password replaced, safe for logs, run folders and reports."""
    return mask_secrets(url)


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """RDB storage with heartbeats (dead workers' trials are found and retried) and, for SQLite,
    a busy timeout so several processes can share one file."""
    from tunelab.search.workers import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, stale_trial_callback

    sqlite = url.startswith("sqlite")
    kwargs = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats are marked experimental in Optuna
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=kwargs,
                heartbeat_interval=HEARTBEAT_INTERVAL_S,
                grace_period=GRACE_PERIOD_S,
                heartbeat_stale_trial_callback=stale_trial_callback,
            )
        if sqlite:
            _fast_sqlite(storage)
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


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """Write-ahead log with `synchronous=NORMAL`: a commit no longer waits for an fsync (a few ms
    each, a dozen per trial), readers never block the writer, and a crashed process still loses
    nothing it committed (only a power cut could lose the last commits). Needs a local disk: use
    PostgreSQL for a study shared between machines."""
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine = storage.engine
    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened while Optuna set up the schema reconnect with the pragmas


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
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()
