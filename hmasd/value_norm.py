"""Running normalisation of value targets (paper settings: value normalisation on).

As MAPPO's ValueNorm: exponential running mean and mean-square of the returns with a debiasing
term, so early updates are not dominated by the zero initialisation. Critics predict normalised
values; the buffer stores real-scale values (denormalised) so GAE works in reward units.
An nn.Module so its statistics travel in the state_dict and in checkpoints.
"""
from __future__ import annotations

import torch
from torch import nn


class ValueNorm(nn.Module):
    def __init__(self, beta: float = 0.99999, epsilon: float = 1e-5, enabled: bool = True) -> None:
        super().__init__()
        self.beta = beta
        self.epsilon = epsilon
        self.enabled = enabled
        self.register_buffer("running_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("running_mean_sq", torch.zeros((), dtype=torch.float64))
        self.register_buffer("debiasing_term", torch.zeros((), dtype=torch.float64))

    def _mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        debias = self.debiasing_term.clamp(min=self.epsilon)
        mean = self.running_mean / debias
        mean_sq = self.running_mean_sq / debias
        var = (mean_sq - mean**2).clamp(min=1e-2)
        return mean.float(), var.sqrt().float()

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> None:
        if not self.enabled:
            return
        x = returns.detach().double().reshape(-1)
        self.running_mean.mul_(self.beta).add_(x.mean() * (1.0 - self.beta))
        self.running_mean_sq.mul_(self.beta).add_((x**2).mean() * (1.0 - self.beta))
        self.debiasing_term.mul_(self.beta).add_(1.0 - self.beta)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        mean, std = self._mean_std()
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        mean, std = self._mean_std()
        return x * std + mean
