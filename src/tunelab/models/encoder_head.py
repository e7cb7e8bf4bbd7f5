"""`family: encoder_head`: an MLP head on a pretrained text encoder (seed 001's reward model).

With a frozen encoder the trial trains `EncoderHead` alone, on cached embeddings; fine-tuning
trains `EncoderHeadNet` (encoder + head) on packed token tensors. Both expose `param_groups(lr)`,
which the training loop uses so the head learns at lr x head_lr_multiplier.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tunelab.config.schema import EncoderHeadModel
from tunelab.models.mlp import hidden_stack
from tunelab.text.encoder import encode_tokens, hidden_size, load_encoder, resolve_encoder

EVAL_SUBBATCH_ROWS = 128  # rows per encoder pass when evaluating a whole split at once


def head_widths(cfg: EncoderHeadModel, in_dim: int) -> list[int]:
    """Hidden widths, at least 1: ratio x the encoder width, then ratio x the layer before; with
    `head_layout: halving` seed 001's int(encoder width x ratio x 0.5^i), truncated as the seed did."""
    if cfg.head_layout == "halving":
        return [max(1, int(in_dim * cfg.hidden_dim_ratio * 0.5**i)) for i in range(cfg.num_layers)]
    widths, width = [], in_dim
    for _ in range(cfg.num_layers):
        width = max(1, round(width * cfg.hidden_dim_ratio))
        widths.append(width)
    return widths


class EncoderHead(nn.Module):
    """Dropout on the pooled vector, then Linear -> [LayerNorm] -> activation -> Dropout per hidden layer.

    Not an `nn.Sequential` on purpose: vectorized training stacks only plain Sequentials, and it
    would ignore the head's own learning rate.
    """

    def __init__(self, cfg: EncoderHeadModel, in_dim: int, output_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else []
        layers += hidden_stack(in_dim, head_widths(cfg, in_dim), output_dim,
                               layer_norm=cfg.layer_norm, activation=cfg.activation, dropout=cfg.dropout)
        self.layers = nn.Sequential(*layers)
        self.lr_multiplier = cfg.head_lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, in_dim) -> (n, output_dim)
        return self.layers(x)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The head alone trains, at lr x head_lr_multiplier."""
        return [{"params": list(self.parameters()), "lr": lr * self.lr_multiplier}]


class EncoderHeadNet(nn.Module):
    """Encoder and head trained together on packed (n, 2, L) tokens: ids and attention mask."""

    def __init__(self, encoder: nn.Module, head: EncoderHead, pooling: str) -> None:
        super().__init__()
        self.encoder, self.head, self.pooling = encoder, head, pooling

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            return self.head(encode_tokens(self.encoder, tokens, self.pooling))
        # A whole split at once in eval: sub-batches keep the attention memory small.
        parts = [
            self.head(encode_tokens(self.encoder, tokens[i : i + EVAL_SUBBATCH_ROWS], self.pooling))
            for i in range(0, len(tokens), EVAL_SUBBATCH_ROWS)
        ]
        if not parts:
            return torch.zeros((0, self.head.layers[-1].out_features), device=tokens.device)
        return torch.cat(parts)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Encoder at lr, head at lr x head_lr_multiplier (seed 001)."""
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        return [{"params": encoder, "lr": lr}, *self.head.param_groups(lr)]


def build_encoder_head(cfg: EncoderHeadModel, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    """The head on embeddings of `input_shape` (or of the encoder's width), or the whole network to fine-tune."""
    source = resolve_encoder(cfg.encoder)
    if cfg.freeze_encoder:
        given = input_shape[0] if len(input_shape) == 1 else 0
        return EncoderHead(cfg, given if given > 0 else hidden_size(source), output_dim)
    encoder = load_encoder(source)
    return EncoderHeadNet(encoder, EncoderHead(cfg, hidden_size(source), output_dim), cfg.pooling)
