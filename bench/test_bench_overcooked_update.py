"""Where one Overcooked iteration's time goes at the paper's settings (asymmetric_advantages, 32 envs x
400 steps, 15 full-batch epochs, the 1,170-wide lossless grid): collect, finalize, discriminators,
coordinator, discoverer, for HMASD and MAPPO.

    .venv/bin/python -m pytest bench/test_bench_overcooked_update.py -s

Needs the `overcooked` extra. Not a timing assertion: it prints the seconds of each phase (median of
ROUNDS iterations) and the env steps/s they add up to. To compare two versions of the learner, run it
on both, back to back on the same machine (docs/results.md, "Speed").
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("jaxmarl")

from hmasd.config import load_config  # noqa: E402
from hmasd.pipeline import build  # noqa: E402
from phases import phase_seconds  # noqa: E402

CONFIG = "configs/overcooked_asymmetric_advantages.yaml"
ROUNDS = 3


@pytest.mark.parametrize("algo", ["hmasd", "mappo"])
def test_overcooked_phase_split(algo: str) -> None:
    cfg = load_config(CONFIG, [f"algo={algo}"])
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    p = build(cfg, backend="subprocess")
    try:
        med = phase_seconds(p.collector, p.learner, ROUNDS)
    finally:
        p.close()
    steps = cfg.num_envs * cfg.rollout_length
    print(f"\n{algo}: median seconds, sequential: collect {med['collect']:.2f} | finalize {med['finalize']:.3f} | "
          f"discriminators {med['discriminators']:.2f} | coordinator {med['coordinator']:.2f} | "
          f"discoverer {med['discoverer']:.2f} -> {steps / sum(med.values()):,.0f} env steps/s")
    assert med["collect"] > 0 and med["discoverer"] > 0
