#!/usr/bin/env bash
# Create .venv (once) and install HMASD with its pinned dependencies and the extras in HMASD_EXTRAS
# (default "test"; the test command adds the optional env and cluster extras its tests cover).
# Re-running is cheap: the install is skipped while setup.py, pyproject.toml, constraints.txt and
# csrc/ are unchanged since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${HMASD_VENV:-.venv}"
EXTRAS="${HMASD_EXTRAS:-test}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.hmasd-install-stamp"
digest="$( (echo "$EXTRAS"; cat setup.py pyproject.toml constraints.txt CMakeLists.txt csrc/*) | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && "$VENV/bin/python" -c "import hmasd._core" 2>/dev/null; then
  exit 0
fi
echo "bootstrap: installing hmasd and its pinned dependencies into $VENV" >&2
# constraints.txt pins torch to the CPU wheel 2.13.0 on every install path.
"$VENV/bin/python" -m pip install --quiet -c constraints.txt --upgrade pip setuptools wheel
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[$EXTRAS]"
echo "$digest" > "$stamp"
