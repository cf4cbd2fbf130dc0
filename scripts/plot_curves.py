#!/usr/bin/env python3
"""Plot learning curves from training JSON logs (logs/<run>.jsonl) into one PNG.

    .venv/bin/python scripts/plot_curves.py --out docs/learning_curves.png \
        --panel "Alice_and_Bob|Eval/SuccessRate|HMASD=a.jsonl|MAPPO=b.jsonl" \
        --panel "simple_spread_v3|Eval/TeamReturn_Mean|HMASD=c.jsonl|MAPPO=d.jsonl"

Each panel is TITLE|METRIC|LABEL=LOG[|LABEL=LOG...]; x is env steps. LOG may be a glob such as
runs/X/logs/*.jsonl: log names carry a time stamp, and a resumed run adds a file, so the matches
are read in name (= start time) order as one curve. `--smooth K` plots the running mean of K points,
for metrics logged at every update. Needs matplotlib (pip install matplotlib);
training does not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hmasd, not an installed one
from hmasd.curves import labelled_series, series  # noqa: E402,F401  (series: part of this script's interface)


def running_mean(ys: list[float], k: int) -> list[float]:
    """Mean of each point and the k - 1 before it (fewer at the start): per-update training metrics
    are too noisy to compare runs point by point."""
    out, total = [], 0.0
    for i, y in enumerate(ys):
        total += y - (ys[i - k] if i >= k else 0.0)
        out.append(total / min(i + 1, k))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Plot learning curves from hmasd-train JSON logs.")
    parser.add_argument("--panel", action="append", required=True, help="TITLE|METRIC|LABEL=LOG[|LABEL=LOG...]")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--smooth", type=int, default=1, help="plot the running mean of this many points")
    parser.add_argument("--ylim", type=float, nargs=2, metavar=("LOW", "HIGH"), help="the y range of every panel")
    args = parser.parse_args()
    if args.smooth < 1:
        parser.error(f"--smooth must be 1 or more points, got {args.smooth}")
    panels = [panel.split("|") for panel in args.panel]  # [title, metric, LABEL=LOG, ...]
    for panel, parts in zip(args.panel, panels):
        if len(parts) < 3:
            parser.error(f"--panel '{panel}' is not TITLE|METRIC|LABEL=LOG[|LABEL=LOG...]")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_curves.py: error: matplotlib is not installed: pip install matplotlib", file=sys.stderr)
        return 2
    # panels of one metric share their y axis, so that curves in different panels compare by eye
    same_metric = len({metric for _, metric, *_ in panels}) == 1
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False, sharey=same_metric)
    for ax, (title, metric, *runs) in zip(axes[0], panels):
        try:
            curves = labelled_series(runs, metric)
        except (FileNotFoundError, ValueError) as err:
            print(f"plot_curves.py: error: {err}", file=sys.stderr)
            return 2
        for label, xs, ys in curves:
            # markers only where the points are few enough to tell apart (evaluations, not updates)
            ax.plot(xs, running_mean(ys, args.smooth), label=label, marker="o" if len(xs) <= 100 else None,
                    markersize=3, linewidth=1)
        ax.set_title(title)
        if args.ylim:
            ax.set_ylim(*args.ylim)
        ax.set_xlabel("env steps")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
