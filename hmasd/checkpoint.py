"""Checkpoints: atomic writes, `weights_only=True` loads, and clear errors for bad files.

A checkpoint is a plain dict of tensors, numbers, strings, bytes, lists and dicts (no pickled classes):
  format, config (the resolved config dict), env (id, agent count, dims), counters, agent (state_dict),
  optimizers, rng (torch CPU state), collector (tensors/arrays of the state that crosses rollouts),
  envs (each env's pickled state as bytes, for exact resume).
It is written to `<path>.tmp` then renamed over `<path>`, so a crash or Ctrl-C mid-write leaves the
previous file intact; a write that fails removes its `.tmp` and raises CheckpointWriteError.

Where they go: each training process writes into its own folder, `models/<run_name>/` (a resumed or
repeated run name gets `models/<run_name>.2/`, `.3/`, ...), so no run and no resume ever replaces a
checkpoint another one wrote. `models/hmasd_sync_enhanced_<tag>.pth` are symlinks, swapped atomically,
to the latest run's file of that tag, so the short paths keep working for the latest run.
"""
from __future__ import annotations

import itertools
import os
import zipfile
from pathlib import Path

import torch

FORMAT = "hmasd-checkpoint-v1"
PREFIX = "hmasd_sync_enhanced"


class CheckpointError(ValueError):
    """A checkpoint a user pointed at that cannot be used; the message is one line with the fix."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, unwritable folder); the message is one line and
    the previous checkpoint of that name is untouched."""


def checkpoint_path(models_dir: str | Path, tag: int | str) -> Path:
    return Path(models_dir) / f"{PREFIX}_{tag}.pth"


def claim_run_dir(models_dir: str | Path, run_name: str, records_dir: str | Path | None = None) -> Path:
    """The folder this training process writes its checkpoints to: `<run_name>`, or the first free
    `<run_name>.<k>` when another process already saved a checkpoint under that name (a resume, or the
    same run_name given twice). mkdir is the claim, so two processes never get the same folder.

    A name whose config record `<records_dir>/<name>.config.yaml` exists while its folder does not (the
    checkpoints deleted to save space, or not copied to this machine) is an earlier run's too: it is
    skipped, so that the record is not written over.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    for k in itertools.count(1):
        name = run_name if k == 1 else f"{run_name}.{k}"
        folder = models_dir / name
        if records_dir is not None and not folder.exists() and (Path(records_dir) / f"{name}.config.yaml").exists():
            continue
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            if folder.is_dir() and not any(p.is_file() for p in folder.glob("*.pth")):
                return folder  # made by a run that stopped before its first checkpoint
    raise AssertionError("unreachable")


def publish_latest(path: Path, models_dir: Path) -> Path | None:
    """Point `models_dir/<path.name>` at `path` (a relative symlink, swapped in atomically). A regular
    file of that name (written before checkpoints had run folders) is never replaced: returns None."""
    link = models_dir / path.name
    if link.exists() and not link.is_symlink():
        return None
    tmp = models_dir / f".{path.name}.{os.getpid()}.link"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(path, models_dir), tmp)
        os.replace(tmp, link)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointWriteError(f"could not link {link} to {path}: {exc.strerror or exc}") from None
    return link


def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """Write atomically: temp file in the same directory, fsync, rename. On any failure the temp file
    is removed, the previous file at `path` stays as it was, and CheckpointWriteError says why."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            torch.save({"format": FORMAT, **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
        if tmp.is_file():
            tmp.unlink()
        reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0] or type(exc).__name__
        raise CheckpointWriteError(f"could not write checkpoint {path} ({reason})") from None
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load with weights_only=True; raise CheckpointError naming the problem for any bad file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' not found: pass an existing .pth file from models/")
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' is not a file: pass a .pth file, e.g. models/{PREFIX}_final.pth")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        # Our own words, not torch's: its weights_only text advises unsafe loading, which is wrong here.
        if not zipfile.is_zipfile(path):
            what = f"{path.stat().st_size} bytes that are not a torch archive"
        else:
            what = f"a damaged torch archive: {type(exc).__name__}"
        raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated ({what}): use another checkpoint "
                              "from models/") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint '{path}' is not an HMASD checkpoint ({FORMAT}): pass a file written by hmasd-train")
    require_keys(data, path, REQUIRED_KEYS)
    return data


