"""Errors as a command reports them: a config error located at its file:line or --set."""

from __future__ import annotations

from tunelab.config.locate import locate

__all__ = ["locate"]
