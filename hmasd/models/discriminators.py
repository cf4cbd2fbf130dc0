"""Skill discriminators q_D(Z | s) and q_d(z^i | o^i, Z) (paper Sec. 3, Eq. 4 and Eq. 8)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hmasd.models.common import OUTPUT_GAIN, init_linear, mlp


class TeamDiscriminator(nn.Module):
    """q_D(Z | s): logits over the n_Z team skills from the global state."""

    def __init__(self, state_dim: int, n_team_skills: int, hidden: int = 64) -> None:
        super().__init__()
        self.trunk = mlp(state_dim, hidden)
        self.head = init_linear(nn.Linear(hidden, n_team_skills), OUTPUT_GAIN)

    def forward(self, state: torch.Tensor) -> torch.Tensor:  # [..., S] -> [..., n_Z]
        return self.logits_of(self.normalize(state))

    def normalize(self, state: torch.Tensor, sparse: bool = False):
        """state [..., S] -> what `logits_of` takes (`Trunk.normalize`); the learner does it once per update."""
        return self.trunk.normalize(state, sparse)

    def logits_of(self, x) -> torch.Tensor:
        """`forward` from `normalize`d inputs."""
        return self.head(self.trunk.from_normalized(x))


class AgentDiscriminator(nn.Module):
    """q_d(z^i | o^i, Z): logits over the n_z individual skills from an agent's obs and the team skill."""

    def __init__(self, obs_dim: int, n_team_skills: int, n_agent_skills: int, hidden: int = 64) -> None:
        super().__init__()
        self.n_team_skills = n_team_skills
        self.trunk = mlp(obs_dim + n_team_skills, hidden)
        self.head = init_linear(nn.Linear(hidden, n_agent_skills), OUTPUT_GAIN)

    def forward(self, obs: torch.Tensor, team_skill: torch.Tensor) -> torch.Tensor:
        """obs [..., O], team_skill long [...] -> logits [..., n_z]."""
        return self.logits_of(self.normalize(self.inputs(obs, team_skill)))

    def inputs(self, obs: torch.Tensor, team_skill: torch.Tensor) -> torch.Tensor:
        """obs [..., O], team_skill long [...] -> [..., O + n_Z]; the learner builds them once per update."""
        return torch.cat([obs, F.one_hot(team_skill, self.n_team_skills).to(obs.dtype)], dim=-1)

    def normalize(self, x: torch.Tensor, sparse: bool = False):
        """`inputs` -> what `logits_of` takes (`Trunk.normalize`)."""
        return self.trunk.normalize(x, sparse)

    def logits_of(self, x) -> torch.Tensor:
        """`forward` from `normalize`d inputs."""
        return self.head(self.trunk.from_normalized(x))
