"""The widest layer at Overcooked's size, three ways: LayerNorm -> Linear as nn.Sequential runs it, the
folded `Trunk` from inputs normalised once, and the sparse rows of a mostly-zero grid.

    .venv/bin/python -m pytest bench/test_bench_first_layer.py -s

25,600 rows (32 envs x 400 steps x 2 agents) of 1,175 entries, 3% of them nonzero (0, 1 or 2, as the
lossless grid), 64 outputs, one thread (the trainer's `torch_threads`); forward and backward of the
whole batch, as one epoch of the learner does. Each way is checked against the plain Sequential before
timing; nothing here asserts a time (the figures are quoted in hmasd/models/common.py and sparse_rows.py).
"""
from __future__ import annotations

import timeit

import torch

from hmasd.models.common import mlp

ROWS, WIDTH, HIDDEN, DENSITY = 25_600, 1_175, 64, 0.03


def _grid() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    values = torch.randint(1, 3, (ROWS, WIDTH), generator=g).float()
    return values * (torch.rand(ROWS, WIDTH, generator=g) < DENSITY)


def test_first_layer_three_ways() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    trunk = mlp(WIDTH, HIDDEN, layers=1)  # LayerNorm -> Linear -> ReLU
    plain = torch.nn.Sequential(*trunk)
    x = _grid()
    dense, sparse = trunk.normalize(x), trunk.normalize(x, sparse=True)
    ways = {"LayerNorm -> Linear": lambda: plain(x), "folded, normalised once": lambda: trunk.from_normalized(dense),
            "sparse rows": lambda: trunk.from_normalized(sparse)}
    reference = plain(x).detach()
    seconds = {}
    for name, forward in ways.items():
        torch.testing.assert_close(forward().detach(), reference, atol=1e-4, rtol=1e-4)

        def step() -> None:
            trunk.zero_grad()
            forward().sum().backward()

        seconds[name] = min(timeit.repeat(step, number=3, repeat=3)) / 3
    base = seconds["LayerNorm -> Linear"]
    print()
    for name, s in seconds.items():
        print(f"{name:>24}: {s:.3f} s forward + backward ({base / s:.1f}x)")
