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
SUPPORTED_ACT = "supported action spaces: Discrete, or Box, the same for every agent"


@dataclass(frozen=True)
class ObsFlattener:
    """Turns one agent's observation into a flat float32 vector of length `size`.

    `keys` is None for a Box space, else the sorted keys of the Box entries of a Dict space
    (the other entries, e.g. masks given as MultiBinary, are dropped).
    """

    size: int
    keys: tuple[str, ...] | None

    def __call__(self, obs: Any) -> np.ndarray:
        if self.keys is None:
            flat = np.asarray(obs, dtype=np.float32).reshape(-1)
        else:
            parts = [np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in self.keys]
            flat = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if flat.shape[0] != self.size:
            raise ValueError(f"observation has {flat.shape[0]} values, its space promised {self.size}")
        return flat


def obs_flattener(space: spaces.Space, env_id: str, agent: str) -> ObsFlattener:
    """Build the flattener for `agent`'s observation space; raises EnvError if unsupported."""
    if isinstance(space, spaces.Box):
        return ObsFlattener(int(np.prod(space.shape, dtype=np.int64)), None)
    if isinstance(space, spaces.Dict):
        keys = tuple(sorted(k for k, s in space.spaces.items() if isinstance(s, spaces.Box)))
        if keys:
            size = sum(int(np.prod(space.spaces[k].shape, dtype=np.int64)) for k in keys)
            return ObsFlattener(size, keys)
    raise EnvError(
        f"env '{env_id}': agent '{agent}' has observation space {space}; {SUPPORTED_OBS}"
    )


@dataclass(frozen=True)
class ActionLayout:
    """The one action space shared by all agents, in the adapter's terms."""

    kind: str  # "discrete" | "box"
    n_actions: int  # discrete: number of actions; box: 0
    dim: int  # box: flat size; discrete: 1
    start: int  # discrete: the space's first action (actions sent are start + index)
    shape: tuple[int, ...]  # box: the space's own shape, to un-flatten actions
    low: np.ndarray | None  # box: flat float32 bounds
    high: np.ndarray | None


def _same_space(a: spaces.Space, b: spaces.Space) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Discrete):
        return int(a.n) == int(b.n) and int(a.start) == int(b.start)
    if isinstance(a, spaces.Box):
        return (
            a.shape == b.shape
            and np.array_equal(a.low, b.low)
            and np.array_equal(a.high, b.high)
        )
    return False


def action_layout(action_spaces: dict[str, spaces.Space], env_id: str) -> ActionLayout:
    """Check that every agent has the same Discrete or Box action space; raise EnvError if not."""
    agents = list(action_spaces)
    first_agent = agents[0]
    first = action_spaces[first_agent]
    if not isinstance(first, (spaces.Discrete, spaces.Box)):
        raise EnvError(
            f"env '{env_id}': agent '{first_agent}' has action space {first}; {SUPPORTED_ACT}"
        )
    for agent in agents[1:]:
        if not _same_space(first, action_spaces[agent]):
            raise EnvError(
                f"env '{env_id}': agent '{agent}' has action space {action_spaces[agent]} but agent "
                f"'{first_agent}' has {first}; {SUPPORTED_ACT}"
            )
    if isinstance(first, spaces.Discrete):
        return ActionLayout("discrete", int(first.n), 1, int(first.start), (), None, None)
    low = np.asarray(first.low, dtype=np.float32).reshape(-1)
    high = np.asarray(first.high, dtype=np.float32).reshape(-1)
    return ActionLayout("box", 0, int(low.shape[0]), 0, tuple(first.shape), low, high)
