#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, real models included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Browser tests drive Debian's Chromium (a test tool's own browser download fails offline).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "==> installing Debian chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will fail"
  else
    echo "warning: chromium is not installed (sudo apt-get install chromium); browser tests will fail"
  fi
fi
exec .venv/bin/python -m pytest "$@"
