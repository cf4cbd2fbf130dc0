"""Env-steps/s of 32 Overcooked envs (JaxMARL, one JAX CPU thread each worker) through SubprocessVecEnv.

Run: .venv/bin/python -m pytest bench/test_bench_overcooked.py --benchmark-only -s
Needs the `overcooked` extra. This is the collection side of an Overcooked training at the paper's
32 envs; the trainer adds the policy's forward pass per step and the update per rollout.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("jaxmarl")

from hmasd.orchestrator import SubprocessVecEnv  # noqa: E402

ENV_ID = "overcooked_asymmetric_advantages"
E = 32  # the paper's 32 rollout threads
STEPS = 100  # synchronous steps per benchmark round
ROUNDS = 5
SEED = 0


def _step_vec(venv: SubprocessVecEnv, actions: np.ndarray) -> None:
    for t in range(STEPS):
        venv.step(actions[t])


def test_bench_overcooked_orchestrator(benchmark):
    with SubprocessVecEnv(ENV_ID, num_envs=E, seed=SEED) as venv:
        spec = venv.spec
        actions = np.random.default_rng(SEED).integers(0, spec.n_actions, (STEPS, E, spec.num_agents))
        venv.reset()
        batch = venv.step(actions[0])  # also compiles JAX's step in every worker, outside the timing
        assert batch.obs.shape == (E, spec.num_agents, spec.obs_dim) and np.isfinite(batch.obs).all()

        benchmark.pedantic(_step_vec, args=(venv, actions), rounds=ROUNDS, warmup_rounds=1)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:
            rate, best = E * STEPS / stats.stats.mean, E * STEPS / stats.stats.min
            benchmark.extra_info["env_steps_per_s"] = rate
            print(f"\n{ENV_ID}, {E} envs on {venv.num_workers} workers ({len(os.sched_getaffinity(0))} CPUs): "
                  f"{rate:,.0f} env-steps/s (best round {best:,.0f})")
