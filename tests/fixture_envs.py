"""Small PettingZoo envs for tests, built through the "module:factory" env-id form.

`make_faulty(...)` returns a two-agent counter env that misbehaves on command: it raises or hangs
at a given step, optionally only in the env whose first reset got `target_seed` (with a VecEnv,
env i gets seed + i, so this picks one env and hence one worker).
"""
from __future__ import annotations

import time

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class FaultyEnv(ParallelEnv):
    metadata = {"name": "faulty_v0", "render_modes": ["rgb_array"]}

    def __init__(
        self,
        crash_at: int | None = None,
        hang_at: int | None = None,
        target_seed: int | None = None,
        episode_length: int = 5,
        length_by_seed: bool = False,
        render_mode: str | None = None,
        reset_crash_at: int | None = None,
    ):
        self.render_mode = render_mode
        self.possible_agents = ["a_0", "a_1"]
        self.agents = list(self.possible_agents)
        self.crash_at, self.hang_at = crash_at, hang_at
        self.reset_crash_at = reset_crash_at  # raise in the n-th reset from the seeded one (n > 1: an auto-reset)
        self.resets = 0
        self.target_seed = target_seed
        self.episode_length = episode_length
        self.length_by_seed = length_by_seed  # episodes last 2 + first_seed % 4 steps
        self.first_seed: int | None = None
        self.t = 0
        self.state_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def observation_space(self, agent):
        return spaces.Box(-np.inf, np.inf, (3,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(3)

    def _obs(self, actions=None):
        seed = -1.0 if self.first_seed is None else float(self.first_seed)
        return {
            a: np.array([seed, self.t, 0 if actions is None else actions[a]], np.float32)
            for a in self.agents
        }

    def state(self):
        return np.array([self.t, -1.0 if self.first_seed is None else self.first_seed], np.float32)

    def reset(self, seed=None, options=None):
        if seed is not None and self.first_seed is None:
            self.first_seed = seed
        self.resets += self.first_seed is not None  # counted from the seeded reset: the adapter's probe is not one
        if (self.target_seed is None or self.first_seed == self.target_seed) and self.resets == self.reset_crash_at:
            raise RuntimeError(f"fixture env crashed in reset {self.resets}")
        self.agents = list(self.possible_agents)
        self.t = 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        targeted = self.target_seed is None or self.first_seed == self.target_seed
        if targeted and self.t == self.crash_at:
            raise RuntimeError(f"fixture env crashed at step {self.t}")
        if targeted and self.t == self.hang_at:
            while True:  # a stuck simulator: only a signal gets us out
                time.sleep(0.05)
        obs = self._obs(actions)
        length = self.episode_length
        if self.length_by_seed and self.first_seed is not None:
            length = 2 + self.first_seed % 4
        done = self.t >= length
        rewards = {a: 1.0 for a in self.agents}
        terms = {a: False for a in self.agents}
        truncs = {a: done for a in self.agents}
        infos = {a: {"success": 1.0} if done else {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def render(self):
        # A tiny "frame" that says which env drew it.
        return np.full((2, 2, 3), 0 if self.first_seed is None else self.first_seed % 256, np.uint8)

    def close(self):
        pass


def make_faulty(**kwargs) -> FaultyEnv:
    return FaultyEnv(**kwargs)


def make_unbuildable(**kwargs) -> FaultyEnv:
    """A factory that fails the way a broken simulator install would."""
    raise RuntimeError("simulator library missing: libfake.so")


def make_not_an_env(**kwargs) -> dict:
    """A factory that returns something that is not a PettingZoo env."""
    return {"agents": ["a_0"]}
