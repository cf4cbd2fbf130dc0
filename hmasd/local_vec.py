"""E environments stepped in this process, with the same face as the orchestrator's VecEnv.

Evaluation uses it: a few episodes do not pay for worker start-up, and rendering needs the env
objects at hand. Env i is seeded with seed + i at the first reset, as in the orchestrator.
"""
from __future__ import annotations

import numpy as np

from hmasd.records import EpisodeInfo, ResetBatch, StepBatch


class LocalVecEnv:
    def __init__(self, env_id: str, env_kwargs: dict | None = None, num_envs: int = 1, seed: int = 0,
                 mask_in_obs: bool = False) -> None:
        from hmasd_envs import make_env

        self.envs = [make_env(env_id, mask_in_obs, **(env_kwargs or {})) for _ in range(num_envs)]
        self.spec = self.envs[0].spec
        self.seed = seed

    def reset(self) -> ResetBatch:
        first = [env.reset(seed=self.seed + i) for i, env in enumerate(self.envs)]
        obs, state, alive = (np.stack(x) for x in zip(*first))
        return ResetBatch(obs=obs, state=state, alive=alive, action_mask=self._masks())

    def step(self, actions: np.ndarray) -> StepBatch:
        steps = [env.step(a) for env, a in zip(self.envs, actions)]
        episodes = [EpisodeInfo(i, dict(s.episode)) for i, s in enumerate(steps) if s.episode is not None]
        return StepBatch(
            obs=np.stack([s.obs for s in steps]), state=np.stack([s.state for s in steps]),
            alive=np.stack([s.alive for s in steps]),
            reward=np.array([s.reward for s in steps], dtype=np.float32),
            terminated=np.array([s.terminated for s in steps]), truncated=np.array([s.truncated for s in steps]),
            final_obs=np.stack([s.final_obs for s in steps]), final_state=np.stack([s.final_state for s in steps]),
            episodes=episodes, action_mask=self._masks(),
        )

    def _masks(self) -> np.ndarray | None:
        """bool [E, A, M] for the current observations, or None when the actions are not masked."""
        return np.stack([env.action_mask for env in self.envs]) if self.spec.masked else None

    def render(self, env_index: int = 0):
        return self.envs[env_index].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()
