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
or before that step; a run that stopped before the step has none (exit 2 naming it). --threshold adds the env step at which each run first reached the value.
--png plots the mean curve (and with --iqm the IQM) of each label with its shaded 95% interval.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hmasd, not an installed one
from hmasd.aggregate import InputError, grouped, parse_steps, plot, summary_table, threshold_table  # noqa: E402

PROG = "aggregate_runs.py"


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
