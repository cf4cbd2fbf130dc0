"""SubprocessVecEnv against real worker subprocesses: shapes, seeding, episode infos, faults, shutdown."""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hmasd_envs
from hmasd.orchestrator import SubprocessVecEnv
from hmasd.records import EnvFailure, ResetBatch, StepBatch
from tests.conftest import as_from_a_terminal

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
# The fixture envs are imported by module name in the workers, which inherit our sys.path.
sys.path.insert(0, str(TESTS_DIR))
FAULTY = "fixture_envs:make_faulty"


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (an exited child nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if running(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if running(p)]


def random_actions(spec, num_envs: int, rng: np.random.Generator) -> np.ndarray:
    if spec.action_kind == "discrete":
        return rng.integers(0, spec.n_actions, (num_envs, spec.num_agents), dtype=np.int64)
    return rng.uniform(-1, 1, (num_envs, spec.num_agents, spec.action_dim)).astype(np.float32)


# ------------------------------------------------------------------------------------------
# Shapes, dtypes, episode infos
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["simple_spread_v3", "simple_spread_v3_continuous", "alice_and_bob"])
def test_shapes_dtypes_and_episode_ends(env_id):
    E = 4
    rng = np.random.default_rng(0)
    with SubprocessVecEnv(env_id, num_envs=E, num_workers=2, seed=3) as venv:
        spec = venv.spec
        A, O, S = spec.num_agents, spec.obs_dim, spec.state_dim
        first = venv.reset()
        assert isinstance(first, ResetBatch)
        assert first.obs.shape == (E, A, O) and first.obs.dtype == np.float32
        assert first.state.shape == (E, S) and first.state.dtype == np.float32
        assert first.alive.shape == (E, A) and first.alive.dtype == np.bool_
        limit = spec.max_episode_steps or 100
        episodes = []
        for _ in range(limit):
            batch = venv.step(random_actions(spec, E, rng))
            assert isinstance(batch, StepBatch)
            assert batch.obs.shape == (E, A, O) and batch.obs.dtype == np.float32
            assert batch.final_obs.shape == (E, A, O) and batch.final_obs.dtype == np.float32
            assert batch.state.shape == (E, S) and batch.final_state.shape == (E, S)
            assert batch.alive.shape == (E, A) and batch.alive.dtype == np.bool_
            assert batch.reward.shape == (E,) and batch.reward.dtype == np.float32
            assert batch.terminated.dtype == np.bool_ and batch.truncated.dtype == np.bool_
            assert np.isfinite(batch.obs).all() and np.isfinite(batch.reward).all()
            done = batch.done
            # Where no episode ended, final_* are the observations themselves.
            np.testing.assert_array_equal(batch.final_obs[~done], batch.obs[~done])
            np.testing.assert_array_equal(batch.final_state[~done], batch.state[~done])
            if done.any():
                assert not np.array_equal(batch.final_obs[done], batch.obs[done])
                assert sorted(ep.env_index for ep in batch.episodes) == np.flatnonzero(done).tolist()
            episodes += batch.episodes
            if len(episodes) >= E:
                break
        assert {ep.env_index for ep in episodes} == set(range(E))
        for ep in episodes:
            assert {"return", "length"} <= set(ep.stats)


def test_episode_infos_carry_the_right_env_index():
    # Env i (seed 100 + i) runs episodes of 2 + i % 4 steps and writes its seed into obs[..., 0].
    E = 6
    kwargs = {"length_by_seed": True, "render_mode": "rgb_array"}
    with SubprocessVecEnv(FAULTY, kwargs, num_envs=E, num_workers=2, seed=100) as venv:
        first = venv.reset()
        np.testing.assert_array_equal(first.obs[:, 0, 0], 100 + np.arange(E))
        actions = np.ones((E, 2), np.int64)
        for t in range(1, 7):
            batch = venv.step(actions)
            expect = [i for i in range(E) if t % (2 + i % 4) == 0]
            assert [ep.env_index for ep in batch.episodes] == expect, t
            assert np.flatnonzero(batch.truncated).tolist() == expect
            for ep in batch.episodes:
                assert ep.stats["length"] == 2 + ep.env_index % 4
                assert ep.stats["return"] == 2.0 * ep.stats["length"]  # two agents, 1 per step
                assert ep.stats["success"] == 1.0
            # The last observation of an ended episode shows its last step; obs is the new one.
            for i in expect:
                assert batch.final_obs[i, 0, 1] == 2 + i % 4 and batch.obs[i, 0, 1] == 0
            np.testing.assert_array_equal(batch.obs[:, 0, 0], 100 + np.arange(E))
        # render() goes to the worker that hosts the env.
        assert venv.render(5)[0, 0, 0] == 105 and venv.render(0)[0, 0, 0] == 100


