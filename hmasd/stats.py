"""Aggregate statistics over runs as reported by Agarwal et al. (2021), "Deep RL at the Edge of the
Statistical Precipice" (rliable): the interquartile mean and stratified-bootstrap confidence intervals.

Pure NumPy, so that the analysis scripts run without torch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# A statistic reduces the last axis: statistic(x, axis=-1). np.mean and iqm both qualify; taking the
# axis lets the bootstrap evaluate all its resamples in one call instead of a Python loop.
Statistic = Callable[..., np.ndarray]


def iqm(x, axis: int = -1):
    """Interquartile mean: the mean of the middle 50% of the values along `axis`.

    Same cut as scipy.stats.trim_mean(x, 0.25): floor(0.25 * n) values are dropped from each end of
    the sorted values, so for n < 4 nothing is dropped and the IQM is the plain mean.
    """
    x = np.sort(np.asarray(x, dtype=float), axis=axis)
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm of no values")
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def stratified_bootstrap_ci(scores, statistic: Statistic = np.mean, reps: int = 2000, alpha: float = 0.05,
                            rng: np.random.Generator | int | None = None) -> tuple[float, float, float]:
    """(point, lo, hi): `statistic` of all scores and its 100*(1 - alpha)% percentile interval.

    `scores` is [runs, tasks] (a 1-D array is one task). Each resample draws `runs` runs with
    replacement independently within every task, so every task keeps its weight in every resample;
    the statistic is taken over the flattened resample.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"scores must be [runs, tasks] with at least one run, got shape {scores.shape}")
    rng = np.random.default_rng(rng)
    runs, tasks = scores.shape
    picks = rng.integers(0, runs, size=(reps, runs, tasks))  # run index per (resample, slot, task)
    resamples = np.take_along_axis(scores[None, :, :], picks, axis=1).reshape(reps, runs * tasks)
    boot = np.asarray(statistic(resamples, axis=-1), dtype=float)
    lo, hi = np.percentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    point = float(statistic(scores.reshape(-1), axis=-1))
    return point, float(lo), float(hi)


def first_reach(steps, values, threshold: float) -> int | None:
    """The first env step at which a run's curve is >= threshold, or None if it never is."""
    values = np.asarray(values, dtype=float)
    hits = np.flatnonzero(values >= threshold)
    return int(np.asarray(steps)[hits[0]]) if hits.size else None
