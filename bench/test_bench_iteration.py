"""One full synchronous iteration on simple_spread_v3 (3 agents), default config: collect 1024 env
steps with 32 envs in worker subprocesses, then 15 epochs of discriminators, coordinator and
discoverer. Target: at most 0.5 s per iteration (2,000 env steps/s end to end) on 2 cores.

    .venv/bin/python -m pytest bench/test_bench_iteration.py --benchmark-only -s
"""
from __future__ import annotations

import math

import pytest
import torch

from hmasd.config import load_config
from hmasd.pipeline import build
from phases import phase_seconds


@pytest.fixture(scope="module")
def pipeline():
    cfg = load_config("configs/default.yaml")
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    p = build(cfg, backend="subprocess")
    yield cfg, p.agent, p.collector, p.learner
    p.close()


def _iteration(collector, learner):
    ro = collector.collect()
    stats = learner.update(ro)
    return ro, stats


def test_full_iteration(benchmark, pipeline):
    cfg, agent, collector, learner = pipeline
    version = int(agent.policy_version)
    ro, stats = _iteration(collector, learner)  # correctness before timing
    assert ro.size * cfg.num_envs == 1024 and int(agent.policy_version) == version + 1
    assert all(math.isfinite(value) for key, value in stats.items() if not key.endswith("ExplainedVariance"))
    benchmark.pedantic(_iteration, args=(collector, learner), rounds=8, warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    print(f"\nfull iteration: {mean:.3f} s mean -> {1024 / mean:,.0f} env steps/s end to end (target <= 0.5 s)")


def test_phase_split(pipeline):
    """Not a timing assertion: prints where one iteration's time goes, measured in one run."""
    _, _, collector, learner = pipeline
    med = phase_seconds(collector, learner, rounds=4)
    print("\nmedian seconds, sequential: collect {collect:.3f} | finalize {finalize:.4f} | discriminators "
          "{discriminators:.3f} | coordinator {coordinator:.3f} | discoverer {discoverer:.3f}".format(**med))
    assert all(m > 0 for m in med.values())
