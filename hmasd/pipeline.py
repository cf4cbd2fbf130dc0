"""The pipeline, wired in one place: envs -> agent -> buffer -> collector -> learner.

Training (hmasd/trainer.py), evaluation (hmasd/evaluate.py), the tests, the benchmarks and the scripts
all build it here, so that a new component or a new backend is connected once (Sample Factory's
`connect_components` is the model).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from hmasd.agent import HMASDAgent
from hmasd.backends import make_vec_env
from hmasd.buffer import AnyRolloutBuffer, make_rollout_buffer
from hmasd.collector import Collector, SkillOverride
from hmasd.config import Config
from hmasd.device import resolve_device
from hmasd.learner import Learner
from hmasd.records import VecEnv


@dataclass
class Pipeline:
    """The connected components. `buffer` and `learner` are None when built without the learner
    (evaluation plays steps with `collector.step`, and never collects a rollout)."""

    cfg: Config  # the config the components were built with (num_envs and backend as overridden)
    vec: VecEnv
    spec: Any  # the envs' EnvSpec
    agent: HMASDAgent
    buffer: AnyRolloutBuffer | None
    collector: Collector
    learner: Learner | None

    def close(self) -> None:
        """Stop the learner's thread and the envs. Idempotent."""
        if self.learner is not None:
            self.learner.close()
        self.vec.close()


def build(cfg: Config, *, seed: int | None = None, num_envs: int | None = None, backend: str | None = None,
          deterministic: bool = False, skills: SkillOverride = None, with_learner: bool = True,
          agent: HMASDAgent | None = None, vec: VecEnv | None = None, env_kwargs: dict | None = None,
          buffer_backend: str = "cpp", device: torch.device | str | None = None) -> Pipeline:
    """Build and connect the pipeline for `cfg`.

    seed        env i is seeded with seed + i at the first reset (default cfg.seed)
    num_envs    envs to step (default cfg.num_envs); backend: "subprocess" | "local" | "ray" (cfg.backend)
    deterministic, skills   the collector's greedy acting and skill override (evaluation)
    with_learner  also the rollout buffer and the learner (training); without them for evaluation
    agent       an agent to act with (a loaded checkpoint's); default a fresh HMASDAgent(cfg, spec)
    vec         envs already built (the trainer checks their spec first); default make_vec_env
    env_kwargs  the env's keyword arguments (default cfg.env.kwargs; evaluation adds render_mode)
    device      where the learner updates (default cfg.device, resolved); the agent acts on the CPU

    The RNG is not seeded here: a caller that wants reproducible weights seeds torch first. Envs this
    call made are closed if a later part fails.
    """
    changes = {k: v for k, v in (("num_envs", num_envs), ("backend", backend)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes) if changes else cfg
    own_vec = vec is None
    if vec is None:
        vec = make_vec_env(cfg, seed=cfg.seed if seed is None else seed, env_kwargs=env_kwargs)
    try:
        spec = vec.spec
        agent = HMASDAgent(cfg, spec) if agent is None else agent
        buffer = learner = None
        if with_learner:
            buffer = make_rollout_buffer(buffer_backend, T=cfg.rollout_length, E=cfg.num_envs, A=spec.num_agents,
                                         obs_dim=spec.obs_dim, state_dim=spec.state_dim, action_dim=spec.action_dim,
                                         mask_dim=spec.mask_dim)
        collector = Collector(vec, agent, cfg, buffer, deterministic=deterministic, skills=skills)
        if with_learner:
            learner = Learner(agent, cfg, resolve_device(cfg.device) if device is None else device)
    except BaseException:
        if own_vec:
            vec.close()
        raise
    return Pipeline(cfg=cfg, vec=vec, spec=spec, agent=agent, buffer=buffer, collector=collector, learner=learner)
