"""What a sweep runs: seeds and grid parsed, every run named and its config validated, and each run's
state on disk (finished, to resume from a checkpoint, or new). No Ray here.

Layout of a sweep's output folder DIR: one ordinary hmasd-train output folder per run,
`DIR/<run>/{models,logs,tf-logs}/`, plus the sweep's own files in it: `sweep-config.yaml` (the config
the run was started with), `sweep.log` (its console output, appended per attempt) and `sweep-done.json`
(written only after the training exited 0, i.e. reached total_env_steps).
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from hmasd.checkpoint import PREFIX, CheckpointError, load_checkpoint
from hmasd.config import RUN_NAME, Config, ConfigError, config_from_dict, parse_override, read_yaml

DONE_MARKER = "sweep-done.json"
OWNED_KEYS = {"seed": "--seeds", "run_name": "the sweep (from the grid point and seed)"}


class SweepInputError(ValueError):
    """Bad sweep input; the message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class Run:
    """One training of the sweep: a grid point (label) and a seed."""

    name: str  # run_name and the folder under DIR
    label: str  # the grid point, e.g. "ppo.lr=0.001" (the config's file stem without a grid)
    seed: int
    overrides: tuple[str, ...]  # every --set of the training: the sweep's --set, the grid point, seed, run_name
    cfg: Config  # as validated; the training resolves it again from the same config and overrides

    def folder(self, out_dir: Path) -> Path:
        return out_dir / self.name


def parse_seeds(text: str) -> list[int]:
    """'1-5', '1,3,7' or a mix ('1-3,7') -> the seeds in the order given, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise SweepInputError(f"--seeds '{text}': '{part}' is not a seed or a range LOW-HIGH: write e.g. "
                                  "--seeds 1-5 or --seeds 1,3,7")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        seeds.extend(s for s in range(lo, hi + 1) if s not in seeds)
    return seeds


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """['ppo.lr=1e-3,3e-4', ...] -> [(key, [value, ...])]. Values are split at commas, so a value
    cannot itself hold a comma (a YAML list or mapping): give such a value with --set instead."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        values = [v.strip() for v in raw.split(",")]
        if not sep or not key or not all(values):
            raise SweepInputError(f"--grid '{item}' is not KEY=V1,V2,...: write e.g. --grid ppo.lr=0.001,0.0003")
        if any(key == k for k, _values in grid):
            raise SweepInputError(f"--grid gives '{key}' twice: list all its values in one --grid {key}=V1,V2")
        if len(set(values)) != len(values):
            raise SweepInputError(f"--grid '{item}' lists a value twice: give each value once")
        grid.append((key, values))
    return grid


def run_name(point: list[tuple[str, str]], seed: int, stem: str) -> str:
    """Readable and stable: `ppo.lr-0.001+algo-mappo_s3` (the config's stem, `smoke_s3`, without a
    grid). Characters run_name does not allow become '_' ('=' becomes '-')."""
    base = "+".join(f"{k}-{v}" for k, v in point) if point else stem
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", base)
    name = re.sub(r"\.{2,}", ".", name)  # '..' is refused as a folder name
    return f"{name}_s{seed}"


def label_of(point: list[tuple[str, str]], stem: str) -> str:
    return ",".join(f"{k}={v}" for k, v in point) if point else stem


def build_runs(config: str, sets: list[str], grid_items: list[str], seeds_text: str) -> list[Run]:
    """Every (grid point, seed) run, each config validated by hmasd.config before anything starts.
    Raises SweepInputError (one line) for any bad input."""
    seeds = parse_seeds(seeds_text)
    grid = parse_grid(grid_items)
    try:
        base = read_yaml(config)
        set_keys = [parse_override(s)[0] for s in sets]
    except ConfigError as exc:
        raise SweepInputError(str(exc)) from None
    for key in set_keys + [k for k, _ in grid]:
        if key in OWNED_KEYS:
            raise SweepInputError(f"'{key}' is set by {OWNED_KEYS[key]}: leave it out of --set and --grid")
    for key, _ in grid:
        if key in set_keys:
            raise SweepInputError(f"'{key}' is in both --set and --grid: keep one")
    stem = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(config).stem)
    runs: list[Run] = []
    for point in itertools.product(*[[(k, v) for v in values] for k, values in grid]):
        point = list(point)
        for seed in seeds:
            name = run_name(point, seed, stem)
            overrides = (*sets, *(f"{k}={v}" for k, v in point), f"seed={seed}", f"run_name={name}")
            if not RUN_NAME.fullmatch(name):
                raise SweepInputError(f"grid point {label_of(point, stem)} gives no valid run name ('{name}'): "
                                      "use values made of letters, digits, '.', '_', '+', '-'")
            try:
                cfg = config_from_dict(base, overrides)
            except ConfigError as exc:
                where = f" (grid point {label_of(point, stem)})" if point else ""
                raise SweepInputError(f"{exc}{where}") from None
            runs.append(Run(name, label_of(point, stem), seed, overrides, cfg))
    clash = _first_clash(runs)
    if clash:
        raise SweepInputError(f"grid points {clash[0]} and {clash[1]} give the same run name: use values that "
                              "differ in letters or digits")
    return runs


