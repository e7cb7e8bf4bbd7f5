"""Epoch checkpoints: everything needed to continue a run exactly, written atomically, read safely.

Loads use `weights_only=True`, so a checkpoint can hold tensors and plain data but never code.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import torch

from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import write_bytes_atomic

log = logging.getLogger(__name__)
FORMAT = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialize to memory first so the file on disk is either the old one or the whole new one."""
    write_checkpoint(path, serialize(state))


def write_checkpoint(path: Path, data: bytes) -> None:
    """Write `serialize`'s bytes: the file on disk is either the old one or the whole new one."""
    write_bytes_atomic(path, data)


def serialize(state: dict[str, Any]) -> bytes:
    """A checkpoint's bytes: the state as it is now (later changes to its tensors do not show)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    return buffer.getvalue()


def link_checkpoint(source: Path, target: Path) -> None:
    """Make `target` (best.pt) the same file as `source`, atomically: a hard link under a temporary
    name renamed over `target`, or a copy where the file system has no hard links. Pruning
    `source` later leaves `target` whole."""
    tmp = target.with_name(f".{target.name}.link")  # one writer per trial folder; a killed one's is replaced
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # no hard links here (some network and FAT file systems)
        write_bytes_atomic(target, source.read_bytes())
        return
    try:
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # left only if the rename failed (or both named one file already)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint; raises on a truncated or corrupted file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a tunelab checkpoint")
    return state


def load_latest(layout: TrialLayout) -> dict[str, Any] | None:
    """The newest checkpoint that loads; a damaged one is skipped with a warning, never a crash."""
    for _epoch, path in layout.epoch_checkpoints():
        try:
            return load_checkpoint(path)
        except Exception as exc:  # truncated zip, bad pickle, wrong format: fall back to an older one
            log.warning("checkpoint %s could not be loaded (%s); trying an earlier one", path, type(exc).__name__)
            continue
    return None


def prune_checkpoints(layout: TrialLayout, keep_last: int) -> None:
    """Keep the newest `keep_last` epoch checkpoints."""
    for _, path in layout.epoch_checkpoints()[keep_last:]:
        path.unlink(missing_ok=True)


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {"torch": torch.random.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    torch.random.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
