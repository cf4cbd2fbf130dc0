"""ArrayEnv: any PettingZoo ParallelEnv as fixed-shape NumPy arrays.

The trainer sees A agents (the env's `possible_agents`, always in that order), observations
[A, O], one global state [S], an alive mask [A], one team reward per step and, where actions
can be masked, an action mask [A, M]. Everything that varies between PettingZoo envs (agents
leaving, different observation sizes, different action counts, Dict observations, action masks
in observations or infos, missing global state, episode ends and resets) is resolved here, once.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .errors import EnvError
from .spaces import MASK_KEY, ActionLayout, ObsFlattener, action_layout, obs_flattener


@dataclass(frozen=True)
class EnvSpec:
    """Shapes and spaces of an ArrayEnv, fixed for its lifetime."""

    env_id: str
    num_agents: int  # A: the env's possible_agents
    agent_names: tuple[str, ...]
    obs_dim: int  # O, after padding + agent-id one-hot if any
    state_dim: int  # S
    action_kind: str  # "discrete" | "box"
    n_actions: int  # discrete: number of actions (the largest agent's); box: 0
    action_dim: int  # box: action dims (the largest agent's); discrete: 1
    action_low: tuple[float, ...] | None  # box: bounds over all agents (elementwise min / max), else None
    action_high: tuple[float, ...] | None
    state_from_env: bool  # False when the state is the concatenated observations
    max_episode_steps: int | None  # if known, else None
    agent_action_sizes: tuple[int, ...] = ()  # each agent's own action count (discrete) or dims (box)
    # True when actions come with a mask [A, mask_dim]: the env gives action masks, or the agents'
    # action counts (dims) differ and the padding is masked out.
    masked: bool = False
    agent_action_low: tuple[tuple[float, ...], ...] | None = None  # box: each agent's padded bounds
    agent_action_high: tuple[tuple[float, ...], ...] | None = None

    @property
    def mask_dim(self) -> int:
        """M, the width of an action mask row: the action count (discrete) or dims (box); 0 unmasked."""
        if not self.masked:
            return 0
        return self.n_actions if self.action_kind == "discrete" else self.action_dim


@dataclass
class EnvStep:
    """The result of one ArrayEnv.step.

    After an episode end, `obs`, `state` and `alive` already belong to the NEW episode (the env
    was auto-reset); the ended episode's last observation and state are in `final_obs` and
    `final_state` (which are `obs` and `state` themselves when the episode did not end).
    """

    obs: np.ndarray  # float32 [A, O]
    state: np.ndarray  # float32 [S]
    alive: np.ndarray  # bool [A]
    reward: float  # team reward: sum of the agents' rewards this step
    terminated: bool
    truncated: bool
    final_obs: np.ndarray  # float32 [A, O]
    final_state: np.ndarray  # float32 [S]
    episode: dict[str, float] | None  # at an episode end: return, length, mean numeric infos
    action_mask: np.ndarray | None = None  # bool [A, M] for `obs` where spec.masked, else None


def _numeric(value: Any) -> float | None:
    """The value as a float if it is a number (bools included), else None."""
    if isinstance(value, (bool, int, float, np.number)):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.number):
        return float(value.reshape(()))
    return None


def _known_episode_limit(env: Any) -> int | None:
    """The env's step limit if it exposes one under a usual name (max_cycles in PettingZoo)."""
    try:
        candidates = (env, env.unwrapped)
    except Exception:  # a wrapper without `unwrapped`
        candidates = (env,)
    for obj in candidates:
        for name in ("max_cycles", "max_episode_steps", "max_steps"):
            try:
                value = getattr(obj, name, None)
            except Exception:
                continue
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
                return int(value)
    return None


