"""Faults end in one line, exit 2, nothing half-written (issue 13 items 5 and 7): disk full,
damaged run-folder files, a bad `--out`, unreachable storage, passwords kept out of every output."""

from __future__ import annotations

import errno
import importlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import tunelab.app.final
import tunelab.report.html
from tunelab.cli import app
from tunelab.masking import mask_secrets
from tunelab.runs import records

TOY = {
    "name": "toy",
    "data": {"name": "toy_2d"},
    "model": {"hidden_dims": [8]},
    "train": {"epochs": 2, "batch_size": "full"},
    "search": {"strategy": "grid", "space": {"train.lr": [0.1, 0.2]}},
}


def run(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*.tmp")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished toy study with a final model (copied by each test that damages it)."""
    work = tmp_path_factory.mktemp("finished")
    path = work / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY), encoding="utf-8")
    result = run("tune", path, "--out", work / "run", "--quiet")
    assert result.exit_code == 0, result.output
    return work / "run"


@pytest.fixture
def copy(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "checkpoint.pt")


# --------------------------------------------------------------------------- passwords


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://:secret@host", "postgresql://:***@host"),
        ("postgresql://u@h/db?password=secret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("postgresql://h/db?sslmode=require&PASSWORD=secret", "postgresql://h/db?sslmode=require&PASSWORD=***"),
        ("host=h password=secret dbname=x", "host=h password=*** dbname=x"),
        ("sqlite:///runs/x/study.db", "sqlite:///runs/x/study.db"),
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
    ],
)
def test_every_password_form_is_masked(text, masked):
    assert mask_secrets(text) == masked


@pytest.mark.parametrize(
    "url", ["postgresql://u:secret@127.0.0.1:1/db", "postgresql://:secret@127.0.0.1:1/db",
            "postgresql://u@127.0.0.1:1/db?password=secret"],
)
def test_unreachable_storage_is_one_masked_line_and_writes_nothing(url, tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({**TOY, "search": {**TOY["search"], "storage": url}}), encoding="utf-8")
    result = run("tune", path, "--out", tmp_path / "run", "--quiet")
    line = one_line(result)
    assert "secret" not in line and "search.storage: cannot open study storage postgresql://" in line
    assert not (tmp_path / "run").exists()


def test_password_never_reaches_the_run_folder_or_stdout(tmp_path):
    db = tmp_path / "s.db"
    path = tmp_path / "toy.yaml"
    url = f"sqlite:///{db}?password=secret"
    path.write_text(yaml.safe_dump({**TOY, "search": {**TOY["search"], "storage": url}}), encoding="utf-8")
    result = run("tune", path, "--out", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    assert "secret" not in result.stdout and "password=***" in json.loads(result.stdout)["storage"]
    for file in (tmp_path / "run").rglob("*"):
        if file.is_file() and file.suffix in (".yaml", ".json", ".html", ".md", ".csv", ".jsonl"):
            assert b"secret" not in file.read_bytes(), file
    import optuna

    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{db}")
    assert "secret" not in json.dumps(study.user_attrs)


# --------------------------------------------------------------------------- disk full, bad folders


def test_disk_full_during_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.import_module("tunelab.train.checkpoint"), "write_bytes_atomic", enospc)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY), encoding="utf-8")
    result = run("train", path, "--out", tmp_path / "run", "--quiet")
    assert one_line(result) == (
        "error: cannot access checkpoint.pt: No space left on device; "
        "free some space and run the same command again (finished work is kept)"
    )
    assert no_temp_files(tmp_path / "run")


def test_disk_full_during_final_and_report_is_one_line(copy, monkeypatch):
    monkeypatch.setattr(tunelab.app.final, "write_bytes_atomic", enospc)
    shutil.rmtree(copy / "final")
    assert "No space left on device" in one_line(run("final", copy))
    monkeypatch.setattr(tunelab.report.html, "write_text_atomic", enospc)
    assert "No space left on device" in one_line(run("report", copy))


