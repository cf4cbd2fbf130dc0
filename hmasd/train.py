"""`hmasd-train`: train HMASD (or the flat MAPPO baseline) synchronously, resume, or evaluate.

  hmasd-train --config configs/default.yaml [--set KEY=VALUE ...] [--output-dir DIR] [--log-level L]
  hmasd-train --model-path models/hmasd_sync_enhanced_final.pth        # resume where it stopped
  hmasd-train --eval-only --model-path PATH [--episodes N]             # evaluate, no training

Exit codes: 0 finished; 2 a user error (config, env, checkpoint, paths, options), one line; 1 the
envs failed beyond max_worker_restarts or the final checkpoint could not be written; 128 + signum
stopped by a signal (SIGINT 130, SIGTERM 143, SIGHUP 129) after saving the final checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from hmasd.checkpoint import RESUME_KEYS, CheckpointError, load_checkpoint, require_keys
from hmasd.config import ConfigError, config_from_dict, load_config, read_yaml, upgrade_checkpoint_config

PROG = "hmasd-train"
EVAL_OPTIONS = ("--episodes", "--deterministic", "--render", "--json")  # meaningful with --eval-only only


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Train HMASD synchronously on a PettingZoo env.")
    p.add_argument("--config", help="YAML config (default: configs/default.yaml, or the checkpoint's when resuming)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set env.id=alice_and_bob --set total_env_steps=20000")
    p.add_argument("--model-path", help="checkpoint to resume from (or to evaluate with --eval-only)")
    p.add_argument("--eval-only", action="store_true", help="evaluate --model-path and exit")
    # Defaults of None, so that giving one of these without --eval-only can be told from leaving it out.
    p.add_argument("--episodes", type=int, default=None, help="episodes for --eval-only (default 32)")
    p.add_argument("--deterministic", action="store_true", default=None, help="greedy policy for --eval-only")
    p.add_argument("--render", metavar="OUT.gif", help="with --eval-only: write a GIF of one episode")
    p.add_argument("--json", action="store_true", default=None, help="with --eval-only: print one JSON object")
    p.add_argument("--output-dir", default=".", help="where models/, tf-logs/ and logs/ go (default: .)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   type=str.upper, help="console and JSON log level (DEBUG adds per-env detail)")
    return p


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _check_output_dir(root: Path) -> str | None:
    """Create models/, tf-logs/ and logs/ under `root` and prove they take a file: a problem is found
    now, as one line, not as a traceback at the first checkpoint."""
    try:
        for sub in ("models", "tf-logs", "logs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            probe = root / sub / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
    except OSError as exc:
        return (f"--output-dir '{root}' cannot be used ({exc.strerror or exc}: {exc.filename or root}): "
                "pass a writable folder")
    return None


def _eval_main(args: argparse.Namespace) -> int:
    if not args.model_path:
        return _error("--eval-only needs --model-path PATH (a checkpoint from models/)")
    from hmasd.evaluate import evaluate_main

    args.episodes = 32 if args.episodes is None else args.episodes
    args.deterministic, args.json = bool(args.deterministic), bool(args.json)
    args.seed, args.skills = None, "coordinator"  # hmasd-eval's own options, at their defaults
    return evaluate_main(args, PROG)


def _load(args: argparse.Namespace):
    """(config, checkpoint or None); raises ConfigError / CheckpointError for the user to fix."""
    if not args.model_path:
        return load_config(args.config or "configs/default.yaml", args.set), None
    resume = load_checkpoint(args.model_path)
    require_keys(resume, args.model_path, RESUME_KEYS)
    base = read_yaml(args.config) if args.config else upgrade_checkpoint_config(resume["config"])
    cfg = config_from_dict(base, args.set)
    if not any(item.split("=", 1)[0].strip() == "run_name" for item in args.set):
        # Keep the stopped run's name so logs and TensorBoard curves carry on in place.
        cfg = dataclasses.replace(cfg, run_name=resume["config"].get("run_name"))
    done = resume["counters"]["env_steps"]
    if done >= cfg.total_env_steps:
        raise CheckpointError(f"checkpoint '{args.model_path}' is of a finished run ({done} of {cfg.total_env_steps} "
                              f"env steps): to train on, raise the budget, e.g. --set total_env_steps={2 * done}")
    return cfg, resume


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.eval_only:
        return _eval_main(args)
    given = [opt for opt in EVAL_OPTIONS if getattr(args, opt[2:]) is not None]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        return _error(f"{', '.join(given)} only {verb} to evaluation: add --eval-only (and --model-path), "
                      "or leave them out to train")
    try:
        cfg, resume = _load(args)
    except (ConfigError, CheckpointError) as exc:
        return _error(str(exc))
    problem = _check_output_dir(Path(args.output_dir))
    if problem:
        return _error(problem)

    from hmasd_envs import EnvError

    from hmasd.checkpoint import CheckpointWriteError
    from hmasd.logger import configure_logging, get_logger, log_traceback
    from hmasd.ray_init import RayUnavailable  # the module only; Ray is imported for backend=ray alone
    from hmasd.records import EnvFailure
    from hmasd.trainer import OutputPaths, StopSignal, Trainer, resolve_run_name

    cfg = resolve_run_name(cfg)
    paths = OutputPaths(Path(args.output_dir), cfg.run_name)
    configure_logging(args.log_level, paths.jsonl)
    log = get_logger("hmasd.train")
    stop = StopSignal().install()
    try:
        trainer = Trainer(cfg, paths, resume=resume, resume_path=args.model_path, overrides=args.set)
    except (CheckpointError, ConfigError, RayUnavailable) as exc:
        return _error(str(exc))
    except (EnvError, EnvFailure) as exc:
        # One line on the console; the worker's traceback goes to the log file (and to the console at DEBUG).
        tb = getattr(exc, "worker_traceback", None)
        log_traceback("environment failed to start", tb, env=cfg.env.id)
        where = f" (traceback in {paths.jsonl})" if tb else ""
        if isinstance(exc, EnvError):
            return _error(f"{exc}{where}")
        return _error(f"env '{cfg.env.id}' failed to start: {exc.summary}{where}")
    log.info("training started", run=cfg.run_name, algo=cfg.algo, env=cfg.env.id, device=str(trainer.device),
             resumed_from=args.model_path, env_steps=trainer.counters.env_steps, checkpoints=str(trainer.run_dir),
             tf_logs=str(paths.tf_logs))
    try:
        counters = trainer.run(stop)
    except EnvFailure as exc:
        log_traceback("environment worker failed", exc.worker_traceback, env=cfg.env.id)
        if stop.signum is not None:  # the stop came while the envs were down: a stop, not a failure
            log.warning(f"{stop.name} received while the envs were failing: final checkpoint saved, stopping")
            return 128 + stop.signum
        log.error(f"environment workers failed {cfg.max_worker_restarts + 1} times in a row, stopping "
                  f"(final checkpoint saved): {exc.summary}")
        return 1
    except CheckpointWriteError as exc:
        log.error(f"the final checkpoint was not saved: {exc}")
        return 1
    if stop.signum is not None:
        log.info("training stopped", signal=stop.name, env_steps=counters.env_steps, updates=counters.updates)
        return 128 + stop.signum
    log.info("training finished", env_steps=counters.env_steps, updates=counters.updates,
             episodes=counters.episodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
