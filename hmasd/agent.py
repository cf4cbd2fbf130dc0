"""All learned parts of one run in a single nn.Module, so one state_dict holds every weight.

`algo: hmasd` builds the coordinator, the discoverer (actor + critic), both discriminators and the two
value normalisers. `algo: mappo` builds only the discoverer with no skill inputs: the flat baseline.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hmasd.config import Config
from hmasd.models import AgentDiscriminator, DiscovererActor, DiscovererCritic, SkillCoordinator, TeamDiscriminator
from hmasd.value_norm import ValueNorm

# Argument validation of torch.distributions costs more than the sampling itself at these sizes;
# the inputs are logits and parameters produced by our own networks.
torch.distributions.Distribution.set_default_validate_args(False)


class HMASDAgent(nn.Module):
    def __init__(self, cfg: Config, spec) -> None:
        super().__init__()
        h, m = cfg.hmasd, cfg.model
        skills = cfg.uses_skills
        n_z = h.n_agent_skills if skills else 0
        n_team = h.n_team_skills if skills else 0
        self.uses_skills = skills
        # Bumped by the learner after each update; stamped on every collected step.
        self.register_buffer("policy_version", torch.zeros((), dtype=torch.long))
        self.n_agents = spec.num_agents
        self.hidden = m.hidden
        self.actor = DiscovererActor(spec.obs_dim, n_z, spec.action_kind, spec.n_actions, spec.action_dim,
                                     hidden=m.hidden, recurrent=m.recurrent, n_agents=spec.num_agents,
                                     agent_id=m.actor_agent_id, input_norm=m.input_norm,
                                     zero_skill_weights=m.zero_init_skill_weights)
        self.critic = DiscovererCritic(spec.state_dim, n_team, spec.num_agents, hidden=m.hidden,
                                       recurrent=m.recurrent, agent_id=m.critic_agent_id,
                                       input_norm=m.input_norm, zero_skill_weights=m.zero_init_skill_weights)
        self.low_value_norm = ValueNorm(enabled=cfg.ppo.value_norm)
        self.coordinator = self.team_discriminator = self.agent_discriminator = self.high_value_norm = None
        if skills:
            self.coordinator = SkillCoordinator(spec.state_dim, spec.obs_dim, spec.num_agents, n_team, n_z,
                                                d=m.hidden, heads=m.coordinator_heads, layers=m.coordinator_layers,
                                                ff=m.coordinator_ff)
            self.high_value_norm = ValueNorm(enabled=cfg.ppo.value_norm)
            self.team_discriminator = TeamDiscriminator(spec.state_dim, n_team, hidden=m.hidden)
            self.agent_discriminator = AgentDiscriminator(spec.obs_dim, n_team, n_z, hidden=m.hidden)

    @torch.no_grad()
    def update_input_stats(self, obs: np.ndarray, state: np.ndarray, alive: np.ndarray) -> None:
        """Merge a learned batch into the discoverer's running input statistics (model.input_norm:
        running; a no-op otherwise). obs [T, E, A, O] (only rows of alive agents), state [T, E, S]."""
        if self.actor.obs_norm is not None:
            self.actor.obs_norm.update(torch.from_numpy(np.asarray(obs)[np.asarray(alive).astype(bool)]))
        if self.critic.state_norm is not None:
            self.critic.state_norm.update(torch.from_numpy(np.asarray(state)))
