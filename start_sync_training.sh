#!/usr/bin/env bash
# One-command launcher: installs HMASD on first use, starts TensorBoard beside training, runs
# hmasd-train, and stops its own TensorBoard (by PID) when training ends or is interrupted.
#
#   ./start_sync_training.sh [--config F] [--model-path P] [--eval-only [--episodes N] [--deterministic]
#                            [--render OUT.gif] [--json]] [--log-level L] [--port N] [--no-tensorboard]
#                            [--output-dir DIR] [--set KEY=VALUE ...]
# Relative paths are taken from the folder it is called from, like any command's.
set -euo pipefail
CALLER_DIR="$PWD"
cd "$(dirname "$0")"
PROG="start_sync_training.sh"

usage() {
  cat <<USAGE
usage: ./$PROG [--config F] [--model-path P] [--eval-only] [--log-level L] [--port N] [--no-tensorboard]
                              [--output-dir DIR] [--set KEY=VALUE ...]
  --config F        training config (default configs/default.yaml; with --model-path: the checkpoint's)
  --model-path P    resume from checkpoint P (or evaluate it with --eval-only)
  --eval-only       evaluate --model-path and exit (no TensorBoard); with it: --episodes N, --deterministic,
                    --render OUT.gif, --json (as hmasd-train --eval-only)
  --log-level L     DEBUG, INFO, WARNING or ERROR (default INFO)
  --port N          first TensorBoard port to try on 127.0.0.1 (default 6006; the next free one is used)
  --no-tensorboard  do not start TensorBoard
  --output-dir DIR  where models/, tf-logs/ and logs/ go (default: the repository folder)
  --set KEY=VALUE   override a config key (repeatable), e.g. --set total_env_steps=20000
USAGE
}

die() { echo "$PROG: error: $1" >&2; exit 2; }
# A path given relative to the caller's folder, made absolute (this script runs from the repository).
from_caller() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$CALLER_DIR" "$1" ;; esac; }

CONFIG=""; MODEL_PATH=""; EVAL_ONLY=0; LOG_LEVEL="INFO"; PORT=6006; TENSORBOARD=1; OUT="."; SETS=(); EVAL_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) [ $# -ge 2 ] || die "--config needs a file"; CONFIG="$(from_caller "$2")"; shift 2 ;;
    --model-path) [ $# -ge 2 ] || die "--model-path needs a checkpoint path"; MODEL_PATH="$(from_caller "$2")"; shift 2 ;;
    --eval-only) EVAL_ONLY=1; shift ;;
    --episodes) [ $# -ge 2 ] || die "--episodes needs a number"; EVAL_ARGS+=(--episodes "$2"); shift 2 ;;
    --render) [ $# -ge 2 ] || die "--render needs a file name"; EVAL_ARGS+=(--render "$(from_caller "$2")"); shift 2 ;;
    --deterministic|--json) EVAL_ARGS+=("$1"); shift ;;
    --log-level) [ $# -ge 2 ] || die "--log-level needs DEBUG, INFO, WARNING or ERROR"; LOG_LEVEL="$2"; shift 2 ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; PORT="$2"; shift 2 ;;
    --no-tensorboard) TENSORBOARD=0; shift ;;
    --output-dir) [ $# -ge 2 ] || die "--output-dir needs a directory"; OUT="$(from_caller "$2")"; shift 2 ;;
    --set) [ $# -ge 2 ] || die "--set needs KEY=VALUE"; SETS+=(--set "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (run ./$PROG --help for the options)" ;;
  esac
done
case "$LOG_LEVEL" in DEBUG|INFO|WARNING|ERROR|debug|info|warning|error) ;; *) die "--log-level '$LOG_LEVEL' is not one of DEBUG, INFO, WARNING, ERROR" ;; esac
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "--port '$PORT' is not a port number (1-65535)"
if [ "$EVAL_ONLY" = 1 ] && [ -z "$MODEL_PATH" ]; then
  die "--eval-only needs --model-path PATH (a checkpoint from models/)"
fi
if [ "$EVAL_ONLY" = 0 ] && [ ${#EVAL_ARGS[@]} -gt 0 ]; then
  die "${EVAL_ARGS[0]} only applies to evaluation: add --eval-only --model-path PATH, or leave it out to train"
fi
if [ -n "$CONFIG" ] && [ ! -f "$CONFIG" ]; then
  die "config file '$CONFIG' not found (see configs/)"
fi

scripts/bootstrap.sh
mkdir -p "$OUT/models" "$OUT/tf-logs" "$OUT/logs" 2>/dev/null || die "--output-dir '$OUT' cannot be created: pass a writable folder"
PY=.venv/bin/python

ARGS=(--log-level "$LOG_LEVEL" --output-dir "$OUT" "${SETS[@]}")
[ -n "$CONFIG" ] && ARGS+=(--config "$CONFIG")
[ -n "$MODEL_PATH" ] && ARGS+=(--model-path "$MODEL_PATH")
if [ -z "$CONFIG" ] && [ -z "$MODEL_PATH" ]; then ARGS+=(--config configs/default.yaml); fi

if [ "$EVAL_ONLY" = 1 ]; then
  exec .venv/bin/hmasd-train --eval-only "${EVAL_ARGS[@]}" "${ARGS[@]}"
fi

TB_PID=""
TRAIN_PID=""
STOP_SIGNAL=TERM
cleanup() {
  if [ -n "$TRAIN_PID" ] && kill -0 "$TRAIN_PID" 2>/dev/null; then
    # The signal that reached this shell, not always SIGTERM, so the trainer's log names the real one;
    # it saves its final checkpoint on any of them.
    kill -"$STOP_SIGNAL" "$TRAIN_PID" 2>/dev/null || true
    wait "$TRAIN_PID" 2>/dev/null || true
  fi
  if [ -n "$TB_PID" ] && kill -0 "$TB_PID" 2>/dev/null; then
    kill -TERM "$TB_PID" 2>/dev/null || true
    wait "$TB_PID" 2>/dev/null || true
    echo "$PROG: TensorBoard (pid $TB_PID) stopped" >&2
  fi
}
trap cleanup EXIT
trap 'STOP_SIGNAL=INT; exit 130' INT
trap 'STOP_SIGNAL=TERM; exit 143' TERM
trap 'STOP_SIGNAL=HUP; exit 129' HUP

if [ "$TENSORBOARD" = 1 ]; then
  TB_PORT="$("$PY" - "$PORT" <<'PYEOF'
import socket, sys
start = int(sys.argv[1])
for port in range(start, min(start + 100, 65536)):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
PYEOF
)"
  [ -n "$TB_PORT" ] || die "no free port in $PORT-$((PORT + 99)) for TensorBoard: pass --port N or --no-tensorboard"
  .venv/bin/tensorboard --logdir "$OUT/tf-logs" --host 127.0.0.1 --port "$TB_PORT" >"$OUT/logs/tensorboard.log" 2>&1 &
  TB_PID=$!
  echo "$PROG: TensorBoard at http://127.0.0.1:$TB_PORT/ (pid $TB_PID, log $OUT/logs/tensorboard.log)" >&2
fi

# Training runs in the background so this shell can forward SIGTERM and still clean up.
set +e
.venv/bin/hmasd-train "${ARGS[@]}" &
TRAIN_PID=$!
wait "$TRAIN_PID"
STATUS=$?
# A signal interrupts `wait` before training has finished: wait again for its real exit status.
while kill -0 "$TRAIN_PID" 2>/dev/null; do wait "$TRAIN_PID"; STATUS=$?; done
TRAIN_PID=""
set -e
exit "$STATUS"
