#!/usr/bin/env bash
# The project's test command (README, CI): install if needed, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest tests "$@"
