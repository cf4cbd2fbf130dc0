"""Where one synchronous iteration's time goes: the phases run one after another, timed apart."""
from __future__ import annotations

import time

PHASES = ("collect", "finalize", "discriminators", "coordinator", "discoverer")


def phase_seconds(collector, learner, rounds: int) -> dict[str, float]:
    """The median seconds of each phase over `rounds` iterations (collect, then each part of the
    update in turn; MAPPO has no discriminators or coordinator, whose phases then take 0 s)."""
    skills = learner.agent.uses_skills
    rows = []
    for _ in range(rounds):
        t = [time.perf_counter()]
        ro = collector.collect()
        t.append(time.perf_counter())
        learner.finalize(ro)
        t.append(time.perf_counter())
        if skills:
            learner.update_discriminators(ro)
        t.append(time.perf_counter())
        if skills:
            learner.update_coordinator(ro)
        t.append(time.perf_counter())
        learner.update_discoverer(ro)
        t.append(time.perf_counter())
        learner.agent.policy_version += 1
        rows.append([b - a for a, b in zip(t, t[1:])])
    return {name: sorted(col)[len(col) // 2] for name, col in zip(PHASES, zip(*rows))}
