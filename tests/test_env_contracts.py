"""Bring-your-own-env contracts end to end, through `hmasd-train` in real subprocesses (worker processes
included): action masks in both PettingZoo conventions, agents with different action counts or Box
shapes, agents that leave mid-episode, envs that cannot be snapshotted, and one-line start-up errors.

The fixture envs raise inside `step` when they get an action the contract forbids (tests/fixture_envs.py),
so a run that finishes proves that no such action reached them.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, run_cli

SMOKE = str(ROOT / "configs" / "smoke.yaml")
SHORT = ["--set", "total_env_steps=128", "--set", "save_interval=128", "--set", "eval_interval=128"]


def train(tmp_path, env_id: str, kwargs: str = "{}", *extra: str, check: bool = True):
    return run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), "--set", f"env.id={env_id}",
                   "--set", f"env.kwargs={kwargs}", *SHORT, *extra, cwd=tmp_path, check=check, fixture_envs=True)


def events(root) -> list[dict]:
    (path,) = (root / "logs").glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("convention, algo", [("obs", "hmasd"), ("info", "hmasd"), ("none", "hmasd"),
                                              ("obs", "mappo")])
def test_masked_and_uneven_discrete_actions_train_and_evaluate(tmp_path, convention, algo):
    # counts (3, 5): agent_0's actions 3 and 4 are padding; the last agent leaves at step 3 of 6
    train(tmp_path, "fixture_envs:make_masked", f"{{convention: {convention}, leaves_at: 3}}", "--set", f"algo={algo}")
    model = tmp_path / "models" / "hmasd_sync_enhanced_final.pth"
    proc = run_cli("hmasd-eval", "--model-path", str(model), "--episodes", "3", "--json",
                   "--render", str(tmp_path / "ep.gif"), cwd=tmp_path, check=True, fixture_envs=True)
    result = json.loads(proc.stdout)
    assert result["episodes"] == 3 and (tmp_path / "ep.gif").is_file()
    if algo == "hmasd":
        assert set(result["agent_skill_counts"]) == {"agent_0", "agent_1"}
        assert result["skill_kl"] is not None and result["skill_kl"] == result["skill_kl"]  # not nan


def test_box_agents_with_different_shapes_and_bounds_train(tmp_path):
    train(tmp_path, "fixture_envs:make_uneven_box")
    assert (tmp_path / "models" / "hmasd_sync_enhanced_final.pth").is_file()


def test_simple_speaker_listener_trains(tmp_path):
    # speaker Discrete(3), listener Discrete(5); observations of 3 and 11 values
    pytest.importorskip("mpe2")
    train(tmp_path, "mpe2.simple_speaker_listener_v4:parallel_env", "{max_cycles: 25}")
    metrics = [e for e in events(tmp_path) if e["event"] == "metrics" and "Losses/Discoverer/Total" in e]
    assert len(metrics) == 2 and all(m["Losses/Discoverer/Total"] == m["Losses/Discoverer/Total"] for m in metrics)


def test_env_that_cannot_be_snapshotted_is_checkpointed_without_envs_and_resumes(tmp_path):
    proc = train(tmp_path, "fixture_envs:make_faulty", "{c_object: true}", "--set", "save_interval=64")
    saved = sorted(p.name for p in (tmp_path / "models").glob("*.pth"))
    assert saved == ["hmasd_sync_enhanced_128.pth", "hmasd_sync_enhanced_64.pth", "hmasd_sync_enhanced_final.pth"]
    warnings = [line for line in proc.stderr.splitlines() if "cannot be snapshotted" in line]
    assert len(warnings) == 1 and "fixture_envs:make_faulty" in warnings[0] and "lock" in warnings[0]
    resumed = run_cli("hmasd-train", "--model-path", str(tmp_path / "models" / "hmasd_sync_enhanced_64.pth"),
                      "--output-dir", str(tmp_path), cwd=tmp_path, check=True, fixture_envs=True)
    assert "resuming with fresh episodes" in resumed.stderr


@pytest.mark.parametrize("env_id, kwargs, fragments", [
    ("no_such_package_xyz:make", "{}", ["cannot import module 'no_such_package_xyz'"]),
    ("fixture_envs:make_missing_dependency", "{}", ["fakesim", "pip install fakesim"]),
    ("fixture_envs:make_faulty", "{bogus: 1}", ["bogus", "it accepts: crash_at, hang_at"]),
    ("fixture_envs:make_unsupported", "{}", ["MultiDiscrete", "supported action spaces"]),
    ("fixture_envs:make_faulty", "{crash_at_reset: 1}", ["reset() raised RuntimeError: fixture env crashed"]),
    ("fixture_envs:make_faulty", "{crash_at_reset: 2}", ["failed to start", "during reset",
                                                         "fixture env crashed in reset 2"]),
    ("fixture_envs:make_not_an_env", "{}", ["returned dict, not a PettingZoo ParallelEnv", "aec_to_parallel"]),
    ("pettingzoo.classic.tictactoe_v3:env", "{}", ["turn-based AEC env", "return a ParallelEnv"]),
])
def test_env_start_up_failures_are_one_line_and_exit_2(tmp_path, env_id, kwargs, fragments):
    proc = train(tmp_path, env_id, kwargs, check=False)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hmasd-train: error: ")]
    assert len(errors) == 1 and env_id in errors[0], proc.stderr
    assert all(f in errors[0] for f in fragments), errors[0]
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*.pth"))  # nothing was trained, so nothing was saved


def test_start_up_traceback_goes_to_the_log_file_and_to_the_console_at_debug(tmp_path):
    proc = train(tmp_path, "fixture_envs:make_faulty", "{crash_at_reset: 2}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    logged = [e for e in events(tmp_path) if e["event"] == "environment failed to start"]
    assert len(logged) == 1 and "fixture_envs.py" in logged[0]["exception"]
    (tmp_path / "debug").mkdir()
    debug = train(tmp_path / "debug", "fixture_envs:make_faulty", "{crash_at_reset: 2}", "--log-level", "DEBUG",
                  check=False)
    assert debug.returncode == 2 and "fixture env crashed in reset 2" in debug.stderr and "fixture_envs.py" in debug.stderr


def test_an_env_failing_during_hmasd_eval_is_one_line(tmp_path):
    train(tmp_path, "fixture_envs:make_faulty")
    model = tmp_path / "models" / "hmasd_sync_enhanced_final.pth"
    proc = run_cli("hmasd-eval", "--model-path", str(model), "--episodes", "2", "--set", "env.kwargs={crash_at: 3}",
                   cwd=tmp_path, fixture_envs=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "hmasd-eval: error: env 'fixture_envs:make_faulty' failed during evaluation: env 0-1 (worker 0) raised "
        "during step: RuntimeError: fixture env crashed at step 3"], proc.stderr
    proc = run_cli("hmasd-eval", "--model-path", str(model), "--set", "env.kwargs={crash_att: 3}", cwd=tmp_path,
                   fixture_envs=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
