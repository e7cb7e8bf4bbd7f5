"""The identity every record carries: which experiment, code, data, seed and libraries made it."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from typing import Any


@functools.cache
def git_commit() -> str | None:
    """The current directory's git commit (the user's code), or None outside a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@functools.cache
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("tunelab", "torch", "optuna", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def experiment_id(resolved: dict[str, Any]) -> str:
    """A short stable hash of the resolved experiment (same file, same defaults -> same id)."""
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def make_identity(exp_id: str, data_hash: str, seed: int) -> dict[str, Any]:
    return {
        "experiment_id": exp_id,
        "git_commit": git_commit(),
        "data_hash": data_hash,
        "seed": seed,
        "versions": library_versions(),
    }
