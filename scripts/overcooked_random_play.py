#!/usr/bin/env python3
"""How often does uniform random play deliver a soup? The exploration baseline of a sparse Overcooked layout.

Plays N episodes of 400 steps with uniform random actions for both agents, vectorised in JAX (the
env's own `step_env`, as hmasd_envs.overcooked steps it), and prints the mean team return per episode
and how many episodes delivered at least one soup. A learner sees a soup, its only reward, about as
often as random play delivers one until its policy improves on random play.

    .venv/bin/python scripts/overcooked_random_play.py --layout asymmetric_advantages --episodes 2000
"""
from __future__ import annotations

import argparse
import sys

from hmasd_envs.overcooked import DELIVERY_REWARD, LAYOUTS, N_ACTIONS


def random_returns(layout: str, episodes: int, max_steps: int, seed: int):
    """Team return of each of `episodes` random-play episodes (a NumPy array)."""
    import jax
    import numpy as np
    from jaxmarl.environments.overcooked import Overcooked, overcooked_layouts

    env = Overcooked(layout=overcooked_layouts[LAYOUTS[layout]], max_steps=max_steps)

    def episode(key):
        key, reset_key = jax.random.split(key)
        _, state = env.reset(reset_key)

        def step(carry, _):
            key, state = carry
            key, k0, k1, k_env = jax.random.split(key, 4)
            actions = {"agent_0": jax.random.randint(k0, (), 0, N_ACTIONS),
                       "agent_1": jax.random.randint(k1, (), 0, N_ACTIONS)}
            _, state, rewards, _, _ = env.step_env(k_env, state, actions)
            return (key, state), rewards["agent_0"]  # the team's reward, 20 per soup

        _, rewards = jax.lax.scan(step, (key, state), None, length=max_steps)
        return rewards.sum()

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    return np.asarray(jax.jit(jax.vmap(episode))(keys))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", default="asymmetric_advantages", help=f"one of {', '.join(LAYOUTS)}")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.layout not in LAYOUTS:
        print(f"overcooked_random_play.py: error: unknown layout '{args.layout}': use one of {', '.join(LAYOUTS)}",
              file=sys.stderr)
        return 2
    if args.episodes < 1 or args.max_steps < 1:
        print("overcooked_random_play.py: error: --episodes and --max-steps must be at least 1", file=sys.stderr)
        return 2
    returns = random_returns(args.layout, args.episodes, args.max_steps, args.seed)
    print(f"{args.layout}: {args.episodes} episodes of {args.max_steps} steps, random return per episode "
          f"{returns.mean():.3f} ({returns.sum() / DELIVERY_REWARD:.0f} soups), episodes with a soup "
          f"{int((returns > 0).sum())} of {args.episodes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
