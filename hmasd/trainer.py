"""The synchronous HMASD trainer: the wiring, written once, and the loop.

collect (exactly num_envs x rollout_length env steps, one policy version) -> finalize + update
(discriminators, coordinator, discoverer) -> policy version + 1, sample counter reset -> log ->
checkpoint / evaluate when their interval is reached.
"""
from __future__ import annotations

import dataclasses
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hmasd_envs.snapshot import SnapshotError

from hmasd.agent import HMASDAgent
from hmasd.buffer import make_rollout_buffer
from hmasd.checkpoint import check_compatible, checkpoint_path, load_weights, save_checkpoint
from hmasd.collector import Collector, Rollout
from hmasd.config import Config, dump_config
from hmasd.learner import Learner
from hmasd.logger import MetricSink, ProgressBar, get_logger
from hmasd.orchestrator import EnvWorkerError, VecEnv


@dataclass
class OutputPaths:
    root: Path
    run_name: str

    @property
    def models(self) -> Path:
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


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks between updates, so the trainer finishes the
    current step, writes its final checkpoint and exits cleanly. Installed before the envs start, so
    a signal during start-up is not lost either."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._previous: dict = {}

    def install(self) -> "StopSignal":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, _frame) -> None:
        self.name = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class Trainer:
    def __init__(self, cfg: Config, paths: OutputPaths, resume: dict | None = None, resume_path: str | None = None):
        self.cfg, self.paths, self.resume_path = cfg, paths, resume_path
        self.log = get_logger("hmasd.train")
        torch.set_num_threads(cfg.torch_threads)
        seed_everything(cfg.seed)
        self.snapshot_failure: str | None = None  # why the envs cannot be snapshotted, once known
        self.vec = VecEnv(cfg.env.id, cfg.env.kwargs, num_envs=cfg.num_envs, num_workers=cfg.num_workers,
                          seed=cfg.seed, step_timeout_s=cfg.step_timeout_s, mask_in_obs=cfg.env.action_mask_in_obs)
        try:
            spec = self.vec.spec
            if resume is not None:
                check_compatible(resume, resume_path, cfg.env.id, spec.num_agents, spec.obs_dim, spec.state_dim)
            self.spec = spec
            self.agent = HMASDAgent(cfg, spec)
            self.learner = Learner(self.agent, cfg)
            self.buffer = make_rollout_buffer("cpp", T=cfg.rollout_length, E=cfg.num_envs, A=spec.num_agents,
                                              obs_dim=spec.obs_dim, state_dim=spec.state_dim,
                                              action_dim=spec.action_dim, mask_dim=spec.mask_dim)
            self.collector = Collector(self.vec, self.agent, cfg, self.buffer)
            self.counters = Counters()
            if resume is not None:
                self._restore(resume)
        except BaseException:
            self.vec.close()
            raise
        paths.models.mkdir(parents=True, exist_ok=True)
        paths.tf_logs.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, paths.logs / f"{paths.run_name}.config.yaml")
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
                         "policy_version": int(self.agent.policy_version)},
            "agent": self.agent.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.learner.optimizers().items()},
            "rng": {"torch": torch.get_rng_state(),
                    "learner": {k: g.get_state() for k, g in self.learner.generators.items()}},
            "collector": self.collector.state_dict() if envs is not None else None,
            "envs": envs,
        }

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

    def _restore(self, data: dict) -> None:
        load_weights(data, self.resume_path, self.agent, self.learner.optimizers())
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
        self.counters = Counters(env_steps=c["env_steps"], updates=c["updates"], episodes=c["episodes"])

    def save(self, tag: int | str, with_envs: bool = True) -> Path:
        path = save_checkpoint(self.payload(with_envs), checkpoint_path(self.paths.models, tag))
        self.log.info(f"checkpoint saved to {path}", path=str(path), env_steps=self.counters.env_steps)
        return path

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: StopSignal | None = None) -> Counters:
        cfg, c = self.cfg, self.counters
        batch = cfg.num_envs * cfg.rollout_length
        bar = ProgressBar(cfg.total_env_steps)
        owned = stop is None
        stop = stop or StopSignal().install()
        try:
            while c.env_steps < cfg.total_env_steps and stop.name is None:
                t0 = time.perf_counter()
                ro = self.collector.collect()
                n = ro.buffer.size * cfg.num_envs
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
                self.log.info(f"policy version -> {version}, sample counter reset", policy_version=version)
                stats.update(self._round_stats(ro, n, version, update_s, time.perf_counter() - t0))
                self.sink.write(stats, c.env_steps)
                if c.updates % cfg.log_interval == 0:
                    pct = 100.0 * c.env_steps / cfg.total_env_steps
                    self.log.info(f"{c.env_steps}/{cfg.total_env_steps} ({pct:.1f}%), updates {c.updates}, "
                                  f"episodes {c.episodes}, SPS {stats['Perf/SPS']:.0f}", env_steps=c.env_steps)
                bar.update(c.env_steps, stats["Perf/SPS"])
                if c.env_steps // cfg.save_interval > (c.env_steps - batch) // cfg.save_interval:
                    self.save(c.env_steps)
                if cfg.eval_interval and c.env_steps // cfg.eval_interval > (c.env_steps - batch) // cfg.eval_interval:
                    self.evaluate()
            if stop.name is not None:
                self.log.warning(f"{stop.name} received: saving the final checkpoint and stopping")
            self.save("final")
        except EnvWorkerError:
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
            extra = sorted({k for e in ro.episodes for k in e.stats} - {"return", "length"})
            for key in extra:
                values = [e.stats[key] for e in ro.episodes if key in e.stats]
                stats[f"Episode/{key}_Mean"] = float(np.mean(values))
        return stats

    def evaluate(self) -> dict:
        from hmasd.evaluate import run_evaluation

        # Evaluation must not disturb the training RNG stream (exact resume relies on it).
        with torch.random.fork_rng(devices=[]):
            result = run_evaluation(self.agent, self.cfg, episodes=self.cfg.eval_episodes, deterministic=False,
                                    seed=self.cfg.seed + 1_000_003 + self.counters.updates)
        tags = {"Eval/TeamReturn_Mean": result["mean_return"], "Eval/TeamReturn_Std": result["std_return"],
                "Eval/EpisodeLength_Mean": result["mean_length"]}
        if result["success_rate"] is not None:
            tags["Eval/SuccessRate"] = result["success_rate"]
        self.sink.write(tags, self.counters.env_steps)
        self.log.info("evaluation", env_steps=self.counters.env_steps, **tags)
        return result

    def close(self) -> None:
        self.vec.close()
        self.learner.close()
        if hasattr(self, "sink"):
            self.sink.close()


def resolve_run_name(cfg: Config) -> Config:
    if cfg.run_name:
        return cfg
    env = cfg.env.id.replace(":", "_").replace(".", "_").replace("/", "_")
    return dataclasses.replace(cfg, run_name=f"{cfg.algo}_{env}_s{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}")
