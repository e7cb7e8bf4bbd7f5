"""What an encoder_head trial trains on: cached embeddings (frozen encoder) or token tensors (fine-tuning).

Text data sets arrive with raw strings in `Split.texts` and an empty (n, 0) `x`; `model_inputs`
fills `x` once per trial, so the training loop stays the same lean loop over tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from tunelab.config.schema import EncoderHeadModel, Experiment
from tunelab.data.dataset import Dataset, Split
from tunelab.errors import ConfigError
from tunelab.text.cache import EmbeddingCache, corpus_digest, embedding_key
from tunelab.text.encoder import (
    embed_texts,
    load_encoder,
    load_tokenizer,
    resolve_encoder,
    token_lengths,
    tokenize,
)

# A max_length that cuts at most this share of the texts re-encodes just those (from the uncut file).
PARTIAL_SHARE = 0.25


def check_model_fits_data(model: object, dataset: Dataset) -> None:
    """encoder_head needs text; the numeric families cannot train on text rows that have no features.

    Raises:
        ConfigError: the family and the data set do not go together.
    """
    family = getattr(model, "family", "")
    if family == "encoder_head" and not dataset.is_text:
        raise ConfigError(
            f"family encoder_head needs a text data set (e.g. query_wellformedness); {dataset.name} has no texts",
            key="model.family",
        )
    if family in ("mlp", "cnn") and dataset.is_text and dataset.train.x[0].numel() == 0:
        raise ConfigError(
            f"data set {dataset.name} is text; family {family} needs numeric features: use family encoder_head",
            key="model.family",
        )


def model_inputs(exp: Experiment, dataset: Dataset, cache: EmbeddingCache | None = None) -> Dataset:
    """The data set with `x` filled for this model; any family but encoder_head gets it unchanged."""
    cfg = exp.model
    if not isinstance(cfg, EncoderHeadModel):
        return dataset
    check_model_fits_data(cfg, dataset)
    if cfg.freeze_encoder:
        return with_embeddings(cfg, dataset, cache or EmbeddingCache(), device=_device(exp))
    return with_tokens(cfg, dataset)


def _device(exp: Experiment) -> torch.device:
    from tunelab.devices import resolve_device

    return resolve_device(exp.train.device)


def _splits(dataset: Dataset) -> list[Split]:
    return [s for s in (dataset.train, dataset.val, dataset.test) if s is not None]


def _texts(split: Split) -> list[str]:
    assert split.texts is not None  # check_model_fits_data saw texts
    return split.texts


def corpus_embeddings(
    cfg: EncoderHeadModel, corpus: Sequence[str], cache: EmbeddingCache, device: torch.device | None = None
) -> torch.Tensor:
    """(len(corpus), d) embeddings from the cache, computing and storing them on a miss.

    Only texts longer than max_length change with it. So a length past the corpus's longest text
    shares the file of the longest (a hard link under its own key), and a length that cuts only a
    few texts starts from the untruncated embeddings and re-encodes just those texts: seed 001's
    64, 128 and 256 on short queries are one encoder pass plus a handful of rows.
    """
    source = resolve_encoder(cfg.encoder)
    digest = corpus_digest(corpus)
    meta = {"encoder": source.name, "identity": source.identity, "pooling": cfg.pooling, "rows": len(corpus),
            "corpus_sha256": digest}

    def key_at(length: int) -> str:
        return embedding_key(source.identity, length, cfg.pooling, digest)

    key = key_at(cfg.max_length)
    cached = cache.load(key, len(corpus))
    if cached is not None:
        return cached
    tokenizer = load_tokenizer(source)
    lengths = token_lengths(tokenizer, corpus, _model_max_length(tokenizer, cfg.max_length))
    full = max(lengths, default=1)
    length = min(cfg.max_length, full)
    embeddings = cache.load(key_at(length), len(corpus)) if key_at(length) != key else None
    if embeddings is None:
        encoder = load_encoder(source).to(device or torch.device("cpu"))
        cut = [i for i, n in enumerate(lengths) if n > length]
        if cut and len(cut) <= PARTIAL_SHARE * len(corpus):
            embeddings = cache.load(key_at(full), len(corpus))
            if embeddings is None:
                embeddings = embed_texts(encoder, tokenizer, corpus, full, cfg.pooling)
                cache.save(key_at(full), embeddings, {**meta, "max_length": full})
            embeddings = embeddings.clone()
            embeddings[cut] = embed_texts(encoder, tokenizer, [corpus[i] for i in cut], length, cfg.pooling)
        else:
            embeddings = embed_texts(encoder, tokenizer, corpus, length, cfg.pooling)
        cache.save(key_at(length), embeddings, {**meta, "max_length": length})
    if key_at(length) != key:
        cache.alias(key, key_at(length))
    return embeddings


def _model_max_length(tokenizer: object, asked: int) -> int:
    """The longest input the encoder takes (tokenizers without a limit report a huge sentinel)."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit <= 100_000 else max(asked, 512)


def with_embeddings(
    cfg: EncoderHeadModel, dataset: Dataset, cache: EmbeddingCache, device: torch.device | None = None
) -> Dataset:
    """Each split's `x` = the frozen encoder's embedding of its texts (float32 (n, d)).

    The corpus is the sorted set of every split's texts, so the final model's train+val merge
    and a resumed study hit the same cache file as the search did.
    """
    corpus = sorted({text for split in _splits(dataset) for text in _texts(split)})
    embeddings = corpus_embeddings(cfg, corpus, cache, device)
    index = {text: i for i, text in enumerate(corpus)}

    def fill(split: Split) -> Split:
        rows = torch.tensor([index[t] for t in _texts(split)], dtype=torch.int64)
        return replace(split, x=embeddings.index_select(0, rows).contiguous())

    return replace(
        dataset,
        train=fill(dataset.train),
        val=fill(dataset.val),
        test=fill(dataset.test) if dataset.test is not None else None,
        input_shape=(int(embeddings.shape[1]),),
        feature_scaler=None,
    )


def with_tokens(cfg: EncoderHeadModel, dataset: Dataset) -> Dataset:
    """Each split's `x` = int64 (n, 2, L) token ids and attention mask, tokenized once per trial."""
    tokenizer = load_tokenizer(resolve_encoder(cfg.encoder))

    def fill(split: Split) -> Split:
        return replace(split, x=tokenize(tokenizer, _texts(split), cfg.max_length))

    train = fill(dataset.train)
    return replace(
        dataset,
        train=train,
        val=fill(dataset.val),
        test=fill(dataset.test) if dataset.test is not None else None,
        input_shape=tuple(int(d) for d in train.x.shape[1:]),
        feature_scaler=None,
    )


def text_inputs(cfg: EncoderHeadModel, texts: Sequence[str]) -> torch.Tensor:
    """Model input for new texts at predict time: embeddings (frozen) or packed tokens (fine-tuned)."""
    source = resolve_encoder(cfg.encoder)
    tokenizer = load_tokenizer(source)
    if not cfg.freeze_encoder:
        return tokenize(tokenizer, texts, cfg.max_length)
    return embed_texts(load_encoder(source), tokenizer, list(texts), cfg.max_length, cfg.pooling)
