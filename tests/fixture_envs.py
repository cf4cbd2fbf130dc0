"""Small PettingZoo envs for tests, built through the "module:factory" env-id form.

`make_faulty(...)` returns a two-agent counter env that misbehaves on command: it raises or hangs
at a given step, optionally only in the env whose first reset got `target_seed` (with a VecEnv,
env i gets seed + i, so this picks one env and hence one worker).

`make_masked(...)` and `make_uneven_box(...)` check the adapter's contract from the env's side: their
`step` raises when an agent gets an action outside its own space, an action its mask forbids, or
an action while it is no longer in `agents`, so a training run through them proves none was sent.
"""
from __future__ import annotations

import threading
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
        crash_at_reset: int | None = None,
        c_object: bool = False,
    ):
        self.render_mode = render_mode
        self.crash_at_reset = crash_at_reset  # raise in the n-th reset (1: the adapter's probe reset)
        self.all_resets = 0
        # State that no pickler can copy, like a simulator's C object (pymunk, Box2D)
        self.handle = threading.Lock() if c_object else None
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
        self.all_resets += 1
        if self.all_resets == self.crash_at_reset:
            raise RuntimeError(f"fixture env crashed in reset {self.all_resets}")
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


def make_missing_dependency(**kwargs):
    """A factory whose simulator package is not installed."""
    raise ModuleNotFoundError("No module named 'fakesim'", name="fakesim")


def make_not_an_env(**kwargs) -> dict:
    """A factory that returns something that is not a PettingZoo env."""
    return {"agents": ["a_0"]}


def make_unsupported(**kwargs) -> FaultyEnv:
    env = FaultyEnv(**kwargs)
    env.action_space = lambda agent: spaces.MultiDiscrete([2, 2])
    return env


class MaskedEnv(ParallelEnv):
    """Agents with Discrete(counts[i]) actions and action masks that change every step.

    `convention`: "obs" puts the mask in a Dict observation {"observation", "action_mask"}, "info" in
    infos[agent]["action_mask"], "none" gives no mask (only the counts differ). Agent i may take
    action a at step t unless (a + t + i) % 3 == 0; the reward pays the highest action taken, so
    a policy that learns prefers the top allowed one. `leaves_at`: the last agent terminates at that
    step while the others play on. `all_zero_at`: the first agent's mask forbids everything then.
    `step` raises on any action the contract forbids (module docstring).
    """

    metadata = {"name": "masked_v0", "render_modes": ["rgb_array"]}

    def __init__(self, convention: str = "obs", counts=(3, 5), episode_length: int = 6,
                 leaves_at: int | None = None, all_zero_at: int | None = None, render_mode: str | None = None):
        self.convention = convention
        self.counts = tuple(counts)
        self.possible_agents = [f"agent_{i}" for i in range(len(self.counts))]
        self.agents: list[str] = []
        self.episode_length, self.leaves_at, self.all_zero_at = episode_length, leaves_at, all_zero_at
        self.render_mode = render_mode
        self.t = 0
        self.state_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.sent: list[dict] = []

    def action_space(self, agent):
        return spaces.Discrete(self.counts[self.possible_agents.index(agent)])

    def observation_space(self, agent):
        obs = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        if self.convention != "obs":
            return obs
        n = self.counts[self.possible_agents.index(agent)]
        return spaces.Dict({"observation": obs, "action_mask": spaces.Box(0, 1, (n,), np.int8)})

    def mask(self, agent) -> np.ndarray:
        i = self.possible_agents.index(agent)
        n = self.counts[i]
        if self.all_zero_at is not None and self.t == self.all_zero_at and i == 0:
            return np.zeros(n, np.int8)
        return np.array([(a + self.t + i) % 3 != 0 for a in range(n)], np.int8)

    def _obs(self):
        out = {}
        for agent in self.agents:
            obs = np.array([self.t, self.possible_agents.index(agent)], np.float32)
            out[agent] = {"observation": obs, "action_mask": self.mask(agent)} if self.convention == "obs" else obs
        return out

    def _infos(self):
        if self.convention == "info":
            return {a: {"action_mask": self.mask(a)} for a in self.agents}
        return {a: {} for a in self.agents}

    def state(self):
        return np.array([self.t], np.float32)

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._obs(), self._infos()

    def step(self, actions):
        if set(actions) != set(self.agents):
            raise RuntimeError(f"actions for {sorted(actions)} but the agents are {self.agents}")
        for agent, action in actions.items():
            if not self.action_space(agent).contains(action):
                raise RuntimeError(f"{agent} got {action!r}, outside {self.action_space(agent)}")
            if self.convention != "none" and not self.mask(agent)[action]:
                raise RuntimeError(f"{agent} got action {action}, masked at step {self.t}")
        self.sent.append(dict(actions))
        rewards = {a: float(actions[a]) / self.counts[self.possible_agents.index(a)] for a in self.agents}
        self.t += 1
        done = self.t >= self.episode_length
        terms = {a: False for a in self.agents}
        truncs = {a: done for a in self.agents}
        leaver = self.possible_agents[-1]
        if self.t == self.leaves_at and leaver in self.agents and not done:
            terms[leaver] = True
        self.agents = [] if done else [a for a in self.agents if not terms[a]]
        obs, infos = self._obs(), self._infos()
        return obs, rewards, terms, truncs, infos

    def render(self):
        return np.full((4, 4, 3), 40 * self.t % 256, np.uint8)

    def close(self):
        pass


def make_masked(**kwargs) -> MaskedEnv:
    return MaskedEnv(**kwargs)


class UnevenBoxEnv(ParallelEnv):
    """Two agents with Box actions of different shapes and bounds; `step` raises on an action outside
    the agent's own space (shape or bounds)."""

    metadata = {"name": "uneven_box_v0"}

    def __init__(self, episode_length: int = 5):
        self.possible_agents = ["mover", "lifter"]
        self.agents: list[str] = []
        self._spaces = {"mover": spaces.Box(-1.0, 1.0, (2,), np.float32),
                        "lifter": spaces.Box(0.0, 3.0, (3,), np.float32)}
        self.episode_length = episode_length
        self.t = 0

    def action_space(self, agent):
        return self._spaces[agent]

    def observation_space(self, agent):
        return spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: np.zeros(2, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        for agent, action in actions.items():
            space = self._spaces[agent]
            action = np.asarray(action)
            if action.shape != space.shape or (action < space.low).any() or (action > space.high).any():
                raise RuntimeError(f"{agent} got {action!r}, outside {space}")
        self.t += 1
        done = self.t >= self.episode_length
        obs = {a: np.array([self.t, i], np.float32) for i, a in enumerate(self.agents)}
        rewards = {a: -float(np.abs(np.asarray(actions[a]) - 0.5).sum()) for a in self.agents}
        flags = {a: done for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, {a: False for a in flags}, flags, {a: {} for a in flags}

    def close(self):
        pass


def make_uneven_box(**kwargs) -> UnevenBoxEnv:
    return UnevenBoxEnv(**kwargs)