def _first_clash(runs: list[Run]) -> tuple[str, str] | None:
    seen: dict[str, str] = {}
    for run in runs:
        if run.name in seen and seen[run.name] != run.label:
            return seen[run.name], run.label
        seen[run.name] = run.label
    return None


# -- a run's state on disk ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RunState:
    kind: str  # "finished" | "resume" | "new"
    checkpoint: Path | None = None  # resume: the checkpoint to resume from
    env_steps: int = 0  # finished / resume: env steps reached
    note: str = ""  # what the user should know (an unreadable checkpoint skipped, other settings)


def checkpoints_newest_first(folder: Path, name: str) -> list[Path]:
    """Every checkpoint of the run, newest first. The training writes into `models/<name>/`, and each
    resume into the next free `models/<name>.<k>/`; within a folder `final` is written last and the
    numbered ones are env steps. (The short links in models/ are skipped: a killed run leaves them
    pointing at an older file.)"""
    models = folder / "models"
    found = []
    for sub in models.glob(f"{name}*") if models.is_dir() else []:
        suffix = sub.name[len(name):]
        if sub.is_dir() and (suffix == "" or re.fullmatch(r"\.\d+", suffix)):
            k = int(suffix[1:]) if suffix else 1
            for pth in sub.glob(f"{PREFIX}_*.pth"):
                tag = pth.stem[len(PREFIX) + 1:]
                order = float("inf") if tag == "final" else int(tag) if tag.isdigit() else -1
                found.append(((k, order), pth))
    return [p for _, p in sorted(found, key=lambda item: item[0], reverse=True)]


def run_state(run: Run, out_dir: Path) -> RunState:
    """finished: the done marker (or, should the marker be missing, the newest checkpoint) shows the
    run's total_env_steps reached; resume: some checkpoint exists; new: none does."""
    folder = run.folder(out_dir)
    total = run.cfg.total_env_steps
    note = ""
    try:
        done = json.loads((folder / DONE_MARKER).read_text())
    except (OSError, ValueError):
        done = None
    if isinstance(done, dict) and int(done.get("total_env_steps", -1)) >= total:
        if list(done.get("overrides", run.overrides)) != list(run.overrides):
            note = "finished with other --set values; use another --output-dir to run them"
        return RunState("finished", env_steps=int(done["total_env_steps"]), note=note)
    for path in checkpoints_newest_first(folder, run.name):
        try:
            steps = int(load_checkpoint(path)["counters"]["env_steps"])
        except CheckpointError as exc:  # a damaged file: fall back to the one before it
            note = f"skipped an unusable checkpoint ({exc})"
            continue
        if steps >= total:
            write_done_marker(folder, run.name, total, run.overrides)
            return RunState("finished", env_steps=steps, note=note)
        return RunState("resume", checkpoint=path, env_steps=steps, note=note)
    return RunState("new", note=note)


def write_done_marker(folder: Path, name: str, total_env_steps: int, overrides) -> None:
    """Record that run `name` reached `total_env_steps` with these overrides. Atomic (temp file and
    rename), so a marker is either whole or absent."""
    tmp = folder / (DONE_MARKER + ".tmp")
    tmp.write_text(json.dumps({"run": name, "total_env_steps": total_env_steps, "overrides": list(overrides)}) + "\n")
    tmp.replace(folder / DONE_MARKER)
