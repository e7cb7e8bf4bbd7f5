"""Generated `--set` values, names and predict inputs: each run either succeeds or ends in one
line with exit 2, never a traceback, and a refused run leaves no run folder behind."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import tunelab.app.train
import tunelab.app.tune
from tunelab.cli import app
from tunelab.runs.layout import folder_name

TOY = {
    "name": "fuzz",
    "data": {"name": "toy_2d"},
    "model": {"hidden_dims": [8]},
    "train": {"epochs": 1, "batch_size": "full", "checkpoints": {"keep_last": 1}},
    "final": {"enabled": False},
}
KEYS = ["train.lr", "train.weight_decay", "train.eps", "train.huber_delta", "train.betas", "train.epochs",
        "train.batch_size", "train.divergence.max_loss", "train.max_grad_norm", "data.val_fraction",
        "data.features", "data.max_rows", "model.hidden_dims", "model.dropout", "name", "description",
        "search.n_trials", "search.timeout_s", "train.seed", "train.momentum"]
CONTROL = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), min_size=1, max_size=3)
TEXTS = st.sampled_from([".inf", "-.inf", ".nan", "inf", "nan", "1e309", "-1e309", "1e39", "10**9", str(10**30),
                         "[[1]]", "[1e9, 1e9]", "[65536, 65536, 65536]", "[]", "{}", "[2, 3]", "null", "~", "''",
                         "[bold]x[/]", "../..", "ü😀\u202e", "0", "-1", "1e-320", "0x10", "true"])
VALUES = st.one_of(TEXTS, CONTROL.map(lambda c: f"a{c}b"), st.floats(allow_nan=True).map(repr),
                   st.integers(-(10**20), 10**20).map(str))
MAX_EXAMPLES = int(os.environ.get("TUNELAB_FUZZ_EXAMPLES", "40"))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _cheap(monkeypatch):
    for module in (tunelab.app.tune, tunelab.app.train):  # every test here runs `train`, which has its own name
        monkeypatch.setattr(module, "write_evidence", lambda *_args, **_kwargs: None)
    monkeypatch.setenv("TUNELAB_MAX_MODEL_GB", "2")  # keep any accepted model small on a shared machine


def check_outcome(result, out: Path) -> None:
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"traceback: {result.exception!r}"
    )
    if result.exit_code == 0:
        return
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not out.exists(), f"refused run left {sorted(p.name for p in out.iterdir())}"


@SETTINGS
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_generated_set_values_train_or_fail_with_one_line(tmp_path_factory, key, value):
    work = tmp_path_factory.mktemp("set")
    path = work / "exp.yaml"
    path.write_text(yaml.safe_dump(TOY), encoding="utf-8")
    out = work / "run"
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "--quiet", "--set", f"{key}={value}"])
    check_outcome(result, out)


NAMES = st.one_of(
    st.text(min_size=1, max_size=250),
    st.sampled_from(["..", ".", "/", "a/b", "../../x", "bad[/]name", "[red]x", "~", "-", "ü" * 200, "\u202e",
                     "con", "x" * 200, " ", "a\\b", "*?"]),
)


@SETTINGS
@given(name=NAMES)
def test_generated_names_make_one_safe_folder_or_fail_with_one_line(tmp_path_factory, name):
    work = tmp_path_factory.mktemp("name")
    path = work / "exp.yaml"
    path.write_text(yaml.safe_dump({**TOY, "name": name}, allow_unicode=True), encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(work)
    try:
        result = CliRunner().invoke(app, ["train", str(path), "--quiet"])
    finally:
        os.chdir(cwd)
    check_outcome(result, work / "runs")
    if result.exit_code == 0:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))["name"]  # YAML may normalise line breaks
        assert [p.name for p in (work / "runs").iterdir()] == [folder_name(str(loaded)) + "-train"]
        assert sorted(p.name for p in work.iterdir()) == ["exp.yaml", "runs"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("trained")
    path = work / "exp.yaml"
    exp = {**TOY, "search": {"strategy": "grid", "space": {"train.lr": [0.1]}}, "final": {"enabled": True}}
    path.write_text(yaml.safe_dump(exp), encoding="utf-8")
    result = CliRunner().invoke(app, ["tune", str(path), "--out", str(work / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    return work / "run"


CELLS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-(10**40), 10**40).map(str),
                  st.sampled_from(["", "abc", "1e39", "-1e39", "nan", "inf", "1,5", '"1"', "0x1"]))


@SETTINGS
@given(rows=st.lists(st.tuples(CELLS, CELLS), min_size=1, max_size=4))
def test_generated_predict_inputs_predict_finite_values_or_fail_with_one_line(trained, tmp_path_factory, rows):
    work = tmp_path_factory.mktemp("predict")
    path = work / "x.csv"
    path.write_text("x0,x1\n" + "".join(f'"{a}","{b}"\n' for a, b in rows), encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(trained), str(path)])
    check_outcome(result, work / "nothing")
    if result.exit_code == 0:
        body = result.stdout.splitlines()[1:]
        assert len(body) == len(rows)
        for line in body:
            assert all(math.isfinite(float(v)) for v in line.split(",")[1:] if v not in ("0", "1")), line
    shutil.rmtree(work)
