"""One writer per run folder, SIGTERM as a clean stop, and no plot renderer outliving `report`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

EXPERIMENT = """\
name: one_writer
data:
  name: diabetes
model:
  family: mlp
  hidden_dims: [32]
train:
  epochs: 300       # long enough to meet the refused commands (the test stops it)
  batch_size: 2
search:
  strategy: grid
  vectorize: off
  n_jobs: 1
  space:
    train.lr: [0.001, 0.003]
final:
  enabled: false
"""


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tunelab", *args]


def _wait_for(predicate, what: str, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _one_line_error(code: int, stderr: str, needle: str) -> None:
    assert code == 2, (code, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], stderr


def test_a_second_writer_is_refused_and_sigterm_leaves_no_trial_running(tmp_path: Path, cli) -> None:
    """The writer is a real `tunelab tune` process; the refused commands and the rerun run in this
    process (the `cli` fixture), another process all the same, without paying the imports each time."""
    exp, out = tmp_path / "exp.yaml", tmp_path / "run"
    exp.write_text(EXPERIMENT)
    first = subprocess.Popen(_cmd("tune", str(exp), "--out", str(out), "--quiet"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = lambda: list(out.glob("trials/*/metrics.jsonl"))  # noqa: E731
    _wait_for(lambda: any(len(p.read_text().splitlines()) >= 2 for p in metrics()), "the first trial's epochs")

    for args in (("tune", str(exp), "--out", str(out)), ("final", str(out)), ("report", str(out))):
        second = cli(*args)
        assert isinstance(second.exception, SystemExit)  # not some other exception caught by the runner
        _one_line_error(second.exit_code, second.stderr, f"is in use by another tunelab command (pid {first.pid})")
    assert first.poll() is None, "the first tune must not notice the refused ones"

    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 143, err
    assert err.strip().splitlines() == [
        "terminated (SIGTERM): finished epochs are saved; run the same command again to resume"
    ]
    study = optuna.load_study(study_name="one_writer", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    stopped = [t for t in trials if t.user_attrs.get("outcome") == "interrupted"]
    assert len(stopped) == 1 and stopped[0].state == TrialState.FAIL
    waiting = [t.user_attrs.get("retry_of") for t in trials if t.state == TrialState.WAITING]
    done = [t for t in trials if t.user_attrs.get("outcome") == "complete"]
    # the stopped trial's retry waits, and so does every point never started (on a loaded machine
    # the first trial may finish before the refused commands are done: then the second is stopped)
    assert waiting.count(stopped[0].number) == 1 and set(waiting) <= {stopped[0].number, None}
    assert len(done) + len(waiting) == 2

    again = cli("tune", str(exp), "--out", str(out), "--quiet", "--timeout", "0.001")
    assert again.exit_code == 0, again.stderr  # the lock ended with its holder


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_plot_renderers_die_with_a_killed_report(tmp_path: Path) -> None:
    if (os.cpu_count() or 1) < 2:
        if os.environ.get("CI"):
            raise AssertionError("this test needs two cores (plots render in parallel only there)")
        import pytest

        pytest.skip("plots render in one process on a single core")
    exp, out = tmp_path / "exp.yaml", tmp_path / "run"
    exp.write_text(EXPERIMENT.replace("epochs: 300", "epochs: 3"))
    done = subprocess.run(_cmd("tune", str(exp), "--out", str(out), "--quiet"), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    report = subprocess.Popen(_cmd("report", str(out)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    renderers: list[int] = []

    def spawned() -> bool:
        renderers[:] = _children(report.pid)
        assert report.poll() is None, "report ended before its renderers were seen"
        return bool(renderers)

    _wait_for(spawned, "plot renderer processes", 60)
    report.kill()
    report.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in renderers), "the renderers to die with report", 20)


def test_sigterm_to_tune_with_trial_processes_prints_one_line_and_leaves_no_trial_running(tmp_path: Path) -> None:
    exp, out = tmp_path / "exp.yaml", tmp_path / "run"
    exp.write_text(EXPERIMENT.replace("n_jobs: 1", "n_jobs: 2").replace("one_writer", "two_jobs"))
    tune = subprocess.Popen(_cmd("tune", str(exp), "--out", str(out), "--quiet"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = lambda: [p for p in out.glob("trials/*/metrics.jsonl") if p.read_text().strip()]  # noqa: E731
    _wait_for(lambda: len(started()) == 2, "both processes to train a trial")

    tune.send_signal(signal.SIGTERM)
    _, err = tune.communicate(timeout=60)

    assert tune.returncode == 143
    assert err.strip().splitlines() == [
        "terminated (SIGTERM): finished epochs are saved; run the same command again to resume"
    ]
    study = optuna.load_study(study_name="two_jobs", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len([t for t in trials if t.user_attrs.get("outcome") == "interrupted"]) == 2
