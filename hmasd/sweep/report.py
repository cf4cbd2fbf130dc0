"""DIR/sweep.md and DIR/sweep.png: what each run of a sweep did, and the across-seed statistics of
each configuration (grid point) from the finished runs' logs, by hmasd.aggregate."""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from hmasd.aggregate import InputError, plot, read_groups, summary_table, threshold_table
from hmasd.sweep.plan import Run

PLOT_HINT = ("pip install -c constraints.txt -e '.[plot]' (matplotlib), then run the same hmasd-sweep command "
             "again: finished runs are skipped and the report is rewritten")


@dataclass
class Outcome:
    status: str  # "skipped" (finished before), "finished", "failed", "stopped", "not started"
    exit_code: int | None = None
    detail: str = ""  # for a failure: the last line of its log, or Ray's error

    @property
    def done(self) -> bool:
        return self.status in ("skipped", "finished")


def _runs_table(runs: list[Run], outcomes: dict[str, Outcome]) -> str:
    lines = ["| run | configuration | seed | status | exit | last line / note |", "|---|---|---|---|---|---|"]
    for run in runs:
        o = outcomes[run.name]
        code = "" if o.exit_code is None else str(o.exit_code)
        detail = o.detail.replace("|", "\\|")
        lines.append(f"| {run.name} | {run.label} | {run.seed} | {o.status} | {code} | {detail} |")
    return "\n".join(lines)


def write_report(out_dir: Path, runs: list[Run], outcomes: dict[str, Outcome], command: str, metric: str,
                 at: list[int] | None, threshold: float | None, reps: int, seed: int) -> list[str]:
    """Write DIR/sweep.md (and DIR/sweep.png when matplotlib is there). Statistics use the finished
    runs only: a failed or stopped run's curve ends early. `at` None: each configuration's own
    total_env_steps. Returns the notes for the console (a missing PNG, statistics that could not be
    made); they are in sweep.md too."""
    notes: list[str] = []
    done = [r for r in runs if outcomes[r.name].done]
    parts = [f"# Sweep {out_dir.name}", f"`{command}`", "## Runs", _runs_table(runs, outcomes)]
    parts.append(f"## {metric} across seeds (finished runs)")
    try:
        if not done:
            raise InputError("no run has finished")
        entries = [(r.label, glob.escape(str(r.folder(out_dir) / "logs")) + "/*.jsonl") for r in done]
        groups = read_groups(entries, metric)
        steps = at or {r.label: [r.cfg.total_env_steps] for r in done}
        parts.append("Each run's score at a step is its last evaluation at or before it; 95% intervals from "
                     f"{reps} stratified-bootstrap resamples (seed {seed}).")
        parts.append(summary_table(metric, groups, steps, reps, seed))
        if threshold is not None:
            parts.append(threshold_table(metric, groups, threshold))
        else:
            parts.append("(Give --threshold V for the env step at which each run first reached V.)")
        png = out_dir / "sweep.png"
        try:
            plot(png, metric, groups, with_iqm=True, reps=reps, seed=seed)
            parts.append(f"![{metric}]({png.name})")
        except InputError:
            png.unlink(missing_ok=True)  # a plot of an earlier report would not match this one
            notes.append(f"sweep.png not written: matplotlib is missing; to get it: {PLOT_HINT}")
    except InputError as err:
        notes.append(f"no statistics: {err}")
    parts += [f"*{note}*" for note in notes]
    (out_dir / "sweep.md").write_text("\n\n".join(parts) + "\n")
    return notes
