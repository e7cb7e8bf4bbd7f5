"""Crash-safe writers: whole files are written to a temp file and renamed; jsonl is appended per epoch."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def read_number(value: Any) -> int | float | None:
    """A number as `dumps` wrote it: an int stays an int, a float or numeric string (`"inf"`) becomes
    a float; None for null (NaN), a bool, other text or anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value if isinstance(value, int) else float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def dumps(record: Mapping[str, Any], *, indent: int | None = None) -> str:
    """JSON text with NaN written as null and infinities as strings, so any reader can parse it."""
    return json.dumps(_jsonable(record), indent=indent, allow_nan=False)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; a run folder is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, record: Mapping[str, Any]) -> None:
    write_text_atomic(path, dumps(record, indent=2) + "\n")


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """One line per record, appended whole (see `append_text`)."""
    append_text(path, dumps(record) + "\n")


def append_text(path: Path, text: str) -> None:
    """Append `text` in one `write` call on an O_APPEND descriptor: no buffer holds part of it, so a
    process killed after the call left the line whole; only a kill inside the call (the kernel
    stops a write between pages), a power cut or a full disk can tear it, and readers skip a torn
    last line (a resume rewrites the records after its checkpoint)."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # as open(): the umask applies
    try:
        written = os.write(fd, data)
        while written < len(data):  # a short write (a full disk): finish it or raise
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete record; a torn last line (the process died mid-write) is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def write_jsonl_atomic(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    write_text_atomic(path, "".join(dumps(r) + "\n" for r in records))


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
