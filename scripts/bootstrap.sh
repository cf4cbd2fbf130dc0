#!/usr/bin/env bash
# Create .venv (once) and install HMASD with its pinned dependencies and the extras in HMASD_EXTRAS
# (default "test"; the test command adds the optional env and cluster extras its tests cover).
# Re-running is cheap: the install is skipped while setup.py, pyproject.toml, constraints.txt and
# csrc/ are unchanged since the last successful install and it installed the extras asked for.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${HMASD_VENV:-.venv}"
EXTRAS="${HMASD_EXTRAS:-test}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi

# The stamp holds the digest of what the install is made from, then the extras installed from it. A
# request for extras already installed (the launcher's "test" after the test command's longer list) is
# a no-op instead of a reinstall.
stamp="$VENV/.hmasd-install-stamp"
digest="$(cat setup.py pyproject.toml constraints.txt CMakeLists.txt csrc/* | sha256sum | cut -d' ' -f1)"
same_sources=0 installed=""
if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$digest" ]; then
  same_sources=1 installed="$(sed -n 2p "$stamp")"
fi
missing=""
for extra in ${EXTRAS//,/ }; do
  case ",$installed," in *",$extra,"*) ;; *) missing="$missing $extra" ;; esac
done
if [ "$same_sources" = 1 ] && [ -z "$missing" ] && "$VENV/bin/python" -c "import hmasd._core" 2>/dev/null; then
  exit 0
fi
echo "bootstrap: installing hmasd and its pinned dependencies into $VENV" >&2
# constraints.txt pins torch to the CPU wheel 2.13.0 on every install path.
"$VENV/bin/python" -m pip install --quiet -c constraints.txt --upgrade pip setuptools wheel
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[$EXTRAS]"
# What is installed now: these extras, and the ones installed before from the same sources.
all="$(echo "${installed//,/ } ${EXTRAS//,/ }" | tr ' ' '\n' | sed '/^$/d' | sort -u | paste -sd, -)"
printf '%s\n%s\n' "$digest" "$all" > "$stamp"
