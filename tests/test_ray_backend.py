"""The Ray env backend (hmasd/ray_vec.py) against real Ray actors on loopback: the same arrays as SubprocessVecEnv
and LocalVecEnv, snapshots, faults, and training through the CLI with an actor killed mid-rollout."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BIN, ROOT, require_extra, run_cli
from tests.test_orchestrator import wait_gone
from tests.test_worker_restarts import _events, _restarts, _updates, _wait

require_extra("ray", "ray")

import hmasd_envs  # noqa: E402
from hmasd.local_vec import LocalVecEnv  # noqa: E402
from hmasd.orchestrator import SubprocessVecEnv  # noqa: E402
from hmasd.records import EnvFailure  # noqa: E402
from hmasd.ray_init import RayUnavailable, init_ray  # noqa: E402
from hmasd.ray_vec import RayVecEnv  # noqa: E402

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))  # "fixture_envs:..." ids import here and, through sys.path, in the actors
FAULTY = "fixture_envs:make_faulty"
SMOKE = str(ROOT / "configs" / "smoke.yaml")
BATCH = 64  # smoke: 4 envs x 16 steps
FIELDS = ("obs", "state", "alive", "reward", "terminated", "truncated", "final_obs", "final_state")


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    """One small local Ray for the module (starting one costs seconds), always shut down."""
    ray = init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def _assert_same(a, b, fields=FIELDS) -> None:
    for name in fields:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


# ------------------------------------------------------------------------------------------
# The same arrays as the other backends
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["simple_spread_v3", "alice_and_bob"])
def test_same_arrays_as_vecenv_and_local_vec_for_the_same_seed(env_id):
    E, seed = 5, 13  # 5 envs on 2 workers: slices of 2 and 3
    rng = np.random.default_rng(0)
    local = LocalVecEnv(env_id, num_envs=E, seed=seed)
    try:
        with RayVecEnv(env_id, num_envs=E, num_workers=2, seed=seed) as rv, \
                SubprocessVecEnv(env_id, num_envs=E, num_workers=2, seed=seed) as sv:
            assert rv.worker_envs == sv.worker_envs == [range(0, 2), range(2, 5)]
            spec = rv.spec
            first = rv.reset()
            _assert_same(first, sv.reset(), ("obs", "state", "alive"))
            _assert_same(first, local.reset(), ("obs", "state", "alive"))
            ended = 0
            for _ in range(spec.max_episode_steps + 5):  # past the first auto-resets (unseeded)
                actions = rng.integers(0, spec.n_actions, (E, spec.num_agents), dtype=np.int64)
                batch, sub, loc = rv.step(actions), sv.step(actions), local.step(actions)
                _assert_same(batch, sub)
                _assert_same(batch, loc)
                assert batch.episodes == sub.episodes == loc.episodes
                ended += int(batch.done.sum())
            assert ended >= E  # every env went through an auto-reset
    finally:
        local.close()


def test_episode_infos_final_obs_and_render_per_env():
    # Env i (seed 100 + i) runs episodes of 2 + i % 4 steps and writes its seed into obs[..., 0].
    E = 6
    kwargs = {"length_by_seed": True, "render_mode": "rgb_array"}
    with RayVecEnv(FAULTY, kwargs, num_envs=E, num_workers=2, seed=100) as rv:
        np.testing.assert_array_equal(rv.reset().obs[:, 0, 0], 100 + np.arange(E))
        for t in range(1, 7):
            batch = rv.step(np.ones((E, 2), np.int64))
            expect = [i for i in range(E) if t % (2 + i % 4) == 0]
            assert [ep.env_index for ep in batch.episodes] == expect
            for i in expect:  # the last observation of the ended episode; obs is the new one's
                assert batch.final_obs[i, 0, 1] == 2 + i % 4 and batch.obs[i, 0, 1] == 0
        assert rv.render(5)[0, 0, 0] == 105 and rv.render(0)[0, 0, 0] == 100


def test_snapshots_are_vecenv_bytes_and_round_trip():
    E = 4
    actions = np.zeros((E, 3), np.int64)
    with RayVecEnv("simple_spread_v3", num_envs=E, num_workers=2, seed=3) as rv, \
            SubprocessVecEnv("simple_spread_v3", num_envs=E, num_workers=2, seed=3) as sv:
        rv.reset(), sv.reset()
        rv.step(actions), sv.step(actions)
        states = rv.get_env_states()
        assert states == sv.get_env_states()
        expected = rv.step(actions)
        rv.step(actions)
        rv.set_env_states(states)
        _assert_same(rv.step(actions), expected)
        sv.set_env_states(states)  # a Ray snapshot resumes under the subprocess backend too
        _assert_same(sv.step(actions), expected)


def test_unsnapshottable_env_raises_snapshot_error_and_goes_on():
    from hmasd_envs.snapshot import SnapshotError

    with RayVecEnv(FAULTY, {"c_object": True}, num_envs=2, num_workers=2) as rv:
        rv.reset()
        with pytest.raises(SnapshotError):
            rv.get_env_states()
        rv.step(np.zeros((2, 2), np.int64))  # still usable


def test_bad_actions_and_use_after_close():
    with RayVecEnv("simple_spread_v3", num_envs=2, num_workers=1) as rv:
        with pytest.raises(RuntimeError, match="reset"):
            rv.step(np.zeros((2, 3), np.int64))
        rv.reset()
        with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
            rv.step(np.zeros((2, 2), np.int64))
        with pytest.raises(ValueError, match="dtype float"):
            rv.step(np.zeros((2, 3), np.float32))
    rv.close()  # idempotent
    assert rv.closed
    with pytest.raises(RuntimeError, match="closed"):
        rv.reset()


def test_more_actors_than_cpus_are_all_placed(ray_session):
    # 3 actors on the module's 2-CPU Ray: each asks for a share of a CPU, so none waits forever.
    with RayVecEnv("simple_spread_v3", num_envs=3, num_workers=3, seed=1) as rv:
        assert rv.num_workers == 3 and rv.worker_envs == [range(0, 1), range(1, 2), range(2, 3)]
        rv.reset()
        rv.step(np.zeros((3, 3), np.int64))


# ------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------
def test_env_exception_is_env_failure_with_the_actor_traceback():
    kwargs = {"crash_at": 2, "target_seed": 3, "episode_length": 1000}  # env 3: worker 1 of 2
    with RayVecEnv(FAULTY, kwargs, num_envs=4, num_workers=2, seed=0) as rv:
        rv.reset()
        rv.step(np.zeros((4, 2), np.int64))
        pids = rv.worker_pids
        with pytest.raises(EnvFailure) as info:
            rv.step(np.zeros((4, 2), np.int64))
        assert rv.closed
        with pytest.raises(EnvFailure):  # the same report again, not a hang
            rv.step(np.zeros((4, 2), np.int64))
    err = info.value
    assert err.worker == 1 and err.envs == range(2, 4)
    assert "env 2-3 (worker 1) raised during step: RuntimeError: fixture env crashed at step 2" in err.summary
    assert "Traceback (most recent call last)" in err.worker_traceback and "fixture_envs.py" in err.worker_traceback
    assert wait_gone(pids, 10.0) == []  # every actor was shut down (ray.kill lands asynchronously)


@pytest.mark.parametrize("how", ["ray.kill", "SIGKILL"])
def test_dead_actor_is_env_failure_naming_its_envs(ray_session, how):
    with RayVecEnv(FAULTY, {"episode_length": 1000}, num_envs=4, num_workers=2, seed=0) as rv:
        rv.reset()
        rv.step(np.zeros((4, 2), np.int64))
        victim = rv.worker_pids[1]
        if how == "ray.kill":
            ray_session.kill(rv.actors[1])
        else:
            os.kill(victim, signal.SIGKILL)
        # ray.kill lands asynchronously: a step sent before the actor is gone could still be answered.
        assert wait_gone([victim], 10.0) == []
        with pytest.raises(EnvFailure, match=r"env 2-3 \(worker 1\) died") as info:
            rv.step(np.zeros((4, 2), np.int64))
        assert info.value.worker == 1 and info.value.envs == range(2, 4) and rv.closed
        assert wait_gone(rv.worker_pids, 10.0) == []  # the healthy one was shut down too


def test_hung_env_times_out():
    kwargs = {"hang_at": 2, "target_seed": 0, "episode_length": 1000}
    with RayVecEnv(FAULTY, kwargs, num_envs=4, num_workers=2, seed=0, step_timeout_s=2.0) as rv:
        rv.reset()
        rv.step(np.zeros((4, 2), np.int64))
        with pytest.raises(EnvFailure, match=r"env 0-1 \(worker 0\) did not answer step within 2 s"):
            rv.step(np.zeros((4, 2), np.int64))
        assert rv.closed


def test_bad_env_id_is_the_one_line_env_error_of_vecenv():
    with pytest.raises(hmasd_envs.EnvError) as info:
        RayVecEnv("simple_spreed_v3", num_envs=2, num_workers=2)
    with pytest.raises(hmasd_envs.EnvError) as expected:
        SubprocessVecEnv("simple_spreed_v3", num_envs=2, num_workers=2)
    assert str(info.value) == str(expected.value) and "\n" not in str(info.value)


def test_missing_ray_is_ray_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    with pytest.raises(RayUnavailable, match="Ray is not installed") as info:
        RayVecEnv("simple_spread_v3", num_envs=2)
    assert "\n" not in str(info.value)


def test_the_trainer_does_not_import_ray_for_other_backends():
    code = "import sys, hmasd.train, hmasd.trainer, hmasd.restarts; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ------------------------------------------------------------------------------------------
# Training through the CLI
# ------------------------------------------------------------------------------------------
def test_cli_trains_the_smoke_config_on_ray(tmp_path):
    proc = run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "backend=ray",
                   "--set", "run_name=r", "--set", "eval_interval=0", "--set", "ppo.epochs=1", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "models" / "r" / "hmasd_sync_enhanced_final.pth").is_file()


def _env_actor_pids(root_pid: int) -> list[int]:
    """The trainer's env actors: its descendants (Ray's raylet is its child, the workers the raylet's)
    whose process title Ray set to the actor class."""
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo += [int(p) for p in fh.read().split()]
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read().startswith(b"ray::EnvSliceActor"):
                    found.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(found)


def test_an_actor_killed_mid_rollout_is_restarted_and_the_run_completes(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, updates_total = "rk", 8
    proc = subprocess.Popen(
        [str(BIN / "hmasd-train"), "--config", SMOKE, "--output-dir", str(tmp_path), "--set", f"run_name={run}",
         "--set", "backend=ray", "--set", f"total_env_steps={BATCH * updates_total}", "--set", "eval_interval=0",
         "--set", "save_interval=1000000", "--set", "ppo.epochs=1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(proc, lambda: len(_updates(_events(tmp_path, run))) >= 1, "the first update")
        victims = _env_actor_pids(proc.pid)
        assert len(victims) == 2, victims  # smoke: 2 workers
        os.kill(victims[0], signal.SIGKILL)
        _wait(proc, lambda: len(_restarts(_events(tmp_path, run))) == 1, "the restart")
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    events = _events(tmp_path, run)
    (restart,) = _restarts(events)
    # Which worker the victim hosted is Ray's choice (it hands prestarted processes out in any order).
    assert re.search(r"\(worker [01]\) died \(Ray actor lost", restart["event"]) and "\n" not in restart["event"]
    updates = _updates(events)
    assert len(updates) == updates_total
    for u in updates:  # whole rollouts of one policy version, none lost or doubled by the restart
        assert u["Buffer/SamplesCollected"] == BATCH and u["Sync/RolloutVersionCount"] == 1
    assert [u["Sync/RolloutPolicyVersion"] for u in updates] == list(range(updates_total))
    assert (tmp_path / "models" / run / "hmasd_sync_enhanced_final.pth").is_file()
    acc = EventAccumulator(str(tmp_path / "tf-logs" / run), size_guidance={"scalars": 0})
    acc.Reload()
    assert acc.Scalars("Sync/WorkerRestarts")[-1].value == 1
