#!/usr/bin/env bash
# Set up (idempotent), index ./corpus if needed, and start the chat UI on http://127.0.0.1:7860
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rag ingest --rebuild-stale  # an index from another model or an older layout is rebuilt
exec .venv/bin/rag ui "$@"
