"""The rollout record and the Python side of its per-step schema.

`STEP_FIELDS` and `OUTPUT_FIELDS` are the one Python table of what the fused buffer stores per step
(name, dtype, axes); the NumPy oracle (hmasd/buffer.py) builds its storage, checks and properties
from them, and `Rollout` exposes them by name. The C++ side has its own one list
(csrc/rollout_fields.hpp); tests/test_rollout_schema.py holds the two lists, the C++ module and the
`.pyi` stub equal.

Axes, named once: T steps, E envs, A agents, O obs_dim, S state_dim, D action_dim, M mask_dim,
A+1 high-level heads (0 = team skill Z, 1+i = agent i's skill z^i), H hidden size. Every stored
field is [T, *axes]; `add` takes one step, [*axes].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from hmasd.records import EpisodeInfo

if TYPE_CHECKING:
    from hmasd.buffer import AnyRolloutBuffer


class Field(NamedTuple):
    """One array of the buffer: its name, dtype and per-step axes (without the leading T)."""

    name: str
    dtype: type
    axes: tuple[str, ...]
    optional: bool = False  # only stored when M > 0 (envs with masked actions); None otherwise

    @property
    def label(self) -> str:
        """The axes as error messages and shape comments write them, e.g. "[E, A, O]"."""
        return "[" + ", ".join(self.axes) + "]"

    def shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        """The per-step shape for `sizes` ({"E": .., "A": .., "O": .., "S": .., "D": .., "M": ..})."""
        return tuple(sizes["A"] + 1 if axis == "A+1" else sizes[axis] for axis in self.axes)


f32, u8, i32, i64 = np.float32, np.uint8, np.int32, np.int64

# What `add` stores at step t (contracts: hmasd/buffer.py). Order = the order of `add`'s arguments.
STEP_FIELDS: tuple[Field, ...] = (
    Field("obs", f32, ("E", "A", "O")),
    Field("state", f32, ("E", "S")),
    Field("actions", f32, ("E", "A", "D")),
    Field("log_probs", f32, ("E", "A")),
    Field("values", f32, ("E", "A")),
    Field("reward", f32, ("E",)),
    Field("terminated", u8, ("E",)),
    Field("truncated", u8, ("E",)),
    Field("bootstrap_values", f32, ("E", "A")),
    Field("alive", u8, ("E", "A")),
    Field("team_skill", i64, ("E",)),
    Field("agent_skill", i64, ("E", "A")),
    Field("assign", u8, ("E",)),
    Field("hl_log_probs", f32, ("E", "A+1")),
    Field("hl_values", f32, ("E", "A+1")),
    Field("hl_bootstrap_values", f32, ("E", "A+1")),
    Field("action_mask", u8, ("E", "A", "M"), optional=True),
)

# What `finalize` computes, readable only after it.
OUTPUT_FIELDS: tuple[Field, ...] = (
    Field("rewards", f32, ("E", "A")),
    Field("advantages", f32, ("E", "A")),
    Field("returns", f32, ("E", "A")),
    Field("hl_rewards", f32, ("E",)),
    Field("segment_lengths", i32, ("E",)),
    Field("hl_dones", u8, ("E",)),
    Field("hl_advantages", f32, ("E", "A+1")),
    Field("hl_returns", f32, ("E", "A+1")),
)

STEP_FIELD_NAMES = tuple(f.name for f in STEP_FIELDS)


@dataclass
class Rollout:
    """Everything one collection hands to the learner: the filled buffer (the per-step fields above,
    read by name on the record: `ro.obs`, and after `finalize` `ro.advantages`) and what the buffer
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
