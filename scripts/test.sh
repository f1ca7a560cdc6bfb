#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite. Tests that need
# ../shared/data, shellcheck or systemd-analyze are skipped where those are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests "$@"
