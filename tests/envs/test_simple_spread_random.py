"""A uniform random policy on simple_spread_v3 through the adapter scores what MPE reports."""
import numpy as np

from hmasd_envs import make_env


def test_random_policy_team_return():
    env = make_env("simple_spread_v3")
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    returns, lengths = [], []
    while len(returns) < 200:
        step = env.step(rng.integers(0, env.spec.n_actions, size=env.spec.num_agents))
        if step.episode is not None:
            returns.append(step.episode["return"])
            lengths.append(step.episode["length"])
    mean = float(np.mean(returns))
    print(f"simple_spread_v3 random policy: mean team return {mean:.2f} over {len(returns)} episodes "
          f"(std {np.std(returns):.2f})")
    assert set(lengths) == {25.0}
    # About -81 is the usual figure for N=3, local_ratio=0.5; the band allows sampling noise
    # (the standard error over 200 episodes is under 2).
    assert -95.0 < mean < -68.0
