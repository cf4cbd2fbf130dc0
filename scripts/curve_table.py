#!/usr/bin/env python3
"""Mean of logged metrics per bin of env steps, one row per run, as a Markdown table: the binned
training returns and instruments of docs/results.md.

    .venv/bin/python scripts/curve_table.py --bin 200000 --metric Rewards/Episode/TeamReturn_Mean \
        "MAPPO s3=runs/sslam9_mappo_s3/logs/*.jsonl" "HMASD s3=runs/sslam9_lh_hmasd_s3/logs/*.jsonl"

Training metrics are logged once per update; a cell is the plain mean over the updates whose env-step
counter falls in the bin (lo, hi]. Each LABEL=LOG is read as plot_curves.py reads it (a glob joins a
run and its resumes). One table per --metric.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_curves import labelled_series  # noqa: E402  (a sibling script, not a package)


def binned(xs: list[int], ys: list[float], width: int, bins: int) -> list[float]:
    """Mean of ys per bin (k*width, (k+1)*width], k < bins; NaN where a bin holds no point."""
    sums, counts = [0.0] * bins, [0] * bins
    for x, y in zip(xs, ys):
        k = math.ceil(x / width) - 1
        if 0 <= k < bins:
            sums[k] += y
            counts[k] += 1
    return [s / c if c else math.nan for s, c in zip(sums, counts)]


def table(metric: str, runs: list[tuple[str, list[int], list[float]]], width: int, until: int) -> str:
    bins = math.ceil(until / width)
    head = [f"{k * width / 1e6:g}-{(k + 1) * width / 1e6:g}M" for k in range(bins)]
    lines = [f"| {metric} | " + " | ".join(head) + " |", "|---" * (bins + 1) + "|"]
    for label, xs, ys in runs:
        cells = ["" if math.isnan(v) else f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}" for v in binned(xs, ys, width, bins)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Per-bin means of metrics from hmasd-train JSON logs.")
    parser.add_argument("runs", nargs="+", metavar="LABEL=LOG", help="a run's log or a glob of its logs")
    parser.add_argument("--metric", action="append", required=True, help="a logged metric (repeatable)")
    parser.add_argument("--bin", type=int, default=100_000, help="bin width in env steps (default 100000)")
    parser.add_argument("--until", type=int, help="last env step shown (default: the last one logged, to the nearest bin)")
    args = parser.parse_args(argv)
    if args.bin <= 0:
        parser.error(f"--bin must be a positive number of env steps, got {args.bin}")
    for metric in args.metric:
        try:
            runs = labelled_series(args.runs, metric)
        except (FileNotFoundError, ValueError) as err:
            print(f"curve_table.py: error: {err}", file=sys.stderr)
            return 2
        # a 2M-step run logs its last update a little past 2M: round to the nearest bin, not up
        last = max((max(xs) for _, xs, _ in runs if xs), default=args.bin)
        until = args.until or max(args.bin, round(last / args.bin) * args.bin)
        print(table(metric, runs, args.bin, until) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
