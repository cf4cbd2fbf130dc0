#!/usr/bin/env bash
# The project's test command (README, CI): install if needed, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The optional extras are installed and their tests must run, not skip (tests/conftest.py).
HMASD_EXTRAS="test,overcooked,ray,plot" scripts/bootstrap.sh
export HMASD_REQUIRE_EXTRAS=1
exec .venv/bin/python -m pytest tests "$@"
