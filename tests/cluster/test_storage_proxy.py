"""Many workers, one database: through Optuna's gRPC storage proxy the database sees a small,
fixed number of connections whatever the worker count, and no trial is lost or run twice."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from fixtures.postgres import pg_storage

pytest.importorskip("grpc", reason="the ray extra (grpcio) is not installed")

from tunelab.errors import ConfigError
from tunelab.search.proxy import POOL_SIZE, connect, start_server
from tunelab.search.storage import make_storage

WORKERS = 16
TRIALS = 64


class ConnectionWatch:
    """The most connections to our database seen at once in pg_stat_activity (this one excluded)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.most = 0
        self.samples = 0
        self._stop = threading.Event()
        self._conn = self.engine.connect()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def now(self) -> int:
        return int(self._conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalar_one())

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, self.now())
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._conn.close()
        self.engine.dispose()


def _work(url: str, name: str, errors: list[BaseException]) -> None:
    """One worker: its own proxy client; takes queued points until none is left."""
    try:
        study = optuna.load_study(study_name=name, storage=connect(url))
        while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial = study.ask()
            if "point" not in trial.user_attrs:  # another worker took the last point first
                study.tell(trial, state=TrialState.FAIL)
                break
            i = trial.suggest_int("i", 0, TRIALS - 1)
            trial.set_user_attr("worker", threading.current_thread().name)
            study.tell(trial, float((i - 20) ** 2))
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def test_sixteen_workers_through_the_proxy_finish_64_trials_on_a_handful_of_connections(pg_url, study_name):
    server, port = start_server(pg_url, "127.0.0.1", 0)
    url = f"grpc://127.0.0.1:{port}"
    try:
        study = optuna.create_study(study_name=study_name, storage=connect(url))
        for i in range(TRIALS):
            study.enqueue_trial({"i": i}, user_attrs={"point": i})
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_work, args=(url, study_name, errors), name=f"w{k}")
                   for k in range(WORKERS)]
        with ConnectionWatch(pg_url) as watch:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
        assert not errors, errors[:3]
        assert not any(thread.is_alive() for thread in threads)
    finally:
        server.stop(grace=2)

    trials = optuna.load_study(study_name=study_name, storage=pg_storage(pg_url)).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["i"] for t in complete) == list(range(TRIALS))  # none lost, none twice
    assert all(t.value == (t.params["i"] - 20) ** 2 for t in complete)
    assert len({t.user_attrs["worker"] for t in complete}) > 1  # the workers really shared the study
    others = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.state == TrialState.FAIL and not t.params for t in others)  # only asks that found no point
    assert watch.samples > 10
    assert 1 <= watch.most <= POOL_SIZE, f"{watch.most} database connections for {WORKERS} workers"
    print(f"\n{WORKERS} workers, {TRIALS} trials: at most {watch.most} database connections "
          f"({watch.samples} samples of pg_stat_activity)")


def test_a_proxy_url_is_a_storage_anywhere_and_a_silent_one_is_one_line(monkeypatch):
    monkeypatch.setattr("tunelab.search.storage.CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ConfigError, match=r"^--storage: no storage proxy answers at grpc://127\.0\.0\.1:9 within 1 s"):
        make_storage("grpc://127.0.0.1:9")
    with pytest.raises(ConfigError, match=r"a proxy URL is grpc://HOST:PORT, got 'grpc://nohost'"):
        make_storage("grpc://nohost")


def test_a_worker_trains_a_study_through_the_proxy(pg_url, study_name, tmp_path: Path):
    """The real worker path: `tunelab worker --storage grpc://...` trains the whole grid through a
    proxy in front of PostgreSQL; the study ends complete in the database."""
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"name: {study_name}\ndata:\n  name: diabetes\nmodel:\n  hidden_dims: [8]\ntrain:\n  epochs: 1\n"
        "  batch_size: full\nsearch:\n  strategy: grid\n  vectorize: off\n"
        "  space:\n    train.lr: [0.1, 0.01, 0.001]\nfinal:\n  enabled: false\n",
        encoding="utf-8",
    )
    server, port = start_server(pg_url, "127.0.0.1", 0)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "tunelab", "worker", str(exp), "--out", str(tmp_path / "run"), "--quiet",
             "--json", "--storage", f"grpc://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=300,
        )
    finally:
        server.stop(grace=2)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["n_complete"] == 3
    trials = optuna.load_study(study_name=study_name, storage=pg_storage(pg_url)).get_trials()
    assert sorted(t.params["lr"] for t in trials if t.state == TrialState.COMPLETE) == [0.001, 0.01, 0.1]
    assert len(list((tmp_path / "run" / "trials").glob("*/result.json"))) == 3


def test_tune_serves_its_workers_a_proxy_only_when_asked(pg_url, study_name):
    from tunelab.config.load import validate_experiment
    from tunelab.search.proxy import serve_storage

    plain = validate_experiment({"name": study_name}, source="test")
    assert serve_storage(plain, pg_url)[0] == pg_url
    proxied = validate_experiment({"name": study_name, "search": {"storage_proxy": True}}, source="test")
    url, stop = serve_storage(proxied, pg_url)
    try:
        assert url.startswith("grpc://127.0.0.1:")
        optuna.create_study(study_name=study_name, storage=connect(url))
        assert study_name in [s.study_name for s in optuna.get_all_study_summaries(pg_storage(pg_url))]
    finally:
        stop()
