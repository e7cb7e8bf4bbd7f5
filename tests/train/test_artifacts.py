"""Per-epoch artifacts are written off the training thread, in order, and all of them by the end."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from tunelab.config.schema import DataSection, MLPModel, TaskSection, TrainSection
from tunelab.data import load_dataset
from tunelab.models import build_model
from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import read_json, read_jsonl
from tunelab.train import checkpoint as ckpt
from tunelab.train.artifacts import ArtifactWriter, flush, save_later
from tunelab.train.loop import fit


def test_writes_run_in_order_on_another_thread_and_flush_waits_for_them() -> None:
    writer, seen, threads = ArtifactWriter(max_pending=2), [], set()
    release = threading.Event()

    def write(i: int) -> None:
        release.wait(5)
        threads.add(threading.current_thread().name)
        seen.append(i)

    writer.submit(write, 0)
    assert seen == []  # the caller did not wait for the write
    release.set()
    for i in range(1, 6):
        writer.submit(write, i)
    writer.flush()
    assert seen == [0, 1, 2, 3, 4, 5] and threads == {"tunelab-artifacts"}


def test_a_failed_write_is_raised_by_the_next_flush_once() -> None:
    writer = ArtifactWriter()

    def broken() -> None:
        raise OSError("disk full")

    writer.submit(broken)
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    writer.flush()  # reported once


def test_a_queued_checkpoint_holds_the_state_at_save_time_not_what_training_did_next(tmp_path: Path) -> None:
    weight = torch.ones(3)
    state = {"epoch": 2, "model": {"w": weight}, "optimizer": [{"step": torch.tensor(1.0)}]}
    path = tmp_path / "epoch_2.pt"
    save_later(path, state)
    weight.add_(1.0)  # training goes on while the writer may not have written yet
    state["optimizer"][0]["step"].add_(1.0)
    flush()
    saved = ckpt.load_checkpoint(path)
    assert saved["model"]["w"].tolist() == [1.0, 1.0, 1.0] and saved["optimizer"][0]["step"].item() == 1.0


def test_fit_leaves_every_record_best_and_last_checkpoint_when_it_returns(tmp_path: Path) -> None:
    data = load_dataset(DataSection(name="diabetes"), TaskSection())
    cfg = TrainSection(epochs=6, batch_size=32, device="cpu", checkpoints={"keep_last": 2})
    model = build_model(MLPModel(hidden_dims=[8]), data.input_shape, data.output_dim, seed=0)
    layout = TrialLayout(tmp_path / "t")
    result = fit(model, data, cfg, loss_name="mse", metrics=[], layout=layout, identity={})
    assert [r["epoch"] for r in read_jsonl(layout.metrics_jsonl)] == [1, 2, 3, 4, 5, 6]
    assert [e for e, _ in layout.epoch_checkpoints()] == [6, 5]
    last = ckpt.load_latest(layout)
    assert last is not None and last["epoch"] == 6
    torch.testing.assert_close(last["model"]["0.weight"], model.state_dict()["0.weight"])
    assert ckpt.load_checkpoint(layout.best_checkpoint)["epoch"] == result.best_epoch
    assert read_json(layout.result_json)["epochs_run"] == 6


def _state(epoch: int) -> dict:
    model = {"w": torch.full((3,), float(epoch))}
    return {"epoch": epoch, "model": model, "optimizer": {"state": {}, "param_groups": []}}


def test_best_pt_is_the_best_epochs_checkpoint_and_outlives_its_pruned_epoch_file(tmp_path: Path) -> None:
    layout = TrialLayout(tmp_path / "t")
    save_later(layout.epoch_checkpoint(1), _state(1), prune=(layout, 1), best=layout.best_checkpoint)
    save_later(layout.epoch_checkpoint(2), _state(2), prune=(layout, 1))
    flush()
    assert [e for e, _ in layout.epoch_checkpoints()] == [2]  # epoch 1's own file is pruned
    best = ckpt.load_checkpoint(layout.best_checkpoint)
    assert best["epoch"] == 1 and best["model"]["w"].tolist() == [1.0, 1.0, 1.0] and "optimizer" in best
    assert sorted(p.name for p in layout.checkpoints.iterdir()) == ["best.pt", "epoch_00002.pt"]


def test_best_pt_is_copied_where_the_file_system_has_no_hard_links(tmp_path: Path, monkeypatch) -> None:
    def no_links(*_: object) -> None:
        raise OSError("operation not permitted")

    monkeypatch.setattr(ckpt.os, "link", no_links)
    layout = TrialLayout(tmp_path / "t")
    save_later(layout.epoch_checkpoint(3), _state(3), best=layout.best_checkpoint)
    flush()
    assert layout.best_checkpoint.read_bytes() == layout.epoch_checkpoint(3).read_bytes()


def test_a_best_epoch_between_epoch_checkpoints_gets_a_resumable_best_pt(tmp_path: Path) -> None:
    data = load_dataset(DataSection(name="diabetes"), TaskSection())
    cfg = TrainSection(epochs=4, batch_size=32, device="cpu", checkpoints={"every": 3, "keep_last": 1})
    model = build_model(MLPModel(hidden_dims=[8]), data.input_shape, data.output_dim, seed=0)
    layout = TrialLayout(tmp_path / "t")
    result = fit(model, data, cfg, loss_name="mse", metrics=[], layout=layout, identity={})
    assert [e for e, _ in layout.epoch_checkpoints()] == [4]
    best = ckpt.load_checkpoint(layout.best_checkpoint)
    assert best["epoch"] == result.best_epoch and {"model", "optimizer", "rng", "best"} <= best.keys()