def test_bad_actions_and_use_after_close():
    with SubprocessVecEnv("simple_spread_v3", num_envs=2, num_workers=1) as venv:
        with pytest.raises(RuntimeError, match="reset"):
            venv.step(np.zeros((2, 3), np.int64))
        venv.reset()
        with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
            venv.step(np.zeros((2, 2), np.int64))
        with pytest.raises(ValueError, match="dtype float"):
            venv.step(np.zeros((2, 3), np.float32))
        venv.step(np.zeros((2, 3), np.int32))  # still usable; int32 widens safely
        pids = venv.worker_pids
    venv.close()  # idempotent
    assert wait_gone(pids, 5.0) == []
    with pytest.raises(RuntimeError, match="closed"):
        venv.reset()


def test_unreferenced_vecenv_closes_its_workers():
    venv = SubprocessVecEnv(FAULTY, num_envs=2, num_workers=2)
    venv.reset()
    pids = venv.worker_pids
    del venv
    gc.collect()
    assert wait_gone(pids, 5.0) == []


def test_default_workers_follow_cpu_affinity():
    ncpu = len(os.sched_getaffinity(0))
    with SubprocessVecEnv(FAULTY, num_envs=1) as venv:
        assert venv.num_workers == 1  # capped by num_envs
    with SubprocessVecEnv(FAULTY, num_envs=8) as venv:
        assert venv.num_workers == min(ncpu, 8)
        assert [len(r) for r in venv.worker_envs] == [len(r) for r in np.array_split(np.arange(8), venv.num_workers)]
        if ncpu > 1:
            cpus = sorted(os.sched_getaffinity(0))
            for w, pid in enumerate(venv.worker_pids):
                assert os.sched_getaffinity(pid) == {cpus[w % ncpu]}


# ------------------------------------------------------------------------------------------
# Seeding
# ------------------------------------------------------------------------------------------
def _rollout(seed: int, steps: int = 5, E: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]]:
    actions = np.arange(E * 3, dtype=np.int64).reshape(E, 3) % 5
    with SubprocessVecEnv("simple_spread_v3", num_envs=E, num_workers=2, seed=seed) as venv:
        obs = [venv.reset().obs]
        rewards = []
        for _ in range(steps):
            batch = venv.step(actions)
            obs.append(batch.obs)
            rewards.append(batch.reward)
    return obs, rewards


def test_same_seed_same_steps_different_seed_different():
    obs_a, rew_a = _rollout(7)
    obs_b, rew_b = _rollout(7)
    obs_c, _ = _rollout(8)
    for x, y in zip(obs_a + rew_a, obs_b + rew_b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(obs_a[0], obs_c[0])


def test_matches_array_envs_seeded_seed_plus_i():
    E, seed = 4, 11
    obs, rewards = _rollout(seed, steps=5, E=E)
    actions = np.arange(E * 3, dtype=np.int64).reshape(E, 3) % 5
    envs = [hmasd_envs.make_env("simple_spread_v3") for _ in range(E)]
    np.testing.assert_array_equal(obs[0], np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]))
    for t in range(5):
        steps = [env.step(actions[i]) for i, env in enumerate(envs)]
        np.testing.assert_array_equal(obs[t + 1], np.stack([s.obs for s in steps]))
        np.testing.assert_array_equal(rewards[t], np.array([s.reward for s in steps], np.float32))


def test_env_snapshots_of_many_envs_per_worker_round_trip():
    """Resume sends every env's snapshot in one frame per worker: 64 simple_spread envs on one worker
    make a frame larger than a socket buffer, and the rest must follow as the worker reads."""
    E = 64
    actions = np.zeros((E, 3), dtype=np.int64)
    with SubprocessVecEnv("simple_spread_v3", num_envs=E, num_workers=1, seed=3) as venv:
        venv.reset()
        venv.step(actions)
        states = venv.get_env_states()
        assert sum(len(s) for s in states) > 1 << 18  # more than a socket buffer holds (Linux: 208 KiB)
        expected = venv.step(actions).obs
        venv.step(actions)
        venv.set_env_states(states)
        np.testing.assert_array_equal(venv.step(actions).obs, expected)
        assert venv.get_env_states() != states  # the envs moved on from the snapshot


