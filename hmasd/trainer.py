"""The synchronous HMASD trainer: the wiring, written once, and the loop.

collect (exactly num_envs x rollout_length env steps, one policy version; env workers that fail are
restarted and the rollout collected again) -> finalize + update (discriminators, coordinator,
discoverer) -> policy version + 1, sample counter reset -> log -> checkpoint / evaluate when their
interval is reached.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hmasd_envs.snapshot import SnapshotError

from hmasd.agent import HMASDAgent
from hmasd.backends import make_vec_env
from hmasd.checkpoint import (CheckpointWriteError, check_compatible, checkpoint_path, claim_run_dir, load_weights,
                              publish_latest, save_checkpoint)
from hmasd.config import Config, ConfigError, config_warnings, dump_config
from hmasd.device import resolve_device, to_cpu
from hmasd.logger import MetricSink, get_logger, progress_bar
from hmasd.pipeline import build
from hmasd.records import EnvFailure, VecEnv, info_means
from hmasd.restarts import collect_with_restarts, describe_failure, restart_seed
from hmasd.rollout import Rollout


@dataclass
class OutputPaths:
    root: Path
    run_name: str

    @property
    def models(self) -> Path:
        """Where the latest run's short-named links live; each run's files are in its own run_dir."""
        return self.root / "models"

    @property
    def tf_logs(self) -> Path:
        return self.root / "tf-logs" / self.run_name

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def jsonl(self) -> Path:
        return self.logs / f"{self.run_name}.jsonl"


@dataclass
class Counters:
    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    worker_restarts: int = 0  # over the whole run, resumes included: restart r reseeds with restart_seed(seed, r)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


class StopSignal:
    """Turns SIGINT/SIGTERM/SIGHUP (the terminal closed) into a flag the loop checks between updates
    and the learner between epochs, so the trainer writes its final checkpoint and exits with
    128 + signum. Installed before the envs start, so a signal during start-up is not lost either."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.name: str | None = None
        self.signum: int | None = None
        self._previous: dict = {}

    def install(self) -> "StopSignal":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, _frame) -> None:
        if self.signum is None:  # the first one is the reason; a second Ctrl-C must not rename it
            self.signum, self.name = signum, signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def check_model_memory(cfg: Config, spec) -> None:
    """Refuse a model whose parameters, gradients and Adam moments (4 float32 copies) cannot fit in
    this machine's memory. The count is exact: the agent is built on torch's meta device, which
    allocates nothing (model.hidden = 1000000 would otherwise fail deep inside torch, or swap)."""
    with torch.device("meta"):
        probe = HMASDAgent(cfg, spec)
    params = sum(p.numel() for p in probe.parameters())
    need = 16 * params
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    if total and need > total:
        raise ConfigError(f"the model has {params:,} parameters, {need / 2**30:,.1f} GiB with gradients and Adam "
                          f"state, more than this machine's {total / 2**30:,.1f} GiB: lower model.hidden "
                          f"({cfg.model.hidden}) or model.coordinator_ff ({cfg.model.coordinator_ff})")


