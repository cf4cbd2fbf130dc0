"""Where one Overcooked iteration's time goes at the paper's settings (asymmetric_advantages, 32 envs x
400 steps, 15 full-batch epochs, the 1,170-wide lossless grid): collect, finalize, discriminators,
coordinator, discoverer, for HMASD and MAPPO.

    .venv/bin/python -m pytest bench/test_bench_overcooked_update.py -s

Needs the `overcooked` extra. Not a timing assertion: it prints the seconds of each phase (median of
ROUNDS iterations) and the env steps/s they add up to. To compare two versions of the learner, run it
on both, back to back on the same machine (docs/results.md, "Speed").
"""
from __future__ import annotations

import time

import pytest
import torch

pytest.importorskip("jaxmarl")

from hmasd.config import load_config  # noqa: E402
from hmasd.pipeline import build  # noqa: E402

CONFIG = "configs/overcooked_asymmetric_advantages.yaml"
ROUNDS = 3


@pytest.mark.parametrize("algo", ["hmasd", "mappo"])
def test_overcooked_phase_split(algo: str) -> None:
    cfg = load_config(CONFIG, [f"algo={algo}"])
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    p = build(cfg, backend="subprocess")
    try:
        collector, learner = p.collector, p.learner
        rows = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            ro = collector.collect()
            t1 = time.perf_counter()
            learner.finalize(ro)
            t2 = time.perf_counter()
            if p.agent.uses_skills:
                learner.update_discriminators(ro)
            t3 = time.perf_counter()
            if p.agent.uses_skills:
                learner.update_coordinator(ro)
            t4 = time.perf_counter()
            learner.update_discoverer(ro)
            t5 = time.perf_counter()
            learner.agent.policy_version += 1
            rows.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))
    finally:
        p.close()
    med = [sorted(col)[len(col) // 2] for col in zip(*rows)]
    steps = cfg.num_envs * cfg.rollout_length
    print(f"\n{algo}: median seconds, sequential: collect {med[0]:.2f} | finalize {med[1]:.3f} | "
          f"discriminators {med[2]:.2f} | coordinator {med[3]:.2f} | discoverer {med[4]:.2f} "
          f"-> {steps / sum(med):,.0f} env steps/s")
    assert med[0] > 0 and med[4] > 0
