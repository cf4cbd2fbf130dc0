"""Loss functions against numbers worked out by hand."""
import math

import pytest
import torch

from hmasd.losses import (clipped_value_loss, discriminator_loss, entropy_loss, huber, masked_mean,
                          ppo_policy_loss)


def test_ppo_policy_loss_clips_the_ratio_on_the_side_of_the_advantage():
    # ratios 1.5, 0.5, 1.1 with advantages +1, +1, -2 and clip 0.2:
    #   min(1.5*1, 1.2*1) = 1.2 ; min(0.5*1, 0.8*1) = 0.5 ; min(1.1*-2, 1.1*-2) = -2.2
    log_probs = torch.log(torch.tensor([1.5, 0.5, 1.1]))
    old = torch.zeros(3)
    adv = torch.tensor([1.0, 1.0, -2.0])
    loss, stats = ppo_policy_loss(log_probs, old, adv, clip=0.2)
    assert loss.item() == pytest.approx(-(1.2 + 0.5 - 2.2) / 3, abs=1e-6)
    assert stats["clip_fraction"] == pytest.approx(2 / 3)


def test_ppo_policy_loss_respects_the_mask():
    log_probs = torch.log(torch.tensor([1.5, 3.0]))
    loss, _ = ppo_policy_loss(log_probs, torch.zeros(2), torch.tensor([1.0, 100.0]), 0.2, mask=torch.tensor([1, 0]))
    assert loss.item() == pytest.approx(-1.2, abs=1e-6)


def test_huber_is_quadratic_inside_and_linear_outside_delta():
    err = torch.tensor([0.5, -3.0, 12.0])
    # 0.5*0.25 ; 0.5*9 ; 0.5*100 + 10*(12-10)
    assert huber(err, 10.0).tolist() == pytest.approx([0.125, 4.5, 70.0])
    assert huber(torch.tensor([3.0]), 1.0).item() == pytest.approx(0.5 + 2.0)


def test_clipped_value_loss_takes_the_worse_of_clipped_and_unclipped():
    values = torch.tensor([1.0, 0.0])
    old = torch.tensor([0.0, 0.0])
    returns = torch.tensor([2.0, 1.0])
    # sample 1: unclipped err -1 -> 0.5 ; clipped value 0.2, err -1.8 -> 1.62 ; max 1.62
    # sample 2: both err -1 -> 0.5
    loss, _ = clipped_value_loss(values, old, returns, clip=0.2, huber_delta=10.0)
    assert loss.item() == pytest.approx((1.62 + 0.5) / 2, abs=1e-6)
    # with delta 1 the 1.8 error is linear: 0.5 + 1*(1.8-1) = 1.3
    loss, _ = clipped_value_loss(values, old, returns, clip=0.2, huber_delta=1.0)
    assert loss.item() == pytest.approx((1.3 + 0.5) / 2, abs=1e-6)


def test_entropy_loss_is_negative_coefficient_times_mean_entropy():
    ent = torch.tensor([1.0, 2.0, 3.0, 100.0])
    loss, stats = entropy_loss(ent, 0.1, mask=torch.tensor([1, 1, 1, 0]))
    assert loss.item() == pytest.approx(-0.2)
    assert stats["entropy"] == pytest.approx(2.0)


def test_discriminator_loss_is_team_plus_summed_agent_cross_entropy():
    # uniform logits: CE = log(n) for each term; 2 agents -> log 3 + 2 * log 4
    team_logits = torch.zeros(5, 3)
    agent_logits = torch.zeros(5, 2, 4)
    team = torch.zeros(5, dtype=torch.long)
    agents = torch.zeros(5, 2, dtype=torch.long)
    loss, stats = discriminator_loss(team_logits, team, agent_logits, agents)
    assert loss.item() == pytest.approx(math.log(3) + 2 * math.log(4), abs=1e-6)
    assert stats["team"] == pytest.approx(math.log(3), abs=1e-6)


def test_discriminator_accuracy_counts_argmax_hits():
    team_logits = torch.tensor([[5.0, 0.0], [5.0, 0.0]])
    agent_logits = torch.tensor([[[0.0, 5.0]], [[5.0, 0.0]]])
    _, stats = discriminator_loss(team_logits, torch.tensor([0, 1]), agent_logits, torch.tensor([[1], [1]]))
    assert stats["team_accuracy"] == 0.5 and stats["individual_accuracy"] == 0.5


def test_masked_mean_ignores_masked_entries_and_survives_an_empty_mask():
    x = torch.tensor([1.0, 3.0, 1000.0])
    assert masked_mean(x, torch.tensor([1, 1, 0])).item() == 2.0
    assert masked_mean(x, torch.zeros(3)).item() == 0.0
