"""The Python side of the rollout buffer's per-step schema: the one table of its fields.

`STEP_FIELDS` and `OUTPUT_FIELDS` list what the fused buffer stores per step (name, dtype, axes); the
NumPy oracle (hmasd/buffer.py) builds its storage, checks and properties from them, and the rollout
record (hmasd/rollout.py) exposes them by name. The C++ side has its own one list
(csrc/rollout_fields.hpp); tests/test_rollout_schema.py holds the two lists, the C++ module and the
`.pyi` stub equal.

Axes, named once: T steps, E envs, A agents, O obs_dim, S state_dim, D action_dim, M mask_dim,
A+1 high-level heads (0 = team skill Z, 1+i = agent i's skill z^i). Every stored field is
[T, *axes]; `add` takes one step, [*axes].
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


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
