"""Flattening PettingZoo observation and action spaces to fixed-size float32 vectors.

The adapter supports exactly these spaces; anything else is an `EnvError` raised here, so the
list of what is supported lives in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .errors import EnvError

SUPPORTED_OBS = "supported observation spaces: Box, or Dict with at least one Box entry"
SUPPORTED_ACT = (
    "supported action spaces: Discrete for every agent (counts may differ), or Box for every agent "
    "(shapes and bounds may differ)"
)
MASK_KEY = "action_mask"  # PettingZoo's name, in a Dict observation or in an agent's infos


@dataclass(frozen=True)
class ObsFlattener:
    """Turns one agent's observation into a flat float32 vector of length `size`.

    `keys` is None for a Box space, else the sorted keys of the Box entries of a Dict space
    (the other entries, e.g. masks given as MultiBinary, are dropped). `has_mask`: the Dict
    space has an "action_mask" entry, read by `mask`; it is left out of `keys` unless the
    adapter was asked to show the mask to the networks as well.
    """

    size: int
    keys: tuple[str, ...] | None
    has_mask: bool = False

    def __call__(self, obs: Any) -> np.ndarray:
        if self.keys is None:
            flat = np.asarray(obs, dtype=np.float32).reshape(-1)
        else:
            parts = [np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in self.keys]
            flat = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if flat.shape[0] != self.size:
            raise ValueError(f"observation has {flat.shape[0]} values, its space promised {self.size}")
        return flat

    def mask(self, obs: Any) -> np.ndarray | None:
        """The observation's action mask as a flat bool vector, or None if its space has none."""
        if not self.has_mask:
            return None
        return np.asarray(obs[MASK_KEY]).reshape(-1).astype(bool)


def obs_flattener(space: spaces.Space, env_id: str, agent: str, mask_in_obs: bool = False) -> ObsFlattener:
    """Build the flattener for `agent`'s observation space; raises EnvError if unsupported.

    A Dict entry "action_mask" is the action mask, not an observation: it is dropped from the
    flat vector unless `mask_in_obs` (config env.action_mask_in_obs) asks for both.
    """
    if isinstance(space, spaces.Box):
        return ObsFlattener(int(np.prod(space.shape, dtype=np.int64)), None)
    if isinstance(space, spaces.Dict):
        has_mask = MASK_KEY in space.spaces
        keys = tuple(sorted(
            k for k, s in space.spaces.items()
            if isinstance(s, spaces.Box) and (k != MASK_KEY or mask_in_obs)
        ))
        if keys:
            size = sum(int(np.prod(space.spaces[k].shape, dtype=np.int64)) for k in keys)
            return ObsFlattener(size, keys, has_mask)
    raise EnvError(
        f"env '{env_id}': agent '{agent}' has observation space {space}; {SUPPORTED_OBS}"
    )


@dataclass(frozen=True)
class ActionLayout:
    """The agents' action spaces in the adapter's terms: one kind, padded to one width.

    Agents may differ in their Discrete counts or Box shapes and bounds. The trainer sees the
    widest: `n_actions` (discrete) or `dim` (box) columns; `valid` [A, n_actions or dim] marks each
    agent's own columns, so that a padded action is masked out (discrete) and a padded
    dimension is left out of the log-probability (box).
    """

    kind: str  # "discrete" | "box"
    n_actions: int  # discrete: the largest number of actions; box: 0
    dim: int  # box: the largest flat size; discrete: 1
    starts: tuple[int, ...]  # discrete: each agent's first action (actions sent are start + index)
    shapes: tuple[tuple[int, ...], ...]  # box: each agent's own shape, to un-flatten its action
    low: np.ndarray | None  # box: float32 [A, dim] per-agent bounds, 0 on padded dimensions
    high: np.ndarray | None
    valid: np.ndarray  # bool [A, n_actions] (discrete) or [A, dim] (box)

    @property
    def padded(self) -> bool:
        """Agents differ in their action counts or dimensions."""
        return not bool(self.valid.all())

    @property
    def sizes(self) -> tuple[int, ...]:
        """Each agent's own number of actions (discrete) or flat dimensions (box)."""
        return tuple(int(n) for n in self.valid.sum(axis=1))


def action_layout(action_spaces: dict[str, spaces.Space], env_id: str) -> ActionLayout:
    """Pad every agent's Discrete or Box action space to the widest; raise EnvError if an agent has
    another kind of space, or if Discrete and Box agents are mixed."""
    agents = list(action_spaces)
    for agent in agents:
        space = action_spaces[agent]
        if not isinstance(space, (spaces.Discrete, spaces.Box)):
            raise EnvError(f"env '{env_id}': agent '{agent}' has action space {space}; {SUPPORTED_ACT}")
    first = agents[0]
    for agent in agents[1:]:
        if type(action_spaces[agent]) is not type(action_spaces[first]):
            raise EnvError(
                f"env '{env_id}': agent '{first}' has {action_spaces[first]} but agent '{agent}' has "
                f"{action_spaces[agent]}; the discoverer is one network shared by all agents, with one "
                "action head, so every agent needs Discrete actions or every agent Box actions"
            )
    num = len(agents)
    if isinstance(action_spaces[first], spaces.Discrete):
        counts = [int(action_spaces[a].n) for a in agents]
        width = max(counts)
        valid = np.arange(width)[None, :] < np.asarray(counts)[:, None]  # [A, N]
        starts = tuple(int(action_spaces[a].start) for a in agents)
        return ActionLayout("discrete", width, 1, starts, ((),) * num, None, None, valid)
    lows = [np.asarray(action_spaces[a].low, dtype=np.float32).reshape(-1) for a in agents]
    highs = [np.asarray(action_spaces[a].high, dtype=np.float32).reshape(-1) for a in agents]
    width = max(x.shape[0] for x in lows)
    low = np.zeros((num, width), np.float32)
    high = np.zeros((num, width), np.float32)
    valid = np.zeros((num, width), bool)
    for i, (lo, hi) in enumerate(zip(lows, highs)):
        low[i, : lo.shape[0]], high[i, : hi.shape[0]], valid[i, : lo.shape[0]] = lo, hi, True
    shapes = tuple(tuple(action_spaces[a].shape) for a in agents)
    return ActionLayout("box", 0, width, (0,) * num, shapes, low, high, valid)