class ArrayEnv:
    """A PettingZoo ParallelEnv behind fixed-shape arrays; see the module docstring.

    Raises EnvError (one line, naming `env_id`) at construction when the env has no agents,
    an observation space that is neither Box nor Dict-with-Box, an action space that is neither
    Discrete nor Box, Discrete and Box agents mixed, action masks with Box actions, or a reset()
    that raises. When the env does not provide a global state (no `state_space`, or `state()` not
    implemented) the state is the concatenated observations [A * O] and one warning says so.
    `mask_in_obs` also feeds a Dict observation's "action_mask" entry to the networks.
    """

    def __init__(self, env: Any, env_id: str, mask_in_obs: bool = False) -> None:
        self._env = env
        self._env_id = env_id
        names = tuple(getattr(env, "possible_agents", None) or ())
        if not names:
            raise EnvError(
                f"env '{env_id}': possible_agents is empty; supported: ParallelEnvs with at least one agent"
            )
        self._names = names
        self._index = {name: i for i, name in enumerate(names)}
        self._flat: dict[str, ObsFlattener] = {
            a: obs_flattener(env.observation_space(a), env_id, a, mask_in_obs) for a in names
        }
        self._act: ActionLayout = action_layout({a: env.action_space(a) for a in names}, env_id)

        sizes = [self._flat[a].size for a in names]
        # Padding and the id one-hot only when sizes differ: with equal sizes the agents'
        # observations already line up, and the policy gets agent ids elsewhere if it wants them.
        self._padded = len(set(sizes)) > 1
        num = len(names)
        obs_dim = max(sizes) + (num if self._padded else 0)
        self._obs_dim = obs_dim

        # One probe reset: state() and infos can only be read from a reset env. reset() must still
        # be called before the first step.
        probe_infos = self._probe_reset()
        self._state_from_env, state_dim = self._probe_state(env_id, num * obs_dim)
        act = self._act
        obs_masks = any(f.has_mask for f in self._flat.values())
        info_masks = any(isinstance(i, dict) and MASK_KEY in i for i in (probe_infos or {}).values())
        self._env_masks = obs_masks or info_masks
        if self._env_masks and act.kind != "discrete":
            where = "observations" if obs_masks else "infos"
            raise EnvError(
                f"env '{env_id}': its {where} carry an action_mask but its actions are Box; "
                "action masks are supported for Discrete actions only"
            )
        masked = self._env_masks or act.padded
        self.spec = EnvSpec(
            env_id=env_id,
            num_agents=num,
            agent_names=names,
            obs_dim=obs_dim,
            state_dim=state_dim,
            action_kind=act.kind,
            n_actions=act.n_actions,
            action_dim=act.dim,
            action_low=None if act.low is None else tuple(float(x) for x in act.low.min(axis=0)),
            action_high=None if act.high is None else tuple(float(x) for x in act.high.max(axis=0)),
            state_from_env=self._state_from_env,
            max_episode_steps=_known_episode_limit(env),
            agent_action_sizes=act.sizes,
            masked=masked,
            agent_action_low=None if act.low is None else tuple(tuple(map(float, r)) for r in act.low),
            agent_action_high=None if act.high is None else tuple(tuple(map(float, r)) for r in act.high),
        )
        self._sizes = np.asarray(act.sizes)
        self._present: list[str] = []  # agents that act on the next step
        self._mask: np.ndarray | None = None  # bool [A, M] for the current observation, if masked
        self._last_state = np.zeros(state_dim, np.float32)  # the last env.state() read
        self._needs_reset = True
        self._ep_return = 0.0
        self._ep_length = 0

    # ----------------------------------------------------------------------------- state
    def _probe_reset(self) -> dict:
        """Reset once at construction; an exception there is an EnvError naming the env."""
        try:
            result = self._env.reset()
        except EnvError:
            raise
        except Exception as err:
            text = str(err).strip().splitlines()
            detail = f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
            raise EnvError(f"env '{self._env_id}': reset() raised {detail}") from err
        infos = result[1] if isinstance(result, tuple) and len(result) == 2 else {}
        return infos if isinstance(infos, dict) else {}

    def _probe_state(self, env_id: str, fallback_dim: int) -> tuple[bool, int]:
        """Decide once whether env.state() is usable; returns (from_env, state_dim).

        Needs the probe reset. A state() whose size differs from state_space is an EnvError,
        since a silently wrong state would corrupt the critic.
        """
        space = getattr(self._env, "state_space", None)
        reason = "it has no state_space"
        if isinstance(space, spaces.Box):
            expected = int(np.prod(space.shape, dtype=np.int64))
            try:
                got = np.asarray(self._env.state(), dtype=np.float32).reshape(-1).shape[0]
            except (NotImplementedError, AttributeError) as err:
                reason = f"state() failed: {type(err).__name__}"
            else:
                if got != expected:
                    raise EnvError(
                        f"env '{env_id}': state() returned {got} values but state_space {space} "
                        f"has {expected}; supported: state() matching state_space, or no state_space"
                    )
                return True, expected
        elif space is not None:
            reason = f"its state_space {space} is not a Box"
        warnings.warn(
            f"env '{env_id}' provides no global state ({reason}); using the concatenated "
            f"observations ({fallback_dim} values) as the state",
            stacklevel=3,
        )
        return False, fallback_dim

    def _state(self, obs: np.ndarray) -> np.ndarray:
        if self._state_from_env:
            self._last_state = np.asarray(self._env.state(), dtype=np.float32).reshape(-1)
            return self._last_state.copy()
        return obs.reshape(-1).copy()  # [A, O] -> [A*O]

    # ------------------------------------------------------------------------------ masks
    def _action_mask(self, obs: dict[str, Any], infos: Any) -> np.ndarray | None:
        """bool [A, M] for the present agents' next action: each agent's own actions (the padding is
        masked) and, where the env gives one, its action mask from the observation or the infos.
        An agent with no mask may take any of its actions; absent agents get their own actions,
        which are never sent. Raises EnvError for a mask of the wrong size or one that forbids
        every action of a present agent."""
        if not self.spec.masked:
            return None
        mask = self._act.valid.copy()
        if not self._env_masks:
            return mask
        infos = infos if isinstance(infos, dict) else {}
        for agent in self._present:
            i = self._index[agent]
            own = self._flat[agent].mask(obs[agent]) if agent in obs else None
            info = infos.get(agent)
            if own is None and isinstance(info, dict) and MASK_KEY in info:
                own = np.asarray(info[MASK_KEY]).reshape(-1).astype(bool)
            if own is None:
                continue
            size = int(self._sizes[i])
            if own.shape[0] != size:
                raise EnvError(
                    f"env '{self._env_id}': agent '{agent}' has an action mask of {own.shape[0]} entries "
                    f"but {size} actions; the mask needs one entry per action"
                )
            mask[i, :size] &= own
            if not mask[i].any():
                raise EnvError(
                    f"env '{self._env_id}': agent '{agent}' has an all-zero action mask at step "
                    f"{self._ep_length} of its episode; a live agent needs at least one legal action "
                    "(end its episode with a termination instead)"
                )
        return mask

    @property
    def action_mask(self) -> np.ndarray | None:
        """bool [A, M]: the actions allowed for the current observation (spec.masked), else None."""
        return None if self._mask is None else self._mask.copy()

    # ----------------------------------------------------------------------- observations
    def _encode(self, obs: dict[str, Any], agents: list[str]) -> np.ndarray:
        """[A, O] float32 with rows for `agents` that have an observation; zeros elsewhere."""
        out = np.zeros((len(self._names), self._obs_dim), dtype=np.float32)
        num = len(self._names)
        for agent in agents:
            if agent not in obs:
                continue
            i = self._index[agent]
            flat = self._flat[agent](obs[agent])
            out[i, : flat.shape[0]] = flat
            if self._padded:
                out[i, self._obs_dim - num + i] = 1.0
        return out

    def _alive(self) -> np.ndarray:
        alive = np.zeros(len(self._names), dtype=bool)
        for agent in self._present:
            alive[self._index[agent]] = True
        return alive

    # ---------------------------------------------------------------------------- actions
    def _env_actions(self, actions: np.ndarray) -> dict[str, Any]:
        """Per-agent actions for the present agents only, each in its own space.

        Raises ValueError on a malformed array, an action outside an agent's own space, or one that
        its action mask forbids: a masked or padded action never reaches the env.
        """
        num, act = len(self._names), self._act
        arr = np.asarray(actions)
        if act.kind == "discrete":
            if arr.size != num or not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(
                    f"discrete actions must be integers of shape [{num}], got {arr.dtype} {arr.shape}"
                )
            arr = arr.reshape(num)
            out = {}
            for agent in self._present:
                i = self._index[agent]
                a = int(arr[i])
                if not 0 <= a < self._sizes[i]:
                    raise ValueError(f"agent '{agent}' got action {a}; its actions lie in [0, {self._sizes[i]})")
                if self._mask is not None and not self._mask[i, a]:
                    raise ValueError(f"agent '{agent}' got action {a}, which its action mask forbids")
                out[agent] = a + act.starts[i]
            return out
        if arr.size != num * act.dim:
            raise ValueError(f"box actions must have shape [{num}, {act.dim}], got {arr.shape}")
        # Clipping here keeps unbounded Gaussian samples legal for every env. [A, D], per-agent bounds.
        clipped = np.clip(arr.astype(np.float32).reshape(num, act.dim), act.low, act.high)
        return {
            a: clipped[self._index[a], : self._sizes[self._index[a]]].reshape(act.shapes[self._index[a]])
            for a in self._present
        }

    # -------------------------------------------------------------------------------- API
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start an episode; returns obs [A, O], state [S], alive [A] (the mask: `action_mask`).

        Without a seed the env's own RNG continues (used by the auto-reset).
        """
        obs, infos = self._env.reset(seed=seed)
        self._present = [a for a in self._env.agents if a in self._index]
        if not self._present:
            raise EnvError(f"env '{self.spec.env_id}': reset() returned no agents")
        self._needs_reset = False
        self._ep_return, self._ep_length = 0.0, 0
        self._mask = self._action_mask(obs, infos)
        obs_arr = self._encode(obs, self._present)
        return obs_arr, self._state(obs_arr), self._alive()

    def step(self, actions: np.ndarray) -> EnvStep:
        """Advance one step; discrete actions int [A], box actions float [A, D] (clipped).

        Raises RuntimeError before the first reset(), ValueError on a malformed or forbidden
        action, EnvError on an action mask that forbids every action of a live agent.
        """
        if self._needs_reset:
            raise RuntimeError(f"env '{self.spec.env_id}': call reset() before step()")
        env_actions = self._env_actions(actions)
        acting = self._present
        obs, rewards, terms, truncs, infos = self._env.step(env_actions)
        reward = float(sum(float(r) for a, r in rewards.items() if a in self._index))
        self._ep_return += reward
        self._ep_length += 1

        # `list(...)`: some wrappers hand out their live agents list, which later steps mutate.
        self._present = [
            a for a in list(self._env.agents)
            if a in self._index and not (terms.get(a, False) or truncs.get(a, False))
        ]
        if self._present:
            self._mask = self._action_mask(obs, infos)
            obs_arr = self._encode(obs, self._present)
            state = self._state(obs_arr)
            return EnvStep(obs_arr, state, self._alive(), reward, False, False, obs_arr, state, None,
                           self.action_mask)

        # Episode end: every agent is done or gone. The final obs covers the agents that acted.
        final_obs = self._encode(obs, acting)
        try:
            final_state = self._state(final_obs)
        except Exception:
            # Some envs tear their bodies down at a termination, and state() then fails (multiwalker:
            # 'NoneType' object has no attribute 'position'). The last state read stands in: a
            # terminated step bootstraps nothing, and only the team discriminator reads it.
            final_state = self._last_state.copy()
        terminated = all(bool(terms.get(a, False)) for a in acting)
        episode = self._episode_stats(infos)
        new_obs, new_state, alive = self.reset()
        return EnvStep(
            new_obs, new_state, alive, reward, terminated, not terminated, final_obs, final_state, episode,
            self.action_mask,
        )

    def _episode_stats(self, infos: dict[str, Any]) -> dict[str, float]:
        """Return, length, and the mean over agents of each numeric entry of the final infos.

        An env whose infos mix per-step values with episode statistics names the latter in an
        `episode_info_keys` attribute; only those are kept (a per-step value read at the last step
        says nothing about the episode, and would be logged as if it did).
        """
        stats: dict[str, float] = {"return": self._ep_return, "length": float(self._ep_length)}
        values: dict[str, list[float]] = {}
        wanted = getattr(self._env, "episode_info_keys", None)
        for agent, info in infos.items():
            if agent not in self._index or not isinstance(info, dict):
                continue
            for key, value in info.items():
                if wanted is not None and key not in wanted:
                    continue
                number = _numeric(value)
                if number is not None and key not in ("return", "length") and math.isfinite(number):
                    values.setdefault(str(key), []).append(number)
        stats.update({key: float(np.mean(v)) for key, v in values.items()})
        return stats

    def render(self) -> np.ndarray | None:
        """An rgb_array frame [H, W, 3] uint8 if the env was made with render_mode="rgb_array"."""
        if getattr(self._env, "render_mode", None) != "rgb_array":
            return None
        frame = self._env.render()
        return None if frame is None else np.asarray(frame)

    def close(self) -> None:
        self._env.close()

    @property
    def unwrapped(self) -> Any:
        """The PettingZoo env itself (for env-specific inspection, e.g. in tests)."""
        return self._env
