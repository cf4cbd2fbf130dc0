"""What a long, real run meets: a second run in the same folder, a full or broken disk, user errors that
only show once the envs or the model are built, and options given to the wrong mode. Real CLI
subprocesses, real files."""
from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import ROOT, run_cli

SMOKE = str(ROOT / "configs" / "smoke.yaml")
SHORT = ["--set", "total_env_steps=128", "--set", "eval_interval=0"]


def _train(root, *args, check=True):
    return run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(root), *SHORT, *args, cwd=root, check=check)


def _one_line_error(proc, fragment, tool="hmasd-train"):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tool}: error: ") and fragment in lines[0], proc.stderr


def test_a_run_whose_checkpoints_are_gone_keeps_its_config_record(tmp_path):
    """Checkpoint folders get deleted to save space, or are not copied to a new machine; the run's
    config record in logs/ stays, and a later run of the same name must not write over it."""
    _train(tmp_path, "--set", "run_name=first")
    record = tmp_path / "logs" / "first.config.yaml"
    before = record.read_text()
    for path in (tmp_path / "models" / "first").iterdir():
        path.unlink()
    (tmp_path / "models" / "first").rmdir()
    _train(tmp_path, "--set", "run_name=first", "--set", "seed=3")
    assert record.read_text() == before
    assert "seed: 3" in (tmp_path / "logs" / "first.2.config.yaml").read_text()
    assert (tmp_path / "models" / "first.2" / "hmasd_sync_enhanced_final.pth").is_file()


def test_a_second_run_never_replaces_the_first_runs_checkpoints(tmp_path):
    _train(tmp_path, "--set", "run_name=first")
    first = tmp_path / "models" / "first" / "hmasd_sync_enhanced_final.pth"
    before = first.read_bytes()
    _train(tmp_path, "--set", "run_name=first", "--set", "seed=3")  # same name again: its own folder
    _train(tmp_path, "--set", "run_name=second")
    assert first.read_bytes() == before
    assert (tmp_path / "models" / "first.2" / "hmasd_sync_enhanced_final.pth").is_file()
    # The short paths name the latest run's files.
    latest = tmp_path / "models" / "hmasd_sync_enhanced_final.pth"
    assert latest.is_symlink() and latest.resolve().parent.name == "second"
    assert torch.load(latest, weights_only=True)["config"]["run_name"] == "second"
    assert not list((tmp_path / "models").glob(".*link"))  # no temporary link left


def test_a_failed_checkpoint_write_warns_and_training_goes_on(tmp_path):
    # A folder where the 128-step checkpoint should go makes its rename fail, as a full disk would fail it.
    blocked = tmp_path / "models" / "d" / "hmasd_sync_enhanced_128.pth"
    blocked.mkdir(parents=True)
    proc = _train(tmp_path, "--set", "run_name=d", "--set", "save_interval=64", "--set", "total_env_steps=192")
    warnings = [ln for ln in proc.stderr.splitlines() if "could not write checkpoint" in ln]
    assert len(warnings) == 1 and "training goes on" in warnings[0]
    run_dir = tmp_path / "models" / "d"
    assert not list(run_dir.glob("*.tmp"))
    assert torch.load(run_dir / "hmasd_sync_enhanced_64.pth", weights_only=True)["counters"]["env_steps"] == 64
    assert torch.load(run_dir / "hmasd_sync_enhanced_final.pth", weights_only=True)["counters"]["env_steps"] == 192


def test_a_failed_final_save_is_one_error_line_and_a_non_zero_exit(tmp_path):
    (tmp_path / "models" / "d" / "hmasd_sync_enhanced_final.pth").mkdir(parents=True)
    proc = _train(tmp_path, "--set", "run_name=d", check=False)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if "[error" in ln]
    assert len(errors) == 1 and "the final checkpoint was not saved" in errors[0]
    assert not list((tmp_path / "models" / "d").glob("*.tmp"))


def test_unusable_output_dir_and_render_path_are_one_line_at_start_up(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    proc = run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(not_a_dir), cwd=tmp_path)
    _one_line_error(proc, f"--output-dir '{not_a_dir}' cannot be used")
    good = tmp_path / "good"
    good.mkdir()
    _train(good)
    proc = run_cli("hmasd-eval", "--model-path", str(good / "models" / "hmasd_sync_enhanced_final.pth"),
                   "--render", str(tmp_path / "no" / "such" / "dir" / "ep.gif"), cwd=tmp_path)
    _one_line_error(proc, "does not exist", tool="hmasd-eval")


@pytest.mark.parametrize("args, fragment", [
    (["--set", "env.kwargs={max_cyles: 50}"],
     "env 'simple_spread_v3' has no argument 'max_cyles' (env.kwargs): did you mean 'max_cycles'? it accepts: N,"),
    (["--set", "env.id=fixture_envs:make_not_an_env"], "returned dict, not a PettingZoo ParallelEnv"),
    (["--set", "model.hidden=1000000"], "lower model.hidden (1000000)"),
])
def test_errors_found_once_envs_or_model_are_built_are_one_line(tmp_path, monkeypatch, args, fragment):
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests"))
    proc = run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), *args, cwd=tmp_path)
    _one_line_error(proc, fragment)
    assert not list((tmp_path / "models").rglob("*.pth"))


@pytest.mark.parametrize("option", [["--json"], ["--render", "x.gif"], ["--episodes", "3"], ["--deterministic"]])
def test_eval_options_without_eval_only_are_an_error(tmp_path, option):
    proc = run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), *option, cwd=tmp_path)
    _one_line_error(proc, f"{option[0]} only applies to evaluation: add --eval-only")
    assert not (tmp_path / "models").exists()


def test_log_interval_throttles_every_per_update_line(tmp_path):
    proc = _train(tmp_path, "--set", "run_name=quiet", "--set", "log_interval=2", "--set", "total_env_steps=256")
    per_update = [ln for ln in proc.stderr.splitlines()
                  if "collected 64 samples" in ln or "policy version ->" in ln or "/256 (" in ln]
    assert len(per_update) == 3 * 2  # updates 2 and 4 of 4, three lines each
    events = [json.loads(ln) for ln in (tmp_path / "logs" / "quiet.jsonl").read_text().splitlines()]
    assert len([e for e in events if e["event"] == "metrics"]) == 4  # metrics still every update


def test_config_warnings_are_logged_once(tmp_path):
    proc = _train(tmp_path, "--set", "total_env_steps=10")
    assert proc.stderr.count("is below one batch") == 1
