"""`tunelab proxy`: serve a study database to many workers through Optuna's gRPC storage proxy."""

from __future__ import annotations

from tunelab.search.proxy import serve_forever

__all__ = ["serve_forever"]
