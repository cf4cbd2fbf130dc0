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
Pick one with ``make_rollout_buffer``. This module is the only importer of ``hmasd._core``. The
fields each stores are listed once per side: hmasd/rollout_fields.py (STEP_FIELDS, OUTPUT_FIELDS; the
oracle below is built from them) and csrc/rollout_fields.hpp.

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
from hmasd.rollout_fields import OUTPUT_FIELDS, STEP_FIELD_NAMES, STEP_FIELDS

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

    Storage, ``add``'s checks and the read-only properties are built from the one schema table
    (hmasd/rollout_fields.py: STEP_FIELDS, OUTPUT_FIELDS). ``finalize`` is a plain backward loop over t,
    vectorised over envs and agents, in float32 with the operations in the same order as the C++
    code (see the module docstring for the rules).
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
        self._sizes = {"E": E, "A": A, "O": obs_dim, "S": state_dim, "D": action_dim, "M": mask_dim}
        self._size = 0
        self._finalized = False
        self._store = {f.name: np.zeros((T, *f.shape(self._sizes)), f.dtype) for f in STEP_FIELDS}
        self._out = {f.name: np.zeros((T, *f.shape(self._sizes)), f.dtype) for f in OUTPUT_FIELDS}

    # --- writing -------------------------------------------------------------------------------

    def add(self, **step: np.ndarray | None) -> None:
        """Store step t = size of every env and advance size; the keyword arguments are the names of
        STEP_FIELDS (action_mask only, and then required, when mask_dim > 0). Shapes: module docstring."""
        unknown = sorted(set(step) - set(STEP_FIELD_NAMES))
        if unknown:
            raise TypeError(f"add() got an unexpected keyword argument '{unknown[0]}'")
        checked = {}
        for f in STEP_FIELDS:
            if f.optional and self._mask_dim == 0:
                if step.get(f.name) is not None:
                    raise ValueError(f"{f.name} given, but this buffer stores no masks (mask_dim=0)")
                continue
            if f.name not in step and not f.optional:
                raise TypeError(f"add() missing required keyword argument: '{f.name}'")
            checked[f.name] = _checked(step.get(f.name), f.name, f.dtype, f.shape(self._sizes), f.label)
        if self._size >= self._T:
            raise RuntimeError(f"rollout buffer is full ({self._T}/{self._T} steps): "
                               "call reset() before add()")
        for name, arr in checked.items():
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

    def __repr__(self) -> str:
        return (f"ReferenceRolloutBuffer(T={self._T}, E={self._E}, A={self._A}, obs_dim={self._obs_dim}, "
                f"state_dim={self._state_dim}, action_dim={self._action_dim}, size={self._size})")


# One read-only property per field of the schema: stored steps [T, *axes], and the outputs of
# finalize() [T, *axes], which refuse before finalize() like the C++ ones.
for _f in STEP_FIELDS:
    setattr(ReferenceRolloutBuffer, _f.name,
            property(lambda self, _n=_f.name: _read_only(self._store[_n]), doc=f"[T, {_f.label[1:]}"))
for _f in OUTPUT_FIELDS:
    setattr(ReferenceRolloutBuffer, _f.name,
            property(lambda self, _n=_f.name: self._output(_n), doc=f"[T, {_f.label[1:]}"))
del _f


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
