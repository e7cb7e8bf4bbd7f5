"""Model families: build an `nn.Module` from a model section, an input shape and an output size."""

from tunelab.models.registry import MODEL_FAMILIES, build_model

__all__ = ["MODEL_FAMILIES", "build_model"]
