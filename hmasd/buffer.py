"""The fused rollout buffer: one on-policy rollout, its mixed rewards and GAE for both levels.

Shapes are time-major and named once:
    T  rollout_length (steps)        E  envs            A  agents
    O  obs_dim    S  state_dim       D  action_dim (1 for discrete actions; stored as float32)
    M  mask_dim: width of the action masks (0: the env's actions are not masked, nothing stored)
    A+1 high-level heads: index 0 is the team skill Z (value V_h(s_hat)), index 1+i is agent i's
        individual skill z^i (value V_h(o_hat^i)).

Two backends with the same signatures and semantics:
    ``"cpp"``    ``hmasd._core.RolloutBuffer`` (C++, the one training uses);
    ``"numpy"``  ``ReferenceRolloutBuffer`` below, a plain backward loop that is the oracle the C++
                 code is tested against.
Pick one with ``make_rollout_buffer``. This module is the only importer of ``hmasd._core``.

Contract of ``add`` (step t = size): obs/state are what was seen when acting at t; values is V_l
at t; reward/terminated/truncated are those of the step; bootstrap_values is V_l of the final
observation (read only where truncated); alive marks agents present at t; assign = 1 where skills
were (re)assigned at t, and hl_log_probs/hl_values are read only there; hl_bootstrap_values is V_h
of the final state (read only where truncated); action_mask (only with mask_dim > 0, else None) is
the mask each action was drawn under, which the PPO update applies again so the ratio compares
the same distributions.

Contract of ``finalize`` (needs a full buffer; assign must be 1 at t = 0 and right after every
episode end, otherwise ValueError):
    rewards[t,e,i]   = lambda_e * r_t + lambda_D * log q_D(Z|s_{t+1}) + lambda_d * log q_d(z^i|o^i_{t+1}, Z)
                       (paper Eq. 4)
    low-level GAE    next_v = 0 if terminated[t] else bootstrap_values[t] if truncated[t]
                              else last_values if t == T-1 else values[t+1]
                     delta = r + gamma * next_v - values[t]
                     gae_t = delta + gamma * gae_lambda * (1 - ended[t]) * gae_{t+1}
                     advantages = gae, returns = gae + values
    high level       a segment runs from an assign step t0 to t1 = (next assign step) - 1 or T-1;
                     at t0 (0 elsewhere): hl_rewards = sum of r_t over t0..t1,
                     segment_lengths = t1 - t0 + 1, hl_dones = terminated[t1];
                     next_v = 0 if terminated[t1] else hl_bootstrap_values[t1] if truncated[t1]
                              else last_hl_values if t1 == T-1 else hl_values[t1+1];
                     delta = r_h + gamma_high * next_v - hl_values[t0]
                     gae = delta + gamma_high * gae_lambda_high * continues * gae_next_segment,
                     continues = 0 at an episode end or the rollout's end;
                     hl_advantages = gae, hl_returns = gae + hl_values[t0].
Terminated wins over truncated when both are set. The outputs are readable only after finalize;
``add`` or ``reset`` invalidates them. Arrays read from the buffer are read-only views of its
storage: the next rollout overwrites them, so copy what must outlive it.

Errors: a wrong dtype raises TypeError (nothing is converted silently); a wrong shape, a
non-contiguous or unaligned array, or a missing skill assignment raises ValueError; ``add`` on a
full buffer and ``finalize`` on a partial one raise RuntimeError.
"""
from __future__ import annotations

from typing import Union

import numpy as np

from hmasd import _core

__all__ = ["ReferenceRolloutBuffer", "AnyRolloutBuffer", "make_rollout_buffer", "BACKENDS"]

BACKENDS = ("cpp", "numpy")