# What evaluation reads, and what a resume reads besides; checked before anything is built, since a
# hand-edited file would otherwise fail later as a bare KeyError.
REQUIRED_KEYS = [("config",), ("env", "num_agents"), ("env", "obs_dim"), ("env", "state_dim"), ("env", "id"),
                 ("counters", "env_steps"), ("counters", "updates"), ("counters", "episodes"), ("agent",)]
RESUME_KEYS = [("optimizers",), ("rng", "torch"), ("rng", "learner")]


def require_keys(data: dict, path: str | Path, keys_list: list[tuple[str, ...]]) -> None:
    for keys in keys_list:
        node = data
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                where = "/".join(keys[: depth + 1])
                raise CheckpointError(f"checkpoint '{path}' lacks '{where}': it is incomplete or was edited, "
                                      "use another checkpoint from models/")
            node = node[key]


def check_compatible(data: dict, path: str | Path, env_id: str, num_agents: int, obs_dim: int, state_dim: int) -> None:
    """Refuse a checkpoint trained on another env or agent count, before any weights are loaded."""
    env = data["env"]
    if env.get("num_agents") != num_agents:
        raise CheckpointError(
            f"checkpoint '{path}' was trained with {env.get('num_agents')} agents but env '{env_id}' has "
            f"{num_agents}: use the checkpoint's env (--set env.id={env.get('id')}) or another checkpoint"
        )
    if env.get("obs_dim") != obs_dim or env.get("state_dim") != state_dim:
        raise CheckpointError(
            f"checkpoint '{path}' was trained on env '{env.get('id')}' (obs {env.get('obs_dim')}, state "
            f"{env.get('state_dim')}) but env '{env_id}' has obs {obs_dim}, state {state_dim}: use a matching env"
        )


def _mismatch_reason(exc: BaseException) -> str:
    """The first concrete line of torch's load_state_dict report (its first line is only a header)."""
    if isinstance(exc, KeyError):
        return f"no state for '{exc.args[0]}'"
    lines = [ln.strip().rstrip(".") for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("size mismatch", "Missing key", "Unexpected key")) or "size of tensor" in ln:
            return ln.replace("copying a param with shape", "checkpoint").replace(
                "the shape in current model is", "config")[:200]
    return lines[-1][:200] if lines else type(exc).__name__


# Config keys that change the networks' shapes: only these can make weights misfit.
SHAPE_KEYS = ("algo", "model.", "hmasd.n_team_skills", "hmasd.n_agent_skills")


def load_weights(data: dict, path: str | Path, agent, optimizers: dict | None = None,
                 overrides: list[str] | tuple[str, ...] = ()) -> None:
    """Load the agent's (and optionally the optimisers') state; a checkpoint whose shapes do not fit
    the config (other algo, model size or skill counts) is one CheckpointError naming the first misfit."""
    try:
        agent.load_state_dict(data["agent"])
        for name, optim in (optimizers or {}).items():
            optim.load_state_dict(data["optimizers"][name])
    except (RuntimeError, KeyError, ValueError) as exc:
        shaping = [o for o in overrides if o.split("=", 1)[0].strip().startswith(SHAPE_KEYS)]
        if shaping:
            fix = f"drop the --set overrides that change the networks ({', '.join(shaping)})"
        else:
            fix = "leave --config out so the checkpoint's own config is used, or pick a checkpoint of this config"
        raise CheckpointError(f"checkpoint '{path}' does not fit this config ({_mismatch_reason(exc)}): {fix}") from None
