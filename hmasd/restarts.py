"""Env workers that come back (RLlib's `restart_failed_env_runners` is the model).

A worker that crashes, is killed, hangs past `step_timeout_s`, or whose env raises in `step` or `reset`
ends the rollout being collected. The rollout is thrown away whole (the buffer is reset at the start of
every collection, so none of its samples reaches the learner), every env is rebuilt in fresh workers
and reseeded, and the rollout is collected again under the same policy version: no update happens in
between, so every update still holds exactly batch_size samples of one version.

Why every worker and not only the failed one: the rollout is synchronous across all envs, so it is
discarded for all of them anyway, and the healthy workers may be one step ahead of the collector when
the fault is seen (they answered the step the failed one did not). Fresh episodes everywhere are the
state that is known to be consistent.
"""
from __future__ import annotations

from typing import Callable

from hmasd.records import EnvFailure

# Restart r reseeds env i with seed + r * stride + i: a new, reproducible seed per restart, apart from
# the first build's seeds for any run of fewer envs than this.
RESTART_SEED_STRIDE = 100_003
TRACEBACK_LINES = 3  # of the worker's traceback, on the warning line


def restart_seed(seed: int, restarts: int) -> int:
    return seed + RESTART_SEED_STRIDE * restarts


def describe_failure(err: EnvFailure) -> str:
    """One line: the worker, its envs, the cause and the last lines of its traceback (if it sent one)."""
    cause = str(err).split("\n--- worker traceback ---", 1)[0].strip()
    text = f"worker {err.worker} (envs {err.envs.start}-{err.envs.stop - 1}): {cause}"
    if err.worker_traceback:
        tail = [ln.strip() for ln in err.worker_traceback.strip().splitlines() if ln.strip()][-TRACEBACK_LINES:]
        text += " | traceback: " + " / ".join(tail)
    return text


def collect_with_restarts(collect: Callable[[], object], restart: Callable[[EnvFailure, int], None],
                          max_restarts: int, stopping: Callable[[], bool]) -> object:
    """`collect()` until it succeeds; after each EnvFailure call `restart(err, attempt)` and try
    again. Raises the last EnvFailure after `max_restarts` restarts for this one rollout, or at once
    when a stop was requested (the caller saves and exits; rebuilding envs would only delay it)."""
    failures = 0
    while True:
        try:
            if failures:
                restart(cause, failures)
            return collect()
        except EnvFailure as err:
            failures += 1
            cause = err
            if failures > max_restarts or stopping():
                raise
