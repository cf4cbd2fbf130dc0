"""`hmasd-train`: train HMASD (or the flat MAPPO baseline) synchronously, resume, or evaluate.

  hmasd-train --config configs/default.yaml [--set KEY=VALUE ...] [--output-dir DIR] [--log-level L]
  hmasd-train --model-path models/hmasd_sync_enhanced_final.pth        # resume where it stopped
  hmasd-train --eval-only --model-path PATH [--episodes N]             # evaluate, no training

Every user error (config, env id, checkpoint) prints one line and exits with code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from hmasd.checkpoint import CheckpointError, load_checkpoint
from hmasd.config import ConfigError, config_from_dict, load_config, read_yaml, upgrade_checkpoint_config

PROG = "hmasd-train"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Train HMASD synchronously on a PettingZoo env.")
    p.add_argument("--config", help="YAML config (default: configs/default.yaml, or the checkpoint's when resuming)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set env.id=alice_and_bob --set total_env_steps=20000")
    p.add_argument("--model-path", help="checkpoint to resume from (or to evaluate with --eval-only)")
    p.add_argument("--eval-only", action="store_true", help="evaluate --model-path and exit")
    p.add_argument("--episodes", type=int, default=32, help="episodes for --eval-only (default 32)")
    p.add_argument("--deterministic", action="store_true", help="greedy policy for --eval-only")
    p.add_argument("--render", metavar="OUT.gif", help="with --eval-only: write a GIF of one episode")
    p.add_argument("--json", action="store_true", help="with --eval-only: print one JSON object")
    p.add_argument("--output-dir", default=".", help="where models/, tf-logs/ and logs/ go (default: .)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   type=str.upper, help="console and JSON log level (DEBUG adds per-env detail)")
    return p


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.eval_only:
        if not args.model_path:
            return _error("--eval-only needs --model-path PATH (a checkpoint from models/)")
        from hmasd.evaluate import evaluate_main

        args.seed, args.skills = None, "coordinator"  # hmasd-eval's own options, at their defaults
        return evaluate_main(args, PROG)

    resume = None
    try:
        if args.model_path:
            resume = load_checkpoint(args.model_path)
            base = read_yaml(args.config) if args.config else upgrade_checkpoint_config(resume["config"])
            cfg = config_from_dict(base, args.set)
            if not any(item.split("=", 1)[0].strip() == "run_name" for item in args.set):
                # Keep the stopped run's name so logs and TensorBoard curves carry on in place.
                cfg = dataclasses.replace(cfg, run_name=resume["config"].get("run_name"))
        else:
            path = args.config or "configs/default.yaml"
            cfg = load_config(path, args.set)
    except (ConfigError, CheckpointError) as exc:
        return _error(str(exc))

    from hmasd_envs import EnvError

    from hmasd.logger import configure_logging, get_logger, log_traceback
    from hmasd.orchestrator import EnvWorkerError
    from hmasd.trainer import OutputPaths, StopSignal, Trainer, resolve_run_name

    cfg = resolve_run_name(cfg)
    paths = OutputPaths(Path(args.output_dir), cfg.run_name)
    configure_logging(args.log_level, paths.jsonl)
    log = get_logger("hmasd.train")
    stop = StopSignal().install()
    try:
        trainer = Trainer(cfg, paths, resume=resume, resume_path=args.model_path)
    except CheckpointError as exc:
        return _error(str(exc))
    except (EnvError, EnvWorkerError) as exc:
        # One line on the console; the worker's traceback goes to the log file (and to the console at DEBUG).
        tb = getattr(exc, "worker_traceback", None)
        log_traceback("environment failed to start", tb, env=cfg.env.id)
        where = f" (traceback in {paths.jsonl})" if tb else ""
        if isinstance(exc, EnvError):
            return _error(f"{exc}{where}")
        return _error(f"env '{cfg.env.id}' failed to start: {exc.summary}{where}")
    log.info("training started", run=cfg.run_name, algo=cfg.algo, env=cfg.env.id,
             resumed_from=args.model_path, env_steps=trainer.counters.env_steps, tf_logs=str(paths.tf_logs))
    try:
        counters = trainer.run(stop)
    except EnvWorkerError as exc:
        log.error("environment worker failed", error=exc.summary)
        log_traceback("environment worker failed", exc.worker_traceback, env=cfg.env.id)
        return 1
    log.info("training finished", env_steps=counters.env_steps, updates=counters.updates,
             episodes=counters.episodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
