"""`kill -9` in the middle of `tunelab train`, then the same command: it resumes and ends where an
uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

EXPERIMENT = {
    "name": "resume_me",
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [32, 32], "dropout": 0.1},
    "train": {"epochs": 30, "batch_size": 2, "lr": 0.001, "checkpoints": {"keep_last": 2, "every": 1}},
}


def _cmd(exp: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tunelab", "train", str(exp), "--out", str(out), "--quiet"]


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    ckpt = max((out / "trials").glob("*/checkpoints/epoch_*.pt"))
    return torch.load(ckpt, weights_only=True)["model"]


def test_kill_9_then_the_same_command_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(EXPERIMENT))
    subprocess.run(_cmd(exp, tmp_path / "clean"), check=True, capture_output=True, timeout=300)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(exp, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline:
        found = list(out.glob("trials/*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 5:
            metrics = found[0]
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert metrics is not None, "the run never reached epoch 5"
    killed_at = len(metrics.read_text().splitlines())
    assert killed_at < 30, "the run finished before it could be killed"
    assert not (metrics.parent / "result.json").exists()

    rerun = subprocess.run(_cmd(exp, out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed from epoch" in rerun.stdout
    epochs = [int(line.split('"epoch": ')[1].split(",")[0]) for line in metrics.read_text().splitlines()]
    assert epochs == list(range(1, 31))
    clean, resumed = _final_weights(tmp_path / "clean"), _final_weights(out)
    for key in clean:
        assert torch.allclose(clean[key], resumed[key], atol=1e-6), key
