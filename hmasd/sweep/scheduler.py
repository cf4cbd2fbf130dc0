"""Running a sweep's trainings as Ray tasks, at most `max_concurrent` at a time, each reserving the
CPUs it keeps busy, so that Ray never places more runs on a node than its cores hold."""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Callable

from hmasd.ray_init import RayUnavailable, init_ray
from hmasd.sweep.plan import Run, RunState, SweepInputError
from hmasd.sweep.report import Outcome
from hmasd.sweep.resources import available_memory, cores_per_run, default_max_concurrent, machine_cores
from hmasd.sweep.task import StopFlag, run_training


def check_address(address: str) -> None:
    """Refuse a HOST:PORT that nothing answers on, as one line: ray.init would retry for minutes."""
    m = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d+)", address)
    if not m:
        return  # another form Ray knows ("auto", "ray://..."): Ray judges it
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=10).close()
    except OSError as exc:
        raise SweepInputError(f"--ray-address {address}: nothing answers there ({exc.strerror or exc}): start the head "
                              "with 'ray start --head --port=6379', or leave --ray-address out for a local Ray") from None


def _node_cpus(ray) -> int:
    """The most CPUs one node of the cluster has: a task (one training) cannot span nodes."""
    return int(max(node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]) or 1)


def execute(runs: list[Run], states: dict[str, RunState], out_dir: Path, config_text: str, address: str | None,
            max_concurrent: int | None, say: Callable[[str], None]) -> tuple[dict[str, Outcome], bool]:
    """Train every run (resuming those with a checkpoint). Returns (outcome per run, interrupted).

    On Ctrl-C the running trainings are told to stop (each saves its final checkpoint, so a rerun
    resumes it) and are waited for; a second Ctrl-C stops the waiting. Ray is shut down on the way
    out either way. Raises SweepInputError (nothing started) when Ray is missing or `address` does
    not answer."""
    local = address is None
    if not local:
        check_address(address)
    cores = machine_cores()
    try:
        ray = init_ray(address, num_cpus=cores if local else None)
    except RayUnavailable as exc:
        raise SweepInputError(str(exc)) from None
    outcomes = {run.name: Outcome("not started") for run in runs}
    interrupted = False
    try:
        node_cpus = cores if local else _node_cpus(ray)
        # A run needing more cores than any node has still runs, on all of one node's cores.
        cpus = {run.name: min(cores_per_run(run.cfg, node_cpus), node_cpus) for run in runs}
        if max_concurrent is None:
            if local:
                max_concurrent = default_max_concurrent([r.cfg for r in runs], cores, available_memory())
            else:  # the nodes' memory is not known here; Ray's CPU reservations keep each node's cores
                max_concurrent = max(1, int(ray.cluster_resources().get("CPU", 1)) // max(cpus.values()))
        say(f"{len(runs)} run(s) to train, {max_concurrent} at a time, {max(cpus.values())} CPU(s) each, on "
            + ("a local Ray on 127.0.0.1" if local else f"the Ray cluster at {address}"))
        # On one machine each concurrent run gets its own cores (see hmasd/sweep/task.py: _child_setup).
        width = max(cpus.values())
        slots = [list(range(k * width, (k + 1) * width)) for k in range(max_concurrent)] \
            if local and hasattr(os, "sched_getaffinity") and max_concurrent * width <= cores else None
        affinity = sorted(os.sched_getaffinity(0)) if slots else []
        free = list(range(max_concurrent))

        task = ray.remote(run_training)
        flag = ray.remote(StopFlag).options(num_cpus=0).remote()
        queue, running = list(runs), {}

        def collect(ref) -> None:
            run, slot = running.pop(ref)
            free.append(slot)
            try:
                result = ray.get(ref)
                code, detail = result["exit_code"], result["last_line"]
            except ray.exceptions.RayError as exc:  # the task itself failed (its worker died, ...)
                code, detail = None, (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
            if code == 0:
                outcomes[run.name] = Outcome("finished", 0)
                say(f"finished {run.name}")
            elif code == 130 and interrupted:
                outcomes[run.name] = Outcome("stopped", code, detail)
                say(f"stopped {run.name} (checkpoint saved; a rerun resumes it)")
            else:
                outcomes[run.name] = Outcome("failed", code, detail)
                say(f"FAILED {run.name} (exit {code}): {detail}")

        try:
            while queue or running:
                while queue and len(running) < max_concurrent:
                    run = queue.pop(0)
                    slot = free.pop(0)
                    cores_of = [affinity[c] for c in slots[slot]] if slots else None
                    state = states[run.name]
                    resume = str(state.checkpoint) if state.kind == "resume" else None
                    # max_retries=0: Ray must not rerun a failed training behind the user's back.
                    ref = task.options(num_cpus=cpus[run.name], max_retries=0, name=f"hmasd-sweep:{run.name}").remote(
                        run.name, str(run.folder(out_dir)), config_text, list(run.overrides), resume,
                        run.cfg.total_env_steps, flag, cores_of)
                    running[ref] = (run, slot)
                    how = f"resuming from {resume} ({state.env_steps} env steps)" if resume else "new"
                    say(f"started {run.name} ({how})")
                ready, _ = ray.wait(list(running), num_returns=1)
                collect(ready[0])
        except KeyboardInterrupt:
            interrupted = True
            say(f"interrupted: stopping {len(running)} running training(s), each saves a checkpoint "
                "(Ctrl-C again to stop waiting)")
            flag.set.remote()
            try:
                while running:
                    collect(next(iter(running)))
            except KeyboardInterrupt:
                say("not waiting any longer: the trainings finish their checkpoints on their own")
    finally:
        ray.shutdown()
    return outcomes, interrupted