def test_atomic_write_leaves_no_temp_file_when_the_disk_is_full(tmp_path, monkeypatch):
    real = records.os

    class FullDisk:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def replace(*_args):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records, "os", FullDisk())
    with pytest.raises(OSError):
        records.write_text_atomic(tmp_path / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_out_pointing_at_a_file_is_one_line(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY), encoding="utf-8")
    (tmp_path / "afile").write_text("keep", encoding="utf-8")
    line = one_line(run("tune", path, "--out", tmp_path / "afile", "--quiet"))
    assert line.startswith("error: cannot ") and f"{tmp_path / 'afile'}: File exists" in line
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "keep"


def test_invalid_utf8_in_metrics_is_one_line(copy):
    (metrics,) = copy.glob("trials/0-*/metrics.jsonl")
    metrics.write_bytes(metrics.read_bytes() + b"\xff\xfe{bad\n")
    assert "is not UTF-8 text" in one_line(run("report", copy))


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "{not json"])
def test_damaged_result_json_is_one_line(copy, content):
    (result_json,) = copy.glob("trials/0-*/result.json")
    result_json.write_text(content, encoding="utf-8")
    assert f"{result_json} is damaged" in one_line(run("report", copy))


def test_garbage_experiment_yaml_on_resume_is_one_line(copy, tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY), encoding="utf-8")
    (copy / "experiment.yaml").write_text(":: garbage [\n", encoding="utf-8")
    assert one_line(run("tune", path, "--out", copy, "--quiet")) == (
        f"error: {copy / 'experiment.yaml'} is damaged (not a mapping of experiment sections); "
        "remove that folder or use another --out"
    )
    (copy / "experiment.yaml").write_bytes(b"name: [unclosed\n\xff")
    assert "is damaged (" in one_line(run("tune", path, "--out", copy, "--quiet"))


# --------------------------------------------------------------------------- predict


def test_predict_refuses_a_final_model_that_does_not_fit(copy, tmp_path):
    payload = torch.load(copy / "final" / "model.pt", weights_only=True)
    state = payload["state_dict"]
    first = next(iter(state))
    state[first] = torch.zeros(3, 3)
    torch.save(payload, copy / "final" / "model.pt")
    rows = tmp_path / "x.csv"
    rows.write_text("x0,x1\n1,2\n", encoding="utf-8")
    line = one_line(run("predict", copy, rows))
    assert f"{copy / 'final' / 'model.pt'} does not fit its params.json: RuntimeError" in line
    del payload["input_shape"]
    torch.save(payload, copy / "final" / "model.pt")
    assert "does not fit its params.json: KeyError" in one_line(run("predict", copy, rows))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("x0,x1\n1,2\n1e39,2\n", "row 1, column x0: too large for float32 (|x| <= 3.403e+38), got '1e+39'"),
        ("x0,x1\n1,2\n3,abc\n", "row 1, column x1: empty or not a number, got 'abc'"),
        ("x0,x1\n1,\n", "row 0, column x1: empty or not a number, got 'nan'"),
        ("x0,x1\n-inf,1\n", "row 0, column x0: not a finite number, got '-inf'"),
    ],
)
def test_predict_names_the_bad_cell(finished, tmp_path, rows, expected):
    path = tmp_path / "x.csv"
    path.write_text(rows, encoding="utf-8")
    assert one_line(run("predict", finished, path)) == f"error: {path}: {expected}"


def test_read_only_run_folder_is_one_line(tmp_path, monkeypatch):
    def read_only(path, *_args):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(importlib.import_module("tunelab.runs.claim"), "write_text_atomic", read_only)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY), encoding="utf-8")
    out = tmp_path / "run"
    assert one_line(run("train", path, "--out", out, "--quiet")) == (
        f"error: cannot access {out / 'experiment.yaml'}: Read-only file system; choose a writable folder with --out"
    )
