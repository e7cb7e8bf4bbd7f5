"""The house rules: which part of tunelab may import which, and no circles between parts.

Walks every module's imports (module level and inside functions) with `ast`, maps each module to
its part (the first package under `tunelab`, or the top-level module), and fails on an arrow that
docs/architecture.md does not draw, or on any circle between parts. A new import that crosses the
lines fails here with the file that made it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "tunelab"

# utilities anyone may import; they import no part
LEAVES = {"errors", "importing", "markdown", "devices", "console", "lifetime", "masking", "cli_errors"}
# part -> the parts it may import (besides itself and the leaves); docs/architecture.md draws the same.
ALLOWED: dict[str, set[str]] = {
    "tunelab": {"*"},  # the package face only re-exports
    "__main__": {"cli"},
    "cli": {"app"},
    "app": {"config", "data", "models", "train", "search", "runs", "diagnose", "report", "templates", "text"},
    "search": {"train", "runs", "config", "data", "models", "text"},
    "train": {"models", "data", "runs", "config", "text"},
    "diagnose": {"runs", "config"},
    "report": {"runs", "diagnose"},
    "text": {"data", "config", "runs"},  # text inputs: tokenised or embedded data (its cache under runs' writers)
    "models": {"config", "data", "text"},  # encoder_head builds on text's pretrained encoder
    "data": {"config"},
    "runs": {"config"},
    "config": set(),
    "templates": {"runs"},
    "docs_reference": {"config"},
    "errors": set(),
    "importing": set(),
    "markdown": set(),
    "devices": set(),
    "console": set(),
    "lifetime": set(),
    "masking": set(),
    "cli_errors": set(),
}


def _module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def part_of(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "tunelab"


def imports_of(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """(imported tunelab module, line) for every import in the file, relative ones resolved."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            yield base, node.lineno
            for alias in node.names:  # `from tunelab import app` names a part, not an attribute
                yield f"{base}.{alias.name}", node.lineno


def arrows(root: Path = ROOT) -> dict[tuple[str, str], str]:
    """(from part, to part) -> the first 'file:line' that draws it."""
    known = {_module_name(p, root) for p in root.rglob("*.py")}
    found: dict[tuple[str, str], str] = {}
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        for target, line in imports_of(path, module):
            if not target.startswith("tunelab") or target not in known:
                continue
            a, b = part_of(module), part_of(target)
            if a != b and b != "tunelab":
                found.setdefault((a, b), f"{path.relative_to(root.parent)}:{line}")
            elif b == "tunelab" and a != "tunelab" and target == "tunelab":
                found.setdefault((a, b), f"{path.relative_to(root.parent)}:{line}")
    return found


def forbidden(found: dict[tuple[str, str], str]) -> list[str]:
    bad = []
    for (a, b), where in sorted(found.items()):
        allowed = ALLOWED.get(a)
        if allowed is None:
            bad.append(f"{where}: part {a!r} is not in the house map (add it to ALLOWED and docs/architecture.md)")
        elif "*" not in allowed and b not in allowed and b not in LEAVES:
            bad.append(f"{where}: {a} -> {b} is not an allowed arrow")
    return bad


def circles(found: dict[tuple[str, str], str]) -> list[list[str]]:
    """Strongly connected groups of parts (Tarjan), the package face left out: it may import anything."""
    graph: dict[str, set[str]] = {}
    for a, b in found:
        if "tunelab" not in (a, b):
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_every_arrow_between_parts_is_allowed() -> None:
    assert forbidden(arrows()) == []


def test_no_circle_between_parts() -> None:
    assert circles(arrows()) == []


def test_the_checker_catches_a_forbidden_arrow_and_a_circle(tmp_path: Path) -> None:
    pkg = tmp_path / "tunelab"
    for part in ("search", "app", "config"):
        (pkg / part).mkdir(parents=True)
        (pkg / part / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "app" / "tune.py").write_text("from tunelab.search import runner\n")
    (pkg / "search" / "runner.py").write_text("def f():\n    from tunelab.app.tune import x\n")
    (pkg / "config" / "space.py").write_text("from tunelab.search.runner import f\n")
    found = arrows(pkg)
    assert forbidden(found) == [
        "tunelab/config/space.py:1: config -> search is not an allowed arrow",
        "tunelab/search/runner.py:2: search -> app is not an allowed arrow",
    ]
    assert circles(found) == [["app", "search"]]


def test_no_module_is_over_350_lines() -> None:
    """STYLE.md's ~350: a module that grows past it holds two jobs; split it by responsibility."""
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 350}
    assert long == {}
