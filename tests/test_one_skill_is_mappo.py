"""With one team skill and one agent skill, HMASD's low level must be MAPPO.

The discriminator terms are log 1 = 0, the skill inputs are constant, and lambda_e only scales the
reward (here lambda_e = 1). So from the same weights (the skill inputs' weights held at zero) and the
same envs, the two collect the same rollout and make the same discoverer update. Any difference is a bug in the HMASD data path: reward mixing, GAE, the batch
layout, the normalisers or the minibatches.
"""
from __future__ import annotations

import numpy as np
import torch

from hmasd.config import load_config
from hmasd.pipeline import build

# the GRU path and two minibatches (their order comes from the learner's seeded generator);
# no input LayerNorm, which would normalise the constant skill input together with the observation
COMMON = ["ppo.epochs=3", "ppo.num_minibatches=2", "model.input_norm=none", "model.recurrent=true"]
# lambda_e = 1: any other value scales the rewards, and the first update then weighs them against the
# untrained critic's values differently; value normalisation cancels the scale from then on
ONE_SKILL = ["hmasd.n_team_skills=1", "hmasd.n_agent_skills=1", "hmasd.extrinsic_coef=1"]


def _build(overrides: list[str]):
    cfg = load_config("configs/smoke.yaml", COMMON + overrides)
    # greedy collection: no random draws, so the coordinator's sampling cannot shift the actors' ones
    p = build(cfg, backend="local", deterministic=True)
    return p.cfg, p.vec, p.agent, p.collector, p.learner


def _first_linear(module) -> torch.nn.Linear:
    return module.body.trunk[1]  # trunk = (input norm, Linear, ReLU, Linear, ReLU)


def _without_column(weight: torch.Tensor, col: int) -> torch.Tensor:
    return torch.cat([weight[:, :col], weight[:, col + 1:]], dim=1)


def _copy_with_skill_column(flat, hmasd, skill_col: int) -> None:
    """Load the flat network's weights into the one-skill network, whose first layer has one more input
    column at `skill_col`; that column is zeroed and its gradient masked, so it stays zero."""
    first = _first_linear(hmasd)
    own = dict(hmasd.named_parameters()) | dict(hmasd.named_buffers())
    with torch.no_grad():
        for key, value in flat.state_dict().items():
            if own[key] is first.weight:
                first.weight[:, :skill_col] = value[:, :skill_col]
                first.weight[:, skill_col] = 0.0
                first.weight[:, skill_col + 1:] = value[:, skill_col:]
            else:
                own[key].copy_(value)
    mask = torch.ones_like(first.weight)
    mask[:, skill_col] = 0
    first.weight.register_hook(lambda g: g * mask)


def test_one_skill_hmasd_collects_and_learns_exactly_as_mappo():
    cfg_m, vec_m, mappo, col_m, learn_m = _build(["algo=mappo"])
    cfg_h, vec_h, hmasd, col_h, learn_h = _build(ONE_SKILL)
    try:
        O, S = vec_m.spec.obs_dim, vec_m.spec.state_dim
        _copy_with_skill_column(mappo.actor, hmasd.actor, skill_col=O)  # actor input: [o, one-hot z]
        _copy_with_skill_column(mappo.critic, hmasd.critic, skill_col=S)  # critic input: [s, one-hot Z, id]
        before = [p.detach().clone() for p in mappo.actor.parameters()]
        for update in range(2):
            ro_m, ro_h = col_m.collect(), col_h.collect()
            stats_m, stats_h = learn_m.update(ro_m), learn_h.update(ro_h)
            assert stats_h["Rewards/Intrinsic/Team_Mean"] == stats_h["Rewards/Intrinsic/Individual_Mean"] == 0
            for name in ("obs", "actions", "log_probs", "reward", "values", "rewards", "advantages", "returns"):
                np.testing.assert_allclose(np.asarray(getattr(ro_h.buffer, name)),
                                           np.asarray(getattr(ro_m.buffer, name)), rtol=1e-4, atol=1e-5,
                                           err_msg=f"update {update}: {name}")
            for key in ("Losses/Discoverer/Policy", "Losses/Discoverer/Value", "Diagnostics/Discoverer/GradNorm"):
                assert abs(stats_h[key] - stats_m[key]) < 1e-4, (update, key, stats_h[key], stats_m[key])
        # two updates of 3 epochs x 2 minibatches later, every shared weight is still the same
        for part, col in (("actor", O), ("critic", S)):
            flat = dict(getattr(mappo, part).named_parameters())
            first = _first_linear(getattr(hmasd, part)).weight
            for name, param in getattr(hmasd, part).named_parameters():
                if param is first:
                    assert not param[:, col].any()
                    param = _without_column(param, col)
                torch.testing.assert_close(param, flat[name], rtol=1e-4, atol=1e-5, msg=f"{part}.{name}")
        assert any(not torch.equal(b, p) for b, p in zip(before, mappo.actor.parameters()))  # they did learn
    finally:
        learn_m.close()
        learn_h.close()
        vec_m.close()
        vec_h.close()
