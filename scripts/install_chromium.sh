#!/usr/bin/env bash
# Install Debian's chromium for the report browser test (tests/report/test_browser.py).
# Idempotent and quiet: does nothing when `chromium` is already on PATH. Needs root (or sudo).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "error: chromium is still not on PATH after apt-get install" >&2; exit 1; }