# ------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------
def test_killed_worker_is_reported_with_its_envs():
    with SubprocessVecEnv(FAULTY, {"episode_length": 1000}, num_envs=4, num_workers=2, seed=0) as venv:
        venv.reset()
        venv.step(np.zeros((4, 2), np.int64))
        pids = venv.worker_pids
        os.kill(pids[1], signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(EnvFailure, match=r"env 2-3 \(worker 1\).*SIGKILL") as info:
            venv.step(np.zeros((4, 2), np.int64))
        assert time.monotonic() - start < 5.0
        assert info.value.worker == 1 and info.value.envs == range(2, 4)
        assert venv.closed
        assert wait_gone(pids, 5.0) == []
        with pytest.raises(EnvFailure):  # the same report again, not a hang
            venv.step(np.zeros((4, 2), np.int64))


def test_env_exception_carries_worker_traceback():
    # Only env 3 (seed 3) crashes, at its second step: worker 1 of 2.
    kwargs = {"crash_at": 2, "target_seed": 3, "episode_length": 1000}
    with SubprocessVecEnv(FAULTY, kwargs, num_envs=4, num_workers=2, seed=0) as venv:
        venv.reset()
        venv.step(np.zeros((4, 2), np.int64))
        pids = venv.worker_pids
        with pytest.raises(EnvFailure) as info:
            venv.step(np.zeros((4, 2), np.int64))
    err = info.value
    assert "env 2-3 (worker 1)" in str(err) and "during step" in str(err)
    assert "RuntimeError: fixture env crashed at step 2" in str(err)
    assert "Traceback (most recent call last)" in err.worker_traceback
    assert "fixture_envs.py" in err.worker_traceback
    assert wait_gone(pids, 5.0) == []


def test_hung_env_times_out():
    kwargs = {"hang_at": 2, "target_seed": 0, "episode_length": 1000}
    with SubprocessVecEnv(FAULTY, kwargs, num_envs=4, num_workers=2, seed=0, step_timeout_s=2.0) as venv:
        venv.reset()
        venv.step(np.zeros((4, 2), np.int64))
        pids = venv.worker_pids
        start = time.monotonic()
        with pytest.raises(EnvFailure, match=r"env 0-1 \(worker 0\) did not answer step within 2 s"):
            venv.step(np.zeros((4, 2), np.int64))
        assert 1.9 < time.monotonic() - start < 6.0
    assert wait_gone(pids, 5.0) == []


def test_bad_env_id_is_one_line_env_error():
    with pytest.raises(hmasd_envs.EnvError) as info:
        SubprocessVecEnv("simple_spreed_v3", num_envs=2, num_workers=2)
    msg = str(info.value)
    assert "unknown env id 'simple_spreed_v3'" in msg and "\n" not in msg


def test_env_construction_failure_is_one_line_with_the_worker_traceback_kept():
    with pytest.raises(hmasd_envs.EnvError) as info:
        SubprocessVecEnv("fixture_envs:make_unbuildable", num_envs=1)
    msg = str(info.value)
    assert "env 'fixture_envs:make_unbuildable'" in msg and "libfake.so" in msg and "\n" not in msg
    assert "make_unbuildable" in info.value.worker_traceback


# ------------------------------------------------------------------------------------------
# Shutdown with the parent: Ctrl-C, SIGKILL
# ------------------------------------------------------------------------------------------
PARENT_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
{extra_import}
import numpy as np
from hmasd.orchestrator import SubprocessVecEnv

venv = SubprocessVecEnv("simple_spread_v3", num_envs=4, num_workers=2)
venv.reset()
print(" ".join(str(p) for p in venv.worker_pids), flush=True)
actions = np.zeros((4, 3), np.int64)
while True:
    venv.step(actions)
"""


def _start_parent(tmp_path: Path, extra_import: str = "") -> tuple[subprocess.Popen, list[int]]:
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT.format(tests=str(TESTS_DIR), extra_import=extra_import))
    # Own session, so that a signal to its process group reaches it and its workers like a
    # terminal's Ctrl-C, and nothing of this test.
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, text=True, preexec_fn=as_from_a_terminal,
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"parent script failed: {proc.communicate(timeout=10)[1]}")
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2 and all(running(p) for p in pids)
    return proc, pids


def test_ctrl_c_in_parent_closes_workers(tmp_path):
    proc, pids = _start_parent(tmp_path)
    time.sleep(0.3)  # let it step for a while
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    try:
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err
    assert "EnvFailure" not in err  # the workers ignored the SIGINT; the parent closed them
    assert wait_gone(pids, 5.0) == []


def test_workers_exit_when_parent_is_killed_and_never_load_torch(tmp_path):
    proc, pids = _start_parent(tmp_path, extra_import="import torch  # as the trainer does")
    for pid in pids:
        with open(f"/proc/{pid}/maps") as f:
            assert "libtorch" not in f.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert wait_gone(pids, 10.0) == []
