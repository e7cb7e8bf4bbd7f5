#!/usr/bin/env bash
# Create .venv and install tunelab with every dependency pinned by requirements/constraints.txt.
# torch is installed first and exactly (2.13.0, CPU wheel): an unpinned torch pulled in by
# another package would download a multi-GB CUDA build.
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh dev      plus the test tools (pytest, ruff, hypothesis) and chromium
# Every step prints one line. A finished install leaves a stamp in .venv keyed on the hash of
# pyproject.toml + constraints.txt, so running it again (a second `make demo`) installs nothing
# until one of those files changes.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-runtime}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
C=requirements/constraints.txt
step() { printf 'setup: %s\n' "$*"; }

if [ -x .venv/bin/python ]; then
  step ".venv exists ($(.venv/bin/python --version 2>&1))"
else
  step "creating .venv with $($PY --version 2>&1)"
  "$PY" -m venv .venv
fi

KEY=$(cat pyproject.toml "$C" | sha256sum | cut -c1-16)
STAMP=.venv/.tunelab-setup-$MODE
installed() { [ -f ".venv/.tunelab-setup-$1" ] && [ "$(cat ".venv/.tunelab-setup-$1")" = "$KEY" ]; }
if installed "$MODE" || { [ "$MODE" = runtime ] && installed dev; }; then
  step "dependencies up to date (pyproject.toml + constraints.txt unchanged: $KEY); nothing to install"
else
  PIP=".venv/bin/python -m pip"
  step "installing torch 2.13.0 (CPU wheel)"
  $PIP install --quiet --disable-pip-version-check -c "$C" "torch==2.13.0"
  if [ "$MODE" = dev ]; then
    step "installing tunelab + pinned dependencies + test tools (pytest, ruff, hypothesis)"
    $PIP install --quiet --disable-pip-version-check -c "$C" -e ".[dev]"
  else
    step "installing tunelab + pinned dependencies"
    $PIP install --quiet --disable-pip-version-check -c "$C" -e .
  fi
  echo "$KEY" > "$STAMP"
fi

if [ "$MODE" = dev ]; then
  # Headless browser tests render report.html in Debian's chromium.
  if command -v chromium >/dev/null 2>&1; then
    step "chromium found ($(command -v chromium))"
  else
    step "installing Debian's chromium for the browser tests (apt-get)"
    bash scripts/install_chromium.sh || { [ "${CI:-}" = "true" ] && exit 1; echo "warning: chromium not installed; browser tests will skip" >&2; }
  fi
fi
step "done: .venv/bin/tunelab ($MODE)"
