"""`hmasd-sweep`: many ordinary trainings (grid points x seeds) as Ray tasks, then their statistics.

  hmasd-sweep --config configs/smoke.yaml --seeds 1-5 [--set K=V ...] [--grid K=V1,V2 ...]
              [--ray-address HEAD:6379] [--max-concurrent N] --output-dir DIR

Run `<point>_s<seed>` trains with `hmasd-train --config C --set ... --set seed=S --set run_name=<run>
--output-dir DIR/<run>`. Running the same command again skips finished runs and resumes stopped ones
from their newest checkpoint. When all have ended, DIR/sweep.md (and DIR/sweep.png) hold the mean and
IQM of each grid point with 95% stratified-bootstrap intervals.

Exit codes: 0 every run finished; 1 some run failed (each is reported with its exit code and last log
line, after the others ended); 2 bad input, one line, before anything starts; 130 stopped by Ctrl-C
(the running trainings saved checkpoints: run the same command to resume).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from hmasd.aggregate import InputError, parse_steps
from hmasd.sweep.plan import SweepInputError, build_runs, run_state
from hmasd.sweep.report import Outcome, write_report

PROG = "hmasd-sweep"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"{PROG}: error: {message}: see {PROG} --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Train every grid point x seed as a Ray task; resumable; aggregate statistics.")
    p.add_argument("--config", required=True, help="YAML config every run starts from")
    p.add_argument("--seeds", required=True, help="seeds: a range and/or a list, e.g. 1-5 or 1,3,7")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key in every run")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep a config key over values (repeatable: the grid is the product)")
    p.add_argument("--output-dir", required=True, help="one folder per run goes here, and sweep.md / sweep.png")
    p.add_argument("--ray-address", help="join this Ray cluster (ray start --head); default: a local Ray on 127.0.0.1")
    p.add_argument("--max-concurrent", type=int, help="runs at a time (default: as many as this machine's cores and "
                   "memory hold; on a cluster: its CPUs)")
    p.add_argument("--metric", default="Eval/TeamReturn_Mean", help="statistic of sweep.md (default Eval/TeamReturn_Mean)")
    p.add_argument("--at", help="env steps for sweep.md, e.g. 500000,1000000 (default: each run's total_env_steps)")
    p.add_argument("--threshold", type=float, help="also report the env step at which each run first reached this")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--dry-run", action="store_true", help="validate and show what would run, start nothing")
    return p


def say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def _check_options(args: argparse.Namespace) -> list[int] | None:
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise SweepInputError(f"--max-concurrent must be 1 or more, got {args.max_concurrent}")
    if args.reps < 1:
        raise SweepInputError(f"--reps must be 1 or more, got {args.reps}")
    out = Path(args.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".sweep-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SweepInputError(f"--output-dir '{out}' cannot be used ({exc.strerror or exc}): pass a writable folder")
    try:
        return parse_steps(args.at) if args.at else None
    except InputError as exc:
        raise SweepInputError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = build_runs(args.config, args.set, args.grid, args.seeds)
        at = _check_options(args)
    except SweepInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    states = {run.name: run_state(run, out) for run in runs}
    outcomes: dict[str, Outcome] = {}
    for run in runs:
        state = states[run.name]
        if state.kind == "finished":
            outcomes[run.name] = Outcome("skipped", 0, "finished earlier")
            say(f"skipped {run.name}: finished ({state.env_steps} env steps)")
        if state.note:
            say(f"{run.name}: {state.note}")
    todo = [run for run in runs if run.name not in outcomes]
    if args.dry_run:
        for run in todo:
            state = states[run.name]
            say(f"would resume {run.name} from {state.checkpoint}" if state.kind == "resume" else f"would start {run.name}")
        return 0
    interrupted = False
    if todo:
        from hmasd.sweep.scheduler import execute  # imports Ray: only when there is something to run

        try:
            ran, interrupted = execute(todo, states, out, Path(args.config).read_text(), args.ray_address,
                                       args.max_concurrent, say)
        except SweepInputError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        outcomes.update(ran)
    if interrupted:
        say("stopped: run the same command again to resume the stopped runs")
        return 130
    command = shlex.join([PROG, *(sys.argv[1:] if argv is None else argv)])
    notes = write_report(out, runs, outcomes, command, args.metric, at, args.threshold, args.reps, seed=0)
    for note in notes:
        say(note)
    say(f"wrote {out / 'sweep.md'}")
    failed = [run for run in runs if outcomes[run.name].status == "failed"]
    for run in failed:
        o = outcomes[run.name]
        say(f"run {run.name} failed (exit {o.exit_code}): {o.detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
