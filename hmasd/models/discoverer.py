"""Skill discoverer (paper Sec. 3.2): the low-level actor pi_l(a^i | o^i, z^i) and critic V_l(s, Z).

Both are MLP -> GRU -> MLP with parameters shared by all agents. Inputs are time-major:
x [T, N, ...] with N = envs x agents flattened, hidden states [N, H], and `starts` [T, N] marking
the first step of an episode (the hidden state is reset there).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, Normal

from hmasd.models.common import OUTPUT_GAIN, MaskedGRU, RunningNorm, init_linear, mlp


class _Recurrent(nn.Module):
    """MLP trunk -> optional masked GRU -> one ReLU layer; the shared body of actor and critic."""

    def __init__(self, in_dim: int, hidden: int, recurrent: bool, norm_input: bool = True) -> None:
        super().__init__()
        self.hidden = hidden
        self.trunk = mlp(in_dim, hidden, norm_input=norm_input)
        self.gru = MaskedGRU(hidden) if recurrent else None
        self.post = nn.Sequential(init_linear(nn.Linear(hidden, hidden)), nn.ReLU())

    def normalize(self, x: torch.Tensor, sparse: bool = False):
        """Raw inputs [T, N, in] -> what `forward` takes: the input LayerNorm without its parameters
        (`Trunk.normalize`), so that inputs fixed for an update are normalised once."""
        return self.trunk.normalize(x, sparse)

    def forward(self, x: torch.Tensor, h0: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [T, N, in] from `normalize`, h0 [N, H], starts [T, N] -> (features [T, N, H], h_T)."""
        feat = self.trunk.from_normalized(x)  # [T, N, H]
        h = h0
        if self.gru is not None:
            feat, h = self.gru(feat, h0, starts)
        return self.post(feat), h

    @torch.no_grad()
    def zero_input_columns(self, start: int, stop: int) -> None:
        """Zero the first Linear's weights on inputs [start, stop): the body starts blind to them.

        Used on the skill one-hots (model.zero_init_skill_weights). With random weights there, every
        skill starts as a different random perturbation of one policy, and nothing in the reward pulls
        the copies back together where skills do not matter; from zero they part only as far as the
        updates push them (docs/results.md measures both on simple_spread). An input LayerNorm keeps
        this exact: the one-hot's mean and spread are the same whichever skill is hot.
        """
        self.trunk[1].weight[:, start:stop] = 0.0


