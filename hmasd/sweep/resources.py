"""How much of a machine one training takes, and so how many of a sweep's runs fit at once."""
from __future__ import annotations

import os

from hmasd.config import Config

GiB = 2**30
# Memory of one training, kept simple: the trainer process (torch, the networks, the rollout buffer;
# a smoke run peaks at about 0.45 GiB, real configs more) is counted as 1 GiB, and each env worker
# process (Python, NumPy and its envs, no torch) as 0.25 GiB.
TRAINER_BYTES = 1 * GiB
WORKER_BYTES = GiB // 4


def machine_cores() -> int:
    """The cores this process may run on (its affinity, which a container or taskset may narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def available_memory() -> int:
    """Memory that can be given to new processes without swapping (MemAvailable: free plus what the
    kernel can reclaim), not the total: other programs on the machine keep what they hold."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def env_workers(cfg: Config, cores: int) -> int:
    """Env worker processes of a training on a machine with `cores` cores (as VecEnv counts them)."""
    if cfg.backend == "local":
        return 0  # the envs step inside the trainer process
    return min(cfg.num_workers or cores, cfg.num_envs)


def cores_per_run(cfg: Config, cores: int) -> int:
    """Cores one training keeps busy. Training is synchronous: the env workers step while the learner
    waits, then the learner updates while the workers wait, so the two phases share cores and the need
    is the larger of the two, not their sum. The learner uses torch_threads, twice over when the
    coordinator and the discoverer update on two threads at once (parallel_update, HMASD only)."""
    learner = cfg.torch_threads * (2 if cfg.parallel_update and cfg.uses_skills else 1)
    return max(1, env_workers(cfg, cores), learner)


def memory_per_run(cfg: Config, cores: int) -> int:
    return TRAINER_BYTES + WORKER_BYTES * env_workers(cfg, cores)


def default_max_concurrent(configs: list[Config], cores: int, memory: int) -> int:
    """min(cores // cores_per_run, memory // memory_per_run), for the most demanding config of the
    sweep, and at least 1 (a run larger than the machine still runs, alone)."""
    need_cores = max(cores_per_run(c, cores) for c in configs)
    need_memory = max(memory_per_run(c, cores) for c in configs)
    return max(1, min(cores // need_cores, memory // need_memory))
