"""Alice_and_Bob, the case-study task of HMASD (Yang et al., NeurIPS 2023), as a PettingZoo env.

An 8 x 8 floor surrounded by walls. Blue button top-left (0, 0), red button top-right (0, 7),
red diamond bottom-left (7, 0), blue diamond bottom-right (7, 7). After the joint move, an
uncollected diamond is collected when one agent stands on it while the other stands on the
button of the same colour. The reward is 0 until BOTH diamonds are collected; on that step every
agent gets 1.0 and the episode terminates as a success. Episodes are truncated at `max_cycles`.

The paper leaves actions and observations open; this version uses 5 moves (0 stay, 1 up, 2 down,
3 left, 4 right; a move into a wall is a stay; agents may share a cell) and per-agent observations
[own row, own col, other row, other col] / 7 + [red collected, blue collected]. The global state
is [alice row, alice col, bob row, bob col] / 7 + the same two flags.

Module convention as in PettingZoo: `parallel_env(**kwargs)`, `env(**kwargs)` (AEC), `raw_env`.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

SIZE = 8
AGENTS = ("alice", "bob")
# (row, col); the colour index is 0 for red and 1 for blue, also the order of the flags.
RED, BLUE = 0, 1
BUTTONS = {RED: (0, SIZE - 1), BLUE: (0, 0)}
DIAMONDS = {RED: (SIZE - 1, 0), BLUE: (SIZE - 1, SIZE - 1)}
MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # stay, up, down, left, right
_SPECIAL = set(BUTTONS.values()) | set(DIAMONDS.values())
# Start cells: every floor cell that is neither a button nor a diamond.
FREE_CELLS = tuple((r, c) for r in range(SIZE) for c in range(SIZE) if (r, c) not in _SPECIAL)


class AliceAndBobEnv(ParallelEnv):
    """The parallel Alice_and_Bob env; see the module docstring for the rules.

    Args:
        max_cycles: steps before truncation (the paper's episode length is 100).
        render_mode: None or "rgb_array".
    Raises ValueError for max_cycles < 1 or an unknown render_mode.
    """

    metadata = {
        "name": "alice_and_bob_v0",
        "render_modes": ["rgb_array"],
        "is_parallelizable": True,
        "render_fps": 5,
    }

    def __init__(self, max_cycles: int = 100, render_mode: str | None = None) -> None:
        if int(max_cycles) < 1:
            raise ValueError(f"max_cycles ({max_cycles}) must be at least 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode '{render_mode}' is not one of {self.metadata['render_modes']}")
        self.max_cycles = int(max_cycles)
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        # One space object per agent: PettingZoo requires the same object on every call.
        self.observation_spaces = {
            a: spaces.Box(0.0, 1.0, shape=(6,), dtype=np.float32) for a in AGENTS
        }
        self.action_spaces = {a: spaces.Discrete(len(MOVES)) for a in AGENTS}
        self.state_space = spaces.Box(0.0, 1.0, shape=(6,), dtype=np.float32)
        self._rng = np.random.default_rng()
        self._pos = np.zeros((2, 2), dtype=np.int64)  # [agent, (row, col)]
        self._collected = np.zeros(2, dtype=bool)  # [red, blue]
        self._t = 0

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    # -------------------------------------------------------------------------- dynamics
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Place both agents on distinct free cells; a seed restarts the RNG, None continues it."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        cells = self._rng.choice(len(FREE_CELLS), size=2, replace=False)
        self._pos = np.array([FREE_CELLS[i] for i in cells], dtype=np.int64)
        self._collected[:] = False
        self._t = 0
        self.agents = list(AGENTS)
        infos = {a: {"success": 0.0} for a in self.agents}
        return self._observations(), infos

    def step(self, actions: dict[str, Any]):
        """Joint move, then diamond collection; an agent with no (or a None) action stays.

        Raises RuntimeError after the episode ended and ValueError for an action outside 0..4.
        """
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        for i, agent in enumerate(AGENTS):
            action = actions.get(agent)
            action = 0 if action is None else int(action)
            if not 0 <= action < len(MOVES):
                raise ValueError(f"action {action} for '{agent}' is outside 0..{len(MOVES) - 1}")
            dr, dc = MOVES[action]
            # Clamping to the floor is the wall: moving into it leaves the agent in place.
            self._pos[i, 0] = min(max(self._pos[i, 0] + dr, 0), SIZE - 1)
            self._pos[i, 1] = min(max(self._pos[i, 1] + dc, 0), SIZE - 1)
        pos = [tuple(int(x) for x in p) for p in self._pos]
        for colour in (RED, BLUE):
            if self._collected[colour]:
                continue
            diamond, button = DIAMONDS[colour], BUTTONS[colour]
            if (pos[0] == diamond and pos[1] == button) or (pos[1] == diamond and pos[0] == button):
                self._collected[colour] = True
        self._t += 1

        success = bool(self._collected.all())
        truncated = self._t >= self.max_cycles and not success
        observations = self._observations()
        rewards = {a: 1.0 if success else 0.0 for a in self.agents}
        terminations = {a: success for a in self.agents}
        truncations = {a: truncated for a in self.agents}
        infos = {a: {"success": 1.0 if success else 0.0} for a in self.agents}
        if success or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    # ---------------------------------------------------------------------- observations
    def _observations(self) -> dict[str, np.ndarray]:
        flags = self._collected.astype(np.float32)
        out = {}
        for i, agent in enumerate(AGENTS):
            own, other = self._pos[i], self._pos[1 - i]
            coords = np.concatenate([own, other]).astype(np.float32) / (SIZE - 1)
            out[agent] = np.concatenate([coords, flags]).astype(np.float32)
        return out

    def state(self) -> np.ndarray:
        coords = self._pos.reshape(-1).astype(np.float32) / (SIZE - 1)  # [2, 2] -> [4]
        return np.concatenate([coords, self._collected.astype(np.float32)]).astype(np.float32)

    # -------------------------------------------------------------------------- rendering
    def render(self) -> np.ndarray | None:
        """A uint8 [320, 320, 3] frame (32 px per cell, walls included) in rgb_array mode."""
        if self.render_mode is None:
            warnings.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        from .render import draw_frame

        return draw_frame(self._pos, self._collected, BUTTONS, DIAMONDS, SIZE)

    def close(self) -> None:
        pass


def parallel_env(**kwargs: Any) -> AliceAndBobEnv:
    """The parallel env (HMASD uses this one)."""
    return AliceAndBobEnv(**kwargs)


def raw_env(**kwargs: Any):
    """The AEC version, converted from the parallel env."""
    return parallel_to_aec(parallel_env(**kwargs))


# parallel_to_aec already adds PettingZoo's order-enforcing wrapper.
env = raw_env
