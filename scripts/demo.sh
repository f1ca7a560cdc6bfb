#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the demo: the daemon on the replay camera with a
# demo gallery and the mock door, printing each decision.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/facegate demo "$@"
