"""`data.name: image_folder`: decoded once into a uint8 memory map, split views, errors, and a model that learns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import tunelab
from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import images
from tunelab.data.images import load_image_folder
from tunelab.data.sources import load_dataset
from tunelab.errors import DataError

from .images import CLASSES, make_shapes_folder


@pytest.fixture
def shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    return make_shapes_folder(tmp_path / "shapes", per_class=30)


def _cfg(path: Path, **extra: object) -> DataSection:
    return DataSection(name="image_folder", path=str(path), **extra)


def test_splits_are_uint8_views_of_one_memory_mapped_cache(shapes: Path) -> None:
    ds = load_dataset(_cfg(shapes, image_size=24), TaskSection())
    assert (len(ds.train), len(ds.val), len(ds.test)) == (54, 18, 18)
    assert ds.train.x.dtype == torch.uint8 and tuple(ds.train.x.shape) == (54, 3, 24, 24)
    assert ds.input_shape == (3, 24, 24) and ds.output_dim == 3 and ds.class_labels == list(CLASSES)
    assert ds.task == "classification" and ds.is_image
    storage = ds.train.x.untyped_storage().data_ptr()
    assert ds.val.x.untyped_storage().data_ptr() == storage == ds.test.x.untyped_storage().data_ptr()
    (cache,) = (shapes.parent / "cache" / "images").glob("*.u8")
    assert cache.stat().st_size == 90 * 3 * 24 * 24
    counts = torch.bincount(torch.cat([ds.train.y, ds.val.y, ds.test.y]), minlength=3)
    assert counts.tolist() == [30, 30, 30]


def test_the_cache_is_decoded_once_and_redecoded_when_the_folder_changes(
    shapes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_image_folder(_cfg(shapes), TaskSection())
    calls: list[Path] = []
    real = images._decode
    monkeypatch.setattr(images, "_decode", lambda p, s, g: calls.append(p) or real(p, s, g))
    again = load_image_folder(_cfg(shapes), TaskSection())
    assert calls == [] and again.data_hash == first.data_hash
    assert torch.equal(again.train.x, first.train.x)
    (shapes / "disc" / "000.png").write_bytes((shapes / "square" / "000.png").read_bytes())
    changed = load_image_folder(_cfg(shapes), TaskSection())
    assert len(calls) == 90 and changed.data_hash != first.data_hash


def test_grayscale_decodes_one_channel(shapes: Path) -> None:
    ds = load_image_folder(_cfg(shapes, grayscale=True, image_size=16), TaskSection())
    assert tuple(ds.train.x.shape[1:]) == (1, 16, 16)


def test_the_final_model_trains_on_train_and_val_from_the_same_file(shapes: Path) -> None:
    plain = load_image_folder(_cfg(shapes), TaskSection())
    merged = load_image_folder(_cfg(shapes), TaskSection(), merge_val=True)
    assert len(merged.train) == 72 and len(merged.val) == 0
    assert torch.equal(merged.train.x, torch.cat([plain.train.x, plain.val.x]))
    assert torch.equal(merged.test.x, plain.test.x)
    assert len(list((shapes.parent / "cache" / "images").glob("*.u8"))) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "does not exist or is not a folder"),
        (lambda root: (root / "one" / "a").mkdir(parents=True) or root / "one", r"at least 2\), found 1"),
        (lambda root: [(root / "e" / c).mkdir(parents=True) for c in "ab"] and root / "e", "holds no image"),
    ],
)
def test_a_folder_that_is_not_a_class_tree_is_one_line_error(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        load_image_folder(_cfg(make(tmp_path)), TaskSection())
    assert "\n" not in str(info.value) and str(info.value).startswith("data.path: ")


def test_cli_reports_a_missing_image_folder_in_one_line_and_exit_2(tmp_path: Path, cli) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"data:\n  name: image_folder\n  path: {tmp_path / 'nope'}\n", encoding="utf-8")
    result = cli("train", exp, "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist or is not a folder" in result.stderr
    assert not (tmp_path / "run" / "trials").exists()


def test_image_folder_without_path_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="image_folder needs a folder"):
        DataSection(name="image_folder")


def test_resnet_learns_the_shapes_well_above_chance(shapes: Path, tmp_path: Path) -> None:
    raw = {
        "name": "shapes",
        "data": {"name": "image_folder", "path": str(shapes), "augment": {"crop_padding": 2, "horizontal_flip": True}},
        "model": {"family": "resnet", "blocks": [1, 1], "width": 8},
        "train": {"epochs": 5, "batch_size": 16, "lr": 0.01, "metrics": ["accuracy", "roc_auc"]},
    }
    res = tunelab.train(load_experiment(None, raw=raw), out=tmp_path / "run")
    assert res.result.state == "complete"
    assert res.result.best_record["val_accuracy"] >= 0.8  # chance is 1/3
    assert res.result.best_record["val_roc_auc"] >= 0.9


def test_a_study_over_cnn_and_resnet_trains_scores_the_final_model(shapes: Path, tmp_path: Path) -> None:
    raw = {
        "name": "shapes_study",
        "data": {"name": "image_folder", "path": str(shapes), "image_size": 16},
        "model": {"family": "cnn", "channels": [8, 16]},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01, 0.003]}, "n_jobs": 1},
        "final": {"enabled": True},
    }
    out = tmp_path / "run"
    res = tune(load_experiment(None, raw=raw), out=out)
    assert res.n_complete == 2
    final = json.loads((out / "final" / "test_metrics.json").read_text())
    assert final["rows_trained"] == 72 and final["rows_tested"] == 18
    assert 0.0 <= final["test_accuracy"] <= 1.0


def test_augmenting_a_table_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="augment: only image_folder data are augmented, got data set digits"):
        DataSection(name="digits", augment={"horizontal_flip": True})
