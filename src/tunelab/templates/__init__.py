"""Starter experiment files for `tunelab init`, shipped inside the package.

Each starter runs as is with `tunelab tune` (it has a small `search:` grid and a `quick:` block)
and with `tunelab train`. The study name is taken from the file name, so `tunelab init
cifar_probe.yaml` starts a study called `cifar_probe` whose run folder is `runs/cifar_probe/`.
"""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources
from pathlib import Path

from tunelab.runs.records import write_text_atomic

TEMPLATES: dict[str, str] = {
    "digits": "digits.yaml",
    "toy": "toy.yaml",
    "regression": "regression.yaml",
}
TEMPLATE_HELP = {
    "digits": "MLP on scikit-learn's 8x8 digits, classification",
    "toy": "seed 004's 2-D toy problem, full-batch SGD",
    "regression": "MLP on scikit-learn's diabetes data",
}
_NAME_LINE = re.compile(r"^name: .*$", re.MULTILINE)
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FILE = re.compile(r"\bFILE\b")  # the templates' placeholder in their `# Run:` comments


def template_text(name: str) -> str:
    return resources.files("tunelab.templates").joinpath(TEMPLATES[name]).read_text(encoding="utf-8")


def study_name(path: Path) -> str:
    """The study name a starter gets: the file name without its extension, YAML-quoted if needed."""
    stem = path.stem or "experiment"
    return stem if _PLAIN.fullmatch(stem) else json.dumps(stem)


def shell_path(path: Path) -> str:
    """`path` as it goes on a command line (quoted when the shell would split or expand it)."""
    return shlex.quote(str(path))


def starter_text(name: str, path: Path) -> str:
    """The template with its `name:` line set from the file name and its run commands naming the file."""
    text = _NAME_LINE.sub(f"name: {study_name(path)}", template_text(name), count=1)
    return _FILE.sub(lambda _: shell_path(path), text)


def write_template(name: str, path: Path) -> None:
    write_text_atomic(path, starter_text(name, path))


def choices_help() -> str:
    """`digits` (...), `toy` (...): the line `tunelab init --help` shows for --template."""
    return "Starter template: " + "; ".join(f"{key} ({TEMPLATE_HELP[key]})" for key in TEMPLATES) + "."
