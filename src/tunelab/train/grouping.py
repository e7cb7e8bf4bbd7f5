"""Which trials can train together as one vectorized group, and why not.

`group_key` sorts trials into groups before any model is built (same family, shape, data, batch
size, loss, optimizer type; lr schedules, epochs and accumulation may differ); `can_vectorize`
(before the models exist) and `vectorize_error` (the training recipe, and the built models'
layers) give the reason a group is refused; `can_vectorize` ends with `vectorize_error`, so a
rule is written once. Members whose MLP shapes differ (train/padding.py `SHAPE_KEYS`) have
different keys but may train in one padded stack (train/mixed.py; `padding.pad_stacks` decides
when it pays). `fit_group` (train/vectorized.py) trains what these let through.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from torch import nn

from tunelab.config.schema import Experiment, TrainSection
from tunelab.config.vocabulary import VECTORIZED_FAMILIES
from tunelab.data.dataset import Dataset
from tunelab.runs.layout import TrialLayout
from tunelab.train.batched_model import layer_signature, stackable, unsupported_module
from tunelab.train.batched_optim import SUPPORTED_OPTIMIZERS
from tunelab.train.losses import model_output_dim
from tunelab.train.mixed import pad_error
from tunelab.train.padding import SHAPE_KEYS

# Train keys that may differ between members of one group (the rest must be equal).
PER_MEMBER_TRAIN_KEYS = frozenset({
    "lr", "weight_decay", "momentum", "betas", "eps", "max_grad_norm", "seed", "monitor",
    "early_stopping", "checkpoints", "divergence", "alpha",  # alpha: rmsprop's, not vectorized
    # each member's own recipe (train/member_schedule.py): lr schedule, length, accumulation
    "scheduler", "warmup_ratio", "step_size", "gamma", "plateau_patience", "epochs",
    "gradient_accumulation_steps",
})
PER_MEMBER_MODEL_KEYS = frozenset({"dropout", "head_lr_multiplier"})  # a head's multiplier scales its lr


def can_vectorize(members: Sequence[tuple[Experiment, Dataset]]) -> str | None:
    """None when these trials can train as one `fit_group`, else the reason they cannot."""
    if not members:
        return "no members"
    exp0, data0 = members[0]
    for i, (exp, data) in enumerate(members):
        head = frozen_head(exp, data)
        if exp.model.family not in VECTORIZED_FAMILIES and not head:
            return (f"member {i}: model family {exp.model.family!r} is not vectorized "
                    f"(only {', '.join(VECTORIZED_FAMILIES)}, encoder_head on cached embeddings)")
        if getattr(exp.model, "batch_norm", False):
            return f"member {i}: batch_norm is not vectorized"
        if data.is_text and not head:
            return f"member {i}: text data is not vectorized"
        if data.is_image:
            return f"member {i}: image_folder data is not vectorized"
        if i == 0:
            continue
        if data is not data0 and (data.data_hash != data0.data_hash or data.name != data0.name
                                  or len(data.train) != len(data0.train)):
            return f"member {i}: different data ({data.name} {data.data_hash[:12]} vs {data0.name})"
        m0 = exp0.model.model_dump(mode="json", exclude=PER_MEMBER_MODEL_KEYS)
        m = exp.model.model_dump(mode="json", exclude=PER_MEMBER_MODEL_KEYS)
        keys = sorted(k for k in set(m) | set(m0) if m.get(k) != m0.get(k))
        if keys and (m.get("family") != m0.get("family") or not set(keys) <= SHAPE_KEYS.get(m["family"], set())
                     or (m["family"] == "encoder_head" and not head)):
            return f"member {i}: different model shape ({', '.join('model.' + k for k in keys)})"
    return vectorize_error([exp.train for exp, _ in members])


def frozen_head(exp: Experiment, data: Dataset) -> bool:
    """An encoder_head with a frozen encoder on its cached embeddings: an MLP on (n, d) floats."""
    x = data.train.x
    return (exp.model.family == "encoder_head" and bool(getattr(exp.model, "freeze_encoder", False))
            and x.dim() == 2 and x.is_floating_point())


def group_key(exp: Experiment, data: Dataset) -> str | None:
    """Members with equal keys can train as one group (`can_vectorize` agrees); None: this
    member trains alone. Cross-validation folds of one data section share a key (their rows
    differ: they train as members with data of their own, in groups of one fold size). The key
    ends with the network's input and output widths, which `padding.pad_stacks` reads to weigh
    padding keys of different hidden widths together."""
    if can_vectorize([(exp, data)]) is not None:
        return None
    model = exp.model.model_dump(mode="json", exclude=PER_MEMBER_MODEL_KEYS)
    train = exp.train.model_dump(mode="json", exclude=set(PER_MEMBER_TRAIN_KEYS))
    io = [_input_width(exp, data), model_output_dim(exp.train.loss, data.task, data.output_dim)]
    rows: list[object] = [data.data_hash, len(data.train)]
    if exp.data.cv_folds:  # the folds of one data section: each member brings its own rows (fit_group member_data)
        rows = [exp.data.model_dump(mode="json", exclude={"cv_fold"})]
    return json.dumps([data.name, *rows, model, train, io], sort_keys=True, default=str)


def _input_width(exp: Experiment, data: Dataset) -> int:
    """The network's input width; a frozen head's before its texts are embedded: the encoder's."""
    width = math.prod(data.input_shape)
    if width == 0 and frozen_head(exp, data):
        from tunelab.text.encoder import hidden_size, resolve_encoder  # config.json only, no weights

        return hidden_size(resolve_encoder(exp.model.encoder))  # type: ignore[union-attr]
    return width


def has_progress(layout: TrialLayout | None) -> bool:
    """Whether a trial folder already holds a result or a checkpoint (then resume it with `fit`)."""
    if layout is None:
        return False
    return layout.result_json.exists() or bool(layout.epoch_checkpoints())


def vectorize_error(cfgs: Sequence[TrainSection], models: Sequence[nn.Module] = ()) -> str | None:
    """Why these members cannot train as one `fit_group` (None: they can): the one check of
    the training recipe, and, once the models are built, of their layers.

    `can_vectorize` calls it before any model exists (after its model and data checks), and
    `fit_group` with the built models, so both refuse for the same reasons in the same words.
    """
    if not cfgs or (models and len(models) != len(cfgs)):
        return "need one TrainSection per model and at least one model"
    for i, train in enumerate(cfgs):
        if train.optimizer not in SUPPORTED_OPTIMIZERS:
            return f"member {i}: optimizer {train.optimizer!r} is not vectorized ({', '.join(SUPPORTED_OPTIMIZERS)})"
        if train.precision != "fp32":
            return f"member {i}: precision {train.precision} is not vectorized (fp32 only)"
    t0 = cfgs[0].model_dump(mode="json", exclude=set(PER_MEMBER_TRAIN_KEYS))
    for i, train in enumerate(cfgs[1:], start=1):
        t = train.model_dump(mode="json", exclude=set(PER_MEMBER_TRAIN_KEYS))
        if t != t0:
            keys = sorted(k for k in set(t) | set(t0) if t.get(k) != t0.get(k))
            return f"member {i}: different training recipe ({', '.join('train.' + k for k in keys)})"
    if not models:
        return None
    reason = unsupported_module(stackable(models[0]))
    if reason:
        return reason
    sig = layer_signature(stackable(models[0]))
    if any(layer_signature(stackable(model)) != sig for model in models[1:]):  # different widths may pad
        return pad_error([stackable(model) for model in models])
    return None
