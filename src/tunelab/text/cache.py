"""Frozen-encoder embeddings on disk, so a study computes them once and every trial reuses them.

A file holds the embeddings of one corpus (the sorted distinct texts of a data set) under one
encoder, truncation length and pooling; its name is a hash of exactly those. The folder is
`$TUNELAB_CACHE_DIR/embeddings/`, default `~/.cache/tunelab/embeddings/`. Files are written
atomically (temp + rename), so parallel trials and crashes never leave half a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tunelab.data.cache_dir import CACHE_ENV as CACHE_ENV
from tunelab.data.cache_dir import DEFAULT_CACHE as DEFAULT_CACHE
from tunelab.data.cache_dir import cache_root
from tunelab.runs.records import write_bytes_atomic

FORMAT = 1


def corpus_digest(texts: Sequence[str]) -> str:
    """sha256 of the texts in order (a record separator between them)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def embedding_key(encoder_identity: str, max_length: int, pooling: str, digest: str) -> str:
    """The file name stem: one per (encoder weights, truncation length, pooling, corpus)."""
    spec = {"format": FORMAT, "encoder": encoder_identity, "max_length": max_length, "pooling": pooling,
            "corpus": digest}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


class EmbeddingCache:
    """Load, store and alias embedding files in one folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.dir = (root if root is not None else cache_root()) / "embeddings"

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.pt"

    def load(self, key: str, rows: int) -> torch.Tensor | None:
        """The cached (rows, d) tensor, or None when missing, damaged or of another size."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            tensor = payload["embeddings"]
        except Exception:  # a damaged file is recomputed, never trusted
            return None
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 2 or tensor.shape[0] != rows:
            return None
        return tensor

    def save(self, key: str, embeddings: torch.Tensor, meta: dict[str, Any]) -> Path:
        """Write atomically; `meta` (encoder, max_length, ...) is kept beside the tensor for people."""
        buffer = io.BytesIO()
        torch.save({"format": FORMAT, "embeddings": embeddings.contiguous(), "meta": meta}, buffer)
        path = self.path(key)
        write_bytes_atomic(path, buffer.getvalue())
        return path

    def alias(self, key: str, target: str) -> None:
        """Make `key` name the same file as `target` (a hard link; a copy where links fail)."""
        src, dst = self.path(target), self.path(key)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
        try:
            tmp.unlink(missing_ok=True)
            os.link(src, tmp)
            os.replace(tmp, dst)
        except OSError:
            tmp.unlink(missing_ok=True)
            write_bytes_atomic(dst, src.read_bytes())
