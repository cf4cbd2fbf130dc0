"""start_sync_training.sh: TensorBoard answers on its port while training runs, and is gone after."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

from tests.conftest import ROOT, as_from_a_terminal

LAUNCHER = str(ROOT / "start_sync_training.sh")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_launcher_serves_tensorboard_and_stops_it_on_ctrl_c(tmp_path):
    port = _free_port()
    # Its own process group, so that a failure below can stop the trainer and TensorBoard too.
    proc = subprocess.Popen([LAUNCHER, "--config", "configs/smoke.yaml", "--port", str(port), "--output-dir", str(tmp_path),
                             "--set", "total_env_steps=10000000", "--set", "eval_interval=0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=as_from_a_terminal, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        first = tmp_path / "models" / "hmasd_sync_enhanced_128.pth"
        while not (_answers(port) and first.exists()):  # TensorBoard up and training under way
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "TensorBoard never answered or training never started"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    pid = int(re.search(rf"TensorBoard at http://127\.0\.0\.1:{port}/ \(pid (\d+)", err).group(1))
    assert "TensorBoard (pid" in err and "stopped" in err
    time.sleep(0.5)
    assert not _alive(pid) and not _answers(port)
    assert (tmp_path / "models" / "hmasd_sync_enhanced_final.pth").is_file()  # Ctrl-C saved the final checkpoint
    assert "SIGINT received" in err and "SIGTERM" not in err  # the trainer names the signal that came


def test_launcher_takes_relative_paths_from_the_caller_and_passes_eval_options(tmp_path):
    (tmp_path / "cfg.yaml").write_text((ROOT / "configs" / "smoke.yaml").read_text())
    proc = subprocess.run([LAUNCHER, "--config", "cfg.yaml", "--output-dir", "out", "--no-tensorboard",
                           "--set", "total_env_steps=64", "--set", "eval_interval=0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    final = tmp_path / "out" / "models" / "hmasd_sync_enhanced_final.pth"
    assert final.is_file()
    proc = subprocess.run([LAUNCHER, "--eval-only", "--model-path", "out/models/hmasd_sync_enhanced_final.pth",
                           "--episodes", "2", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["episodes"] == 2
    proc = subprocess.run([LAUNCHER, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--json only applies to evaluation" in proc.stderr


def test_launcher_takes_the_next_port_when_the_first_is_busy(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        proc = subprocess.run([LAUNCHER, "--config", "configs/smoke.yaml", "--port", str(port), "--output-dir",
                               str(tmp_path), "--set", "total_env_steps=64", "--set", "eval_interval=0"],
                              cwd=ROOT, capture_output=True, text=True, timeout=180)
    finally:
        busy.close()
    assert proc.returncode == 0, proc.stderr
    used = int(re.search(r"TensorBoard at http://127\.0\.0\.1:(\d+)/", proc.stderr).group(1))
    assert used > port


def test_launcher_rejects_unknown_flags_and_eval_only_without_model():
    for args, fragment in [(["--bogus"], "unknown option '--bogus'"),
                           (["--eval-only"], "--eval-only needs --model-path"),
                           (["--port", "http"], "is not a port number"),
                           (["--config", "nope.yaml"], "nope.yaml' not found")]:
        proc = subprocess.run([LAUNCHER, *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
