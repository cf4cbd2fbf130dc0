#!/usr/bin/env python3
"""Across-run statistics of an evaluation metric, per label, as Agarwal et al. (2021) recommend:
the number of runs, the mean and the interquartile mean (IQM), each with a 95% stratified-bootstrap
confidence interval, at given env steps.

    .venv/bin/python scripts/aggregate_runs.py --metric Eval/SuccessRate --at 1000000,2000000 \
        --run "HMASD=runs/hmasd_s1/logs/*.jsonl" --run "HMASD=runs/hmasd_s2/logs/*.jsonl" \
        --run "MAPPO=runs/mappo_s1/logs/*.jsonl" --run "MAPPO=runs/mappo_s2/logs/*.jsonl" \
        --threshold 0.9 --out-md docs/aggregate.md --png docs/aggregate.png

Each --run LABEL=LOG is one run, read as plot_curves.py reads it (a glob joins a run and its
resumes); runs that share a label are grouped. At a step, a run's score is its last evaluation at
or before that step. --threshold adds the env step at which each run first reached the value.
--png plots the mean curve (and with --iqm the IQM) of each label with its shaded 95% interval.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hmasd, not an installed one
from plot_curves import labelled_series  # noqa: E402  (a sibling script, not a package)

from hmasd.stats import first_reach, iqm, stratified_bootstrap_ci  # noqa: E402

PROG = "aggregate_runs.py"


class InputError(Exception):
    """Bad input, reported as one line on stderr and exit status 2."""


def grouped(runs: list[str], metric: str) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """label -> [(LOG, env_steps, values)] in the order given, each curve sorted by env steps."""
    try:
        curves = labelled_series(runs, metric)
    except (FileNotFoundError, ValueError) as err:  # a JSON line that does not parse is a ValueError
        raise InputError(str(err)) from None
    if not any(xs for _, xs, _ in curves):
        raise InputError(f"no log logs the metric '{metric}'")
    groups: dict[str, list] = {}
    for run, (label, xs, ys) in zip(runs, curves):
        order = np.argsort(xs, kind="stable")
        groups.setdefault(label, []).append((run.split("=", 1)[1], np.asarray(xs)[order], np.asarray(ys, float)[order]))
    return groups


def score_at(xs: np.ndarray, ys: np.ndarray, step: int) -> float | None:
    """The run's last evaluation at or before `step`, or None if it has none yet."""
    i = np.searchsorted(xs, step, side="right")
    return float(ys[i - 1]) if i else None


def scores_at(label: str, runs: list, step: int) -> np.ndarray:
    scores = [score_at(xs, ys, step) for _, xs, ys in runs]
    missing = [log for (log, _, _), s in zip(runs, scores) if s is None]
    if missing:
        raise InputError(f"run '{label}={missing[0]}' has no evaluation at or before env step {step}")
    return np.asarray(scores)


def cell(point: float, lo: float, hi: float) -> str:
    return f"{point:.3f} [{lo:.3f}, {hi:.3f}]"


def summary_table(metric: str, groups: dict, steps: list[int], reps: int, seed: int) -> str:
    lines = [f"| label | env steps | n | mean {metric} [95% CI] | IQM [95% CI] |", "|---|---|---|---|---|"]
    for label, runs in groups.items():
        for step in steps:
            scores = scores_at(label, runs, step)
            mean = stratified_bootstrap_ci(scores, np.mean, reps=reps, rng=seed)
            mid = stratified_bootstrap_ci(scores, iqm, reps=reps, rng=seed)
            lines.append(f"| {label} | {step} | {len(scores)} | {cell(*mean)} | {cell(*mid)} |")
    return "\n".join(lines)


def threshold_table(metric: str, groups: dict, threshold: float) -> str:
    lines = [f"| label | runs reaching {metric} >= {threshold:g} | first env step per run |", "|---|---|---|"]
    for label, runs in groups.items():
        firsts = [first_reach(xs, ys, threshold) for _, xs, ys in runs]
        shown = ", ".join("never" if f is None else str(f) for f in firsts)
        lines.append(f"| {label} | {sum(f is not None for f in firsts)}/{len(firsts)} | {shown} |")
    return "\n".join(lines)


def band(runs: list, statistic, reps: int, seed: int) -> tuple[list[int], list[tuple[float, float, float]]]:
    """The statistic and its interval at every evaluation step of any run at which all runs have one."""
    if not all(len(xs) for _, xs, _ in runs):
        return [], []
    start = max(xs[0] for _, xs, _ in runs)  # before it some run has no score yet
    steps = sorted({int(x) for _, xs, _ in runs for x in xs if x >= start})
    points = [stratified_bootstrap_ci([score_at(xs, ys, s) for _, xs, ys in runs], statistic, reps=reps, rng=seed)
              for s in steps]
    return steps, points


def plot(path: str, metric: str, groups: dict, with_iqm: bool, reps: int, seed: int) -> None:
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


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--at '{text}' is not a comma-separated list of env steps, e.g. 1000000,2000000") from None
    if not steps or min(steps) < 0:
        raise InputError(f"--at '{text}' must list env steps >= 0")
    return steps


def run(args: argparse.Namespace) -> None:
    groups = grouped(args.run, args.metric)
    parts = []
    if args.at:
        parts.append(summary_table(args.metric, groups, parse_steps(args.at), args.reps, args.seed))
    if args.threshold is not None:
        parts.append(threshold_table(args.metric, groups, args.threshold))
    text = "\n\n".join(parts)
    if text:
        print(text)
    if args.out_md:
        Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_md).write_text(text + "\n")
    if args.png:
        plot(args.png, args.metric, groups, args.iqm, args.reps, args.seed)
        print(f"wrote {args.png}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Across-run mean and IQM with bootstrap CIs from hmasd-train logs.")
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=LOG",
                        help="one run's log or a glob of its logs (repeatable; runs sharing a label are grouped)")
    parser.add_argument("--metric", default="Eval/TeamReturn_Mean", help="default Eval/TeamReturn_Mean; e.g. Eval/SuccessRate")
    parser.add_argument("--at", help="comma-separated env steps to report, e.g. 1000000,2000000")
    parser.add_argument("--threshold", type=float, help="report the env step at which each run first reached this value")
    parser.add_argument("--out-md", help="also write the tables to this Markdown file")
    parser.add_argument("--png", help="plot the mean curves with shaded 95%% intervals to this PNG")
    parser.add_argument("--iqm", action="store_true", help="also plot the IQM curves")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed, so that tables are reproducible")
    args = parser.parse_args(argv)
    try:
        if not (args.at or args.threshold is not None or args.png):
            raise InputError("nothing to report: give --at, --threshold and/or --png")
        if args.reps < 1:
            raise InputError(f"--reps must be 1 or more, got {args.reps}")
        run(args)
    except InputError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