def _checked(arr: object, name: str, dtype: type, shape: tuple[int, ...], dims: str) -> np.ndarray:
    """Return ``arr`` if it is an aligned, C-contiguous ndarray of ``dtype`` and ``shape``.

    Same rules and messages as the C++ bindings, so both backends fail alike.
    """
    dt = np.dtype(dtype)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of dtype {dt}, got {type(arr).__name__}")
    if arr.dtype != dt:
        raise TypeError(f"{name} must have dtype {dt}, got {arr.dtype} (no implicit conversion is done)")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} {dims}, got {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (pass numpy.ascontiguousarray({name}))")
    if not arr.flags.aligned:
        raise ValueError(f"{name} must be aligned for its dtype")
    return arr


def _read_only(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view


class ReferenceRolloutBuffer:
    """NumPy oracle of ``hmasd._core.RolloutBuffer``: same constructor, methods and properties.

    ``finalize`` is a plain backward loop over t, vectorised over envs and agents, in float32 with
    the operations in the same order as the C++ code (see the module docstring for the rules).
    """

    def __init__(self, T: int, E: int, A: int, obs_dim: int, state_dim: int, action_dim: int,
                 mask_dim: int = 0) -> None:
        for name, value in (("T (rollout_length)", T), ("E (num_envs)", E), ("A (num_agents)", A),
                            ("obs_dim", obs_dim), ("state_dim", state_dim), ("action_dim", action_dim)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if mask_dim < 0:
            raise ValueError(f"mask_dim must be 0 or positive, got {mask_dim}")
        self._mask_dim = mask_dim
        self._T, self._E, self._A = T, E, A
        self._obs_dim, self._state_dim, self._action_dim = obs_dim, state_dim, action_dim
        self._size = 0
        self._finalized = False
        H = A + 1
        f32, u8 = np.float32, np.uint8
        self._store = {
            "obs": np.zeros((T, E, A, obs_dim), f32),
            "state": np.zeros((T, E, state_dim), f32),
            "actions": np.zeros((T, E, A, action_dim), f32),
            "log_probs": np.zeros((T, E, A), f32),
            "values": np.zeros((T, E, A), f32),
            "reward": np.zeros((T, E), f32),
            "terminated": np.zeros((T, E), u8),
            "truncated": np.zeros((T, E), u8),
            "bootstrap_values": np.zeros((T, E, A), f32),
            "alive": np.zeros((T, E, A), u8),
            "team_skill": np.zeros((T, E), np.int64),
            "agent_skill": np.zeros((T, E, A), np.int64),
            "assign": np.zeros((T, E), u8),
            "hl_log_probs": np.zeros((T, E, H), f32),
            "hl_values": np.zeros((T, E, H), f32),
            "hl_bootstrap_values": np.zeros((T, E, H), f32),
            "action_mask": np.zeros((T, E, A, mask_dim), u8),
        }
        self._out = {
            "rewards": np.zeros((T, E, A), f32),
            "advantages": np.zeros((T, E, A), f32),
            "returns": np.zeros((T, E, A), f32),
            "hl_rewards": np.zeros((T, E), f32),
            "segment_lengths": np.zeros((T, E), np.int32),
            "hl_dones": np.zeros((T, E), u8),
            "hl_advantages": np.zeros((T, E, H), f32),
            "hl_returns": np.zeros((T, E, H), f32),
        }

    # --- writing -------------------------------------------------------------------------------

    def add(self, *, obs: np.ndarray, state: np.ndarray, actions: np.ndarray, log_probs: np.ndarray,
            values: np.ndarray, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
            bootstrap_values: np.ndarray, alive: np.ndarray, team_skill: np.ndarray,
            agent_skill: np.ndarray, assign: np.ndarray, hl_log_probs: np.ndarray,
            hl_values: np.ndarray, hl_bootstrap_values: np.ndarray,
            action_mask: np.ndarray | None = None) -> None:
        """Store step t = size of every env and advance size (shapes: module docstring)."""
        E, A, H = self._E, self._A, self._A + 1
        f32, u8, i64 = np.float32, np.uint8, np.int64
        step = {
            "obs": _checked(obs, "obs", f32, (E, A, self._obs_dim), "[E, A, O]"),
            "state": _checked(state, "state", f32, (E, self._state_dim), "[E, S]"),
            "actions": _checked(actions, "actions", f32, (E, A, self._action_dim), "[E, A, D]"),
            "log_probs": _checked(log_probs, "log_probs", f32, (E, A), "[E, A]"),
            "values": _checked(values, "values", f32, (E, A), "[E, A]"),
            "reward": _checked(reward, "reward", f32, (E,), "[E]"),
            "terminated": _checked(terminated, "terminated", u8, (E,), "[E]"),
            "truncated": _checked(truncated, "truncated", u8, (E,), "[E]"),
            "bootstrap_values": _checked(bootstrap_values, "bootstrap_values", f32, (E, A), "[E, A]"),
            "alive": _checked(alive, "alive", u8, (E, A), "[E, A]"),
            "team_skill": _checked(team_skill, "team_skill", i64, (E,), "[E]"),
            "agent_skill": _checked(agent_skill, "agent_skill", i64, (E, A), "[E, A]"),
            "assign": _checked(assign, "assign", u8, (E,), "[E]"),
            "hl_log_probs": _checked(hl_log_probs, "hl_log_probs", f32, (E, H), "[E, A+1]"),
            "hl_values": _checked(hl_values, "hl_values", f32, (E, H), "[E, A+1]"),
            "hl_bootstrap_values": _checked(hl_bootstrap_values, "hl_bootstrap_values", f32, (E, H),
                                            "[E, A+1]"),
        }
        if self._mask_dim > 0:
            step["action_mask"] = _checked(action_mask, "action_mask", u8, (E, A, self._mask_dim), "[E, A, M]")
        elif action_mask is not None:
            raise ValueError("action_mask given, but this buffer stores no masks (mask_dim=0)")
        if self._size >= self._T:
            raise RuntimeError(f"rollout buffer is full ({self._T}/{self._T} steps): "
                               "call reset() before add()")
        for name, arr in step.items():
            self._store[name][self._size] = arr
        self._size += 1
        self._finalized = False

    def reset(self) -> None:
        """Empty the buffer for the next rollout; the storage is kept."""
        self._size = 0
        self._finalized = False

    # --- finalize ------------------------------------------------------------------------------

    def _check_segment_starts(self) -> None:
        # Skills are assigned at the start of every rollout and every episode; report the first
        # violation in time-major order (lowest step, then lowest env), like the C++ code.
        assign = self._store["assign"].astype(bool)                                   # [T, E]
        ended = self._store["terminated"].astype(bool) | self._store["truncated"].astype(bool)
        if not assign[0].all():
            e = int(np.argmin(assign[0]))
            raise ValueError("assign must be 1 at step 0 of every env (skills are assigned at the "
                             f"start of each rollout), but env {e} has assign=0 at step 0")
        bad = ended[:-1] & ~assign[1:]                                                # [T-1, E]
        if bad.any():
            t, e = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError("assign must be 1 at the step after an episode end (skills are assigned "
                             f"at the start of each episode), but env {e} ended at step {t} and has "
                             f"assign=0 at step {t + 1}")

    def finalize(self, *, log_q_team: np.ndarray, log_q_agent: np.ndarray, last_values: np.ndarray,
                 last_hl_values: np.ndarray, gamma: float, gae_lambda: float, gamma_high: float,
                 gae_lambda_high: float, lambda_e: float, lambda_D: float, lambda_d: float) -> None:
        """Mix rewards (paper Eq. 4), sum segment rewards, and run GAE for both levels.

        log_q_team f32[T, E] = log q_D(Z | s_{t+1}); log_q_agent f32[T, E, A] =
        log q_d(z^i | o^i_{t+1}, Z); last_values f32[E, A] and last_hl_values f32[E, A+1] are the
        values after the rollout's last step. Raises RuntimeError on a partial buffer, ValueError
        if a segment does not start at t = 0 or right after an episode end.
        """
        T, E, A, H = self._T, self._E, self._A, self._A + 1
        f32 = np.float32
        log_q_team = _checked(log_q_team, "log_q_team", f32, (T, E), "[T, E]")
        log_q_agent = _checked(log_q_agent, "log_q_agent", f32, (T, E, A), "[T, E, A]")
        last_values = _checked(last_values, "last_values", f32, (E, A), "[E, A]")
        last_hl_values = _checked(last_hl_values, "last_hl_values", f32, (E, H), "[E, A+1]")
        if self._size != T:
            raise RuntimeError(f"finalize needs a full buffer: {self._size}/{T} steps")
        self._check_segment_starts()

        # float32 scalars so every operation below stays in float32, like the C++ code.
        gamma, gae_lambda, gamma_high, gae_lambda_high, lambda_e, lambda_D, lambda_d = (
            f32(x) for x in (gamma, gae_lambda, gamma_high, gae_lambda_high, lambda_e, lambda_D, lambda_d))
        s, out = self._store, self._out
        reward, values, boot = s["reward"], s["values"], s["bootstrap_values"]
        terminated, truncated = s["terminated"].astype(bool), s["truncated"].astype(bool)  # [T, E]

        # Paper Eq. 4, per agent: [T, E, 1] + [T, E, 1] + [T, E, A] -> [T, E, A]
        rewards = (lambda_e * reward[:, :, None] + lambda_D * log_q_team[:, :, None]
                   + lambda_d * log_q_agent)
        out["rewards"][...] = rewards

        # Low level: GAE per (env, agent), backwards over t.
        gae = np.zeros((E, A), f32)
        for t in range(T - 1, -1, -1):
            next_v = last_values if t == T - 1 else values[t + 1]                    # [E, A]
            next_v = np.where(truncated[t][:, None], boot[t], next_v)
            next_v = np.where(terminated[t][:, None], f32(0), next_v)                # terminated wins
            not_ended = (~(terminated[t] | truncated[t])).astype(f32)[:, None]        # [E, 1]
            delta = rewards[t] + gamma * next_v - values[t]
            gae = delta + gamma * gae_lambda * not_ended * gae
            out["advantages"][t] = gae
            out["returns"][t] = gae + values[t]

        # High level: segment sums and GAE over each env's sequence of segments, backwards over t.
        assign = s["assign"].astype(bool)                                             # [T, E]
        hl_values, hl_boot = s["hl_values"], s["hl_bootstrap_values"]                 # [T, E, H]
        env = np.arange(E)
        seg_end = np.full(E, T - 1)           # last step of the segment holding t
        seg_sum = np.zeros(E, f32)            # team reward summed from t to seg_end
        gae_next = np.zeros((E, H), f32)      # GAE of the following segment
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                # A segment starts at t + 1, so the one holding t ends at t.
                seg_end = np.where(assign[t + 1], t, seg_end)
                seg_sum = np.where(assign[t + 1], f32(0), seg_sum)
            seg_sum = seg_sum + reward[t]
            starts = assign[t]                                                        # [E]
            term_end, trunc_end = terminated[seg_end, env], truncated[seg_end, env]   # [E]
            rollout_end = seg_end == T - 1
            after = np.minimum(seg_end + 1, T - 1)   # next segment's first step (unused at T-1)
            next_v = np.where(rollout_end[:, None], last_hl_values, hl_values[after, env])  # [E, H]
            next_v = np.where(trunc_end[:, None], hl_boot[seg_end, env], next_v)
            next_v = np.where(term_end[:, None], f32(0), next_v)
            continues = (~(term_end | trunc_end | rollout_end)).astype(f32)[:, None]  # [E, 1]
            delta = seg_sum[:, None] + gamma_high * next_v - hl_values[t]
            gae_seg = delta + gamma_high * gae_lambda_high * continues * gae_next
            gae_next = np.where(starts[:, None], gae_seg, gae_next)
            out["hl_advantages"][t] = np.where(starts[:, None], gae_seg, f32(0))
            out["hl_returns"][t] = np.where(starts[:, None], gae_seg + hl_values[t], f32(0))
            out["hl_rewards"][t] = np.where(starts, seg_sum, f32(0))
            out["segment_lengths"][t] = np.where(starts, seg_end - t + 1, 0)
            out["hl_dones"][t] = starts & term_end
        self._finalized = True

    # --- reading -------------------------------------------------------------------------------

    def _output(self, name: str) -> np.ndarray:
        if not self._finalized:
            raise RuntimeError(f"{name} is available only after finalize() on a full buffer")
        return _read_only(self._out[name])

    size = property(lambda self: self._size, doc="Steps stored so far.")
    capacity = property(lambda self: self._T, doc="T, the rollout length.")
    finalized = property(lambda self: self._finalized, doc="True once finalize() has run on this data.")
    num_envs = property(lambda self: self._E)
    num_agents = property(lambda self: self._A)
    obs_dim = property(lambda self: self._obs_dim)
    state_dim = property(lambda self: self._state_dim)
    action_dim = property(lambda self: self._action_dim)
    mask_dim = property(lambda self: self._mask_dim)

    obs = property(lambda self: _read_only(self._store["obs"]))                    # [T, E, A, O]
    state = property(lambda self: _read_only(self._store["state"]))                # [T, E, S]
    actions = property(lambda self: _read_only(self._store["actions"]))            # [T, E, A, D]
    log_probs = property(lambda self: _read_only(self._store["log_probs"]))        # [T, E, A]
    values = property(lambda self: _read_only(self._store["values"]))              # [T, E, A]
    reward = property(lambda self: _read_only(self._store["reward"]))              # [T, E]
    terminated = property(lambda self: _read_only(self._store["terminated"]))      # [T, E]
    truncated = property(lambda self: _read_only(self._store["truncated"]))        # [T, E]
    bootstrap_values = property(lambda self: _read_only(self._store["bootstrap_values"]))  # [T, E, A]
    alive = property(lambda self: _read_only(self._store["alive"]))                # [T, E, A]
    team_skill = property(lambda self: _read_only(self._store["team_skill"]))      # [T, E]
    agent_skill = property(lambda self: _read_only(self._store["agent_skill"]))    # [T, E, A]
    assign = property(lambda self: _read_only(self._store["assign"]))              # [T, E]
    hl_log_probs = property(lambda self: _read_only(self._store["hl_log_probs"]))  # [T, E, A+1]
    hl_values = property(lambda self: _read_only(self._store["hl_values"]))        # [T, E, A+1]
    hl_bootstrap_values = property(lambda self: _read_only(self._store["hl_bootstrap_values"]))
    action_mask = property(lambda self: _read_only(self._store["action_mask"]))    # [T, E, A, M]

    rewards = property(lambda self: self._output("rewards"))                  # [T, E, A]
    advantages = property(lambda self: self._output("advantages"))            # [T, E, A]
    returns = property(lambda self: self._output("returns"))                  # [T, E, A]
    hl_rewards = property(lambda self: self._output("hl_rewards"))            # [T, E]
    segment_lengths = property(lambda self: self._output("segment_lengths"))  # [T, E]
    hl_dones = property(lambda self: self._output("hl_dones"))                # [T, E]
    hl_advantages = property(lambda self: self._output("hl_advantages"))      # [T, E, A+1]
    hl_returns = property(lambda self: self._output("hl_returns"))            # [T, E, A+1]

    def __repr__(self) -> str:
        return (f"ReferenceRolloutBuffer(T={self._T}, E={self._E}, A={self._A}, obs_dim={self._obs_dim}, "
                f"state_dim={self._state_dim}, action_dim={self._action_dim}, size={self._size})")


AnyRolloutBuffer = Union[_core.RolloutBuffer, ReferenceRolloutBuffer]


def make_rollout_buffer(backend: str = "cpp", **shape: int) -> AnyRolloutBuffer:
    """Build a rollout buffer; ``shape`` holds T, E, A, obs_dim, state_dim, action_dim and optionally mask_dim (default 0).

    ``backend`` is ``"cpp"`` (fast, for training) or ``"numpy"`` (the reference oracle).
    Raises ValueError for an unknown backend or a non-positive dimension, TypeError for a
    missing or unknown shape name.
    """
    if backend == "cpp":
        return _core.RolloutBuffer(**shape)
    if backend == "numpy":
        return ReferenceRolloutBuffer(**shape)
    raise ValueError(f"unknown rollout buffer backend {backend!r}: choose one of {', '.join(BACKENDS)}")
