"""hmasd-sweep through its real command line on a local Ray: two seeds of the smoke config train and
are aggregated into sweep.md; a second invocation skips them without touching their files; Ctrl-C
stops a run with a checkpoint that the next invocation resumes; bad input is one line and exit 2."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, ROOT, as_from_a_terminal, require_extra, run_cli

require_extra("ray", "ray")

QUICK = ("--set", "total_env_steps=128", "--set", "save_interval=64", "--set", "eval_interval=64")


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file under `folder`."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _env_steps(checkpoint: Path) -> int:
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["counters"]["env_steps"])


def test_two_seeds_train_aggregate_and_a_rerun_skips_them(tmp_path, smoke_config):
    out = tmp_path / "sweep"
    args = ("--config", smoke_config, "--seeds", "1-2", *QUICK, "--output-dir", str(out))
    first = run_cli("hmasd-sweep", *args, cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    for run in ("smoke_s1", "smoke_s2"):
        assert f"finished {run}" in first.stdout
        assert (out / run / "sweep-done.json").is_file()
        assert _env_steps(out / run / "models" / run / "hmasd_sync_enhanced_final.pth") == 128
    md = (out / "sweep.md").read_text()
    assert "smoke_s1" in md and "smoke_s2" in md
    # one statistics row for the configuration: label, env steps, n = 2, mean [CI], IQM [CI]
    row = next(line for line in md.splitlines() if line.startswith("| smoke | 128 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "2"
    point, lo, hi = (float(x) for x in cells[3].replace("[", "").replace("]", "").replace(",", "").split())
    assert lo <= point <= hi
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    before = {run: _files(out / run) for run in ("smoke_s1", "smoke_s2")}
    second = run_cli("hmasd-sweep", *args, cwd=tmp_path, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "skipped smoke_s1" in second.stdout and "skipped smoke_s2" in second.stdout
    assert "started" not in second.stdout
    assert {run: _files(out / run) for run in ("smoke_s1", "smoke_s2")} == before
    assert "smoke_s1" in (out / "sweep.md").read_text()

    # Without matplotlib (the plot extra) sweep.md is still written, and it and the output say how to get the PNG.
    blocked = "import sys; sys.modules['matplotlib'] = None; from hmasd.sweep.cli import main; sys.exit(main(sys.argv[1:]))"
    third = subprocess.run([sys.executable, "-c", blocked, *args], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "matplotlib is missing" in third.stdout and "'.[plot]'" in third.stdout
    md = (out / "sweep.md").read_text()
    assert "matplotlib is missing" in md and "| smoke | 128 | 2 |" in md
    assert not (out / "sweep.png").exists()


def test_ctrl_c_saves_a_checkpoint_and_the_next_run_resumes_it(tmp_path, smoke_config):
    out = tmp_path / "sweep"
    common = ("--config", smoke_config, "--seeds", "3", "--set", "save_interval=64", "--set", "eval_interval=64",
              "--output-dir", str(out))
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    # Its own session, so that the test can send Ctrl-C to the whole group, as a terminal does.
    proc = subprocess.Popen([str(BIN / "hmasd-sweep"), *common, "--set", "total_env_steps=1000000"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=as_from_a_terminal)
    first_models = out / "smoke_s3" / "models" / "smoke_s3"
    try:
        deadline = time.monotonic() + 300  # a bound on the wait only, not an assertion on speed
        while not any(first_models.glob("hmasd_sync_enhanced_*.pth")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    assert "stopped smoke_s3" in output and "run the same command again" in output
    final = first_models / "hmasd_sync_enhanced_final.pth"
    reached = _env_steps(final)
    assert 0 < reached < 1000000
    assert not (out / "smoke_s3" / "sweep-done.json").exists()

    # A few more updates than the stopped run reached: the next invocation must continue from it.
    stopped = _files(first_models)
    again = run_cli("hmasd-sweep", *common, "--set", f"total_env_steps={reached + 128}", cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming from {final} ({reached} env steps)" in again.stdout
    assert _files(first_models) == stopped  # the stopped run's checkpoints are untouched
    assert _env_steps(out / "smoke_s3" / "models" / "smoke_s3.2" / "hmasd_sync_enhanced_final.pth") == reached + 128
    assert "--model-path" in (out / "smoke_s3" / "sweep.log").read_text()


@pytest.mark.parametrize("args, expected", [
    (("--config", "configs/nope.yaml", "--seeds", "1"), "config file 'configs/nope.yaml' not found"),
    (("--seeds", "5-1"), "--seeds '5-1'"),
    (("--seeds", "1,x"), "write e.g. --seeds 1-5 or --seeds 1,3,7"),
    (("--seeds", "1", "--grid", "ppo.lr"), "--grid 'ppo.lr' is not KEY=V1,V2"),
    (("--seeds", "1", "--grid", "ppo.lrr=0.1,0.2"), "unknown config key 'ppo.lrr'"),
    (("--seeds", "1", "--set", "nope=1"), "unknown config key 'nope'"),
    (("--seeds", "1", "--grid", "ppo.lr=0.1,fast"), "grid point ppo.lr=fast"),
    (("--seeds", "1", "--set", "seed=4"), "'seed' is set by --seeds"),
    (("--seeds", "1", "--max-concurrent", "0"), "--max-concurrent must be 1 or more"),
    (("--config", "configs/smoke.yaml",), "the following arguments are required: --seeds"),
    (("--seeds", "1", "--ray-address", "127.0.0.1:1"), "--ray-address 127.0.0.1:1: nothing answers there"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    if "--config" not in args:
        args = ("--config", "configs/smoke.yaml", *args)
    proc = run_cli("hmasd-sweep", *args, "--output-dir", str(tmp_path / "out"), cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and expected in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_failing_run_is_reported_after_the_others_and_the_sweep_exits_1(tmp_path, smoke_config):
    out = tmp_path / "sweep"
    proc = run_cli("hmasd-sweep", "--config", smoke_config, "--seeds", "1", *QUICK,
                   "--grid", "env.id=fixture_envs:make_unbuildable,simple_spread_v3", "--output-dir", str(out),
                   cwd=tmp_path, timeout=600, fixture_envs=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    bad, good = "env.id-fixture_envs_make_unbuildable_s1", "env.id-simple_spread_v3_s1"
    assert f"finished {good}" in proc.stdout  # the failure did not stop the other run
    # exit 2 is hmasd-train's for an env that cannot be built; its last log line says why
    report = f"run {bad} failed (exit 2): "
    assert report in proc.stdout and "libfake.so" in proc.stdout.split(report, 1)[1].splitlines()[0]
    assert proc.stdout.rstrip().splitlines()[-1].startswith(f"hmasd-sweep: {report}")  # last, after the rest
    assert not (out / bad / "sweep-done.json").exists() and (out / good / "sweep-done.json").exists()
    md = (out / "sweep.md").read_text()
    assert f"| {bad} | env.id=fixture_envs:make_unbuildable | 1 | failed | 2 |" in md
    assert "| env.id=simple_spread_v3 | 128 | 1 |" in md
