"""Across-run statistics of an evaluation metric, per label (configuration), as Agarwal et al. (2021)
recommend: n, the mean and the interquartile mean (IQM), each with a 95% stratified-bootstrap
interval, at given env steps; the env step at which each run first reached a threshold; and a plot
of the mean (and IQM) curves with their shaded intervals.

Shared by scripts/aggregate_runs.py (runs named on the command line) and hmasd-sweep (the runs of
a sweep). At a step, a run's score is its last evaluation at or before that step, if the run got
that far: a run stopped at 2M has no score at 5M (carrying its last evaluation on would report a
curve it never had).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from hmasd.curves import series_and_end, split_run
from hmasd.stats import first_reach, iqm, stratified_bootstrap_ci


class Curve(NamedTuple):
    log: str  # the LOG pattern
    xs: np.ndarray  # env steps of the evaluations, sorted
    ys: np.ndarray  # the metric at them
    end: int  # the last env step the run logged anything at: how far it got


# label -> its runs' curves
Groups = dict[str, list[Curve]]


class InputError(Exception):
    """Input that cannot be aggregated; the message is one line naming the problem."""


def group_curves(curves: list[tuple[str, str, list[int], list[float], int | None]], metric: str) -> Groups:
    """Group (label, LOG, env_steps, values, end) by label, in the order given; InputError if no
    curve has a point of `metric`."""
    if not any(xs for _, _, xs, _, _ in curves):
        raise InputError(f"no log logs the metric '{metric}'")
    groups: Groups = {}
    for label, log, xs, ys, end in curves:
        order = np.argsort(xs, kind="stable")
        xs_sorted = np.asarray(xs)[order]
        groups.setdefault(label, []).append(
            Curve(log, xs_sorted, np.asarray(ys, float)[order], int(end if end is not None else -1)))
    return groups


def read_groups(entries: list[tuple[str, str]], metric: str) -> Groups:
    """Read the curve of each (label, LOG glob) and group them by label."""
    try:
        curves = [(label, pattern, *series_and_end(pattern, metric)) for label, pattern in entries]
    except (FileNotFoundError, ValueError) as err:  # a JSON line that does not parse is a ValueError
        raise InputError(str(err)) from None
    return group_curves(curves, metric)


def grouped(runs: list[str], metric: str) -> Groups:
    """The same for LABEL=LOG strings (the scripts' --run)."""
    try:
        entries = [split_run(run) for run in runs]
    except ValueError as err:
        raise InputError(str(err)) from None
    return read_groups(entries, metric)


def score_at(run: Curve, step: int) -> float | None:
    """The run's last evaluation at or before `step`; None before its first one or past its end."""
    i = np.searchsorted(run.xs, step, side="right")
    return float(run.ys[i - 1]) if i and step <= run.end else None


def scores_at(label: str, runs: list[Curve], step: int) -> np.ndarray:
    for run in runs:
        if not len(run.xs) or step < run.xs[0]:
            raise InputError(f"run '{label}={run.log}' has no evaluation at or before env step {step}")
        if step > run.end:
            raise InputError(f"run '{label}={run.log}' got only to env step {run.end}, not to {step}")
    return np.asarray([score_at(run, step) for run in runs])


def cell(point: float, lo: float, hi: float) -> str:
    return f"{point:.3f} [{lo:.3f}, {hi:.3f}]"


def summary_table(metric: str, groups: Groups, steps: list[int] | dict[str, list[int]], reps: int, seed: int) -> str:
    """One Markdown row per label and step; `steps` is one list for all labels or a list per label."""
    lines = [f"| label | env steps | n | mean {metric} [95% CI] | IQM [95% CI] |", "|---|---|---|---|---|"]
    for label, runs in groups.items():
        for step in steps[label] if isinstance(steps, dict) else steps:
            scores = scores_at(label, runs, step)
            mean = stratified_bootstrap_ci(scores, np.mean, reps=reps, rng=seed)
            mid = stratified_bootstrap_ci(scores, iqm, reps=reps, rng=seed)
            lines.append(f"| {label} | {step} | {len(scores)} | {cell(*mean)} | {cell(*mid)} |")
    return "\n".join(lines)


def threshold_table(metric: str, groups: Groups, threshold: float) -> str:
    lines = [f"| label | runs reaching {metric} >= {threshold:g} | first env step per run |", "|---|---|---|"]
    for label, runs in groups.items():
        firsts = [first_reach(run.xs, run.ys, threshold) for run in runs]
        shown = ", ".join("never" if f is None else str(f) for f in firsts)
        lines.append(f"| {label} | {sum(f is not None for f in firsts)}/{len(firsts)} | {shown} |")
    return "\n".join(lines)


def band(runs: list, statistic, reps: int, seed: int) -> tuple[list[int], list[tuple[float, float, float]]]:
    """The statistic and its interval at every evaluation step of any run at which all runs have one."""
    if not all(len(run.xs) for run in runs):
        return [], []
    start = max(run.xs[0] for run in runs)  # before it some run has no score yet
    end = min(run.end for run in runs)  # after it some run has stopped
    steps = sorted({int(x) for run in runs for x in run.xs if start <= x <= end})
    points = [stratified_bootstrap_ci([score_at(run, s) for run in runs], statistic, reps=reps, rng=seed)
              for s in steps]
    return steps, points


def plot(path: str | Path, metric: str, groups: Groups, with_iqm: bool, reps: int, seed: int) -> None:
    """Write the mean (and IQM) curve of each label with its shaded 95% interval to a PNG. InputError
    when matplotlib (the `plot` extra) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("matplotlib is not installed: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(7, 4))
    stats = [("mean", np.mean, "-")] + ([("IQM", iqm, "--")] if with_iqm else [])
    for k, (label, runs) in enumerate(groups.items()):
        color = f"C{k}"  # one colour per label: its mean and IQM curves belong together
        for name, statistic, style in stats:
            steps, points = band(runs, statistic, reps, seed)
            if not steps:
                continue
            point, lo, hi = np.asarray(points).T
            ax.plot(steps, point, style, color=color, linewidth=1, label=f"{label} {name} (n={len(runs)})")
            ax.fill_between(steps, lo, hi, color=color, alpha=0.15)
    ax.set_xlabel("env steps")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: shaded = 95% stratified-bootstrap CI")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_steps(text: str, option: str = "--at") -> list[int]:
    try:
        steps = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"{option} '{text}' is not a comma-separated list of env steps, e.g. 1000000,2000000") from None
    if not steps or min(steps) < 0:
        raise InputError(f"{option} '{text}' must list env steps >= 0")
    return steps
