"""Checkpoints are written off the training thread, in order, and all of them by the end; the per-epoch
records are appended on it, before the epoch's checkpoint is queued."""

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
from tunelab.train import artifacts
from tunelab.train import checkpoint as ckpt
from tunelab.train.artifacts import ArtifactWriter, flush, save_later
from tunelab.train.hooks import FitContext, Hook
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
    cfg = TrainSection(epochs=6, batch_size=32, device="cpu", checkpoints={"keep_last": 2, "every": 1})
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


class _LinesOnDisk(Hook):
    """Counts, at each epoch's end, the complete lines of the trial's three record files."""

    def __init__(self, layout: TrialLayout) -> None:
        self.layout, self.seen = layout, []

    def on_epoch_end(self, ctx: FitContext, record: dict) -> None:
        files = (self.layout.metrics_jsonl, self.layout.grad_norms_jsonl)
        logged = self.layout.metrics_log.read_text().count("Epoch ") if self.layout.metrics_log.exists() else 0
        self.seen.append((ctx.epoch, *(len(read_jsonl(f)) for f in files), logged))


def test_records_are_on_disk_when_the_epoch_ends_and_only_checkpoints_go_to_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted: list[str] = []
    submit = artifacts.WRITER.submit

    def noted(fn, *args):  # type: ignore[no-untyped-def]
        submitted.append(getattr(fn, "__qualname__", repr(fn)))
        submit(fn, *args)

    monkeypatch.setattr(artifacts.WRITER, "submit", noted)
    data = load_dataset(DataSection(name="diabetes"), TaskSection())
    cfg = TrainSection(epochs=3, batch_size=32, device="cpu", checkpoints={"every": 1})
    model = build_model(MLPModel(hidden_dims=[8]), data.input_shape, data.output_dim, seed=0)
    layout = TrialLayout(tmp_path / "t")
    hook = _LinesOnDisk(layout)
    fit(model, data, cfg, loss_name="mse", metrics=[], layout=layout, identity={}, hooks=[hook])
    assert hook.seen == [(1, 1, 1, 1), (2, 2, 2, 2), (3, 3, 3, 3)]  # the epoch's own lines, whole, already there
    assert submitted == ["_save"] * 3  # one checkpoint per epoch (every: 1), and nothing else


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


def _fit(tmp_path: Path, name: str, epochs: int, **checkpoints: object) -> tuple[TrialLayout, object]:
    data = load_dataset(DataSection(name="diabetes"), TaskSection())
    cfg = TrainSection(epochs=epochs, batch_size=32, device="cpu", lr=0.01,
                       checkpoints={"keep_last": 50, **checkpoints})
    model = build_model(MLPModel(hidden_dims=[8]), data.input_shape, data.output_dim, seed=0)
    layout = TrialLayout(tmp_path / name)
    return layout, fit(model, data, cfg, loss_name="mse", metrics=[], layout=layout, identity={})


def test_auto_checkpoints_fast_epochs_at_the_end_only_with_best_pt_the_best_epochs_own_state(tmp_path: Path) -> None:
    every, every_result = _fit(tmp_path, "every", 8, every=1)
    auto, auto_result = _fit(tmp_path, "auto", 8)  # `auto` is the default; these epochs take milliseconds
    assert [e for e, _ in every.epoch_checkpoints()] == list(range(8, 0, -1))
    assert [e for e, _ in auto.epoch_checkpoints()] == [8]
    assert [r["epoch"] for r in read_jsonl(auto.metrics_jsonl)] == list(range(1, 9))  # records stay per epoch
    assert auto_result.best_epoch == every_result.best_epoch
    best, same_epoch = ckpt.load_checkpoint(auto.best_checkpoint), ckpt.load_checkpoint(
        every.epoch_checkpoint(every_result.best_epoch))
    assert best["epoch"] == every_result.best_epoch
    for part in ("model", "optimizer"):  # the weights and moments of that epoch, not of a later one
        flat = [t for t in _tensors(best[part])]
        assert flat and all(torch.equal(a, b) for a, b in zip(flat, _tensors(same_epoch[part]), strict=True))


def test_auto_checkpoints_every_epoch_once_epochs_take_longer_than_the_interval(tmp_path: Path, monkeypatch) -> None:
    from tunelab.train import epoch_end

    monkeypatch.setattr(epoch_end, "AUTO_CHECKPOINT_S", 0.0)  # as if each epoch took longer than the interval
    layout, _ = _fit(tmp_path, "slow", 4)
    assert [e for e, _ in layout.epoch_checkpoints()] == [4, 3, 2, 1]


def test_a_diverged_trial_still_leaves_the_best_epoch_kept_in_memory_as_best_pt(tmp_path: Path) -> None:
    from torch import nn

    from tunelab.train.epoch_end import TrialBook

    model = nn.Linear(2, 1)
    layout = TrialLayout(tmp_path / "t")
    book = TrialBook(model, TrainSection(epochs=5, device="cpu"), has_val=True, layout=layout, identity={})
    state = lambda: {"optimizer": {}, "scheduler": {}, "rng": {}}  # noqa: E731
    weights = model.weight.detach().clone()
    assert not book.end_epoch({"epoch": 1, "train_loss": 1.0, "val_loss": 0.5}, {}, 0.01, state)
    with torch.no_grad():
        model.weight.add_(1.0)  # training went on after the best epoch
    assert book.end_epoch({"epoch": 2, "train_loss": float("nan"), "val_loss": float("nan")}, {}, 0.01, state)
    assert layout.epoch_checkpoints() == []  # neither epoch was due; the diverged one never is
    result = book.finish(0.0)
    best = ckpt.load_checkpoint(layout.best_checkpoint)
    assert result.state == "diverged" and best["epoch"] == 1 and torch.equal(best["model"]["weight"], weights)


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for k in sorted(value, key=str) for t in _tensors(value[k])]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []
