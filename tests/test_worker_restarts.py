"""Env workers that come back: real trainer subprocesses whose workers are killed, crash, raise in
reset or hang. Every update must still hold exactly batch_size samples of one policy version."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import BIN, ROOT, run_cli

SMOKE = str(ROOT / "configs" / "smoke.yaml")
FAULTY = "fixture_envs:make_faulty"  # importable through PYTHONPATH=tests (the `faulty` fixture)
BATCH = 64  # smoke: 4 envs x 16 steps


def _events(root: Path, run: str) -> list[dict]:
    path = root / "logs" / f"{run}.jsonl"
    if not path.exists():
        return []
    # Read while the trainer writes: only whole lines (a line is whole once its newline is written).
    text = path.read_text()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]


def _updates(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "metrics" and "Buffer/SamplesCollected" in e]


def _restarts(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"].startswith("env worker failed")]


def _workers(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def _wait(proc: subprocess.Popen, predicate, what: str) -> None:
    """Poll until `predicate()`; fails if the trainer exits first (no clock: the run's length bounds it)."""
    while not predicate():
        assert proc.poll() is None, f"the trainer exited before {what}: {proc.stderr.read()}"
        time.sleep(0.05)


def _assert_whole_updates(updates: list[dict]) -> None:
    assert updates, "no update was logged"
    for u in updates:
        assert u["Buffer/SamplesCollected"] == BATCH  # exactly batch_size, never a partial rollout
        assert u["Sync/RolloutVersionCount"] == 1  # every sample of one policy version
        assert u["Sync/PolicyVersion"] == u["Sync/RolloutPolicyVersion"] + 1
    assert [u["Sync/RolloutPolicyVersion"] for u in updates] == list(range(len(updates)))  # consecutive


def test_kill_9_five_workers_during_one_run(tmp_path):
    run = "faults"
    proc = subprocess.Popen(
        [str(BIN / "hmasd-train"), "--config", SMOKE, "--output-dir", str(tmp_path), "--set", f"run_name={run}",
         "--set", f"total_env_steps={BATCH * 60}", "--set", "eval_interval=0", "--set", "save_interval=1000000",
         "--set", "ppo.epochs=1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for kill in range(5):
            # Each kill lands in a later rollout than the last restart, so no rollout fails twice.
            seen = len(_updates(_events(tmp_path, run)))
            _wait(proc, lambda: len(_updates(_events(tmp_path, run))) > seen, f"update {seen + 1}")
            victim = _workers(proc.pid)[kill % 2]
            os.kill(victim, signal.SIGKILL)
            _wait(proc, lambda: len(_restarts(_events(tmp_path, run))) == kill + 1, f"restart {kill + 1}")
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    events = _events(tmp_path, run)
    updates = _updates(events)
    assert len(updates) == 60
    _assert_whole_updates(updates)
    restarts = _restarts(events)
    assert len(restarts) == 5 and all("killed by SIGKILL" in e["event"] and "\n" not in e["event"] for e in restarts)
    acc = EventAccumulator(str(tmp_path / "tf-logs" / run), size_guidance={"scalars": 0})
    acc.Reload()
    assert acc.Scalars("Sync/WorkerRestarts")[-1].value == 5


@pytest.fixture
def faulty(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests"))


def _faulty_run(tmp_path: Path, kwargs: str, *extra: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    proc = run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "run_name=f",
                   "--set", f"env.id={FAULTY}", "--set", f"env.kwargs={kwargs}", "--set", "hmasd.skill_interval=4",
                   "--set", "eval_interval=0", "--set", "ppo.epochs=1", "--set", f"total_env_steps={BATCH * 3}",
                   *extra, cwd=ROOT)
    return proc, _events(tmp_path, "f")


# smoke seed 7: env i of the first build is seeded 7 + i; a restart reseeds, so each fault happens once.
@pytest.mark.parametrize("kwargs, extra, cause", [
    ("{crash_at: 3, target_seed: 7}", [], "fixture env crashed at step 3"),  # raises in step
    ("{reset_crash_at: 2, target_seed: 8}", [], "crashed in reset 2"),  # raises in its first auto-reset
    ("{hang_at: 2, target_seed: 9}", ["--set", "step_timeout_s=1"], "hung"),
])
def test_a_failing_env_is_restarted_with_a_new_seed(tmp_path, faulty, kwargs, extra, cause):
    proc, events = _faulty_run(tmp_path, kwargs, *extra)
    assert proc.returncode == 0, proc.stderr
    (restart,) = _restarts(events)
    assert cause in restart["event"] and "\n" not in restart["event"]
    if "crashed" in cause:
        assert "traceback:" in restart["event"]  # the last lines of the worker's traceback
    _assert_whole_updates(_updates(events))


def test_a_rollout_that_keeps_failing_stops_the_run_with_a_final_checkpoint(tmp_path, faulty):
    proc, events = _faulty_run(tmp_path, "{crash_at: 3}", "--set", "max_worker_restarts=2")
    assert proc.returncode == 1
    assert len(_restarts(events)) == 2  # two restarts, then the third failure stops it
    errors = [ln for ln in proc.stderr.splitlines() if "[error" in ln]
    assert len(errors) == 1 and "failed 3 times in a row" in errors[0]
    assert (tmp_path / "models" / "f" / "hmasd_sync_enhanced_final.pth").is_file()