class Trainer:
    def __init__(self, cfg: Config, paths: OutputPaths, resume: dict | None = None, resume_path: str | None = None,
                 overrides: list[str] | tuple[str, ...] = ()):
        self.cfg, self.paths, self.resume_path = cfg, paths, resume_path
        self.log = get_logger("hmasd.train")
        # First, before any env is built: `device: cuda` without CUDA is a config error, not a late crash.
        self.device = resolve_device(cfg.device)
        for note in config_warnings(cfg):
            self.log.warning(note)
        torch.set_num_threads(cfg.torch_threads)
        seed_everything(cfg.seed)
        self.snapshot_failure: str | None = None  # why the envs cannot be snapshotted, once known
        restarts = int(resume["counters"].get("worker_restarts", 0)) if resume is not None else 0
        vec = self._make_vec(restart_seed(cfg.seed, restarts))
        try:
            spec = vec.spec
            if resume is not None:
                check_compatible(resume, resume_path, cfg.env.id, spec.num_agents, spec.obs_dim, spec.state_dim)
            check_model_memory(cfg, spec)
            self.pipeline = build(cfg, vec=vec, device=self.device)  # the agent acts on the CPU (hmasd/device.py)
            self.spec, self.agent, self.learner = spec, self.pipeline.agent, self.pipeline.learner
            self.collector = self.pipeline.collector
            self.counters = Counters()
            if resume is not None:
                self._restore(resume, overrides)
            # This process's own checkpoint folder: a resume never writes over the checkpoints it came from.
            self.run_dir = claim_run_dir(paths.models, paths.run_name, paths.logs)
        except BaseException:
            vec.close()
            raise
        paths.tf_logs.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, paths.logs / f"{self.run_dir.name}.config.yaml")
        # On resume, drop TensorBoard points at or after the checkpoint's step (left by the stopped run).
        self.sink = MetricSink(paths.tf_logs, purge_step=self.counters.env_steps + 1 if resume else None)

    # -- checkpoints ------------------------------------------------------------------------------
    def payload(self, with_envs: bool = True) -> dict:
        """Everything needed to resume. Without envs (after a worker fault) a resume starts fresh
        episodes instead of continuing the interrupted ones; the learned state is complete either way."""
        spec, c = self.spec, self.counters
        envs = self._env_snapshots() if with_envs else None
        return {
            "config": self.cfg.to_dict(),
            "env": {"id": self.cfg.env.id, "num_agents": spec.num_agents, "obs_dim": spec.obs_dim,
                    "state_dim": spec.state_dim, "action_kind": spec.action_kind},
            "counters": {"env_steps": c.env_steps, "updates": c.updates, "episodes": c.episodes,
                         "worker_restarts": c.worker_restarts, "policy_version": int(self.agent.policy_version)},
            # The learner's agent and optimisers, as CPU tensors: a checkpoint loads on any machine.
            "agent": to_cpu(self.learner.agent.state_dict()),
            "optimizers": {k: to_cpu(o.state_dict()) for k, o in self.learner.optimizers().items()},
            "rng": {"torch": torch.get_rng_state(),
                    "learner": {k: g.get_state() for k, g in self.learner.generators.items()}},
            "collector": self.collector.state_dict() if envs is not None else None,
            "envs": envs,
        }

    @property
    def vec(self) -> VecEnv:
        """The envs now stepped (rebuilt after a worker fault)."""
        return self.pipeline.vec

    def _make_vec(self, seed: int) -> VecEnv:
        return make_vec_env(self.cfg, seed=seed)

    def _restart_envs(self, err: EnvFailure, attempt: int) -> None:
        """Rebuild every env in fresh workers, reseeded, and begin fresh episodes (see hmasd/restarts.py)."""
        c = self.counters
        c.worker_restarts += 1
        seed = restart_seed(self.cfg.seed, c.worker_restarts)
        self.log.warning(f"env worker failed, restarting all envs with seed {seed} and collecting policy version "
                         f"{int(self.agent.policy_version)} again (restart {attempt}/{self.cfg.max_worker_restarts} "
                         f"of this rollout, {c.worker_restarts} in the run): {describe_failure(err)}",
                         worker=err.worker, envs=[err.envs.start, err.envs.stop - 1], restarts=c.worker_restarts)
        self.vec.close()
        self.pipeline.vec = self._make_vec(seed)
        self.collector.restart(self.vec)

    def _env_snapshots(self) -> list[bytes] | None:
        """Every env's snapshot, or None for an env whose state cannot be snapshotted (pymunk, Box2D and
        other C objects). Then checkpoints hold everything learned but no episodes in progress: a resume
        starts fresh episodes. Asked once; the warning is given at the first save."""
        if self.snapshot_failure is not None:
            return None
        try:
            return self.vec.get_env_states()
        except SnapshotError as err:
            self.snapshot_failure = str(err)
            self.log.warning(f"env '{self.cfg.env.id}' cannot be snapshotted ({err}): checkpoints are written "
                             "without env snapshots, and a resume from them starts fresh episodes")
            return None

    def _restore(self, data: dict, overrides: list[str] | tuple[str, ...] = ()) -> None:
        # Into the learner's agent (load_state_dict copies the CPU tensors onto its device; the optimisers'
        # load_state_dict moves their state to their parameters' device), then to the acting copy.
        load_weights(data, self.resume_path, self.learner.agent, self.learner.optimizers(), overrides)
        self.learner.sync_acting()
        torch.set_rng_state(data["rng"]["torch"])
        for name, state in data["rng"]["learner"].items():
            self.learner.generators[name].set_state(state)
        envs = data.get("envs")
        if envs is not None and data.get("collector") is not None and len(envs) == self.cfg.num_envs:
            self.vec.set_env_states(envs)
            self.collector.load_state_dict(data["collector"])
        else:
            self.log.warning("resuming with fresh episodes: the checkpoint holds no env snapshots for "
                             f"{self.cfg.num_envs} envs, so the run continues but not bit-for-bit")
        c = data["counters"]
        self.counters = Counters(env_steps=c["env_steps"], updates=c["updates"], episodes=c["episodes"],
                                 worker_restarts=int(c.get("worker_restarts", 0)))

    def save(self, tag: int | str, with_envs: bool = True) -> Path:
        """Write this run's checkpoint `tag` and point models/<name> at it. Raises CheckpointWriteError
        (one line; the previous file stays intact) when the disk refuses it."""
        try:
            payload = self.payload(with_envs)
        except EnvFailure:
            # A worker died between rollouts: keep the learning now; the next collect() restarts the envs.
            payload = self.payload(with_envs=False)
        path = save_checkpoint(payload, checkpoint_path(self.run_dir, tag))
        if publish_latest(path, self.paths.models) is None:
            self.log.warning(f"{self.paths.models / path.name} is a file from an older run and is left as it is: "
                             f"this run's checkpoint is {path}")
        self.log.info(f"checkpoint saved to {path}", path=str(path), env_steps=self.counters.env_steps)
        return path

    def _save_periodic(self) -> None:
        try:
            self.save(self.counters.env_steps)
        except CheckpointWriteError as exc:
            self.log.warning(f"{exc}: training goes on, the previous checkpoint is intact")

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: StopSignal | None = None) -> Counters:
        """Train to total_env_steps or until `stop` fires. Raises EnvFailure when the envs failed
        more than max_worker_restarts times in a row, CheckpointWriteError when the final save failed."""
        cfg, c = self.cfg, self.counters
        batch = cfg.num_envs * cfg.rollout_length
        owned = stop is None
        stop = stop or StopSignal().install()
        stopping = lambda: stop.name is not None  # noqa: E731
        self.learner.stop_requested = stopping
        bar = progress_bar(cfg.total_env_steps, c.env_steps)
        try:
            while c.env_steps < cfg.total_env_steps and not stopping():
                t0 = time.perf_counter()
                # Throttled by log_interval: a per-update line for every update is noise in long runs.
                chatty = (c.updates + 1) % cfg.log_interval == 0
                ro = collect_with_restarts(self.collector.collect, self._restart_envs, cfg.max_worker_restarts,
                                           stopping)
                n = ro.size * cfg.num_envs
                if chatty:
                    self.log.info(f"collected {n} samples, policy version {ro.policy_version}",
                                  samples=n, policy_version=ro.policy_version)
                    self.log.debug("env contributions", per_env=ro.env_steps_per_env.tolist())
                t1 = time.perf_counter()
                lr_scale = self.learner.set_learning_rate(c.env_steps)
                stats = self.learner.update(ro)
                stats["Diagnostics/LearningRateScale"] = lr_scale
                update_s = time.perf_counter() - t1
                c.env_steps += n
                c.updates += 1
                c.episodes += len(ro.episodes)
                version = int(self.agent.policy_version)
                if chatty:
                    self.log.info(f"policy version -> {version}, sample counter reset", policy_version=version)
                stats.update(self._round_stats(ro, n, version, update_s, time.perf_counter() - t0))
                self.sink.write(stats, c.env_steps)
                if chatty:
                    pct = 100.0 * c.env_steps / cfg.total_env_steps
                    self.log.info(f"{c.env_steps}/{cfg.total_env_steps} ({pct:.1f}%), updates {c.updates}, "
                                  f"episodes {c.episodes}, SPS {stats['Perf/SPS']:.0f}", env_steps=c.env_steps)
                bar.update(n)
                bar.set_postfix_str(f"{stats['Perf/SPS']:,.0f} SPS", refresh=False)
                if c.env_steps // cfg.save_interval > (c.env_steps - batch) // cfg.save_interval:
                    self._save_periodic()
                if cfg.eval_interval and c.env_steps // cfg.eval_interval > (c.env_steps - batch) // cfg.eval_interval:
                    self.evaluate()
            if stopping():
                self.log.warning(f"{stop.name} received: saving the final checkpoint and stopping")
            self.save("final")
        except EnvFailure:
            # The envs are gone, the learning is not: keep it (the failed update never started).
            self.save("final", with_envs=False)
            raise
        finally:
            if owned:
                stop.restore()
            bar.close()
            self.close()
        return c

    def _round_stats(self, ro: Rollout, n: int, version: int, update_s: float, total_s: float) -> dict:
        per_env = ro.env_steps_per_env
        stats = {
            "Sync/PolicyVersion": version,
            "Sync/RolloutPolicyVersion": ro.policy_version,  # the version every sample was collected under
            "Sync/RolloutVersionCount": len(np.unique(ro.versions)),  # 1: no sample crosses a version
            "Sync/WorkerRestarts": self.counters.worker_restarts,  # cumulative over the run
            "Buffer/SamplesCollected": n,
            "Sync/EnvContribution/Min": int(per_env.min()),
            "Sync/EnvContribution/Max": int(per_env.max()),
            "Perf/SPS": n / total_s,
            "Perf/CollectSeconds": ro.collect_seconds,
            "Perf/UpdateSeconds": update_s,
        }
        if ro.episodes:
            stats["Rewards/Episode/TeamReturn_Mean"] = float(np.mean([e.stats["return"] for e in ro.episodes]))
            stats["Rewards/Episode/Length_Mean"] = float(np.mean([e.stats["length"] for e in ro.episodes]))
            for key, mean in info_means([e.stats for e in ro.episodes]).items():
                stats[f"Episode/{key}_Mean"] = mean
        return stats

    def evaluate(self) -> dict:
        from hmasd.evaluate import run_evaluation

        # Evaluation must not disturb the training RNG stream (exact resume relies on it).
        with torch.random.fork_rng(devices=[]):
            result = run_evaluation(self.agent, self.cfg, episodes=self.cfg.eval_episodes, deterministic=False,
                                    seed=self.cfg.seed + 1_000_003 + self.counters.updates, in_workers=True)
        tags = {"Eval/TeamReturn_Mean": result["mean_return"], "Eval/TeamReturn_Std": result["std_return"],
                "Eval/EpisodeLength_Mean": result["mean_length"]}
        if result["success_rate"] is not None:
            tags["Eval/SuccessRate"] = result["success_rate"]
        # The env's own episode infos (e.g. Overcooked's soups, whatever the reward regime).
        tags.update({f"Eval/{key}_Mean": mean for key, mean in result["info_means"].items()})
        self.sink.write(tags, self.counters.env_steps)
        self.log.info("evaluation", env_steps=self.counters.env_steps, **tags)
        return result

    def close(self) -> None:
        self.pipeline.close()
        if hasattr(self, "sink"):
            self.sink.close()


def resolve_run_name(cfg: Config) -> Config:
    if cfg.run_name:
        return cfg
    env = cfg.env.id.replace(":", "_").replace(".", "_").replace("/", "_")
    return dataclasses.replace(cfg, run_name=f"{cfg.algo}_{env}_s{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}")
