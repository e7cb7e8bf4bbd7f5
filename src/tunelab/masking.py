"""Hide passwords in any text tunelab prints or writes: storage URLs, libpq strings, error messages.

One function, used for experiment.yaml, the study's attributes, the report, stdout and every
error line, so a form it misses is missed nowhere else in particular, and fixed in one place.
"""

from __future__ import annotations

import re

# scheme://user:secret@host and scheme://:secret@host (the user may be empty)
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
# ?password=secret&... (URL query, as libpq accepts) and password=secret (libpq keyword string)
_KEYWORD = re.compile(r"(\b(?:password|passwd|pwd)\s*=\s*)('[^']*'|[^&\s;]+)", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """`text` with every password replaced by `***`, safe for logs, run folders and reports."""
    text = _USERINFO.sub(r"\1:***@", text)
    return _KEYWORD.sub(r"\1***", text)
