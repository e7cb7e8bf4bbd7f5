"""The PostgreSQL password never reaches the run folder, and a worker with other data refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.app.tune import tune
from tunelab.app.work import work
from tunelab.config.load import load_experiment
from tunelab.errors import ConfigError

SWEEP = Path(__file__).resolve().parents[2] / "examples" / "seed004_lr_sweep.yaml"


def _with_password(url: str) -> str:
    # trust auth ignores the password, so it only travels: it must never be written down
    return url.replace("postgres@", "postgres:s3cr3t-pw@")


def test_storage_password_is_never_written_to_the_run_folder(tmp_path, pg_url, study_name):
    url = _with_password(pg_url)
    exp = load_experiment(SWEEP, [f"name={study_name}", f"search.storage={url}"])
    tune(exp, out=tmp_path / "run", run_final=False)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"s3cr3t-pw" not in path.read_bytes(), path


def test_a_worker_whose_data_differ_from_the_study_refuses(tmp_path, pg_url, study_name):
    exp = load_experiment(SWEEP, [f"name={study_name}"])
    tune(exp, out=tmp_path / "run", storage=pg_url, run_final=False)
    other = tmp_path / "other.yaml"
    other.write_text(SWEEP.read_text().replace("name: seed004_lr_sweep", f"name: {study_name}")
                     .replace("  name: toy_2d", "  name: digits"))
    with pytest.raises(ConfigError, match="trains on data"):
        work(other, storage=pg_url, out=tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


def test_local_trial_processes_get_the_storage_url_through_the_environment(monkeypatch, tmp_path):
    from tunelab.search import local_jobs

    started = []

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            started.append((cmd, kwargs["env"]))
            assert callable(kwargs["preexec_fn"])

    monkeypatch.setattr(local_jobs.subprocess, "Popen", FakePopen)
    url = "postgresql://tuner:s3cret-pw@db.example:5432/studies"
    local_jobs.spawn_workers(2, tmp_path, url, None)
    assert len(started) == 2
    for cmd, env in started:
        assert not any("s3cret-pw" in part for part in cmd), cmd  # `ps` would show it
        assert env["TUNELAB_STORAGE"] == url and env["OMP_NUM_THREADS"] == "1"
        assert cmd[-4:] == ["worker", str(tmp_path), "--quiet", "--no-outputs"]
