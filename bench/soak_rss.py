"""Soak benchmark (not CI): N updates of configs/smoke.yaml in a real `hmasd-train` subprocess, sampling
the resident memory (RSS) of the trainer and of its env workers, to show that memory does not grow.

  .venv/bin/python bench/soak_rss.py [--updates 1000] [--out soak.json]

Prints the RSS at update 100 (after warm-up: allocator pools, torch caches) and at the end, and the
growth in between; the target is under 5%. Worker restarts would change the worker PIDs: the workers'
figure is the sum over whichever workers are alive at each sample.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64  # smoke: 4 envs x 16 steps
WARMUP = 100


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def updates_done(jsonl: Path) -> int:
    if not jsonl.exists():
        return 0
    return sum(1 for line in jsonl.read_text().splitlines() if '"Buffer/SamplesCollected"' in line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=1000)
    p.add_argument("--out", help="write the samples as JSON here")
    args = p.parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="hmasd-soak-"))
    cmd = [str(Path(sys.executable).parent / "hmasd-train"), "--config", str(ROOT / "configs/smoke.yaml"),
           "--output-dir", str(out_dir), "--log-level", "WARNING", "--set", "run_name=soak",
           "--set", f"total_env_steps={BATCH * args.updates}", "--set", "eval_interval=0",
           "--set", f"save_interval={BATCH * args.updates}"]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    jsonl = out_dir / "logs" / "soak.jsonl"
    samples = []
    last = -1
    while proc.poll() is None:
        done = updates_done(jsonl)
        if done != last:
            try:
                workers = children(proc.pid)
                samples.append({"update": done, "trainer_kib": rss_kib(proc.pid),
                                "workers_kib": sum(rss_kib(w) for w in workers)})
            except (FileNotFoundError, ProcessLookupError):
                break  # the run is ending
            last = done
        time.sleep(0.5)
    if proc.wait() != 0:
        print(f"hmasd-train exited {proc.returncode}", file=sys.stderr)
        return 1
    # Samples taken while the run shut its workers down (or restarted them) have no workers: left out.
    after = [s for s in samples if s["update"] >= WARMUP and s["workers_kib"] > 0]
    if len(after) < 2:
        print(f"too few samples after update {WARMUP}: run more updates", file=sys.stderr)
        return 1
    first, end = after[0], after[-1]
    for key in ("trainer_kib", "workers_kib"):
        growth = 100.0 * (end[key] - first[key]) / first[key]
        print(f"{key[:-4]:8s} RSS {first[key] / 1024:7.1f} MiB at update {first['update']} -> "
              f"{end[key] / 1024:7.1f} MiB at update {end['update']}: {growth:+.2f}%")
    if args.out:
        Path(args.out).write_text(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