def agent_ids(rows: int, n_agents: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot agent ids for `rows` agent-minor rows (row e*A + a is agent a, as everywhere in the
    trainer) -> [rows, A], broadcastable over a leading time axis."""
    if rows % n_agents:
        raise ValueError(f"{rows} rows are not whole groups of {n_agents} agents")
    return torch.eye(n_agents, dtype=like.dtype, device=like.device).repeat(rows // n_agents, 1)


class DiscovererActor(nn.Module):
    """pi_l(a | o, z): categorical for Discrete actions, diagonal Gaussian (state-independent log-std)
    for Box actions. The Gaussian's log-prob is of the unclipped sample; the env adapter clips.

    `action_mask` (bool [T, N, M], optional everywhere): for Discrete actions the actions an agent may
    take (the env's mask and the padding of agents with fewer actions); masked logits are set to the
    lowest float, so their probability is exactly 0 and they are never drawn. For Box actions the
    dimensions that are the agent's own: padded ones are left out of log-probabilities and entropy.
    Acting and the PPO update must pass the same mask, so that the ratio compares like with like.

    With `agent_id` (model.actor_agent_id, off by default as in the paper) the actor also sees the
    agent's one-hot id, so that agents with shared parameters and alike observations can still act
    differently (the agent-id input of MAPPO-style trainers; on simple_spread it gained nothing,
    docs/results.md).
    """

    def __init__(self, obs_dim: int, n_agent_skills: int, action_kind: str, n_actions: int, action_dim: int,
                 hidden: int = 64, recurrent: bool = True, n_agents: int = 1, agent_id: bool = False,
                 input_norm: str = "layer", zero_skill_weights: bool = False) -> None:
        super().__init__()
        self.n_agent_skills = n_agent_skills  # 0: flat MAPPO actor with no skill input
        self.n_agents = n_agents
        self.agent_id = agent_id
        self.discrete = action_kind == "discrete"
        # model.input_norm: "running" normalises the observation only; one-hot parts are already O(1)
        self.obs_norm = RunningNorm(obs_dim) if input_norm == "running" else None
        self.body = _Recurrent(obs_dim + n_agent_skills + (n_agents if agent_id else 0), hidden, recurrent,
                               input_norm == "layer")
        if zero_skill_weights:
            self.body.zero_input_columns(obs_dim, obs_dim + n_agent_skills)
        out = n_actions if self.discrete else action_dim
        self.head = init_linear(nn.Linear(hidden, out), OUTPUT_GAIN)
        self.log_std = None if self.discrete else nn.Parameter(torch.zeros(action_dim))

    def inputs(self, obs: torch.Tensor, skill: torch.Tensor | None) -> torch.Tensor:
        """obs [T, N, O] with N agent-minor rows, skill long [T, N] or None -> [T, N, input width].

        Fixed for a whole update (the input statistics change only after it), so the learner builds
        and `normalize`s them once per update instead of once per epoch: `distribution_of` takes them
        as they are.
        """
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        parts = [obs]
        if self.n_agent_skills:
            parts.append(F.one_hot(skill, self.n_agent_skills).to(obs.dtype))
        if self.agent_id:
            parts.append(agent_ids(obs.shape[1], self.n_agents, obs).expand(obs.shape[0], -1, -1))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else obs

    def normalize(self, x: torch.Tensor, sparse: bool = False):
        """`inputs` -> what `distribution_of` takes (`Trunk.normalize`)."""
        return self.body.normalize(x, sparse)

    def distribution(self, obs, skill, h0, starts, action_mask=None):
        """obs [T, N, O], skill long [T, N] -> (distribution over [T, N] actions, h_T [N, H])."""
        return self.distribution_of(self.normalize(self.inputs(obs, skill)), h0, starts, action_mask)

    def distribution_of(self, x, h0, starts, action_mask=None):
        """`distribution` from prepared inputs x [T, N, input width] (`inputs`, then `normalize`)."""
        feat, h = self.body(x, h0, starts)
        out = self.head(feat)
        if self.discrete:
            if action_mask is not None:
                # The lowest float rather than -inf: probabilities are still exactly 0, and the KL and
                # entropy sums stay finite (0 * finite) instead of 0 * inf = nan.
                out = out.masked_fill(~action_mask, torch.finfo(out.dtype).min)
            return Categorical(logits=out), h
        return Normal(out, self.log_std.exp().expand_as(out)), h

    def log_prob(self, dist, actions: torch.Tensor, action_mask=None) -> torch.Tensor:
        """actions float [T, N, D] as stored in the buffer -> log-prob [T, N]."""
        if self.discrete:
            return dist.log_prob(actions[..., 0].long())
        return self._own_dims(dist.log_prob(actions), action_mask).sum(-1)

    def entropy(self, dist, action_mask=None) -> torch.Tensor:
        return dist.entropy() if self.discrete else self._own_dims(dist.entropy(), action_mask).sum(-1)

    @staticmethod
    def _own_dims(per_dim: torch.Tensor, action_mask) -> torch.Tensor:
        """Zero the padded Box dimensions of agents with fewer of them (none when unmasked)."""
        return per_dim if action_mask is None else per_dim * action_mask

    @torch.no_grad()
    def skill_kl(self, obs, skill, h0, starts, action_mask=None) -> torch.Tensor:
        """How much the action depends on the skill: KL(pi_l(.|o, z) || pi_l(.|o, z + 1 mod n_z)) per row,
        obs [T, N, O], skill long [T, N] -> [T, N].

        0 means the actor ignores z, and the coordinator's choices cannot change what the agents do.
        The discriminators' accuracy cannot show this: the coordinator picks z from the state, so q_d can
        read z off the observation whether or not the agent acts on it.
        """
        dist, _ = self.distribution(obs, skill, h0, starts, action_mask)
        shifted, _ = self.distribution(obs, (skill + 1) % self.n_agent_skills, h0, starts, action_mask)
        if self.discrete:
            # From the log-probs: torch's Categorical KL is inf wherever the second distribution's
            # probability underflows to 0, even where the true KL is finite (an inf once reached the log).
            log_p, log_q = dist.logits, shifted.logits  # Categorical keeps logits as normalised log-probs
            return (log_p.exp() * (log_p - log_q)).sum(-1)
        return self._own_dims(torch.distributions.kl_divergence(dist, shifted), action_mask).sum(-1)

    @torch.no_grad()
    def act(self, obs, skill, h, start, deterministic: bool = False, action_mask=None):
        """One step for N rows: obs [N, O], skill [N], h [N, H], start bool [N], action_mask bool [N, M]
        or None -> (actions float [N, D], log_prob [N], h_new [N, H])."""
        skill = None if skill is None else skill[None]
        mask = None if action_mask is None else action_mask[None]
        dist, h_new = self.distribution(obs[None], skill, h, start[None], mask)
        if deterministic:
            action = dist.probs.argmax(-1) if self.discrete else dist.mean
        else:
            action = dist.sample()
        log_prob = self.log_prob(dist, action[..., None].float() if self.discrete else action, mask)
        action = action[..., None].float() if self.discrete else action  # [1, N, D]
        return action[0], log_prob[0], h_new


class DiscovererCritic(nn.Module):
    """V_l(s, Z, agent id): the low-level value of an agent's intrinsic + extrinsic return.

    The agent's one-hot id is a project choice (rewards differ per agent through q_d); turn it off
    with model.critic_agent_id = false. Outputs are in the value normaliser's space.
    """

    def __init__(self, state_dim: int, n_team_skills: int, n_agents: int, hidden: int = 64,
                 recurrent: bool = True, agent_id: bool = True, input_norm: str = "layer",
                 zero_skill_weights: bool = False) -> None:
        super().__init__()
        self.n_team_skills = n_team_skills  # 0: MAPPO critic with no skill input
        self.n_agents = n_agents
        self.agent_id = agent_id
        self.state_norm = RunningNorm(state_dim) if input_norm == "running" else None
        self.body = _Recurrent(state_dim + n_team_skills + (n_agents if agent_id else 0), hidden, recurrent,
                               input_norm == "layer")
        if zero_skill_weights:
            self.body.zero_input_columns(state_dim, state_dim + n_team_skills)
        self.head = init_linear(nn.Linear(hidden, 1), 1.0)

    def forward(self, state, team_skill, h0, starts):
        """state [T, E, S], team_skill [T, E], h0 [E*A, H], starts [T, E*A] -> (values [T, E*A], h_T)."""
        return self.values_of(self.normalize(self.inputs(state, team_skill)), h0, starts)

    def values_of(self, x, h0, starts):
        """`forward` from prepared inputs x [T, E*A, input width] (`inputs`, then `normalize`)."""
        feat, h = self.body(x, h0, starts)
        return self.head(feat)[..., 0], h

    def inputs(self, state, team_skill):
        """state [T, E, S], team_skill [T, E] -> one row per agent [T, E*A, input width] (row e*A + a).

        Fixed for a whole update, like the actor's: the learner builds them once per update.
        """
        x = state if self.state_norm is None else self.state_norm(state)
        if self.n_team_skills:
            x = torch.cat([x, F.one_hot(team_skill, self.n_team_skills).to(x.dtype)], dim=-1)
        t, e, d = x.shape
        a = self.n_agents
        x = x[:, :, None, :].expand(t, e, a, d)  # [T, E, D] -> [T, E, A, D]
        x = x.reshape(t, e * a, d)  # [T, E, A, D] -> [T, E*A, D]
        if self.agent_id:
            x = torch.cat([x, agent_ids(e * a, a, x).expand(t, -1, -1)], dim=-1)
        return x

    def normalize(self, x: torch.Tensor, sparse: bool = False):
        """`inputs` -> what `values_of` takes (`Trunk.normalize`)."""
        return self.body.normalize(x, sparse)
