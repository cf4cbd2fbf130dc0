"""Rollout collection (paper Algorithm 1, with the project's synchronous choices).

One `collect()` = exactly `rollout_length` steps of each of the E envs, all under one policy version:
T x E env steps, written into the fused buffer. Skills are (re)assigned at the rollout's first step,
at every episode start and every k steps; the coordinator records log-probs and high-level values at
those steps, and the buffer turns them into segments. Shapes: T steps, E envs, A agents, H hidden.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from hmasd.agent import HMASDAgent
from hmasd.config import Config
from hmasd.records import EpisodeInfo, VecEnv
from hmasd.rollout import Rollout

# Evaluation's replacement for the coordinator's skills: None (the coordinator), "uniform", or (Z, z^1..z^n).
SkillOverride = None | str | tuple[int, ...]


class Collector:
    """Drives the vectorised envs with the current policy and fills the buffer.

    Keeps the state that crosses rollouts: the latest observations, the GRU hidden states and which
    envs start a new episode. Skills never cross rollouts (reassigned at t=0) so no high-level sample
    straddles two policy versions.
    """

    def __init__(self, vec: VecEnv, agent: HMASDAgent, cfg: Config, buffer, deterministic: bool = False,
                 skills: SkillOverride = None) -> None:
        self.vec, self.agent, self.cfg, self.buffer = vec, agent, cfg, buffer
        self.skills = skills
        spec = vec.spec
        self.E, self.A, self.T = cfg.num_envs, spec.num_agents, cfg.rollout_length
        self.k = cfg.hmasd.skill_interval if cfg.uses_skills else cfg.rollout_length
        self.discrete = spec.action_kind == "discrete"
        self.deterministic = deterministic
        self.next_state = np.zeros((self.T, self.E, spec.state_dim), dtype=np.float32)
        self.next_obs = np.zeros((self.T, self.E, self.A, spec.obs_dim), dtype=np.float32)
        self.starts = np.zeros((self.T, self.E), dtype=bool)
        self.restart(vec)

    def restart(self, vec: VecEnv) -> None:
        """Begin fresh episodes in every env of `vec` (the first start, or rebuilt envs after a worker
        fault): nothing of the state that crossed rollouts is kept, since it belonged to the old envs."""
        self.vec = vec
        first = vec.reset()
        self.obs, self.state, self.alive = first.obs, first.state, first.alive
        self.action_mask = first.action_mask  # bool [E, A, M] for envs with masked actions, else None
        E, A, H = self.E, self.A, self.agent.hidden
        self.actor_h = torch.zeros(E * A, H)
        self.critic_h = torch.zeros(E * A, H)
        self.episode_start = np.ones(E, dtype=bool)
        self._last_starts = np.ones(E, dtype=bool)
        self.skill_timer = np.zeros(E, dtype=np.int64)
        self.team_skill = np.zeros(E, dtype=np.int64)
        self.agent_skills = np.zeros((E, A), dtype=np.int64)
        self.hl_log_probs = np.zeros((E, A + 1), dtype=np.float32)
        self.hl_values = np.zeros((E, A + 1), dtype=np.float32)

    # -- what a caller of step() may read (evaluation, instruments) -------------------------------
    @property
    def actor_hidden(self) -> torch.Tensor:
        """[E*A, H] the actor's hidden state the next step() starts from (before any episode reset)."""
        return self.actor_h

    @property
    def last_step_starts(self) -> np.ndarray:
        """bool [E]: the step just played was the first of an episode (its GRU state was reset)."""
        return self._last_starts.copy()

    @property
    def current_skills(self) -> tuple[np.ndarray, np.ndarray]:
        """(Z [E], z [E, A]): the skills the envs hold now (those of the step just played)."""
        return self.team_skill.copy(), self.agent_skills.copy()

    @property
    def skill_age(self) -> np.ndarray:
        """int [E]: steps since each env's skills were assigned, counting the step just played."""
        return self.skill_timer.copy()

    # -- the state that crosses rollouts, for checkpoints ------------------------------------------
    _ARRAYS = ("obs", "state", "alive", "episode_start", "skill_timer", "team_skill", "agent_skills",
               "hl_log_probs", "hl_values")

    def state_dict(self) -> dict:
        out = {name: torch.from_numpy(np.array(getattr(self, name))) for name in self._ARRAYS}
        out.update(actor_h=self.actor_h.clone(), critic_h=self.critic_h.clone())
        if self.action_mask is not None:
            out["action_mask"] = torch.from_numpy(self.action_mask.copy())
        return out

    def load_state_dict(self, data: dict) -> None:
        for name in self._ARRAYS:
            current = getattr(self, name)
            value = data[name].numpy().astype(current.dtype)
            if value.shape != current.shape:
                raise ValueError(f"collector state '{name}' has shape {value.shape}, expected {current.shape}")
            setattr(self, name, value)
        self.actor_h, self.critic_h = data["actor_h"].clone(), data["critic_h"].clone()
        if self.action_mask is not None and "action_mask" in data:
            self.action_mask = data["action_mask"].numpy().astype(bool)

    # -- skills -----------------------------------------------------------------------------------
    def _assign_skills(self, assign: np.ndarray) -> None:
        """Sample (Z, z^1..z^n) for the envs in `assign` and record log-probs and V_h values."""
        self.skill_timer[assign] = 0
        if not self.agent.uses_skills:
            return
        idx = np.flatnonzero(assign)
        if idx.size == 0:
            return
        state = torch.from_numpy(self.state[idx])
        obs = torch.from_numpy(self.obs[idx])
        team, agents, log_probs, values = self.agent.coordinator.sample(state, obs, self.deterministic)
        if self.skills is not None:  # sampled first anyway, so fixed skills leave the action draws as they were
            team, agents = self._override(idx.size)
        self.team_skill[idx] = team.numpy()
        self.agent_skills[idx] = agents.numpy()
        self.hl_log_probs[idx] = log_probs.numpy()
        self.hl_values[idx] = self.agent.high_value_norm.denormalize(values).numpy()

    def _override(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Skills that replace the coordinator's (evaluation only, to measure what it adds): "uniform"
        draws Z and every z^i uniformly; a tuple (Z, z^1..z^n) gives every env the same skills."""
        h = self.cfg.hmasd
        if self.skills == "uniform":
            return torch.randint(h.n_team_skills, (n,)), torch.randint(h.n_agent_skills, (n, self.A))
        team, *agents = self.skills
        return torch.full((n,), team), torch.tensor(agents).expand(n, self.A)

    def _high_values(self, state: np.ndarray, obs: np.ndarray) -> np.ndarray:
        if not self.agent.uses_skills:
            return np.zeros((state.shape[0], self.A + 1), dtype=np.float32)
        values = self.agent.coordinator.values(torch.from_numpy(state), torch.from_numpy(obs))
        return self.agent.high_value_norm.denormalize(values).numpy()

    def _critic(self, state: np.ndarray, h: torch.Tensor, starts: np.ndarray):
        """V_l(s, Z, id) for every env and agent: state [E, S] -> (values [E, A] real scale, h_new)."""
        team = torch.from_numpy(self.team_skill)[None]
        start = torch.from_numpy(np.repeat(starts, self.A))[None]  # [E] -> [1, E*A]
        with torch.no_grad():
            v, h_new = self.agent.critic(torch.from_numpy(state)[None], team, h, start)
            v = self.agent.low_value_norm.denormalize(v[0])
        return v.view(self.E, self.A).numpy(), h_new

    # -- one step ---------------------------------------------------------------------------------
    def step(self, rollout_start: bool = False):
        """Assign skills where due, act, step every env. Returns (StepBatch, the buffer's add() record).

        The record shares the collector's skill arrays (add() copies them into the buffer): read it
        before the next step."""
        E, A = self.E, self.A
        assign = self.episode_start | (self.skill_timer >= self.k)
        if rollout_start:
            assign[:] = True  # skills never straddle two policy versions
        self._assign_skills(assign)
        starts = self.episode_start.copy()
        flat_starts = torch.from_numpy(np.repeat(starts, A))  # [E] -> [E*A]
        obs = torch.from_numpy(self.obs.reshape(E * A, -1))  # [E, A, O] -> [E*A, O]
        skill = torch.from_numpy(self.agent_skills.reshape(E * A)) if self.agent.uses_skills else None
        mask = None if self.action_mask is None else torch.from_numpy(self.action_mask.reshape(E * A, -1))
        actions, log_probs, self.actor_h = self.agent.actor.act(obs, skill, self.actor_h, flat_starts,
                                                                self.deterministic, mask)  # [E, A, M] -> [E*A, M]
        values, self.critic_h = self._critic(self.state, self.critic_h, starts)
        actions = actions.view(E, A, -1).numpy()  # [E*A, D] -> [E, A, D]
        env_actions = actions[..., 0].astype(np.int64) if self.discrete else actions
        step = self.vec.step(env_actions)

        bootstrap = np.zeros((E, A), dtype=np.float32)
        hl_bootstrap = np.zeros((E, A + 1), dtype=np.float32)
        if step.truncated.any():
            # Truncation is not failure: bootstrap both levels from the final observation's value.
            bootstrap, _ = self._critic(step.final_state, self.critic_h, np.zeros(E, dtype=bool))
            hl_bootstrap = self._high_values(step.final_state, step.final_obs)
        record = dict(
            obs=self.obs, state=self.state, actions=np.ascontiguousarray(actions, dtype=np.float32),
            log_probs=log_probs.view(E, A).numpy(), values=values,
            reward=step.reward.astype(np.float32), terminated=step.terminated.astype(np.uint8),
            truncated=step.truncated.astype(np.uint8), bootstrap_values=np.ascontiguousarray(bootstrap),
            alive=self.alive.astype(np.uint8), team_skill=self.team_skill,
            agent_skill=self.agent_skills, assign=assign.astype(np.uint8),
            hl_log_probs=self.hl_log_probs, hl_values=self.hl_values,
            hl_bootstrap_values=np.ascontiguousarray(hl_bootstrap, dtype=np.float32),
        )
        if self.action_mask is not None:
            record["action_mask"] = self.action_mask.astype(np.uint8)  # the mask the actions were drawn under
        self._last_starts = starts
        self.obs, self.state, self.alive = step.obs, step.state, step.alive
        self.action_mask = step.action_mask
        self.episode_start = step.terminated | step.truncated
        self.skill_timer += 1
        return step, record

    # -- one rollout ------------------------------------------------------------------------------
    def collect(self) -> Rollout:
        """Exactly T steps of every env into the (reset) buffer. Each step is stamped with the agent's
        policy version as read at that step, so the learner can prove no sample crosses a version."""
        t0 = time.perf_counter()
        E, T = self.E, self.T
        buf = self.buffer
        buf.reset()
        # Hidden states before every step: training replays data chunks from them (MAPPO's approach).
        actor_hs = torch.empty(T, *self.actor_h.shape)
        critic_hs = torch.empty(T, *self.critic_h.shape)
        episodes: list[EpisodeInfo] = []
        contributed = np.zeros(E, dtype=np.int64)
        versions = np.zeros((T, E), dtype=np.int64)
        for t in range(T):
            actor_hs[t], critic_hs[t] = self.actor_h, self.critic_h
            step, record = self.step(rollout_start=(t == 0))
            buf.add(**record)
            self.starts[t] = self._last_starts
            self.next_state[t] = step.final_state
            self.next_obs[t] = step.final_obs
            versions[t] = int(self.agent.policy_version)
            episodes.extend(step.episodes)
            contributed += 1  # every env steps once per synchronous step; counted, not assumed

        last_values, _ = self._critic(self.state, self.critic_h, self.episode_start)
        last_hl_values = self._high_values(self.state, self.obs)
        return Rollout(
            buffer=buf, next_state=self.next_state.copy(), next_obs=self.next_obs.copy(), starts=self.starts.copy(),
            actor_h=actor_hs, critic_h=critic_hs, last_values=np.ascontiguousarray(last_values),
            last_hl_values=np.ascontiguousarray(last_hl_values, dtype=np.float32), episodes=episodes,
            policy_version=int(versions[0, 0]), versions=versions, env_steps_per_env=contributed,
            collect_seconds=time.perf_counter() - t0,
        )
