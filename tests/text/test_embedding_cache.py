"""Frozen-encoder embeddings: computed once per (encoder, max_length, pooling, texts), then read from disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tunelab.config.schema import EncoderHeadModel
from tunelab.data.dataset import Dataset, Split
from tunelab.text import features
from tunelab.text.cache import EmbeddingCache, cache_root, corpus_digest, embedding_key

TEXTS = [
    "how do i cook rice",
    "what is the capital of france",
    "rice cook how",
    "why is the sky blue during the day and red in the evening when the sun sets",
    "who wrote the origin of species",
    "what is the capital of france",  # a duplicate row: embedded once
]


def dataset(texts: list[str]) -> Dataset:
    def split(rows: list[str]) -> Split:
        return Split(x=torch.zeros(len(rows), 0), y=torch.rand(len(rows), 1), texts=rows)

    return Dataset("texts", "regression", split(texts[:4]), split(texts[4:]), None, (0,), 1)


@pytest.fixture
def encoder_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts real encoder passes (one per computed cache file)."""
    calls: list[int] = []
    real = features.embed_texts

    def counting(encoder, tokenizer, texts, max_length, pooling):
        calls.append(len(texts))
        return real(encoder, tokenizer, texts, max_length, pooling)

    monkeypatch.setattr(features, "embed_texts", counting)
    return calls


def files(cache: EmbeddingCache) -> list[Path]:
    return sorted(cache.dir.glob("*.pt"))


def test_cache_is_written_once_and_reused_without_running_the_encoder(tmp_path, encoder_calls):
    cache = EmbeddingCache(tmp_path)
    cfg = EncoderHeadModel(max_length=64)
    first = features.with_embeddings(cfg, dataset(TEXTS), cache)
    assert encoder_calls == [5]  # the distinct texts
    written = files(cache)  # the true length's file, linked under the asked max_length too
    assert len({path.stat().st_ino for path in written}) == 1
    stamps = [path.stat().st_mtime_ns for path in written]
    second = features.with_embeddings(cfg, dataset(TEXTS), cache)
    assert encoder_calls == [5]
    assert files(cache) == written and [path.stat().st_mtime_ns for path in written] == stamps
    assert torch.equal(first.train.x, second.train.x) and torch.equal(first.val.x, second.val.x)
    assert first.train.x.shape == (4, 384) and first.input_shape == (384,)
    assert torch.equal(first.val.x[1], first.train.x[1])  # the same text, the same vector
    assert first.train.texts == TEXTS[:4]


def test_merged_splits_hit_the_same_file(tmp_path, encoder_calls):
    """The final model trains on train+val: the same texts, so the same cache file."""
    cache = EmbeddingCache(tmp_path)
    cfg = EncoderHeadModel(max_length=64)
    features.with_embeddings(cfg, dataset(TEXTS), cache)
    merged = Dataset("texts", "regression", Split(torch.zeros(6, 0), torch.rand(6, 1), TEXTS),
                     Split(torch.zeros(0, 0), torch.zeros(0, 1), []), None, (0,), 1)
    features.with_embeddings(cfg, merged, cache)
    assert encoder_calls == [5]


def test_key_changes_with_max_length_when_it_truncates(tmp_path, encoder_calls):
    cache = EmbeddingCache(tmp_path)
    short = features.with_embeddings(EncoderHeadModel(max_length=6), dataset(TEXTS), cache)
    long = features.with_embeddings(EncoderHeadModel(max_length=64), dataset(TEXTS), cache)
    assert encoder_calls == [5, 5]  # 6 tokens cuts most texts: both lengths are full passes
    assert len(files(cache)) == 3  # 6, the longest text's length, and 64 linked to it
    assert not torch.allclose(short.train.x[3], long.train.x[3])  # the long question was cut at 6 tokens


def test_a_length_that_cuts_few_texts_re_encodes_only_those(tmp_path, encoder_calls):
    cache = EmbeddingCache(tmp_path)
    uncut = features.with_embeddings(EncoderHeadModel(max_length=64), dataset(TEXTS), cache)
    cut = features.with_embeddings(EncoderHeadModel(max_length=12), dataset(TEXTS), cache)
    assert encoder_calls == [5, 1]  # only the long question is longer than 12 tokens
    alone = features.with_embeddings(EncoderHeadModel(max_length=12), dataset([TEXTS[3]] * 2), EmbeddingCache(
        tmp_path / "other"))
    assert torch.allclose(cut.train.x[3], alone.train.x[0], atol=1e-5)
    assert not torch.allclose(cut.train.x[3], uncut.train.x[3])
    assert torch.equal(cut.train.x[:3], uncut.train.x[:3]) and torch.equal(cut.val.x, uncut.val.x)


def test_lengths_past_the_longest_text_share_one_computation(tmp_path, encoder_calls):
    cache = EmbeddingCache(tmp_path)
    a = features.with_embeddings(EncoderHeadModel(max_length=64), dataset(TEXTS), cache)
    b = features.with_embeddings(EncoderHeadModel(max_length=256), dataset(TEXTS), cache)
    assert encoder_calls == [5]
    assert torch.equal(a.train.x, b.train.x)
    assert len({p.stat().st_ino for p in files(cache)}) == 1  # 64, 256 and the true length: one file


def test_key_changes_with_the_data_and_the_pooling(tmp_path, encoder_calls):
    cache = EmbeddingCache(tmp_path)
    features.with_embeddings(EncoderHeadModel(), dataset(TEXTS), cache)
    features.with_embeddings(EncoderHeadModel(), dataset([*TEXTS[:5], "a brand new query"]), cache)
    features.with_embeddings(EncoderHeadModel(pooling="cls"), dataset(TEXTS), cache)
    assert len(encoder_calls) == 3
    digest = corpus_digest(["a"])
    assert embedding_key("e", 64, "mean", digest) != embedding_key("e", 128, "mean", digest)
    assert embedding_key("e", 64, "mean", digest) != embedding_key("e", 64, "mean", corpus_digest(["b"]))
    assert embedding_key("e", 64, "mean", digest) != embedding_key("other", 64, "mean", digest)


def test_damaged_file_is_recomputed(tmp_path, encoder_calls):
    cache = EmbeddingCache(tmp_path)
    features.with_embeddings(EncoderHeadModel(), dataset(TEXTS), cache)
    for path in files(cache):
        path.write_bytes(b"not a tensor")
    features.with_embeddings(EncoderHeadModel(), dataset(TEXTS), cache)
    assert len(encoder_calls) == 2


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNELAB_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path and EmbeddingCache().dir == tmp_path / "embeddings"
    monkeypatch.delenv("TUNELAB_CACHE_DIR")
    assert cache_root() == Path("~/.cache/tunelab").expanduser()
