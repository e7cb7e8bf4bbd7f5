"""Markdown cells from user text: a leaf utility for every module that writes a Markdown table."""

from __future__ import annotations

import html
from typing import Any


def md_escape(text: Any) -> str:
    """Make any user-controlled text safe inside a Markdown table cell (and in HTML renderers)."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")
