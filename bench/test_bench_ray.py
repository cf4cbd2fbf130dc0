"""Env-steps/s of 32 simple_spread_v3 envs: 2 Ray actors (RayVecEnv) vs 2 worker subprocesses (SubprocessVecEnv).

Run: .venv/bin/python -m pytest bench/test_bench_ray.py --benchmark-only -s
Both run in one session on one local Ray (2 CPUs, loopback). The Ray benchmark prints the ratio of
the two means, and an interleaved ratio (rounds of both, alternating, median of the per-pair ratios)
that is fairer on a machine shared with other jobs. Each side first proves it steps the same arrays
as the other for the same seed. SubprocessVecEnv runs both as the trainer builds it (each worker pinned to a
CPU) and unpinned, as Ray's actors run: on a loaded machine pinning can cost more than it saves.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import hmasd_envs
from hmasd.orchestrator import SubprocessVecEnv

ray = pytest.importorskip("ray")

from hmasd.ray_init import init_ray  # noqa: E402
from hmasd.ray_vec import RayVecEnv  # noqa: E402

ENV_ID = "simple_spread_v3"
E, W = 32, 2  # envs, workers (actors or subprocesses)
STEPS = 100  # synchronous steps per benchmark round
ROUNDS = 6
SEED = 0

_results: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    yield init_ray(num_cpus=W)
    ray.shutdown()


@pytest.fixture(scope="module")
def actions() -> np.ndarray:
    # Drawn up front so that neither side pays for the RNG inside the timed loop.
    spec = hmasd_envs.make_env(ENV_ID).spec
    rng = np.random.default_rng(SEED)
    return rng.integers(0, spec.n_actions, (STEPS, E, spec.num_agents), dtype=np.int64)  # [T, E, A]


def _run(venv, actions: np.ndarray) -> None:
    for t in range(STEPS):
        venv.step(actions[t])


def _same_steps(a, b, actions: np.ndarray) -> None:
    """Both backends, same seed: the same arrays for the first steps (past the first auto-resets)."""
    np.testing.assert_array_equal(a.reset().obs, b.reset().obs)
    for t in range(30):
        x, y = a.step(actions[t]), b.step(actions[t])
        for name in ("obs", "state", "reward", "terminated", "truncated", "final_obs"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)


def _rate(benchmark) -> float | None:
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else E * STEPS / stats.stats.mean


@pytest.mark.parametrize("pin_cpus", [True, False], ids=["pinned", "unpinned"])
def test_bench_subprocess_workers(benchmark, actions, pin_cpus):
    with SubprocessVecEnv(ENV_ID, num_envs=E, num_workers=W, seed=SEED, pin_cpus=pin_cpus) as venv:
        batch = venv.reset()
        assert batch.obs.shape == (E, venv.spec.num_agents, venv.spec.obs_dim) and np.isfinite(batch.obs).all()
        benchmark.pedantic(_run, args=(venv, actions), rounds=ROUNDS, warmup_rounds=1)
    rate = _rate(benchmark)
    if rate is not None:
        kind = "pinned" if pin_cpus else "unpinned"
        _results[kind] = rate
        benchmark.extra_info["env_steps_per_s"] = rate
        print(f"\nVecEnv, {E} envs on {W} worker subprocesses ({kind}): {rate:,.0f} env-steps/s")


def _interleaved(rv: RayVecEnv, venv: SubprocessVecEnv, actions: np.ndarray) -> list[float]:
    """Per pair of rounds, subprocess time / Ray time: each pair sees about the same background load,
    and the idle side's workers wait for a call, taking no CPU meanwhile."""
    ratios = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        _run(venv, actions)
        t1 = time.perf_counter()
        _run(rv, actions)
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
    return ratios


def test_bench_ray_actors(benchmark, actions):
    with RayVecEnv(ENV_ID, num_envs=E, num_workers=W, seed=SEED) as rv, \
            SubprocessVecEnv(ENV_ID, num_envs=E, num_workers=W, seed=SEED) as pinned, \
            SubprocessVecEnv(ENV_ID, num_envs=E, num_workers=W, seed=SEED, pin_cpus=False) as unpinned:
        _same_steps(rv, pinned, actions)
        unpinned.reset()
        benchmark.pedantic(_run, args=(rv, actions), rounds=ROUNDS, warmup_rounds=1)
        rate = _rate(benchmark)
        if rate is None:
            return
        benchmark.extra_info["env_steps_per_s"] = rate
        print(f"\nRayVecEnv, {E} envs on {W} Ray actors: {rate:,.0f} env-steps/s")
        for kind, venv in (("pinned", pinned), ("unpinned", unpinned)):
            if kind in _results:
                ratio = rate / _results[kind]
                benchmark.extra_info[f"ray_over_{kind}"] = ratio
                print(f"  Ray / subprocess {kind}: {ratio:.2f}x (means of separate benchmarks)")
            ratios = _interleaved(rv, venv, actions)
            ratio = float(np.median(ratios))
            benchmark.extra_info[f"ray_over_{kind}_interleaved"] = ratio
            print(f"  Ray / subprocess {kind}, interleaved rounds: {ratio:.2f}x "
                  f"(median; range {min(ratios):.2f}-{max(ratios):.2f})")
