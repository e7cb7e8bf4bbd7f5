"""Bad input ends in one line and exit 2 with nothing written: meaningless values, sizes past a
limit, names that look like paths, locations of errors found after validation (issue 11.4, 13.4-13.10)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from tunelab.runs.layout import folder_name

TOY = {
    "name": "toy",
    "data": {"name": "toy_2d"},
    "model": {"hidden_dims": [8]},
    "train": {"epochs": 1, "batch_size": "full"},
    "final": {"enabled": False},
}


TOO_SHORT = "list should have at least 1 item after validation, not 0, got []"
HELP = " (see tunelab tune --help)"


def write(tmp_path: Path, data: dict | str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.lr=.inf", "--set train.lr=.inf: expected a finite number, got inf"),
        ("train.weight_decay=.nan", "--set train.weight_decay=.nan: expected a finite number, got nan"),
        ("train.eps=.inf", "--set train.eps=.inf: expected a finite number, got inf"),
        ("train.huber_delta=-.inf", "--set train.huber_delta=-.inf: expected a finite number, got -inf"),
        ("train.divergence.max_loss=.inf", "--set train.divergence.max_loss=.inf: expected a finite number, got inf"),
        ("train.betas=[2, 3]", "--set train.betas=[2, 3]: input should be less than 1, got 2"),
        ("train.betas=[0.9, -0.1]", "--set train.betas=[0.9, -0.1]: input should be greater than or equal to 0, "
         "got -0.1"),
        ("data.val_fraction=0", "--set data.val_fraction=0: input should be greater than 0, got 0"),
        ("data.features=[]", "--set data.features=[]: " + TOO_SHORT),
        ("search.stages=[]", "--set search.stages=[]: " + TOO_SHORT),
    ],
)
def test_meaningless_values_are_schema_errors(override, expected, tmp_path, cli):
    out = tmp_path / "run"
    result = cli("train", write(tmp_path, TOY), "--out", out, "--set", override, "--quiet")
    assert one_line(result) == f"error: {expected}"
    assert not out.exists()


def test_override_is_blamed_not_the_file_line_it_replaced(tmp_path, cli):
    result = cli("train", write(tmp_path, TOY), "--set", "model.hidden_dims=[[1]]", "--quiet")
    assert one_line(result) == "error: --set model.hidden_dims=[[1]]: expected an integer, got [1]"


def test_file_value_names_its_line(tmp_path, cli):
    exp = {**TOY, "train": {**TOY["train"], "betas": [2, 3]}}
    path = write(tmp_path, exp)
    line = yaml.safe_dump(exp, sort_keys=False).splitlines().index("  betas:") + 1
    result = cli("train", path, "--out", tmp_path / "run", "--quiet")
    assert one_line(result) == f"error: {path}:{line + 1} train.betas.0: input should be less than 1, got 2"


def test_billion_laughs_is_refused_fast_in_one_line(tmp_path, cli):
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(levels) + "\n"
    assert len(text.encode()) < 400
    path = write(tmp_path, text)
    start = time.perf_counter()
    result = cli("train", path, "--out", tmp_path / "run", "--quiet")
    assert time.perf_counter() - start < 5  # expanded, this is 387 million strings
    assert one_line(result) == (
        f"error: {path} invalid YAML: the file expands to more than 100,000 values "
        "(anchors and aliases nested too deeply); write the values out"
    )


LIMIT_HINT = "list fewer values, use a larger step or a sampler strategy, or raise the limit with TUNELAB_MAX_POINTS=N"


@pytest.mark.parametrize(
    ("search", "key", "what", "count"),
    [
        ({"strategy": "grid", "space": {"train.epochs": {"low": 1, "high": 100000}}},
         "search.space.train.epochs", "this range", "100,000"),
        ({"strategy": "grid", "space": {"train.lr": {"low": 0.001, "high": 0.1, "step": 1e-9}}},
         "search.space.train.lr", "this range", "99,000,001"),
        ({"strategy": "lr_sweep", "n_trials": 10**9, "space": {"train.lr": {"low": 1e-4, "high": 1.0}}},
         "search.n_trials", "the lr sweep", "1,000,000,000"),
        ({"strategy": "grid",
          "space": {"train.epochs": {"low": 1, "high": 1000}, "train.seed": {"low": 0, "high": 999}}},
         "search.space", "the grid (every combination of the listed values)", "1,000,000"),
    ],
)
def test_spaces_past_the_point_limit_are_refused_before_listing(search, key, what, count, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("TUNELAB_MAX_POINTS", "99999")
    path = write(tmp_path, {**TOY, "search": search})
    out = tmp_path / "run"
    result = cli("tune", path, "--out", out, "--quiet")
    line = one_line(result)
    assert f" {key}: {what} expands to {count} points, over the limit of 99,999; {LIMIT_HINT}" in line
    assert line.startswith(f"error: {path}:")  # the key's line in the file
    assert not out.exists()


def test_point_limit_can_be_raised(tmp_path, cli, monkeypatch):
    search = {"strategy": "grid", "space": {"train.seed": {"low": 0, "high": 2}}}
    monkeypatch.setenv("TUNELAB_MAX_POINTS", "2")
    path = write(tmp_path, {**TOY, "search": search})
    assert "expands to 3 points, over the limit of 2" in one_line(cli("tune", path, "--out", tmp_path / "a", "-q"))
    monkeypatch.setenv("TUNELAB_MAX_POINTS", "3")
    result = cli("tune", path, "--out", tmp_path / "b", "--quiet", "--json")
    assert result.exit_code == 0, result.output


def test_huge_model_is_refused_before_allocation(tmp_path, cli):
    exp = {**TOY, "model": {"hidden_dims": [65536, 65536, 65536]}}
    out = tmp_path / "run"
    result = cli("train", write(tmp_path, exp), "--out", out, "--quiet")
    line = one_line(result)
    assert "model: this model has 8,590,393,346 parameters and needs about 138.0 GB to train" in line
    assert "over the limit of 16 GB; use smaller layers or batches, or raise the limit with TUNELAB_MAX_MODEL_GB" \
        in line
    assert not out.exists()


def test_model_limit_can_be_lowered_and_raised(tmp_path, cli, monkeypatch):
    exp = {**TOY, "model": {"hidden_dims": [512, 512]}}
    path = write(tmp_path, exp)
    monkeypatch.setenv("TUNELAB_MAX_MODEL_GB", "0.001")
    assert "over the limit of 0.001 GB" in one_line(cli("train", path, "--out", tmp_path / "a", "--quiet"))
    monkeypatch.setenv("TUNELAB_MAX_MODEL_GB", "1")
    assert cli("train", path, "--out", tmp_path / "b", "--quiet").exit_code == 0


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("toy", "toy"),
        ("my exp", "my_exp"),
        ("bad[/]name", "bad_name"),
        ("..", "experiment-" + __import__("hashlib").sha256(b"..").hexdigest()[:8]),
        ("../../etc", "_.._etc-" + __import__("hashlib").sha256(b"../../etc").hexdigest()[:8]),
    ],
)
def test_folder_name_is_one_safe_component(name, folder):
    assert folder_name(name) == folder


def test_long_non_ascii_name_is_a_short_distinct_folder():
    a, b = folder_name("é" * 199 + "a"), folder_name("é" * 199 + "b")
    assert a != b and len(a.encode()) <= 80 and "/" not in a and not a.startswith(".")


@pytest.mark.parametrize("name", ["..", "bad[/]name", "ü" * 200, "[bold red]x[/]", "a/../../b"])
def test_names_are_labels_never_paths(name, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = {**TOY, "name": name}
    result = cli("train", write(tmp_path, exp), "--quiet")
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name == folder_name(name) + "-train"
    assert (folder / "experiment.yaml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml", "runs"]


def test_markup_in_a_name_prints_as_text(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = {**TOY, "name": "bad[/]name", "search": {"strategy": "grid", "space": {"train.lr": [0.1, 0.2]}}}
    result = cli("tune", write(tmp_path, exp))
    assert result.exit_code == 0, result.output
    assert "study      bad[/]name in sqlite:///" in result.stdout


def test_data_target_error_lists_columns_and_names_the_line(tmp_path, cli):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i * 2},{i % 3}\n" for i in range(30)), encoding="utf-8")
    path = write(tmp_path, f"name: t\ndata:\n  name: csv\n  path: {csv}\n  target: yy\n")
    result = cli("train", path, "--out", tmp_path / "run", "--quiet")
    assert one_line(result) == (
        f"error: {path}:5 data.target: no column 'yy' in {csv} (did you mean y?); columns: a, b, y"
    )


def test_space_key_error_names_its_line_and_a_guess(tmp_path, cli):
    path = write(tmp_path, {**TOY, "search": {"strategy": "grid", "space": {"train.lrr": [0.1]}}})
    result = cli("tune", path, "--out", tmp_path / "run", "--quiet")
    assert one_line(result) == (
        f"error: {path}:15 search.space.train.lrr: unknown key path (did you mean train.lr or train.loss?)"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--n-trials", "0"], "error: --n-trials: Input should be greater than or equal to 1" + HELP),
        (["--timeout", "nan"], "error: --timeout: Input should be greater than or equal to 0.001" + HELP),
        (["--timeout", "inf"], "error: --timeout: expected a finite number, got inf" + HELP),
        (["--bogus"], "error: No such option: --bogus (Possible options: --out)" + HELP),
    ],
)
def test_usage_errors_are_one_line(args, expected, tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, TOY)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    code = "import sys; sys.argv[0] = 'tunelab'; from tunelab.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "tune", str(path), *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [expected]


@pytest.mark.parametrize("name", ["..", "../../x", "a/b", "é" * 60])
def test_stage_folders_stay_under_stages(name):
    from tunelab.runs.layout import RunLayout

    folder = RunLayout(Path("run")).stage(2, name).root
    assert folder.parent == Path("run") / "stages"
    assert folder.name == f"2-{folder_name(name)}" and ".." not in folder.parts
