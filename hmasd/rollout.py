"""The rollout record: everything one collection hands to the learner, read by field name.

The per-step fields it exposes are those of the buffer's schema (hmasd/rollout_fields.py). Axes as
there, and H hidden size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hmasd.buffer import AnyRolloutBuffer
from hmasd.records import EpisodeInfo
from hmasd.rollout_fields import OUTPUT_FIELDS, STEP_FIELDS


@dataclass
class Rollout:
    """Everything one collection hands to the learner: the filled buffer (the per-step fields of
    hmasd/rollout_fields.py, read by name on the record: `ro.obs`, and after `finalize` `ro.advantages`) and what the buffer
    does not hold. The learner and evaluation read a rollout only through this record."""

    buffer: AnyRolloutBuffer  # full, not yet finalised; overwritten by the next collection
    next_state: np.ndarray  # f32 [T, E, S] s_{t+1}: the final state where the episode ended at t
    next_obs: np.ndarray  # f32 [T, E, A, O]
    starts: np.ndarray  # bool [T, E]: step t is the first of an episode (GRU reset)
    actor_h: torch.Tensor  # [T, E*A, H] actor hidden state before each step (before any reset)
    critic_h: torch.Tensor  # [T, E*A, H]
    last_values: np.ndarray  # f32 [E, A] V_l of the state after the last step (real scale)
    last_hl_values: np.ndarray  # f32 [E, A+1] V_h of the state after the last step (real scale)
    episodes: list[EpisodeInfo] = field(default_factory=list)
    policy_version: int = 0  # the version every sample was collected under
    versions: np.ndarray | None = None  # i64 [T, E] the version stamped at each step
    env_steps_per_env: np.ndarray | None = None  # i64 [E] samples each env contributed
    collect_seconds: float = 0.0

    @property
    def size(self) -> int:
        """Steps stored (T once collected)."""
        return self.buffer.size

    @property
    def masked(self) -> bool:
        """The env's actions are masked: `action_mask` holds the mask each action was drawn under."""
        return self.buffer.mask_dim > 0

    def finalize(self, **kwargs) -> None:
        """The buffer's finalize (reward mixing and GAE, hmasd/buffer.py) on this rollout."""
        self.buffer.finalize(**kwargs)


def _buffer_field(name: str, axes: str) -> property:
    return property(lambda self: getattr(self.buffer, name), doc=f"{axes}: the buffer's read-only view")


for _f in STEP_FIELDS + OUTPUT_FIELDS:
    setattr(Rollout, _f.name, _buffer_field(_f.name, "[T, " + _f.label[1:]))
del _f
