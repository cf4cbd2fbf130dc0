"""Checkpoints: atomic writes, `weights_only=True` loads, and clear errors for bad files.

A checkpoint is a plain dict of tensors, numbers, strings, bytes, lists and dicts (no pickled classes):
  format, config (the resolved config dict), env (id, agent count, dims), counters, agent (state_dict),
  optimizers, rng (torch CPU state), collector (tensors/arrays of the state that crosses rollouts),
  envs (each env's pickled state as bytes, for exact resume).
It is written to `<path>.tmp` then renamed over `<path>`, so a crash or Ctrl-C mid-write leaves the
previous file intact.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT = "hmasd-checkpoint-v1"
PREFIX = "hmasd_sync_enhanced"


class CheckpointError(ValueError):
    """A checkpoint a user pointed at that cannot be used; the message is one line with the fix."""


def checkpoint_path(models_dir: str | Path, tag: int | str) -> Path:
    return Path(models_dir) / f"{PREFIX}_{tag}.pth"


def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """Write atomically: temp file in the same directory, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save({"format": FORMAT, **payload}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
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
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint '{path}' is corrupt or truncated ({reason}): use another checkpoint from models/"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint '{path}' is not an HMASD checkpoint ({FORMAT}): pass a file written by hmasd-train")
    for key in ("config", "env", "counters", "agent"):
        if key not in data:
            raise CheckpointError(f"checkpoint '{path}' lacks '{key}': it is incomplete, use another checkpoint")
    return data


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


def load_weights(data: dict, path: str | Path, agent, optimizers: dict | None = None) -> None:
    """Load the agent's (and optionally the optimisers') state; a checkpoint whose shapes do not fit
    the config (other algo, model size or skill counts given with --set) is one CheckpointError."""
    try:
        agent.load_state_dict(data["agent"])
        for name, optim in (optimizers or {}).items():
            optim.load_state_dict(data["optimizers"][name])
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint '{path}' does not fit this config ({first}): drop --set overrides "
                              "of algo, model.* and the hmasd skill counts") from None
