#!/usr/bin/env python3
"""What does each agent skill do in Overcooked? An instrument for an HMASD checkpoint.

Plays the checkpoint's policy (skills chosen by the coordinator, or all fixed with --skills Z,z1,z2)
and, per agent and per individual skill z, counts over the agent-steps once a skill segment is at
least `--settle` steps old: the three cells the agent stands on most, how often it stands next to
each kind of object (onion pile, pot, plate pile, delivery window), how often it presses interact,
and how often it carries an onion, a plate or a soup. A soup needs all four objects and the carrying
in between, so skills that never stand next to them, or never carry, cannot be composed into one.
Everything is read from the agents' lossless grid observations (JaxMARL channel layout: 0 own
position, 10 pots, 12 onion piles, 14 plate piles, 15 delivery, 21 soups, 22 plates, 23 onions).

    .venv/bin/python scripts/overcooked_skill_map.py --model-path RUN/models/NAME/hmasd_sync_enhanced_final.pth
"""
from __future__ import annotations

import argparse
import collections
import sys

import numpy as np

from hmasd.evaluate import LOAD_ERRORS, load_agent, parse_skills
from hmasd.pipeline import build
from hmasd_envs.overcooked import DELIVERY_REWARD, OvercookedEnv

OWN, POT, ONION_PILE, PLATE_PILE, DELIVERY, SOUP, PLATE, ONION = 0, 10, 12, 14, 15, 21, 22, 23
NEXT_TO = {"onion pile": ONION_PILE, "pot": POT, "plate pile": PLATE_PILE, "delivery": DELIVERY}
CARRIED = {"onion": ONION, "plate": PLATE, "soup": SOUP}
INTERACT = 5  # JaxMARL's action index of "interact"


def _adjacent(layer: np.ndarray, r: int, c: int) -> bool:
    h, w = layer.shape
    return any(0 <= r + dr < h and 0 <= c + dc < w and layer[r + dr, c + dc] > 0
               for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=800, help="env steps per env")
    parser.add_argument("--settle", type=int, default=5, help="segment age from which steps count")
    parser.add_argument("--skills", default="coordinator", help="coordinator, uniform or Z,z1,z2")
    args = parser.parse_args()
    try:
        agent, cfg, _ = load_agent(args.model_path, [])
    except LOAD_ERRORS as exc:
        print(f"overcooked_skill_map.py: error: {exc}", file=sys.stderr)
        return 2
    if not cfg.env.id.startswith("overcooked_") or not agent.uses_skills:
        print(f"overcooked_skill_map.py: error: {args.model_path} is not an HMASD checkpoint on Overcooked",
              file=sys.stderr)
        return 2
    try:
        skills = parse_skills(args.skills, cfg, agent)
    except ValueError as exc:
        print(f"overcooked_skill_map.py: error: {exc}", file=sys.stderr)
        return 2
    agent.eval()
    # The sparse reward counts the soups exactly; the policy never sees the reward, so this changes no action.
    pipe = build(cfg, seed=cfg.seed + 3000, num_envs=args.envs, backend="local", with_learner=False,
                 agent=agent, skills=skills, env_kwargs={**cfg.env.kwargs, "shaped_reward": False})
    shape = OvercookedEnv(layout=cfg.env.id.removeprefix("overcooked_")).observation_space("agent_0").shape
    size = int(np.prod(shape))  # the grid comes first in the flat observation (an agent-id one-hot may follow)
    collector = pipe.collector
    n_z = cfg.hmasd.n_agent_skills
    cells = collections.defaultdict(collections.Counter)  # (agent, z) -> cell counts
    counts = collections.defaultdict(collections.Counter)  # (agent, z) -> event counts
    soups = 0.0
    try:
        for t in range(args.steps):
            step, record = collector.step(rollout_start=(t == 0))
            soups += float(np.sum(record["reward"])) / DELIVERY_REWARD
            settled = collector.skill_age >= args.settle
            E, A = record["agent_skill"].shape
            obs = record["obs"].reshape(E, A, -1)
            for e in np.flatnonzero(settled):
                for i in range(A):
                    grid = obs[e, i, :size].reshape(shape)
                    r, c = np.argwhere(grid[:, :, OWN] > 0)[0]
                    key = (i, int(record["agent_skill"][e, i]))
                    cells[key][(int(r), int(c))] += 1
                    ev = counts[key]
                    ev["steps"] += 1
                    ev["interact"] += int(record["actions"][e, i, 0] == INTERACT)
                    for name, ch in NEXT_TO.items():
                        ev[f"next to {name}"] += int(_adjacent(grid[:, :, ch], r, c))
                    for name, ch in CARRIED.items():
                        ev[f"carries {name}"] += int(grid[r, c, ch] > 0)
    finally:
        pipe.close()
    print(f"{args.envs * args.steps} env steps, {soups:g} soups delivered")
    for i in range(agent.n_agents):
        for z in range(n_z):
            ev, total = counts[(i, z)], counts[(i, z)]["steps"]
            if not total:
                print(f"agent {i} z={z}: never used after settling")
                continue
            top = ", ".join(f"{rc} {n / total:.0%}" for rc, n in cells[(i, z)].most_common(3))
            facts = ", ".join(f"{k} {ev[k] / total:.0%}" for k in
                              ["interact", *[f"next to {n}" for n in NEXT_TO], *[f"carries {n}" for n in CARRIED]])
            print(f"agent {i} z={z} [{total} steps]: cells {top}; {facts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
