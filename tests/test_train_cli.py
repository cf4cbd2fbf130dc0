"""End to end: `hmasd-train --config configs/smoke.yaml` in a real subprocess, read back its outputs."""
from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import run_cli

REQUIRED_TAGS = [
    "Sync/PolicyVersion", "Buffer/SamplesCollected", "Sync/EnvContribution/Min", "Sync/EnvContribution/Max",
    "Losses/Coordinator/Total", "Losses/Coordinator/Policy", "Losses/Coordinator/Value", "Losses/Coordinator/Entropy",
    "Losses/Discoverer/Total", "Losses/Discoverer/Policy", "Losses/Discoverer/Value", "Losses/Discoverer/Entropy",
    "Losses/Discriminator/Team", "Losses/Discriminator/Individual",
    "Rewards/HighLevel/K_Step_Accumulated_Mean", "Rewards/Episode/TeamReturn_Mean",
    "Rewards/Intrinsic/Team_Mean", "Rewards/Intrinsic/Individual_Mean",
    "Skills/TeamDiscriminatorAccuracy", "Skills/IndividualDiscriminatorAccuracy", "Skills/TeamSkillEntropy",
    "Perf/SPS", "Perf/CollectSeconds", "Perf/UpdateSeconds",
]
SKILL_TAGS = [t for t in REQUIRED_TAGS if t.startswith(("Losses/Coordinator", "Losses/Discriminator", "Skills/",
                                                        "Rewards/Intrinsic", "Rewards/HighLevel"))]


def _scalars(root):
    (run_dir,) = (root / "tf-logs").iterdir()
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc, run_dir.name


def _events(root, run):
    return [json.loads(line) for line in (root / "logs" / f"{run}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    from tests.conftest import ROOT

    proc = run_cli("hmasd-train", "--config", str(ROOT / "configs/smoke.yaml"), "--output-dir", str(root),
                   cwd=root, check=True)
    return root, proc


def test_smoke_run_writes_every_required_tag_with_env_steps_on_x(smoke_run):
    root, _ = smoke_run
    acc, _ = _scalars(root)
    tags = set(acc.Tags()["scalars"])
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    assert not missing, f"missing TensorBoard tags: {missing}"
    assert "Episode/success_Mean" not in tags  # simple_spread reports no success
    steps = [e.step for e in acc.Scalars("Sync/PolicyVersion")]
    assert steps == [64, 128, 192, 256]  # 4 updates of 4 envs x 16 steps
    assert [e.value for e in acc.Scalars("Sync/PolicyVersion")] == [1, 2, 3, 4]
    assert {e.value for e in acc.Scalars("Buffer/SamplesCollected")} == {64}
    assert {e.value for e in acc.Scalars("Sync/EnvContribution/Min")} == {16}
    assert {e.value for e in acc.Scalars("Sync/EnvContribution/Max")} == {16}
    assert [e.step for e in acc.Scalars("Eval/TeamReturn_Mean")] == [128, 256]


def test_smoke_run_logs_the_sync_events_as_json_lines(smoke_run):
    root, _ = smoke_run
    _, run = _scalars(root)
    events = _events(root, run)
    messages = [e["event"] for e in events]
    collected = [m for m in messages if m.startswith("collected ")]
    assert collected == [f"collected 64 samples, policy version {v}" for v in range(4)]
    assert [m for m in messages if m.startswith("policy version ->")] == [
        f"policy version -> {v}, sample counter reset" for v in range(1, 5)]
    progress = [m for m in messages if m.startswith("256/256")]
    assert progress and "updates 4" in progress[0] and "SPS" in progress[0]
    metrics = [e for e in events if e["event"] == "metrics"]
    assert len(metrics) == 6 and "Losses/Coordinator/Total" in metrics[0]  # 4 updates + 2 evaluations
    assert (root / "models" / "hmasd_sync_enhanced_final.pth").is_file()
    assert (root / "models" / "hmasd_sync_enhanced_128.pth").is_file()
    assert (root / "logs" / f"{run}.config.yaml").is_file()


def test_debug_level_adds_per_env_contributions(tmp_path, smoke_config):
    proc = run_cli("hmasd-train", "--config", smoke_config, "--output-dir", str(tmp_path), "--log-level", "DEBUG",
                   "--set", "total_env_steps=64", "--set", "eval_interval=0", cwd=tmp_path, check=True)
    assert "env contributions" in proc.stderr and "[16, 16, 16, 16]" in proc.stderr


def test_mappo_run_has_no_skill_tags(tmp_path, smoke_config):
    run_cli("hmasd-train", "--config", smoke_config, "--output-dir", str(tmp_path), "--set", "algo=mappo",
            "--set", "total_env_steps=128", "--set", "eval_interval=0", cwd=tmp_path, check=True)
    acc, _ = _scalars(tmp_path)
    tags = set(acc.Tags()["scalars"])
    assert "Losses/Discoverer/Total" in tags and "Rewards/Episode/TeamReturn_Mean" in tags
    assert not [t for t in SKILL_TAGS if t in tags]


@pytest.mark.parametrize("args, fragment", [
    (["--set", "total_env_step=5"], "unknown config key 'total_env_step'; did you mean 'total_env_steps'?"),
    (["--set", "num_envs=four"], "'num_envs' must be int"),
    (["--set", "batch_size=70"], "batch_size (70) is not a whole number of steps of num_envs (4)"),
    (["--set", "rollout_length=10"], "rollout_length (10) must be a multiple of hmasd.skill_interval (4)"),
    (["--set", "env.id=simple_spreed_v3"], "simple_spread_v3"),
])
def test_config_mistakes_exit_2_with_one_line(tmp_path, smoke_config, args, fragment):
    proc = run_cli("hmasd-train", "--config", smoke_config, "--output-dir", str(tmp_path), *args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hmasd-train: error: ") and fragment in lines[0], proc.stderr
    assert not (tmp_path / "models").exists()  # nothing started, nothing written


def test_intervals_that_are_not_multiples_of_the_batch_still_fire(tmp_path, smoke_config):
    # batch 64: save_interval 100 is first reached at 128 and 256; eval_interval 90 at 128 and 192.
    run_cli("hmasd-train", "--config", smoke_config, "--output-dir", str(tmp_path), "--set", "save_interval=100",
            "--set", "eval_interval=90", cwd=tmp_path, check=True)
    saved = sorted(p.name for p in (tmp_path / "models").glob("*.pth"))
    assert saved == ["hmasd_sync_enhanced_128.pth", "hmasd_sync_enhanced_256.pth", "hmasd_sync_enhanced_final.pth"]
    acc, _ = _scalars(tmp_path)
    assert [e.step for e in acc.Scalars("Eval/TeamReturn_Mean")] == [128, 192]
