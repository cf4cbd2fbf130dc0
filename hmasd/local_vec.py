"""E environments stepped in this process: the VecEnv protocol (hmasd/records.py) without workers.

Evaluation uses it (a few episodes do not pay for worker start-up, and rendering needs the env objects
at hand), and so does `backend: local` (a debugger reaches the env code). It keeps the subprocess
backend's contract, so that the two give bit-identical rollouts for a seed (tests/test_backends.py):
env i is seeded with seed + i at the first reset only, every array is cast into the dtype of the
workers' shared memory, actions are checked the same way, an env that raises in reset or step becomes
EnvFailure (worker 0, every env) and closes the envs, and snapshots are the env worker's bytes.
"""
from __future__ import annotations

import traceback
from typing import Any

import numpy as np

from hmasd.env_worker import array_layout, copy_actions, one_line
from hmasd.records import EnvFailure, EpisodeInfo, ResetBatch, StepBatch


class LocalVecEnv:
    def __init__(self, env_id: str, env_kwargs: dict | None = None, num_envs: int = 1, seed: int = 0,
                 mask_in_obs: bool = False) -> None:
        from hmasd_envs import make_env

        if num_envs < 1:
            raise ValueError(f"num_envs ({num_envs}) must be at least 1")
        self.envs: list = []
        try:
            for _ in range(num_envs):
                self.envs.append(make_env(env_id, mask_in_obs, **(env_kwargs or {})))
        except BaseException:
            self.close()
            raise  # hmasd_envs.EnvError (one line) for a bad env id or arguments, as from the workers
        self.spec = self.envs[0].spec
        self.num_envs = num_envs
        self.seed = seed
        self.seeded = False  # only the first reset is seeded: the run then follows from `seed`
        self.closed = False
        self._needs_reset = True
        self._failure: EnvFailure | None = None
        s = self.spec
        # The dtypes and shapes of the workers' shared arrays, so that both backends hand out the same bits.
        self._layout = {name: (shape, dtype) for name, (_, shape, dtype) in array_layout(
            num_envs, s.num_agents, s.obs_dim, s.state_dim, s.action_kind, s.action_dim, s.mask_dim)[0].items()}

    def _empty(self, name: str) -> np.ndarray:
        shape, dtype = self._layout[name]
        return np.zeros(shape, dtype)

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self.closed:
            raise RuntimeError("VecEnv is closed")

    def _fail(self, command: str, exc: Exception) -> EnvFailure:
        """The env fault as EnvFailure, after closing every env (its state cannot be trusted)."""
        span = "0" if self.num_envs == 1 else f"0-{self.num_envs - 1}"
        self._failure = EnvFailure(f"env {span} (worker 0) raised during {command}: {one_line(exc)}", 0,
                                   range(self.num_envs), traceback.format_exc())
        self.close()
        return self._failure

    def reset(self) -> ResetBatch:
        """Reset every env (seeded with seed + i the first time). Raises EnvFailure."""
        self._check_usable()
        obs, state, alive = self._empty("obs"), self._empty("state"), self._empty("alive")
        try:
            for i, env in enumerate(self.envs):
                obs[i], state[i], alive[i] = env.reset(seed=None if self.seeded else self.seed + i)
        except Exception as exc:
            raise self._fail("reset", exc) from exc
        self.seeded, self._needs_reset = True, False
        return ResetBatch(obs=obs, state=state, alive=alive, action_mask=self._masks())

    def step(self, actions: np.ndarray) -> StepBatch:
        """Step every env once. `actions`: int [E, A] (discrete) or float [E, A, D] (box).

        Raises ValueError for actions of the wrong shape or kind, RuntimeError before the first reset()
        or after close(), EnvFailure when an env raises."""
        self._check_usable()
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        dst = self._empty("actions")
        copy_actions(actions, dst)
        out = {name: self._empty(name) for name in ("obs", "state", "alive", "reward", "terminated", "truncated")}
        episodes = []
        try:
            steps = [env.step(dst[i]) for i, env in enumerate(self.envs)]
        except Exception as exc:
            raise self._fail("step", exc) from exc
        for i, r in enumerate(steps):
            out["obs"][i], out["state"][i], out["alive"][i] = r.obs, r.state, r.alive
            out["reward"][i], out["terminated"][i], out["truncated"][i] = r.reward, r.terminated, r.truncated
            if (r.terminated or r.truncated) and r.episode is not None:
                episodes.append(EpisodeInfo(i, dict(r.episode)))
        final_obs, final_state = out["obs"].copy(), out["state"].copy()
        for i, r in enumerate(steps):
            if r.terminated or r.truncated:
                final_obs[i], final_state[i] = r.final_obs, r.final_state
        return StepBatch(**out, final_obs=final_obs, final_state=final_state, episodes=episodes,
                         action_mask=self._masks())

    def _masks(self) -> np.ndarray | None:
        """bool [E, A, M] for the current observations, or None when the actions are not masked."""
        if not self.spec.masked:
            return None
        masks = self._empty("action_mask")
        for i, env in enumerate(self.envs):
            masks[i] = env.action_mask
        return masks

    def get_env_states(self) -> list[bytes]:
        """Snapshot every env's full live state (hmasd_envs.snapshot, the env worker's bytes), in env
        order. Raises SnapshotError (the envs go on) when an env's state cannot be snapshotted."""
        from hmasd_envs.snapshot import snapshot

        self._check_usable()
        return [snapshot(env) for env in self.envs]

    def set_env_states(self, states: list[bytes]) -> None:
        """Replace every env with a snapshot from `get_env_states` (same env count); no reset needed after."""
        from hmasd_envs.snapshot import restore

        self._check_usable()
        if len(states) != self.num_envs:
            raise ValueError(f"got {len(states)} env states for {self.num_envs} envs")
        restored = [restore(data) for data in states]
        for env in self.envs:
            env.close()
        self.envs = restored
        self.seeded, self._needs_reset = True, False

    def render(self, env_index: int = 0) -> Any:
        """Whatever env `env_index`'s render() returns (e.g. an RGB array, or None)."""
        self._check_usable()
        if not 0 <= env_index < self.num_envs:
            raise ValueError(f"env_index ({env_index}) must be in [0, {self.num_envs})")
        return self.envs[env_index].render()

    def close(self) -> None:
        """Close every env. Idempotent."""
        if getattr(self, "closed", False):
            return
        self.closed = True
        for env in self.envs:
            try:
                env.close()
            except Exception:
                pass  # closing is best effort: an env that failed may not close cleanly

    def __enter__(self) -> "LocalVecEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
