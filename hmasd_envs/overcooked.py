"""Overcooked (Carroll et al. 2019 dynamics) from JaxMARL as a PettingZoo ParallelEnv.

The paper's main benchmark. JaxMARL's `Overcooked` keeps the old dynamics: a pot starts cooking by
itself once it holds 3 onions, cooks for 20 steps, and each delivered soup pays the team 20. Two
agents, 6 actions (up, down, right, left, stay, interact), 400-step episodes.

- Reward: sparse by default (20 per soup, the paper's regime). The team reward is paid half to each
  agent, so that the sum over agents (the adapter's team reward) is 20 per soup, as in the paper.
  `shaped_reward=True` adds JaxMARL's shaped reward (3 per onion put in a pot, 3 per useful plate pick-up, 5 per soup pick-up) to each
  agent's reward; the shaped part is also reported in `infos[agent]["shaped_reward"]` either way.
- Infos: per step `soups` (delivered this step) and `shaped_reward` (the agent's); for the episode so
  far `episode_soups` and `episode_shaped_return` (the agent's). The episode-long ones are what the
  trainer's episode statistics need: those read the infos of an episode's last step only.
- Observations: JaxMARL's lossless grid of 26 channels. JaxMARL declares the shape
  (width, height, 26) but returns (height, width, 26) arrays; this env declares what is returned.
- Global state: the grid seen by agent_0. It is lossless (every object, pot timer and both agents
  with their orientation and inventory), so it is the full state of the game.
- Episodes end by the time limit only: every agent is truncated at `max_steps`, never terminated.
- Seeding: `reset(seed)` starts a new JAX key; `reset()` without a seed continues the env's key.
- Snapshots: `__getstate__` stores the JAX state (a pytree of arrays) and the key as NumPy arrays, so
  a checkpoint resumes an episode exactly.

JAX must not fight torch for the cores: before JAX is first imported, XLA is limited to one CPU
thread and to the CPU platform. JAX is imported only when an env is built, which happens in the env
worker processes, not in the trainer.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

LAYOUTS = {  # our id suffix -> JaxMARL's layout name
    "cramped_room": "cramped_room",
    "asymmetric_advantages": "asymm_advantages",
    "coordination_ring": "coord_ring",
}
N_CHANNELS = 26
N_ACTIONS = 6
DELIVERY_REWARD = 20.0  # JaxMARL's, paid to the team per soup (its README says 1; its code pays 20)


def _limit_jax_threads() -> None:
    """One XLA CPU thread per process and no accelerator probing; effective only before JAX starts."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = flags.strip()


