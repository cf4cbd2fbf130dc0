"""Checkpoints, exact resume, evaluation and the errors users hit, through the real CLIs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import BIN, ROOT, run_cli

SMOKE = str(ROOT / "configs" / "smoke.yaml")


def _ckpt(root: Path, tag) -> Path:
    return root / "models" / f"hmasd_sync_enhanced_{tag}.pth"


@pytest.mark.parametrize("schedule, input_norm", [("constant", "layer"), ("linear", "running")])
def test_resume_gives_the_same_next_update_as_an_uninterrupted_run(tmp_path, schedule, input_norm):
    # linear: the resumed update must use the decayed rate of step 128, not the one in the checkpoint;
    # running: it must act and learn under the input statistics of step 128, carried by the checkpoint.
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--set", "eval_interval=0", "--set", "save_interval=128", "--set", f"ppo.lr_schedule={schedule}",
              "--set", f"model.input_norm={input_norm}"]
    run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(straight), "--set", "total_env_steps=192", *common,
            cwd=tmp_path, check=True)
    # Resume from the step-128 checkpoint of the same run and do the one remaining update.
    run_cli("hmasd-train", "--model-path", str(_ckpt(straight, 128)), "--output-dir", str(resumed), *common,
            "--set", "total_env_steps=192", cwd=tmp_path, check=True)
    a = torch.load(_ckpt(straight, "final"), weights_only=True)
    b = torch.load(_ckpt(resumed, "final"), weights_only=True)
    assert a["counters"] == b["counters"] and a["counters"]["env_steps"] == 192
    for name, tensor in a["agent"].items():
        assert torch.equal(tensor, b["agent"][name]), f"{name} differs after resume"
    c = torch.load(_ckpt(straight, 128), weights_only=True)
    assert any(not torch.equal(c["agent"][n], a["agent"][n]) for n in a["agent"])  # the update did change weights


def test_checkpoint_holds_everything_and_loads_weights_only(tmp_path):
    run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "total_env_steps=64",
            "--set", "eval_interval=0", cwd=tmp_path, check=True)
    data = torch.load(_ckpt(tmp_path, "final"), weights_only=True)
    assert set(data) >= {"config", "env", "counters", "agent", "optimizers", "rng", "collector", "envs"}
    assert set(data["optimizers"]) == {"discoverer", "coordinator", "discriminator"}
    assert data["counters"] == {"env_steps": 64, "updates": 1, "episodes": data["counters"]["episodes"],
                                "worker_restarts": 0, "policy_version": 1}
    assert "low_value_norm.running_mean" in data["agent"] and "high_value_norm.running_mean" in data["agent"]
    assert data["config"]["env"]["id"] == "simple_spread_v3" and len(data["envs"]) == 4
    assert not list((tmp_path / "models").glob("*.tmp"))


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigint_then_resume_then_evaluate_with_json_and_gif(tmp_path):
    proc = subprocess.Popen(
        [str(BIN / "hmasd-train"), "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "total_env_steps=1000000",
         "--set", "eval_interval=0"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _ckpt(tmp_path, 256).exists(), 120, "the first checkpoints")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, err  # a stopped run is told from a finished one
    assert "SIGINT received" in err
    first_final = _ckpt(tmp_path, "final").resolve()  # the link's target: this run's own file
    final = torch.load(_ckpt(tmp_path, "final"), weights_only=True)
    stopped_at = final["counters"]["env_steps"]
    assert 256 <= stopped_at < 1_000_000

    target = stopped_at + 128
    run_cli("hmasd-train", "--model-path", str(_ckpt(tmp_path, "final")), "--output-dir", str(tmp_path),
            "--set", f"total_env_steps={target}", cwd=tmp_path, check=True)
    resumed = torch.load(_ckpt(tmp_path, "final"), weights_only=True)
    assert resumed["counters"]["env_steps"] == target
    # The resume wrote its own folder: the stopped run's final checkpoint is still there, unchanged.
    assert _ckpt(tmp_path, "final").resolve().parent != first_final.parent
    assert torch.load(first_final, weights_only=True)["counters"]["env_steps"] == stopped_at
    assert resumed["counters"]["updates"] == final["counters"]["updates"] + 2

    # TensorBoard curve carries on: one run dir, strictly increasing steps, no duplicates.
    (run_dir,) = (tmp_path / "tf-logs").iterdir()
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars("Sync/PolicyVersion")]
    assert steps == sorted(set(steps)) and steps[-1] == target and steps[0] == 64
    assert [e.value for e in acc.Scalars("Sync/PolicyVersion")] == list(range(1, len(steps) + 1))

    gif = tmp_path / "episode.gif"
    proc = run_cli("hmasd-eval", "--model-path", str(_ckpt(tmp_path, "final")), "--episodes", "3", "--json",
                   "--render", str(gif), cwd=tmp_path, check=True)
    result = json.loads(proc.stdout)
    assert result["episodes"] == 3 and result["mean_length"] == 25.0 and result["success_rate"] is None
    for key in ("mean_return", "std_return", "skill_kl", "team_skill_counts", "agent_skill_counts", "info_means"):
        assert key in result
    assert sum(result["team_skill_counts"]) >= 3 * 2  # k=4 in 25 steps: at least 2 assignments per episode
    assert gif.stat().st_size > 0 and gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")


def test_info_means_average_each_key_over_the_episodes_that_report_it():
    from hmasd.records import info_means

    stats = [{"return": 1.0, "length": 5.0, "soups": 2.0, "success": 1.0}, {"return": 0.0, "length": 5.0, "soups": 0.0}]
    assert info_means(stats) == {"soups": 1.0, "success": 1.0}
    assert info_means(stats, skip=("return", "length", "success")) == {"soups": 1.0}
    assert info_means([]) == {}


def test_eval_reports_success_rate_on_alice_and_bob(tmp_path):
    run_cli("hmasd-train", "--config", str(ROOT / "configs/alice_and_bob.yaml"), "--output-dir", str(tmp_path),
            "--set", "num_envs=2", "--set", "num_workers=1", "--set", "total_env_steps=200", "--set", "eval_interval=0",
            "--set", "ppo.epochs=1", cwd=tmp_path, check=True)
    proc = run_cli("hmasd-train", "--eval-only", "--model-path", str(_ckpt(tmp_path, "final")), "--episodes", "2",
                   "--deterministic", "--json", cwd=tmp_path, check=True)
    result = json.loads(proc.stdout)
    assert result["success_rate"] in (0.0, 0.5, 1.0) and result["episodes"] == 2
    assert len(result["team_skill_counts"]) == 2
    assert set(result["agent_skill_counts"]) == {"alice", "bob"}
    assert all(len(c) == 4 for c in result["agent_skill_counts"].values())


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(root), "--set", "total_env_steps=64",
            "--set", "eval_interval=0", cwd=root, check=True)
    return _ckpt(root, "final")


def _one_line_error(proc, tool, fragment):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tool}: error: ") and fragment in lines[0], proc.stderr


@pytest.mark.parametrize("tool", ["hmasd-eval", "hmasd-train"])
def test_bad_checkpoints_give_one_clear_line(tmp_path, good_checkpoint, tool):
    missing = tmp_path / "missing.pth"
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(os.urandom(4096))
    truncated = tmp_path / "truncated.pth"
    data = good_checkpoint.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    edited = tmp_path / "edited.pth"  # a hand-edited file: valid, but a key the run needs is gone
    data = torch.load(good_checkpoint, weights_only=True)
    del data["counters"]["episodes"]
    torch.save(data, edited)
    cases = [(missing, "not found"), (corrupt, "corrupt or truncated"), (truncated, "corrupt or truncated"),
             (edited, "lacks 'counters/episodes'")]
    for path, fragment in cases:
        proc = run_cli(tool, "--model-path", str(path), cwd=tmp_path)
        _one_line_error(proc, tool, fragment)
        # our own words, whole: not torch's weights_only advice, not cut mid-word
        assert "weights_only" not in proc.stderr and proc.stderr.rstrip().endswith("from models/")
    assert not (tmp_path / "models").exists()


def test_weights_that_do_not_fit_name_the_misfit_and_blame_set_only_when_given(tmp_path, good_checkpoint):
    wide = tmp_path / "wide.yaml"
    wide.write_text(Path(SMOKE).read_text() + "model:\n  hidden: 32\n")
    proc = run_cli("hmasd-train", "--model-path", str(good_checkpoint), "--config", str(wide),
                   "--set", "total_env_steps=1000", "--output-dir", str(tmp_path), cwd=tmp_path)
    _one_line_error(proc, "hmasd-train", "size mismatch for")
    assert "--set" not in proc.stderr and "leave --config out" in proc.stderr
    proc = run_cli("hmasd-train", "--model-path", str(good_checkpoint), "--set", "model.hidden=32",
                   "--set", "total_env_steps=1000", "--output-dir", str(tmp_path), cwd=tmp_path)
    _one_line_error(proc, "hmasd-train", "size mismatch for")
    assert "drop the --set overrides that change the networks (model.hidden=32)" in proc.stderr and "model.hidden=32" in proc.stderr


def test_a_finished_run_says_how_to_extend_it(tmp_path, good_checkpoint):
    proc = run_cli("hmasd-train", "--model-path", str(good_checkpoint), "--output-dir", str(tmp_path), cwd=tmp_path)
    _one_line_error(proc, "hmasd-train", "finished run (64 of 64 env steps)")
    assert "--set total_env_steps=128" in proc.stderr


def test_checkpoint_from_another_env_or_agent_count_is_refused(tmp_path, good_checkpoint):
    proc = run_cli("hmasd-eval", "--model-path", str(good_checkpoint), "--set", "env.id=alice_and_bob", cwd=tmp_path)
    _one_line_error(proc, "hmasd-eval", "trained with 3 agents but env 'alice_and_bob' has 2")
    proc = run_cli("hmasd-eval", "--model-path", str(good_checkpoint), "--set", "env.kwargs={N: 4}", cwd=tmp_path)
    _one_line_error(proc, "hmasd-eval", "trained with 3 agents")
    proc = run_cli("hmasd-train", "--model-path", str(good_checkpoint), "--set", "env.kwargs={N: 2}",
                   "--set", "total_env_steps=1000", "--output-dir", str(tmp_path), cwd=tmp_path)
    _one_line_error(proc, "hmasd-train", "trained with 3 agents")
    assert not list((tmp_path / "models").glob("*.pth")) if (tmp_path / "models").exists() else True


def test_config_typo_with_a_checkpoint_is_one_line(tmp_path, good_checkpoint):
    proc = run_cli("hmasd-eval", "--model-path", str(good_checkpoint), "--set", "ppo.lerning_rate=1", cwd=tmp_path)
    _one_line_error(proc, "hmasd-eval", "unknown config key 'ppo.lerning_rate'")
    proc = run_cli("hmasd-train", "--model-path", str(good_checkpoint), "--set", "total_env_step=9", cwd=tmp_path)
    _one_line_error(proc, "hmasd-train", "did you mean 'total_env_steps'?")
    proc = run_cli("hmasd-train", "--eval-only", cwd=tmp_path)
    _one_line_error(proc, "hmasd-train", "--eval-only needs --model-path")


def test_sigterm_to_the_whole_process_group_still_saves_a_complete_checkpoint(tmp_path):
    # A scheduler or `timeout` signals every process of the job: the workers must let the trainer
    # finish its step and snapshot them instead of dying under it.
    proc = subprocess.Popen(
        [str(BIN / "hmasd-train"), "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "total_env_steps=1000000",
         "--set", "eval_interval=0"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        _wait_for(lambda: _ckpt(tmp_path, 128).exists(), 120, "the first checkpoint")
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM received" in err
    final = torch.load(_ckpt(tmp_path, "final"), weights_only=True)
    assert final["envs"] is not None and len(final["envs"]) == 4


def _stopped_run(tmp_path, sig, ready, what, *sets):
    """Start a long smoke run, wait until `ready()`, send `sig`; returns (exit status, stderr)."""
    proc = subprocess.Popen(
        [str(BIN / "hmasd-train"), "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "total_env_steps=1000000",
         "--set", "eval_interval=0", *sets], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ready, 120, what)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_sighup_saves_the_final_checkpoint_and_exits_129(tmp_path):
    # The terminal closed: what was learned since the last periodic checkpoint must not be lost.
    log = tmp_path / "logs" / "hup.jsonl"
    code, err = _stopped_run(tmp_path, signal.SIGHUP, lambda: log.exists() and "updates 2," in log.read_text(),
                             "two updates", "--set", "save_interval=1000000", "--set", "run_name=hup")
    assert code == 128 + signal.SIGHUP, err
    assert "SIGHUP received" in err
    assert torch.load(_ckpt(tmp_path, "final"), weights_only=True)["counters"]["updates"] >= 2


def test_resume_with_another_env_count_continues_with_fresh_episodes(tmp_path, good_checkpoint):
    proc = run_cli("hmasd-train", "--model-path", str(good_checkpoint), "--output-dir", str(tmp_path),
                   "--set", "num_envs=2", "--set", "total_env_steps=96", cwd=tmp_path, check=True)
    assert "resuming with fresh episodes" in proc.stderr
    data = torch.load(_ckpt(tmp_path, "final"), weights_only=True)
    assert data["counters"]["env_steps"] == 96 and len(data["envs"]) == 2


def test_resume_with_a_different_model_shape_is_one_line(tmp_path, good_checkpoint):
    proc = run_cli("hmasd-train", "--model-path", str(good_checkpoint), "--output-dir", str(tmp_path),
                   "--set", "model.hidden=32", "--set", "model.coordinator_heads=4", "--set", "total_env_steps=1000",
                   cwd=tmp_path)
    _one_line_error(proc, "hmasd-train", "does not fit this config")


def test_eval_skills_replace_the_coordinator_and_bad_ones_are_one_line(tmp_path, good_checkpoint):
    """--skills: fixed skills are given at every assignment, uniform draws use every skill; what the
    coordinator adds is the difference from these."""
    proc = run_cli("hmasd-eval", "--model-path", str(good_checkpoint), "--episodes", "4", "--json",
                   "--skills", "1,2,0,1", cwd=tmp_path, check=True)
    fixed = json.loads(proc.stdout)
    assert fixed["skills"] == [1, 2, 0, 1]
    assert fixed["team_skill_counts"][0] == fixed["team_skill_counts"][2] == 0 < fixed["team_skill_counts"][1]
    for counts, z in zip(fixed["agent_skill_counts"].values(), (2, 0, 1)):
        assert counts[z] == sum(counts) > 0
    proc = run_cli("hmasd-eval", "--model-path", str(good_checkpoint), "--episodes", "8", "--json",
                   "--skills", "uniform", cwd=tmp_path, check=True)
    uniform = json.loads(proc.stdout)
    assert uniform["skills"] == "uniform" and all(c > 0 for c in uniform["team_skill_counts"])
    for bad, fragment in [("1,2", "expected coordinator, uniform or 4 comma-separated skills"),
                          ("a,b,c,d", "expected coordinator"), ("0,0,0,7", "each z in 0..")]:
        proc = run_cli("hmasd-eval", "--model-path", str(good_checkpoint), "--skills", bad, cwd=tmp_path)
        _one_line_error(proc, "hmasd-eval", fragment)


def test_a_stop_during_a_long_update_is_honoured_between_epochs(tmp_path):
    # 100000 epochs would take hours: the run can only end soon if the learner checks the stop flag.
    log = tmp_path / "logs" / "long.jsonl"
    code, err = _stopped_run(tmp_path, signal.SIGINT, lambda: log.exists() and "collected 64 samples" in log.read_text(),
                             "the first rollout", "--set", "ppo.epochs=100000", "--set", "run_name=long")
    assert code == 128 + signal.SIGINT, err
    final = torch.load(_ckpt(tmp_path, "final"), weights_only=True)
    assert final["counters"]["updates"] == 1  # the shortened update counts as done
