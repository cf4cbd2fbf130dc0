"""Record types shared between the stages of the pipeline (numpy only, no torch), the VecEnv protocol
every env backend implements, and the one error an env failure raises on any backend.

Shapes are named once: E envs, A agents, O observation size, S global-state size.
Every array is owned by the record (never a view on memory that the producer reuses), so a
record stays valid after the next step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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


class EnvFailure(RuntimeError):
    """An env raised, or the process or actor hosting it crashed, died or hung, on any backend. The
    backend has shut its envs down: build a new one to go on (hmasd/restarts.py does).

    Attributes: `summary` (the one line, without the traceback), `worker` (index of the worker that
    failed; 0 for the in-process backend), `envs` (range of the env indices it hosts) and
    `worker_traceback` (the traceback text it sent, or None when it died or hung without one).
    """

    def __init__(self, message: str, worker: int, envs: range, worker_traceback: str | None = None):
        self.summary = message
        if worker_traceback:
            message = f"{message}\n--- worker traceback ---\n{worker_traceback.rstrip()}"
        super().__init__(message)
        self.worker = worker
        self.envs = envs
        self.worker_traceback = worker_traceback


@runtime_checkable
class VecEnv(Protocol):
    """E envs of one kind stepped synchronously: what the collector and the trainer need of a backend
    (subprocess workers: hmasd.orchestrator; in-process: hmasd.local_vec; Ray actors: hmasd.ray_vec;
    hmasd.backends.make_vec_env picks one from the config).

    Contract: env i is seeded with seed + i at the first `reset()`; envs auto-reset (StepBatch says
    how). `step` raises ValueError for actions of the wrong shape or kind; any env fault raises
    EnvFailure. `get_env_states` raises hmasd_envs.snapshot.SnapshotError (the envs go on) when an env
    cannot be snapshotted; `set_env_states` replaces every env with such snapshots (no reset needed
    after). `close` is idempotent.
    """

    spec: Any  # hmasd_envs EnvSpec: num_agents, obs_dim, state_dim, action kind and sizes, mask_dim
    num_envs: int

    def reset(self) -> ResetBatch: ...

    def step(self, actions: np.ndarray) -> StepBatch:
        """`actions`: int [E, A] (discrete) or float [E, A, D] (box)."""
        ...

    def get_env_states(self) -> list[bytes]: ...

    def set_env_states(self, states: list[bytes]) -> None: ...

    def render(self, env_index: int = 0) -> Any: ...

    def close(self) -> None: ...
