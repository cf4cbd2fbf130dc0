"""Skill coordinator (paper Sec. 3.1): a MAT-style transformer that assigns the team skill Z and the
individual skills z^1..z^n autoregressively.

Token layout (length A+1): position 0 is the global state s (emits Z), position 1+i is agent i's
observation o^i (emits z^i). The encoder turns (s, o^1..o^n) into (s_hat, o_hat^1..o_hat^n) and gives
the high-level values V_h(s_hat), V_h(o_hat^i). The decoder reads the shifted skill sequence
(Z^0 start token, Z, z^1, ..., z^{n-1}) under a causal mask, so the skill at position j depends on
the skills emitted before it: pi_h(Z | s_hat, o_hat, Z^0), pi_h(z^i | s_hat, o_hat, Z^0, Z, z^{1..i-1}).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical

from hmasd.models.common import OUTPUT_GAIN, init_linear


class Attention(nn.Module):
    """Multi-head attention with separate query and key/value sides.

    Written for a handful of tokens: scores are formed as [B, Lq, Lk, d] products reduced per head by
    one matmul with a 0/1 head-membership matrix, so every kernel runs over a contiguous inner
    dimension of d (or heads). Batched matmuls or torch's fused CPU kernel on [B*h, 4, 8] matrices
    pay more per tiny matrix than this costs in total (profiled: about 3x slower end to end).
    """

    def __init__(self, d: int, heads: int, max_tokens: int) -> None:
        super().__init__()
        self.scale = (d // heads) ** -0.5
        member = torch.zeros(d, heads)  # member[c, h] = 1 if channel c belongs to head h
        member[torch.arange(d), torch.arange(d) // (d // heads)] = 1.0
        self.register_buffer("member", member, persistent=False)
        causal = torch.ones(max_tokens, max_tokens, dtype=torch.bool).triu(1)  # True above the diagonal
        self.register_buffer("future", causal[:, :, None], persistent=False)  # [Lq, Lk, 1]
        self.q = init_linear(nn.Linear(d, d), 1.0)
        self.kv = init_linear(nn.Linear(d, 2 * d), 1.0)
        self.out = init_linear(nn.Linear(d, d), 1.0)

    def forward(self, query: torch.Tensor, source: torch.Tensor, causal: bool) -> torch.Tensor:
        """query [B, Lq, d], source [B, Lk, d] -> [B, Lq, d]; causal: position i sees keys 0..i."""
        lq, lk = query.shape[1], source.shape[1]
        q = self.q(query)
        k, v = self.kv(source).chunk(2, dim=-1)
        scores = (q[:, :, None, :] * k[:, None, :, :]) @ self.member * self.scale  # [B, Lq, Lk, heads]
        if causal:
            scores = scores.masked_fill(self.future[:lq, :lk], float("-inf"))
        weights = scores.softmax(dim=2)  # over keys
        y = ((weights @ self.member.T) * v[:, None, :, :]).sum(dim=2)  # [B, Lq, Lk, d] -> [B, Lq, d]
        return self.out(y)


def _feed_forward(d: int, ff: int) -> nn.Sequential:
    return nn.Sequential(init_linear(nn.Linear(d, ff)), nn.GELU(), init_linear(nn.Linear(ff, d), 1.0))


class EncoderBlock(nn.Module):
    """Self-attention + MLP with residuals (post-LN, as MAT)."""

    def __init__(self, d: int, heads: int, ff: int, tokens: int) -> None:
        super().__init__()
        self.attn = Attention(d, heads, tokens)
        self.mlp = _feed_forward(d, ff)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, x, causal=False))
        return self.ln2(x + self.mlp(x))


class DecoderBlock(nn.Module):
    """Masked self-attention over the skill tokens, then attention whose query side is the encoder
    output and whose key/value side is the decoded tokens (causal), then MLP; residuals as MAT."""

    def __init__(self, d: int, heads: int, ff: int, tokens: int) -> None:
        super().__init__()
        self.self_attn = Attention(d, heads, tokens)
        self.cross_attn = Attention(d, heads, tokens)
        self.mlp = _feed_forward(d, ff)
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.self_attn(x, x, causal=True))
        x = self.ln2(rep + self.cross_attn(rep, x, causal=True))
        return self.ln3(x + self.mlp(x))


class SkillCoordinator(nn.Module):
    """Transformer skill coordinator with high-level values (all layers created here, none lazily)."""

    def __init__(self, state_dim: int, obs_dim: int, n_agents: int, n_team_skills: int, n_agent_skills: int,
                 d: int = 64, heads: int = 8, layers: int = 3, ff: int = 256) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.n_team_skills = n_team_skills
        self.n_agent_skills = n_agent_skills
        self.state_embed = nn.Sequential(nn.LayerNorm(state_dim), init_linear(nn.Linear(state_dim, d)), nn.GELU())
        self.obs_embed = nn.Sequential(nn.LayerNorm(obs_dim), init_linear(nn.Linear(obs_dim, d)), nn.GELU())
        # Learned position embedding: agents with similar observations still get distinct tokens.
        self.position = nn.Parameter(torch.zeros(1, n_agents + 1, d))
        self.encoder = nn.ModuleList(EncoderBlock(d, heads, ff, n_agents + 1) for _ in range(layers))
        self.team_value = nn.Sequential(init_linear(nn.Linear(d, d)), nn.GELU(), init_linear(nn.Linear(d, 1), 1.0))
        self.agent_value = nn.Sequential(init_linear(nn.Linear(d, d)), nn.GELU(), init_linear(nn.Linear(d, 1), 1.0))

        self.start_token = nn.Parameter(torch.zeros(1, 1, d))  # Z^0
        self.team_skill_embed = nn.Embedding(n_team_skills, d)
        self.agent_skill_embed = nn.Embedding(n_agent_skills, d)
        self.decoder = nn.ModuleList(DecoderBlock(d, heads, ff, n_agents + 1) for _ in range(layers))
        self.team_head = init_linear(nn.Linear(d, n_team_skills), OUTPUT_GAIN)
        self.agent_head = init_linear(nn.Linear(d, n_agent_skills), OUTPUT_GAIN)

    def encode(self, state: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state [B, S], obs [B, A, O] -> (rep [B, A+1, d], values [B, A+1]: V_h(s_hat), V_h(o_hat^i))."""
        x = torch.cat([self.state_embed(state)[:, None], self.obs_embed(obs)], dim=1) + self.position
        for block in self.encoder:
            x = block(x)
        values = torch.cat([self.team_value(x[:, :1]), self.agent_value(x[:, 1:])], dim=1)[..., 0]
        return x, values

    def _decode(self, rep: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rep [B, A+1, d] (or its first L positions), tokens [B, L, d] -> (team logits [B, n_Z],
        agent logits [B, L-1, n_z]) for the first L positions."""
        length = tokens.shape[1]
        x = tokens
        for block in self.decoder:
            x = block(x, rep[:, :length])
        return self.team_head(x[:, 0]), self.agent_head(x[:, 1:])

    def _tokens(self, team_skill: torch.Tensor, agent_skills: torch.Tensor) -> torch.Tensor:
        """Shifted decoder input (Z^0, Z, z^1, ..., z^{m}) for Z [B] and the first m agent skills [B, m]."""
        b = team_skill.shape[0]
        parts = [self.start_token.expand(b, 1, -1), self.team_skill_embed(team_skill)[:, None]]
        if agent_skills.shape[1]:
            parts.append(self.agent_skill_embed(agent_skills))
        return torch.cat(parts, dim=1)

    def evaluate(self, state, obs, team_skill, agent_skills):
        """Teacher-forced pass for training (paper Eq. 6).

        state [B, S], obs [B, A, O], team_skill long [B], agent_skills long [B, A]
        -> (log_probs [B, A+1], entropy [B, A+1], values [B, A+1]); index 0 is Z, 1+i is z^i.
        """
        rep, values = self.encode(state, obs)
        tokens = self._tokens(team_skill, agent_skills[:, :-1])  # [B, A+1, d]
        team_logits, agent_logits = self._decode(rep, tokens)
        team_dist, agent_dist = Categorical(logits=team_logits), Categorical(logits=agent_logits)
        log_probs = torch.cat([team_dist.log_prob(team_skill)[:, None], agent_dist.log_prob(agent_skills)], dim=1)
        entropy = torch.cat([team_dist.entropy()[:, None], agent_dist.entropy()], dim=1)
        return log_probs, entropy, values

    @torch.no_grad()
    def values(self, state: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        return self.encode(state, obs)[1]

    @torch.no_grad()
    def sample(self, state, obs, deterministic: bool = False):
        """Autoregressive skill assignment: Z first, then z^1, z^2, ... each given those before it.

        state [B, S], obs [B, A, O] -> (team_skill [B], agent_skills [B, A], log_probs [B, A+1], values [B, A+1]).
        """
        rep, values = self.encode(state, obs)
        b, a = obs.shape[0], self.n_agents
        team_skill = torch.zeros(b, dtype=torch.long, device=obs.device)
        agent_skills = torch.zeros(b, a, dtype=torch.long, device=obs.device)
        log_probs = torch.zeros(b, a + 1, device=obs.device)
        tokens = self.start_token.expand(b, 1, -1)
        for pos in range(a + 1):
            team_logits, agent_logits = self._decode(rep, tokens)
            logits = team_logits if pos == 0 else agent_logits[:, pos - 1]
            dist = Categorical(logits=logits)
            choice = dist.probs.argmax(-1) if deterministic else dist.sample()
            log_probs[:, pos] = dist.log_prob(choice)
            if pos == 0:
                team_skill = choice
                tokens = torch.cat([tokens, self.team_skill_embed(choice)[:, None]], dim=1)
            else:
                agent_skills[:, pos - 1] = choice
                tokens = torch.cat([tokens, self.agent_skill_embed(choice)[:, None]], dim=1)
        return team_skill, agent_skills, log_probs, values
