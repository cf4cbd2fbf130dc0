"""Shared data for the benchmarks: a filled rollout at production shapes."""
from __future__ import annotations

import numpy as np

# Production shapes (paper settings: 32 rollout threads; SMAC-like agents and dimensions).
E, A, O, S, D = 32, 3, 18, 54, 1
K = 25  # skill interval
COEFS = dict(gamma=0.99, gae_lambda=0.95, gamma_high=0.99, gae_lambda_high=0.95,
             lambda_e=100.0, lambda_D=0.1, lambda_d=0.5)


def filled_rollout(T: int, seed: int = 0):
    """Buffer shape, the add() arguments of T steps and the finalize() arguments.

    Episodes end with probability 1% per step (half terminated, half truncated); skills are
    assigned at t = 0, after every episode end and every K steps.
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32
    H = A + 1
    term = rng.random((T, E)) < 0.005
    trunc = rng.random((T, E)) < 0.005
    since = np.zeros(E, int)
    steps = []
    for t in range(T):
        assign = (t == 0) | (since >= K)
        if t > 0:
            assign |= term[t - 1] | trunc[t - 1]
        since = np.where(assign, 1, since + 1)
        steps.append(dict(
            obs=rng.normal(size=(E, A, O)).astype(f32),
            state=rng.normal(size=(E, S)).astype(f32),
            actions=rng.integers(0, 5, (E, A, D)).astype(f32),
            log_probs=-rng.random((E, A), dtype=f32),
            values=rng.normal(size=(E, A)).astype(f32),
            reward=rng.normal(size=E).astype(f32),
            terminated=term[t].astype(np.uint8),
            truncated=trunc[t].astype(np.uint8),
            bootstrap_values=rng.normal(size=(E, A)).astype(f32),
            alive=np.ones((E, A), np.uint8),
            team_skill=rng.integers(0, 3, E),
            agent_skill=rng.integers(0, 3, (E, A)),
            assign=assign.astype(np.uint8),
            hl_log_probs=-rng.random((E, H), dtype=f32),
            hl_values=rng.normal(size=(E, H)).astype(f32),
            hl_bootstrap_values=rng.normal(size=(E, H)).astype(f32),
        ))
    fin = dict(
        log_q_team=np.log(rng.uniform(0.05, 1.0, (T, E))).astype(f32),
        log_q_agent=np.log(rng.uniform(0.05, 1.0, (T, E, A))).astype(f32),
        last_values=rng.normal(size=(E, A)).astype(f32),
        last_hl_values=rng.normal(size=(E, H)).astype(f32),
        **COEFS,
    )
    shape = dict(T=T, E=E, A=A, obs_dim=O, state_dim=S, action_dim=D)
    return shape, steps, fin
