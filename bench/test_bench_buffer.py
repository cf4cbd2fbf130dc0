"""Benchmarks of RolloutBuffer.finalize (reward mixing, segment sums, GAE of both levels).

Run: python -m pytest bench/test_bench_buffer.py --benchmark-only
Speed ratio in one go: python bench/test_bench_buffer.py  (or pytest -s -k ratio bench/...)
Each benchmark checks C++ against the NumPy reference before timing; nothing here asserts a time.
"""
from __future__ import annotations

import sys
import timeit
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import filled_rollout  # noqa: E402

from hmasd.buffer import BACKENDS, make_rollout_buffer  # noqa: E402

OUTPUTS = ("rewards", "advantages", "returns", "hl_rewards", "segment_lengths", "hl_dones",
           "hl_advantages", "hl_returns")


def filled_buffers(T: int):
    """Both backends holding the same full rollout, and the finalize() arguments."""
    shape, steps, fin = filled_rollout(T)
    buffers = {}
    for backend in BACKENDS:
        buf = make_rollout_buffer(backend, **shape)
        for step in steps:
            buf.add(**step)
        buffers[backend] = buf
    return buffers, fin


def assert_agree(buffers: dict, fin: dict) -> None:
    for buf in buffers.values():
        buf.finalize(**fin)
    for name in OUTPUTS:
        np.testing.assert_allclose(getattr(buffers["cpp"], name), getattr(buffers["numpy"], name),
                                   rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("T", [32, 1024])
@pytest.mark.parametrize("backend", BACKENDS)
def test_finalize(benchmark, backend: str, T: int) -> None:
    benchmark.group = f"finalize T={T} E=32 A=3"
    buffers, fin = filled_buffers(T)
    assert_agree(buffers, fin)
    benchmark(lambda: buffers[backend].finalize(**fin))


def speed_ratio(T: int, repeats: int = 5) -> tuple[float, float]:
    """Best-of-``repeats`` mean finalize() time of each backend, in seconds: (cpp, numpy)."""
    buffers, fin = filled_buffers(T)
    assert_agree(buffers, fin)
    times = []
    for backend in ("cpp", "numpy"):
        call = lambda: buffers[backend].finalize(**fin)  # noqa: E731
        number, _ = timeit.Timer(call).autorange()
        times.append(min(timeit.repeat(call, number=number, repeat=repeats)) / number)
    return times[0], times[1]


def report(T: int) -> str:
    cpp, ref = speed_ratio(T)
    return f"finalize T={T:5d}: C++ {cpp * 1e6:9.1f} us   NumPy {ref * 1e6:10.1f} us   NumPy/C++ {ref / cpp:7.1f}x"


def test_print_speed_ratio() -> None:
    """Prints the C++/NumPy ratio (visible with -s); a report, not a timed assertion."""
    for T in (32, 1024):
        print(report(T))


if __name__ == "__main__":
    for T in (32, 1024):
        print(report(T))
