"""Typed stub of the C++ extension hmasd._core (the fused rollout buffer).

Shapes: T steps, E envs, A agents, O obs_dim, S state_dim, D action_dim; A+1 high-level heads
(0 = team skill Z, 1+i = agent i's skill z^i). Contracts: hmasd/buffer.py.

Written by hand (pybind11 modules cannot be stubbed automatically); tests/test_rollout_schema.py holds
its fields, dtypes and shape comments equal to the schema in hmasd/rollout_fields.py.
"""
import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_U8 = npt.NDArray[np.uint8]
_I32 = npt.NDArray[np.int32]
_I64 = npt.NDArray[np.int64]

# The fields of the buffer as the C++ list (csrc/rollout_fields.hpp) spells them:
# (name, dtype name, per-step axes after T, optional).
STEP_FIELDS: tuple[tuple[str, str, tuple[str, ...], bool], ...]
OUTPUT_FIELDS: tuple[tuple[str, str, tuple[str, ...], bool], ...]

class RolloutBuffer:
    def __init__(self, T: int, E: int, A: int, obs_dim: int, state_dim: int, action_dim: int, mask_dim: int = 0) -> None: ...
    def add(
        self,
        *,
        obs: _F32,  # [E, A, O]
        state: _F32,  # [E, S]
        actions: _F32,  # [E, A, D]
        log_probs: _F32,  # [E, A]
        values: _F32,  # [E, A]
        reward: _F32,  # [E]
        terminated: _U8,  # [E]
        truncated: _U8,  # [E]
        bootstrap_values: _F32,  # [E, A]
        alive: _U8,  # [E, A]
        team_skill: _I64,  # [E]
        agent_skill: _I64,  # [E, A]
        assign: _U8,  # [E]
        hl_log_probs: _F32,  # [E, A+1]
        hl_values: _F32,  # [E, A+1]
        hl_bootstrap_values: _F32,  # [E, A+1]
        action_mask: _U8 | None = None,  # [E, A, M]; required when mask_dim > 0, else None
    ) -> None: ...
    def finalize(
        self,
        *,
        log_q_team: _F32,  # [T, E]
        log_q_agent: _F32,  # [T, E, A]
        last_values: _F32,  # [E, A]
        last_hl_values: _F32,  # [E, A+1]
        gamma: float,
        gae_lambda: float,
        gamma_high: float,
        gae_lambda_high: float,
        lambda_e: float,
        lambda_D: float,
        lambda_d: float,
    ) -> None: ...
    def reset(self) -> None: ...
    @property
    def size(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def finalized(self) -> bool: ...
    @property
    def num_envs(self) -> int: ...
    @property
    def num_agents(self) -> int: ...
    @property
    def obs_dim(self) -> int: ...
    @property
    def state_dim(self) -> int: ...
    @property
    def action_dim(self) -> int: ...
    @property
    def mask_dim(self) -> int: ...
    # Stored steps: read-only views of the buffer's storage.
    @property
    def obs(self) -> _F32: ...  # [T, E, A, O]
    @property
    def state(self) -> _F32: ...  # [T, E, S]
    @property
    def actions(self) -> _F32: ...  # [T, E, A, D]
    @property
    def log_probs(self) -> _F32: ...  # [T, E, A]
    @property
    def values(self) -> _F32: ...  # [T, E, A]
    @property
    def reward(self) -> _F32: ...  # [T, E]
    @property
    def terminated(self) -> _U8: ...  # [T, E]
    @property
    def truncated(self) -> _U8: ...  # [T, E]
    @property
    def bootstrap_values(self) -> _F32: ...  # [T, E, A]
    @property
    def alive(self) -> _U8: ...  # [T, E, A]
    @property
    def team_skill(self) -> _I64: ...  # [T, E]
    @property
    def agent_skill(self) -> _I64: ...  # [T, E, A]
    @property
    def assign(self) -> _U8: ...  # [T, E]
    @property
    def hl_log_probs(self) -> _F32: ...  # [T, E, A+1]
    @property
    def hl_values(self) -> _F32: ...  # [T, E, A+1]
    @property
    def hl_bootstrap_values(self) -> _F32: ...  # [T, E, A+1]
    @property
    def action_mask(self) -> _U8: ...  # [T, E, A, M]
    # Outputs of finalize(): read-only views; RuntimeError before finalize().
    @property
    def rewards(self) -> _F32: ...  # [T, E, A]  paper Eq. 4
    @property
    def advantages(self) -> _F32: ...  # [T, E, A]
    @property
    def returns(self) -> _F32: ...  # [T, E, A]
    @property
    def hl_rewards(self) -> _F32: ...  # [T, E]
    @property
    def segment_lengths(self) -> _I32: ...  # [T, E]
    @property
    def hl_dones(self) -> _U8: ...  # [T, E]
    @property
    def hl_advantages(self) -> _F32: ...  # [T, E, A+1]
    @property
    def hl_returns(self) -> _F32: ...  # [T, E, A+1]

def cuda_available() -> bool:
    """True when the optional CUDA kernel was built (HMASD_CUDA=1) and a CUDA device is present.

    A build with HMASD_CUDA=1 also defines `low_level_gae_cuda(*, reward, log_q_team, log_q_agent,
    values, bootstrap_values, last_values, terminated, truncated, gamma, gae_lambda, lambda_e,
    lambda_D, lambda_d) -> (rewards, advantages, returns)`.
    """
