"""PPO, value and discriminator losses as pure functions returning (loss, stats).

No I/O, no optimiser, no module state: every function maps tensors to a scalar loss and a dict of
float statistics. `mask` (same shape as the per-sample terms, 1 = counts) drops samples of agents
that are not present; `None` means every sample counts.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def ppo_policy_loss(log_probs, old_log_probs, advantages, clip: float, mask=None):
    """Clipped surrogate: -E[min(rho * A, clip(rho, 1-eps, 1+eps) * A)], rho = pi / pi_old."""
    ratio = torch.exp(log_probs - old_log_probs)
    surrogate = torch.min(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)
    loss = -masked_mean(surrogate, mask)
    with torch.no_grad():
        log_ratio = log_probs - old_log_probs
        stats = {
            "approx_kl": masked_mean((ratio - 1.0) - log_ratio, mask).item(),
            "clip_fraction": masked_mean(((ratio - 1.0).abs() > clip).float(), mask).item(),
        }
    return loss, stats


def huber(error: torch.Tensor, delta: float) -> torch.Tensor:
    """Elementwise Huber loss of `error` (quadratic within +-delta, linear outside)."""
    abs_err = error.abs()
    quadratic = abs_err.clamp(max=delta)
    return 0.5 * quadratic**2 + delta * (abs_err - quadratic)


def clipped_value_loss(values, old_values, returns, clip: float, huber_delta: float, mask=None):
    """E[max(L(V - R), L(V_old + clip(V - V_old, -eps, eps) - R))] with L the Huber loss (paper settings).

    All three tensors are in the same space: with value normalisation the caller passes normalised
    `returns` and the normalised `old_values` the critic produced at collection time.
    """
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    loss = masked_mean(torch.max(huber(values - returns, huber_delta), huber(clipped - returns, huber_delta)), mask)
    return loss, {}


def entropy_loss(entropy: torch.Tensor, coef: float, mask=None):
    """-coef * E[H]: minimising it raises the entropy (lambda_h in Eq. 6, lambda_l in Eq. 7)."""
    mean_entropy = masked_mean(entropy, mask)
    return -coef * mean_entropy, {"entropy": mean_entropy.item()}


def discriminator_loss(team_logits, team_skill, agent_logits, agent_skills, agent_mask=None):
    """Paper Eq. 8: -log q_D(Z | s') - sum_i log q_d(z^i | o'^i, Z), averaged over samples.

    team_logits [N, n_Z], team_skill [N], agent_logits [N, A, n_z], agent_skills [N, A], agent_mask [N, A].
    Returns the summed loss and its two parts (the agent part is summed over agents, as in Eq. 8).
    """
    team_ce = F.cross_entropy(team_logits, team_skill)
    n, a, n_z = agent_logits.shape
    agent_ce_each = F.cross_entropy(agent_logits.reshape(n * a, n_z), agent_skills.reshape(n * a), reduction="none")
    agent_ce = masked_mean(agent_ce_each.view(n, a), agent_mask) * a  # mean over samples of the sum over agents
    with torch.no_grad():
        team_acc = (team_logits.argmax(-1) == team_skill).float().mean().item()
        agent_acc = masked_mean((agent_logits.argmax(-1) == agent_skills).float(), agent_mask).item()
    stats = {"team": team_ce.item(), "individual": agent_ce.item(), "team_accuracy": team_acc,
             "individual_accuracy": agent_acc}
    return team_ce + agent_ce, stats