@contextlib.contextmanager
def _quiet_stdout():
    """Silence file descriptor 1: importing JaxMARL prints a probe of optional submodules, and one of
    its modules resets sys.stdout to sys.__stdout__, so contextlib.redirect_stdout cannot catch it."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@functools.lru_cache(maxsize=None)
def _compiled(layout: str, max_steps: int):
    """The JaxMARL env and its jitted reset/step for one layout, shared by the envs of a process."""
    _limit_jax_threads()
    import warnings

    import jax
    import jax.numpy as jnp
    from flax.core.frozen_dict import FrozenDict

    # JaxMARL warns that OvercookedV2 exists: this env is the paper's (v1) on purpose.
    with warnings.catch_warnings(), _quiet_stdout():
        warnings.simplefilter("ignore", DeprecationWarning)
        from jaxmarl.environments.overcooked.layouts import overcooked_layouts
        from jaxmarl.environments.overcooked.overcooked import Overcooked

        env = Overcooked(layout=FrozenDict(overcooked_layouts[LAYOUTS[layout]]), max_steps=max_steps)

    def stacked(obs: dict) -> Any:
        return jnp.stack([obs["agent_0"], obs["agent_1"]])  # [2, H, W, C]

    @jax.jit
    def reset(key):
        key, sub = jax.random.split(key)
        obs, state = env.reset(sub)
        return key, state, stacked(obs)

    @jax.jit
    def step(key, state, actions):
        # step_env, not step: the episode end is ours to handle (no JAX auto-reset inside).
        key, sub = jax.random.split(key)
        obs, state, rewards, dones, infos = env.step_env(sub, state, {"agent_0": actions[0], "agent_1": actions[1]})
        shaped = jnp.stack([infos["shaped_reward"]["agent_0"], infos["shaped_reward"]["agent_1"]])
        return key, state, stacked(obs), rewards["agent_0"], shaped, dones["__all__"]

    return env, reset, step, jax


class OvercookedEnv(ParallelEnv):
    """One Overcooked game; see the module docstring."""

    metadata = {"name": "overcooked", "render_modes": ["rgb_array"], "is_parallelizable": True}
    # The infos' episode statistics (the trainer's Episode/ and Eval/ metrics); "soups" and
    # "shaped_reward" are this step's only, and say nothing about the episode at its last step.
    episode_info_keys = ("episode_soups", "episode_shaped_return")

    def __init__(self, layout: str = "cramped_room", max_steps: int = 400, shaped_reward: bool = False,
                 render_mode: str | None = None) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown Overcooked layout '{layout}': use one of {sorted(LAYOUTS)}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.layout, self.max_steps, self.shaped_reward, self.render_mode = layout, max_steps, shaped_reward, render_mode
        self.metadata = {**self.metadata, "name": f"overcooked_{layout}"}
        jx_env = _compiled(layout, max_steps)[0]
        self.height, self.width = int(jx_env.height), int(jx_env.width)
        self.possible_agents = ["agent_0", "agent_1"]
        self.agents: list[str] = []
        shape = (self.height, self.width, N_CHANNELS)  # what JaxMARL really returns
        self.observation_spaces = {a: spaces.Box(0, 255, shape, dtype=np.uint8) for a in self.possible_agents}
        self.action_spaces = {a: spaces.Discrete(N_ACTIONS) for a in self.possible_agents}
        self.state_space = spaces.Box(0, 255, shape, dtype=np.uint8)
        self._key = None  # JAX PRNG key
        self._state = None  # JaxMARL State pytree
        self._obs: np.ndarray | None = None  # [2, H, W, C] uint8
        self._episode_soups = 0.0  # soups delivered in this episode so far
        self._episode_shaped = np.zeros(2)  # each agent's shaped reward in this episode so far

    # -- PettingZoo API ---------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        _, reset, _, jax = _compiled(self.layout, self.max_steps)
        if seed is not None or self._key is None:
            self._key = jax.random.PRNGKey(0 if seed is None else seed)
        self._key, self._state, obs = reset(self._key)
        self._obs = np.asarray(obs)
        self._episode_soups, self._episode_shaped = 0.0, np.zeros(2)
        self.agents = list(self.possible_agents)
        return self._agent_dict(self._obs), {a: {} for a in self.agents}

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError("overcooked: step() after the episode ended; call reset()")
        _, _, step, jax = _compiled(self.layout, self.max_steps)
        act = np.array([int(actions[a]) for a in self.possible_agents], dtype=np.int32)
        if act.min() < 0 or act.max() >= N_ACTIONS:
            raise ValueError(f"overcooked actions must lie in [0, {N_ACTIONS}), got {act.tolist()}")
        self._key, self._state, obs, reward, shaped, done = step(self._key, self._state, act)
        obs, reward, shaped, done = jax.device_get((obs, reward, shaped, done))
        self._obs = np.asarray(obs)
        team = float(reward)  # 20 per delivered soup
        # The adapter's team reward is the sum of the agents' rewards, so each agent gets half of it.
        rewards = {a: team / 2 + (float(shaped[i]) if self.shaped_reward else 0.0)
                   for i, a in enumerate(self.possible_agents)}
        truncated = bool(done)
        terms = {a: False for a in self.agents}
        truncs = {a: truncated for a in self.agents}
        self._episode_soups += team / DELIVERY_REWARD
        self._episode_shaped = self._episode_shaped + np.asarray(shaped, dtype=np.float64)
        infos = {a: {"shaped_reward": float(shaped[i]), "soups": team / DELIVERY_REWARD,
                     "episode_soups": self._episode_soups, "episode_shaped_return": float(self._episode_shaped[i])}
                 for i, a in enumerate(self.possible_agents)}
        observations = self._agent_dict(self._obs)
        if truncated:
            self.agents = []
        return observations, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        if self._obs is None:
            raise RuntimeError("overcooked: state() before reset()")
        return self._obs[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._state is None:
            return None
        from jaxmarl.viz.overcooked_visualizer import TILE_PIXELS, OvercookedVisualizer

        s = self._state
        maze = np.asarray(s.maze_map)
        pad = (maze.shape[0] - self.height) // 2  # the padding JaxMARL's get_obs strips
        grid = maze[pad:-pad, pad:-pad, :]
        return OvercookedVisualizer._render_grid(grid, tile_size=TILE_PIXELS // 2, highlight_mask=None,
                                                 agent_dir_idx=np.asarray(s.agent_dir_idx),
                                                 agent_inv=np.asarray(s.agent_inv))

    def close(self) -> None:
        pass

    def _agent_dict(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}

    # -- snapshots (exact resume) -----------------------------------------------------------------
    def __getstate__(self) -> dict:
        data = dict(self.__dict__)
        if self._state is not None:
            jax = _compiled(self.layout, self.max_steps)[3]
            data["_state"] = jax.tree.map(np.asarray, self._state)
            data["_key"] = np.asarray(self._key)
        return data

    def __setstate__(self, data: dict) -> None:
        # Snapshots from before the episode totals existed lack them (runs checkpointed by an older
        # version): the episode in progress counts its soups from the resume on. They are reported,
        # never learned from, so the resumed training stays exact.
        self.__dict__.update({"_episode_soups": 0.0, "_episode_shaped": np.zeros(2), **data})
        if self._state is not None:
            jax = _compiled(self.layout, self.max_steps)[3]
            self._state = jax.tree.map(jax.numpy.asarray, self._state)
            self._key = jax.numpy.asarray(self._key)


def parallel_env(**kwargs: Any) -> OvercookedEnv:
    return OvercookedEnv(**kwargs)
