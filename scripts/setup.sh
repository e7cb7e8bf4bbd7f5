#!/usr/bin/env bash
# Create .venv and install tunelab with every dependency pinned by requirements/constraints.txt.
# torch is installed first and exactly (2.13.0, CPU wheel): an unpinned torch pulled in by
# another package would download a multi-GB CUDA build.
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh dev      plus the test tools (pytest, ruff, hypothesis)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
C=requirements/constraints.txt
$PIP install --quiet --disable-pip-version-check -c "$C" "torch==2.13.0"
if [ "${1:-}" = "dev" ]; then
  $PIP install --quiet --disable-pip-version-check -c "$C" -e ".[dev]"
else
  $PIP install --quiet --disable-pip-version-check -c "$C" -e .
fi
if [ "${1:-}" = "dev" ]; then
  # Headless browser tests render report.html in Debian's chromium.
  bash scripts/install_chromium.sh || { [ "${CI:-}" = "true" ] && exit 1; echo "warning: chromium not installed; browser tests will skip" >&2; }
fi
