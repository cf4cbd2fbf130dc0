"""Reading learning curves back from the JSON logs that hmasd-train writes (logs/<run>.jsonl).

Pure Python (no torch, no NumPy), so that the analysis scripts start fast.
"""
from __future__ import annotations

import glob
import json
from pathlib import Path


def series(pattern: str, metric: str) -> tuple[list[int], list[float]]:
    """The (env_steps, metric) points of every log matching `pattern` (`series_and_end`)."""
    xs, ys, _ = series_and_end(pattern, metric)
    return xs, ys


def series_and_end(pattern: str, metric: str) -> tuple[list[int], list[float], int | None]:
    """The (env_steps, metric) points of every log matching `pattern`, in file-name order, and the
    last env step the run logged anything at (how far it got; None for a log without metrics).

    A glob joins the files of one run: log names of default run names carry a time stamp, and a
    resumed run may add a file, so name order is start-time order. FileNotFoundError when nothing
    matches; ValueError (json.JSONDecodeError) for a line that is not JSON, and ValueError when the
    pattern joins two runs: a resume goes back at most to its checkpoint, so steps that fall back to
    the run's first step mean a second run started from scratch (e.g. "runs/x_s[0-9]/..." with two
    seeds), whose points would silently overwrite the first's."""
    logs = sorted(glob.glob(pattern))
    if not logs:
        raise FileNotFoundError(f"no log matches '{pattern}': pass a logs/<run>.jsonl path or a glob")
    xs, ys, steps = [], [], []  # steps: of every metrics row, whichever metrics it holds
    for log in logs:
        for line in Path(log).read_text().splitlines():
            row = json.loads(line)
            if row.get("event") != "metrics":
                continue
            step = row["env_steps"]
            if steps and step <= steps[0] < max(steps):
                raise ValueError(f"'{pattern}' joins more than one run: env steps start again at {step} in "
                                 f"{log}; give each run its own LABEL=LOG")
            steps.append(step)
            if metric in row:
                xs.append(step)
                ys.append(row[metric])
    return xs, ys, (max(steps) if steps else None)


def split_run(run: str) -> tuple[str, str]:
    """LABEL=LOG -> (label, LOG pattern); ValueError names a run without its label."""
    if "=" not in run:
        raise ValueError(f"'{run}' is not LABEL=LOG: write it as e.g. \"MAPPO=runs/m/logs/*.jsonl\"")
    label, pattern = run.split("=", 1)
    return label, pattern


def labelled_series(runs: list[str], metric: str) -> list[tuple[str, list[int], list[float]]]:
    """(label, env_steps, values) for each LABEL=LOG. ValueError names a run without its label,
    FileNotFoundError a LOG that matches nothing."""
    curves = []
    for run in runs:
        label, pattern = split_run(run)
        curves.append((label, *series(pattern, metric)))
    return curves
