"""One run of a sweep, as the body of a Ray task: an ordinary `python -m hmasd.train` in a subprocess.

The subprocess keeps the training as it is on the command line: its own signal handling (SIGINT ->
final checkpoint -> exit 130), its own env worker processes, nothing of Ray's state. The task stops it
with one SIGINT when the sweep's StopFlag is set (the user pressed Ctrl-C in hmasd-sweep), when the
flag's actor is gone (the driver died) or when Ray cancels the task, then waits for it to save.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hmasd.sweep.plan import write_done_marker

POLL_S = 1.0  # how often a running task asks whether the sweep is stopping


class StopFlag:
    """Set once by the driver on Ctrl-C; polled by every running task (a Ray actor)."""

    def __init__(self) -> None:
        self.stopping = False

    def set(self) -> None:
        self.stopping = True

    def is_set(self) -> bool:
        return self.stopping


def _child_setup(cores: list[int] | None):
    """preexec_fn of the training process."""
    def setup() -> None:
        # Ray starts its processes with SIGINT blocked (so that Ctrl-C in a driver does not kill Ray),
        # and a blocked mask survives exec: the training could never see our SIGINT.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        if sys.platform.startswith("linux"):
            # If this task's worker dies (killed, Ray shut down), the training gets SIGTERM and saves
            # its checkpoint, instead of training on with nobody to report to.
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if cores:
            # The trainer pins env worker w to the w-th core it may use: without a slot of its own,
            # every run on this machine would pin its workers to the same first cores.
            os.sched_setaffinity(0, cores)
    return setup


def _stop_requested(stop_flag) -> bool:
    import ray

    try:
        return bool(ray.get(stop_flag.is_set.remote(), timeout=30))
    except ray.exceptions.GetTimeoutError:
        return False
    except ray.exceptions.RayError:
        return True  # the flag's actor is gone with the driver: nobody waits for this run any more


def _last_line(log: Path, offset: int) -> str:
    """The last non-empty line this attempt wrote (progress bars end their lines with '\\r')."""
    with open(log, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


def run_training(name: str, folder: str, config_text: str, overrides: list[str], resume_from: str | None,
                 total_env_steps: int, stop_flag, cores: list[int] | None = None) -> dict:
    """Train run `name` into `folder` (its --output-dir), resuming from `resume_from` if given.

    Writes `folder/sweep-config.yaml` (the config, so any node can start it), appends the console
    output to `folder/sweep.log`, and after exit 0 writes the done marker. Returns {name, exit_code,
    last_line, node}; exit codes are hmasd-train's (130 after a stop)."""
    run_dir = Path(folder)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "sweep-config.yaml"
    config.write_text(config_text)
    argv = [sys.executable, "-m", "hmasd.train", "--config", str(config), "--output-dir", str(run_dir)]
    for item in overrides:
        argv += ["--set", item]
    if resume_from:
        argv += ["--model-path", resume_from]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A training with backend ray starts its own Ray on loopback rather than joining the sweep's
    # cluster, where its env actors would compete with the sweep's own CPU reservations.
    env.pop("RAY_ADDRESS", None)
    log = run_dir / "sweep.log"
    with open(log, "ab") as out:
        out.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%S')} on {socket.gethostname()}: {' '.join(argv)}\n".encode())
        out.flush()
        offset = out.tell()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True,  # a terminal's Ctrl-C reaches it only through us
                                preexec_fn=_child_setup(cores))
        stopping = False
        while True:
            try:
                code = proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                if not stopping and _stop_requested(stop_flag):
                    proc.send_signal(signal.SIGINT)
                    stopping = True
            except KeyboardInterrupt:  # ray.cancel(): stop the same way, and still wait for the save
                if not stopping:
                    proc.send_signal(signal.SIGINT)
                    stopping = True
    if code == 0:
        write_done_marker(run_dir, name, total_env_steps, overrides)
    return {"name": name, "exit_code": code, "last_line": _last_line(log, offset), "node": socket.gethostname()}
