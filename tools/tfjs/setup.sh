#!/usr/bin/env bash
# Creates tools/tfjs/.venv with the official TF.js converter, and tools/tfjs/node_modules with the
# official @tensorflow/tfjs runtime used to check the result. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -f .venv/.installed ] || [ requirements.txt -nt .venv/.installed ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install --disable-pip-version-check -q -r requirements.txt
  .venv/bin/pip install --disable-pip-version-check -q --no-deps tensorflowjs==4.22.0
  .venv/bin/python convert.py --check  # once, after installing: it imports TensorFlow (~10 s)
  touch .venv/.installed
fi
if command -v npm >/dev/null && [ ! -d node_modules/@tensorflow/tfjs-backend-wasm ]; then
  npm ci --no-audit --no-fund --silent
fi
