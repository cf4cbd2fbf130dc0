#!/usr/bin/env python3
"""Where does each agent skill lead? An Alice_and_Bob instrument for an HMASD checkpoint.

Plays the checkpoint's policy in a few envs and counts the cell each agent stands on once a skill
segment is at least `--settle` steps old, per individual skill z. The four objects sit in the
corners: blue button (0,0), red button (0,7), red diamond (7,0), blue diamond (7,7) as (row, col).
Skills that never reach them cannot be composed into a success, whatever the coordinator learns.
Segments of episodes that succeed within `--settle` steps do not count, so for a policy that already
solves the task the map shows mostly its rare long episodes: it is an instrument for failing runs.

    .venv/bin/python scripts/alice_skill_map.py --model-path runs/abr_s1/models/hmasd_sync_enhanced_final.pth
"""
from __future__ import annotations

import argparse
import collections
import sys

import numpy as np

from hmasd.evaluate import LOAD_ERRORS, load_agent
from hmasd.pipeline import build
from hmasd_envs.alice_and_bob import BLUE, BUTTONS, DIAMONDS, RED, SIZE  # observations hold position / (SIZE - 1)

COLOURS = {RED: "red", BLUE: "blue"}
OBJECTS = {**{cell: f"{COLOURS[c]} button" for c, cell in BUTTONS.items()},
           **{cell: f"{COLOURS[c]} diamond" for c, cell in DIAMONDS.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=400, help="env steps per env")
    parser.add_argument("--settle", type=int, default=30, help="segment age from which positions count")
    args = parser.parse_args()
    try:
        agent, cfg, _ = load_agent(args.model_path, [])
    except LOAD_ERRORS as exc:
        print(f"alice_skill_map.py: error: {exc}", file=sys.stderr)
        return 2
    if cfg.env.id != "alice_and_bob" or not agent.uses_skills:
        print(f"alice_skill_map.py: error: {args.model_path} is not an HMASD checkpoint on alice_and_bob",
              file=sys.stderr)
        return 2
    agent.eval()
    # one long run of steps: the collector only re-assigns skills every k steps and at episode starts
    pipe = build(cfg, seed=cfg.seed + 2000, num_envs=args.envs, backend="local", with_learner=False, agent=agent)
    collector = pipe.collector
    cells: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    try:
        for t in range(args.steps):
            step, _ = collector.step(rollout_start=(t == 0))
            settled = collector.skill_age >= args.settle
            _, agent_skills = collector.current_skills
            own = np.rint(step.obs[:, :, :2] * (SIZE - 1)).astype(int)  # [E, A, (row, col)]
            for e in np.flatnonzero(settled):
                for i in range(agent.n_agents):
                    cells[int(agent_skills[e, i])][tuple(own[e, i])] += 1
    finally:
        pipe.close()
    for z in range(cfg.hmasd.n_agent_skills):
        total = sum(cells[z].values())
        top = ", ".join(f"({r},{c}){' ' + OBJECTS[(r, c)] if (r, c) in OBJECTS else ''} {n / total:.0%}"
                        for (r, c), n in cells[z].most_common(3)) if total else "never used after settling"
        print(f"z={z}: {top}  [{total} agent-steps]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
