"""Env-steps/s of 32 simple_spread_v3 envs: SubprocessVecEnv (worker subprocesses) vs one process.

Run: .venv/bin/python -m pytest bench/test_bench_orchestrator.py --benchmark-only -s
The second benchmark prints the speed-up over the first and the total RSS (parent + workers).
On a machine shared with other jobs the two benchmarks may run under different loads, so it
also prints an interleaved ratio: rounds of both, alternating, median of the per-pair ratios.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import hmasd_envs
from hmasd.orchestrator import SubprocessVecEnv

ENV_ID = "simple_spread_v3"
E = 32  # envs: the paper's 32 rollout threads
STEPS = 100  # synchronous steps per benchmark round
ROUNDS = 8
SEED = 0

_results: dict[str, tuple[float, float]] = {}


@pytest.fixture(scope="module")
def actions() -> np.ndarray:
    # Drawn up front so that neither side pays for the RNG inside the timed loop.
    spec = hmasd_envs.make_env(ENV_ID).spec
    rng = np.random.default_rng(SEED)
    return rng.integers(0, spec.n_actions, (STEPS, E, spec.num_agents), dtype=np.int64)  # [T, E, A]


@pytest.fixture(scope="module")
def array_envs():
    envs = [hmasd_envs.make_env(ENV_ID) for _ in range(E)]
    for i, env in enumerate(envs):
        env.reset(seed=SEED + i)
    yield envs
    for env in envs:
        env.close()


def _step_in_process(envs, actions: np.ndarray) -> None:
    for t in range(STEPS):
        a = actions[t]  # [E, A]
        for i, env in enumerate(envs):
            env.step(a[i])


def _step_vec(venv: SubprocessVecEnv, actions: np.ndarray) -> None:
    for t in range(STEPS):
        venv.step(actions[t])


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _steps_per_s(benchmark) -> tuple[float, float] | None:
    """(env-steps/s over the mean round, over the fastest round), or None when not timed."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return E * STEPS / stats.stats.mean, E * STEPS / stats.stats.min


def test_bench_single_process(benchmark, actions, array_envs):
    spec = array_envs[0].spec
    first = array_envs[0].step(actions[0, 0])
    assert first.obs.shape == (spec.num_agents, spec.obs_dim) and np.isfinite(first.obs).all()

    benchmark.pedantic(_step_in_process, args=(array_envs, actions), rounds=ROUNDS, warmup_rounds=1)
    rates = _steps_per_s(benchmark)
    if rates is not None:
        _results["single"] = rates
        benchmark.extra_info["env_steps_per_s"] = rates[0]
        print(f"\none process, {E} envs: {rates[0]:,.0f} env-steps/s (best round {rates[1]:,.0f})")


@pytest.mark.parametrize("pin_cpus", [True, False], ids=["pinned", "unpinned"])
def test_bench_orchestrator(benchmark, actions, array_envs, pin_cpus):
    with SubprocessVecEnv(ENV_ID, num_envs=E, seed=SEED, pin_cpus=pin_cpus) as venv:
        spec = venv.spec
        venv.reset()
        batch = venv.step(actions[0])
        assert batch.obs.shape == (E, spec.num_agents, spec.obs_dim)
        assert batch.state.shape == (E, spec.state_dim) and batch.reward.shape == (E,)
        assert np.isfinite(batch.obs).all() and np.isfinite(batch.reward).all()

        benchmark.pedantic(_step_vec, args=(venv, actions), rounds=ROUNDS, warmup_rounds=1)
        rss = [_rss_kib(os.getpid())] + [_rss_kib(pid) for pid in venv.worker_pids]
        rates = _steps_per_s(benchmark)
        print(f"\nVecEnv, {E} envs on {venv.num_workers} workers ({len(os.sched_getaffinity(0))} CPUs), "
              f"{'pinned' if pin_cpus else 'unpinned'}")
        if rates is not None:
            benchmark.extra_info["env_steps_per_s"] = rates[0]
            print(f"  {rates[0]:,.0f} env-steps/s (best round {rates[1]:,.0f})")
            if "single" in _results:
                mean_ratio = rates[0] / _results["single"][0]
                best_ratio = rates[1] / _results["single"][1]
                benchmark.extra_info["speedup_vs_one_process"] = mean_ratio
                print(f"  speed-up over one process: {mean_ratio:.2f}x (means), {best_ratio:.2f}x (best rounds)")

            # Interleaved: each pair of rounds sees about the same background load. The idle
            # workers block in recv while the in-process round runs, so they do not compete.
            ratios = []
            for _ in range(ROUNDS):
                t0 = time.perf_counter()
                _step_in_process(array_envs, actions)
                t1 = time.perf_counter()
                _step_vec(venv, actions)
                t2 = time.perf_counter()
                ratios.append((t1 - t0) / (t2 - t1))
            ratio = float(np.median(ratios))
            benchmark.extra_info["speedup_interleaved"] = ratio
            print(f"  speed-up, interleaved rounds: {ratio:.2f}x (median; range {min(ratios):.2f}-{max(ratios):.2f})")
        total_mib = sum(rss) / 1024
        benchmark.extra_info["rss_total_mib"] = total_mib
        print(f"  RSS: parent {rss[0] / 1024:.0f} MiB + workers "
              f"{' + '.join(f'{r / 1024:.0f}' for r in rss[1:])} MiB = {total_mib:.0f} MiB")
