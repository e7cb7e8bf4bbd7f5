"""`tunelab init` and `tunelab datasets`: what a new user starts from."""

from __future__ import annotations

from tunelab.data import list_datasets
from tunelab.templates import TEMPLATES, choices_help, write_template

__all__ = ["TEMPLATES", "choices_help", "list_datasets", "write_template"]
