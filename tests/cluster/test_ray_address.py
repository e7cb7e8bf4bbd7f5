"""`--ray ADDRESS` where nothing listens fails at once (Ray itself retries for minutes), and Ray's own
output never reaches stdout, which `--json` keeps for the result. No Ray cluster needed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tunelab.app import ray_jobs
from tunelab.errors import ConfigError

pytest.importorskip("ray")
SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _experiment(tmp_path: Path) -> Path:
    raw = {
        "name": "ray_address",
        "data": {"name": "digits"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 1, "loss": "cross_entropy"},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01, 0.001]}},
    }
    path = tmp_path / "ray_address.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _assert_refused_in_one_line(code: int, stderr: str, address: str, out: Path, seconds: float) -> None:
    assert seconds < 60  # Ray alone retried such an address for minutes
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "search.ray.address" in lines[0], lines
    assert not out.exists()  # refused before anything was written


def test_tune_with_a_dead_ray_address_is_a_one_line_error_in_a_real_process(tmp_path: Path) -> None:
    """The process boundary once (Ray may write to the real stderr itself); the other forms in-process."""
    address = f"127.0.0.1:{_free_port()}"
    out = tmp_path / "run"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tunelab", "tune", str(_experiment(tmp_path)), "--ray", address, "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120,
    )
    _assert_refused_in_one_line(proc.returncode, proc.stderr, address, out, time.monotonic() - start)


@pytest.mark.parametrize("form", ["ray://127.0.0.1:{port}", "BADADDRESS"])
def test_tune_with_a_dead_ray_address_is_a_one_line_error(tmp_path: Path, form: str, cli) -> None:
    address = form.format(port=_free_port())
    out = tmp_path / "run"
    start = time.monotonic()
    result = cli("tune", _experiment(tmp_path), "--ray", address, "--out", out)
    assert isinstance(result.exception, SystemExit)  # not some other exception caught by the runner
    _assert_refused_in_one_line(result.exit_code, result.stderr, address, out, time.monotonic() - start)


def test_auto_follows_ray_address_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=f"nothing answers at 127.0.0.1:{port}"):
        ray_jobs.check_reachable("auto")


def test_a_listening_address_passes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        ray_jobs.check_reachable(f"ray://127.0.0.1:{server.getsockname()[1]}")
    ray_jobs.check_reachable("local")


def test_ray_output_goes_to_stderr_so_json_stays_clean(capfd: pytest.CaptureFixture[str]) -> None:
    """Lines from the processes Ray starts (file descriptor 1) and Ray's Python prints."""
    print("ours before", flush=True)
    with ray_jobs.ray_output_to_stderr():
        subprocess.run([sys.executable, "-c", "print('(raylet) chatter from a child process')"], check=True)
        os.write(1, b"raylet line on fd 1\n")
        print("ray python chatter")
    print('{"json": true}', flush=True)
    captured = capfd.readouterr()
    assert captured.out == 'ours before\n{"json": true}\n'
    assert "(raylet) chatter" in captured.err and "raylet line on fd 1" in captured.err
    assert "ray python chatter" in captured.err
