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


def info_means(stats: list[dict[str, float]], skip: tuple[str, ...] = ("return", "length")) -> dict[str, float]:
    """The mean over episodes of each numeric info the env reported at their ends (EpisodeInfo.stats),
    `skip` aside; an episode that lacks a key does not count for it."""
    keys = sorted({k for s in stats for k in s} - set(skip))
    return {k: float(np.mean([s[k] for s in stats if k in s])) for k in keys}


@dataclass
class ResetBatch:
    """The first observations of E envs after a reset."""

    obs: np.ndarray  # f32 [E, A, O]
    state: np.ndarray  # f32 [E, S]
    alive: np.ndarray  # bool [E, A]
    action_mask: np.ndarray | None = None  # bool [E, A, M] allowed actions, for envs with masked actions

    @classmethod
    def from_views(cls, v: dict[str, np.ndarray]) -> "ResetBatch":
        """Copy the rows of the arrays named by `env_worker.array_layout` (all E envs) into a record."""
        return cls(obs=v["obs"].copy(), state=v["state"].copy(), alive=v["alive"].copy(),
                   action_mask=v["action_mask"].copy() if "action_mask" in v else None)


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

    @classmethod
    def from_views(cls, v: dict[str, np.ndarray], episodes: list[EpisodeInfo]) -> "StepBatch":
        """Copy the arrays named by `env_worker.array_layout` (all E envs, as the env workers left them
        after a step) into a record. Their final_obs / final_state rows are only valid where an episode
        ended (workers write nothing elsewhere); the other rows are taken from obs / state."""
        obs, state = v["obs"].copy(), v["state"].copy()  # [E, A, O], [E, S]
        terminated, truncated = v["terminated"].copy(), v["truncated"].copy()  # [E]
        final_obs, final_state = obs.copy(), state.copy()
        done = terminated | truncated  # [E]
        if done.any():
            final_obs[done] = v["final_obs"][done]
            final_state[done] = v["final_state"][done]
        return cls(
            obs=obs, state=state, alive=v["alive"].copy(), reward=v["reward"].copy(),
            terminated=terminated, truncated=truncated,
            final_obs=final_obs, final_state=final_state, episodes=episodes,
            action_mask=v["action_mask"].copy() if "action_mask" in v else None,
        )

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
