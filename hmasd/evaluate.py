"""Evaluation: `hmasd-eval --model-path PATH [--episodes N] [--deterministic] [--render out.gif] [--json]
[--skills coordinator|uniform|Z,z1,..,zn]`.

Runs N episodes with the checkpoint's own config (the env can be overridden with --set), in this
process, and reports team return, episode length, success rate (where the env reports `success`)
and skill usage: how often each team skill Z and each agent's skill z^i was chosen.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from hmasd_envs import EnvError

from hmasd.agent import HMASDAgent
from hmasd.checkpoint import CheckpointError, check_compatible, load_checkpoint, load_weights
from hmasd.collector import Collector, SkillOverride
from hmasd.config import Config, ConfigError, config_from_dict, upgrade_checkpoint_config
from hmasd.pipeline import build
from hmasd.records import EnvFailure, info_means


def _skill_label(collector: Collector, spec) -> str:
    if not collector.agent.uses_skills:
        return ""
    team, agent_skills = collector.current_skills
    agents = ", ".join(f"{name}: z={int(z)}" for name, z in zip(spec.agent_names, agent_skills[0]))
    return f"Z={int(team[0])} | {agents}"


def _annotate(frame: np.ndarray, text: str, step: int):
    """Draw the current skills and the step under the frame (PIL; the env's own frame is untouched)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    canvas = Image.new("RGB", (img.width, img.height + 28), (255, 255, 255))
    canvas.paste(img, (0, 0))
    ImageDraw.Draw(canvas).text((4, img.height + 8), f"t={step}  {text}", fill=(0, 0, 0))
    return canvas


def _step_skill_kl(agent: HMASDAgent, record: dict, h: torch.Tensor, starts: np.ndarray,
                   counting: np.ndarray) -> torch.Tensor:
    """The discoverer's skill KL (DiscovererActor.skill_kl) at the step just played, for the alive agents
    of the envs still counting episodes."""
    E, A = record["agent_skill"].shape
    obs = torch.from_numpy(record["obs"].reshape(1, E * A, -1))  # [E, A, O] -> [1, E*A, O]
    skill = torch.from_numpy(record["agent_skill"].reshape(1, E * A))
    start = torch.from_numpy(np.repeat(starts, A))[None]  # [E] -> [1, E*A]
    keep = torch.from_numpy((record["alive"].astype(bool) & counting[:, None]).reshape(E * A))
    mask = record.get("action_mask")
    mask = None if mask is None else torch.from_numpy(mask.astype(bool).reshape(1, E * A, -1))  # [E, A, M] -> [1, E*A, M]
    return agent.actor.skill_kl(obs, skill, h, start, mask)[0][keep]


def run_evaluation(agent: HMASDAgent, cfg: Config, episodes: int, deterministic: bool = False, seed: int = 0,
                   render_path: str | Path | None = None, max_envs: int = 8, skills: SkillOverride = None,
                   in_workers: bool = False) -> dict:
    """Play `episodes` full episodes; each of min(episodes, max_envs) envs plays its share. `skills`
    replaces the coordinator's choices (Collector's SkillOverride). `in_workers` steps the envs on
    cfg.backend (the trainer's periodic evaluation: with worker subprocesses, an env that brings its own
    runtime, such as JAX for Overcooked, then never loads it into the trainer); otherwise, and always when
    rendering, they run in this process. Both give the same episodes: env i is seeded with seed + i
    either way."""
    n_envs = max(1, min(episodes, max_envs))
    quota = np.array([episodes // n_envs + (1 if i < episodes % n_envs else 0) for i in range(n_envs)])
    render_kwargs = {"render_mode": "rgb_array"} if render_path else {}
    backend = cfg.backend if in_workers and not render_path else "local"
    pipe = build(cfg, seed=seed, num_envs=n_envs, backend=backend, deterministic=deterministic, skills=skills,
                 with_learner=False, agent=agent, env_kwargs={**cfg.env.kwargs, **render_kwargs})
    vec, collector = pipe.vec, pipe.collector
    was_training = agent.training
    agent.eval()
    try:
        done = np.zeros(n_envs, dtype=np.int64)
        finished: list[dict] = []
        team_counts = np.zeros(cfg.hmasd.n_team_skills if agent.uses_skills else 0, dtype=np.int64)
        agent_counts = np.zeros((agent.n_agents, cfg.hmasd.n_agent_skills if agent.uses_skills else 0), np.int64)
        frames = []
        skill_kl: list[torch.Tensor] = []
        t = 0
        while (done < quota).any():
            h_before = collector.actor_hidden
            step, record = collector.step(rollout_start=(t == 0))
            counting = done < quota
            if agent.uses_skills:
                skill_kl.append(_step_skill_kl(agent, record, h_before, collector.last_step_starts, counting))
                chosen = record["assign"].astype(bool) & counting
                np.add.at(team_counts, record["team_skill"][chosen], 1)
                for i in range(agent.n_agents):
                    np.add.at(agent_counts[i], record["agent_skill"][chosen, i], 1)
            if render_path and done[0] == 0:
                frame = vec.render(0)
                if frame is not None:
                    frames.append(_annotate(frame, _skill_label(collector, vec.spec), t))
            for ep in step.episodes:
                if done[ep.env_index] < quota[ep.env_index]:
                    finished.append(ep.stats)
                    done[ep.env_index] += 1
            t += 1
    finally:
        agent.train(was_training)
        pipe.close()
    returns = np.array([e["return"] for e in finished], dtype=np.float64)
    lengths = np.array([e["length"] for e in finished], dtype=np.float64)
    has_success = all("success" in e for e in finished)
    result = {
        "episodes": len(finished),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "mean_length": float(lengths.mean()),
        "success_rate": float(np.mean([e["success"] for e in finished])) if has_success else None,
        "info_means": info_means(finished, skip=("return", "length", "success")),
        "skill_kl": float(torch.cat(skill_kl).mean()) if skill_kl else None,
        "team_skill_counts": team_counts.tolist(),
        "agent_skill_counts": {name: agent_counts[i].tolist() for i, name in enumerate(vec.spec.agent_names)},
        "deterministic": deterministic,
        "skills": "coordinator" if skills is None else skills,  # a fixed tuple reaches JSON as a list
        "env_id": cfg.env.id,
    }
    if render_path and frames:
        path = Path(render_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=120, loop=0)
        result["render"] = str(path)
    return result


# What load_agent raises for bad input (a missing or foreign checkpoint, a bad --set, an env that does
# not build): every CLI that loads a checkpoint reports these as one line and exits 2.
LOAD_ERRORS = (CheckpointError, ConfigError, EnvError)


def load_agent(model_path: str, overrides: list[str]) -> tuple[HMASDAgent, Config, dict]:
    """Rebuild the agent from a checkpoint alone (its embedded config), with optional --set overrides."""
    data = load_checkpoint(model_path)
    cfg = config_from_dict(upgrade_checkpoint_config(data["config"]), overrides)
    from hmasd_envs import make_env

    env = make_env(cfg.env.id, cfg.env.action_mask_in_obs, **cfg.env.kwargs)
    spec = env.spec
    env.close()
    check_compatible(data, model_path, cfg.env.id, spec.num_agents, spec.obs_dim, spec.state_dim)
    agent = HMASDAgent(cfg, spec)
    load_weights(data, model_path, agent)
    return agent, cfg, data


def format_report(result: dict) -> str:
    lines = [
        f"episodes      {result['episodes']} ({'deterministic' if result['deterministic'] else 'stochastic'}) on {result['env_id']}",
        f"team return   {result['mean_return']:.3f} +- {result['std_return']:.3f}",
        f"length        {result['mean_length']:.1f}",
        f"success rate  {'n/a' if result['success_rate'] is None else format(result['success_rate'], '.1%')}",
    ]
    if result.get("info_means"):
        lines.append("env infos     at episode ends, mean over episodes")
        lines.extend(f"  {key:<24}{mean:.3f}" for key, mean in result["info_means"].items())
    if result["team_skill_counts"]:
        lines.append(f"skills from   {result['skills']}")
        lines.append(f"skill KL      {result['skill_kl']:.4f} (how much the actions depend on z; 0 = ignored)")
        lines.append(f"team skills   {result['team_skill_counts']}")
        for name, counts in result["agent_skill_counts"].items():
            lines.append(f"  {name:<12}{counts}")
    if result.get("render"):
        lines.append(f"render        {result['render']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hmasd-eval", description="Evaluate an HMASD checkpoint.")
    p.add_argument("--model-path", required=True, help="checkpoint (.pth) written by hmasd-train")
    p.add_argument("--episodes", type=int, default=32, help="episodes to play (default 32)")
    p.add_argument("--deterministic", action="store_true", help="greedy skills and actions")
    p.add_argument("--render", metavar="OUT.gif", help="write a GIF of one episode with each agent's skill")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--seed", type=int, default=None, help="eval seed (default: the checkpoint's seed + 1000)")
    p.add_argument("--skills", default="coordinator", metavar="coordinator|uniform|Z,z1,..,zn",
                   help="who picks the skills: the coordinator (default), uniform draws, or fixed skills "
                        "for every episode; the latter two measure what the coordinator adds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    return p


def parse_skills(text: str, cfg: Config, agent: HMASDAgent) -> SkillOverride:
    """--skills -> the Collector's SkillOverride; a ValueError names what is wrong and the fix."""
    if text == "coordinator":
        return None
    if not agent.uses_skills:
        raise ValueError(f"--skills {text}: this checkpoint ({cfg.algo}) has no skills; drop --skills")
    if text == "uniform":
        return text
    n_team, n_z = cfg.hmasd.n_team_skills, cfg.hmasd.n_agent_skills
    want = f"coordinator, uniform or {1 + agent.n_agents} comma-separated skills Z,z1,..,z{agent.n_agents}"
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--skills {text!r}: expected {want}") from None
    if len(values) != 1 + agent.n_agents:
        raise ValueError(f"--skills {text!r}: expected {want}")
    team, *agents = values
    if not 0 <= team < n_team or not all(0 <= z < n_z for z in agents):
        raise ValueError(f"--skills {text!r}: Z must be in 0..{n_team - 1} and each z in 0..{n_z - 1}")
    return values


def render_path_problem(render: str | None) -> str | None:
    """Why --render cannot be written, checked before any episode is played; None if it can."""
    if render is None:
        return None
    path = Path(render)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return f"--render '{render}' is a folder: pass a file name such as {path / 'episode.gif'}"
    if not folder.is_dir():
        return f"--render '{render}': folder '{folder}' does not exist: create it or pass another path"
    if not os.access(folder, os.W_OK):
        return f"--render '{render}': folder '{folder}' is not writable: pass another path"
    return None


def evaluate_main(args: argparse.Namespace, prog: str) -> int:
    if args.episodes < 1:
        print(f"{prog}: error: --episodes ({args.episodes}) must be at least 1", file=sys.stderr)
        return 2
    problem = render_path_problem(args.render)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    try:
        agent, cfg, _ = load_agent(args.model_path, args.set)
    except LOAD_ERRORS as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        skills = parse_skills(args.skills, cfg, agent)
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(cfg.torch_threads)
    seed = cfg.seed + 1000 if args.seed is None else args.seed
    torch.manual_seed(seed)
    try:
        result = run_evaluation(agent, cfg, args.episodes, args.deterministic, seed, args.render, skills=skills)
    except EnvError as exc:  # an env id or arguments given with --set that do not build
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except EnvFailure as exc:  # the env itself raised: its own one line, not a traceback through ours
        print(f"{prog}: error: env '{cfg.env.id}' failed during evaluation: {exc.summary}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return evaluate_main(args, "hmasd-eval")


if __name__ == "__main__":
    sys.exit(main())
