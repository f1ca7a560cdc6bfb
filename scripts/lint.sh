#!/usr/bin/env bash
# Lint, formatting, types and the layer contract, with the tools pinned in
# requirements-dev.txt (scripts/setup.sh installs them). CI runs it (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

echo "--- ruff check"
"$VENV/bin/ruff" check .
echo "--- ruff format --check"
"$VENV/bin/ruff" format --check .
echo "--- mypy (pyproject.toml: [tool.mypy])"
"$VENV/bin/mypy"
echo "--- layers (pyproject.toml: [tool.importlinter])"
"$VENV/bin/lint-imports" --no-cache
