#!/usr/bin/env bash
# Packaging check: a plain (non-editable) wheel must hold every module and the compiled core.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
.venv/bin/python -m pip wheel --quiet --no-deps -c constraints.txt -w "$out" .
wheel="$(ls "$out"/hmasd-*.whl)"
.venv/bin/python - "$wheel" <<'PY'
import sys, zipfile
from pathlib import Path

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
expected = {f"hmasd/{p.relative_to('hmasd')}" for p in Path("hmasd").rglob("*.py")}
expected |= {f"hmasd_envs/{p.name}" for p in Path("hmasd_envs").glob("*.py")}
missing = sorted(expected - names)
core = [n for n in names if n.startswith("hmasd/_core") and n.endswith(".so")]
if missing or not core:
    print(f"check_wheel: error: wheel lacks {missing or 'hmasd/_core*.so'}", file=sys.stderr)
    sys.exit(1)
print(f"check_wheel: {Path(sys.argv[1]).name} holds {len(expected)} modules and {core[0]}")
PY
