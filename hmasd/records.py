"""Record types shared between the stages of the pipeline (numpy only, no torch).

Shapes are named once: E envs, A agents, O observation size, S global-state size.
Every array is owned by the record (never a view on memory that the producer reuses), so a
record stays valid after the next step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class EpisodeInfo:
    """One finished episode: the index of the env it ran in and its statistics.

    `stats` always holds "return" (team return) and "length" (steps); numeric infos that the env
    reports at the end of an episode (e.g. "success") are added under their own names.
    """

    env_index: int
    stats: dict[str, float]


@dataclass
class ResetBatch:
    """The first observations of E envs after a reset."""

    obs: np.ndarray  # f32 [E, A, O]
    state: np.ndarray  # f32 [E, S]
    alive: np.ndarray  # bool [E, A]
    action_mask: np.ndarray | None = None  # bool [E, A, M] allowed actions, for envs with masked actions


@dataclass
class StepBatch:
    """One synchronous step over E envs.

    Envs auto-reset: where `terminated | truncated`, `obs`, `state` and `alive` already belong to
    the NEW episode, and `final_obs` / `final_state` hold the last observation and state of the
    episode that ended (for the truncation bootstrap). Elsewhere `final_obs == obs` and
    `final_state == state`. `episodes` lists the episodes that ended at this step, in env order.
    `action_mask` (envs with masked actions, else None) belongs to `obs`: the actions allowed next.
    """

    obs: np.ndarray  # f32 [E, A, O]
    state: np.ndarray  # f32 [E, S]
    alive: np.ndarray  # bool [E, A]
    reward: np.ndarray  # f32 [E] team reward
    terminated: np.ndarray  # bool [E]
    truncated: np.ndarray  # bool [E]
    final_obs: np.ndarray  # f32 [E, A, O]
    final_state: np.ndarray  # f32 [E, S]
    episodes: list[EpisodeInfo] = field(default_factory=list)
    action_mask: np.ndarray | None = None  # bool [E, A, M]

    @property
    def done(self) -> np.ndarray:
        """bool [E]: the episode ended at this step (terminated or truncated)."""
        return self.terminated | self.truncated
