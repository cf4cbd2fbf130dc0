"""The synchronous contract: each update holds exactly num_envs x rollout_length env steps, all
collected under one policy version, and the learner refuses a rollout that mixes versions."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import hmasd.learner as learner_module
from hmasd.config import load_config
from hmasd.evaluate import run_evaluation
from hmasd.learner import Learner, coordinator_advantages
from hmasd.pipeline import build


def _pipeline(overrides=()):
    cfg = load_config("configs/smoke.yaml", ["ppo.epochs=1", "num_workers=2", *overrides])
    torch.manual_seed(cfg.seed)
    p = build(cfg, backend="subprocess")
    return p.cfg, p.agent, p.collector, p.learner, p.vec


@pytest.fixture(scope="module")
def pipeline():
    cfg, agent, collector, learner, vec = _pipeline()
    yield cfg, agent, collector, learner
    learner.close()
    vec.close()


def _replay(learner, ro):
    """Replay a fresh rollout in the training layout -> (batch, log-probs, values, their columns)."""
    learner.finalize(ro)
    b = learner.discoverer_batch(ro)
    with torch.no_grad():
        log_probs, _, values, cols = learner.discoverer_forward(b, torch.arange(b["sequences"]))
    return b, log_probs, values, cols


def test_every_update_holds_one_batch_of_one_policy_version(pipeline):
    cfg, agent, collector, learner = pipeline
    for update in range(3):
        ro = collector.collect()
        assert ro.buffer.size * cfg.num_envs == cfg.num_envs * cfg.rollout_length == cfg.batch_size
        assert ro.env_steps_per_env.tolist() == [cfg.rollout_length] * cfg.num_envs
        assert (ro.versions == update).all() and ro.policy_version == update
        # skills are reassigned at every rollout start, so no high-level sample straddles versions
        assert np.asarray(ro.buffer.assign)[0].all()
        learner.update(ro)
        assert int(agent.policy_version) == update + 1


def test_learner_refuses_a_rollout_that_mixes_policy_versions(pipeline):
    _, agent, collector, learner = pipeline
    ro = collector.collect()
    ro.versions[-1, 0] += 1  # one step claims another version
    before = int(agent.policy_version)
    with pytest.raises(RuntimeError, match="mixes policy versions"):
        learner.update(ro)
    assert int(agent.policy_version) == before


@pytest.mark.parametrize("chunk", [None, 4, 5])
def test_replay_reproduces_the_collected_log_probs_and_values(pipeline, chunk):
    """Before any update, replaying the rollout in the training layout (whole rollouts or data chunks
    from stored GRU states) gives back exactly the log-probs and values seen at collection: old
    log-probs are paired with the right samples, hidden states with the right steps."""
    cfg, agent, collector, learner = pipeline
    cfg.ppo.data_chunk_length = chunk
    try:
        b, log_probs, values, cols = _replay(learner, collector.collect())
        torch.testing.assert_close(log_probs, b["old_log_probs"][:, cols], atol=1e-5, rtol=0)
        real = agent.low_value_norm.denormalize(values)
        torch.testing.assert_close(real, b["chunked"](b["old_values"])[:, cols], atol=1e-4, rtol=1e-5)
    finally:
        cfg.ppo.data_chunk_length = 8


def test_whole_batch_replay_equals_gathered_columns(pipeline):
    """One minibatch in order uses the batch's prepared inputs as they are; any other minibatch
    gathers its columns. Each column must get the same log-prob, entropy and value either way."""
    _, _, collector, learner = pipeline
    ro = collector.collect()
    learner.finalize(ro)
    b = learner.discoverer_batch(ro)
    flipped = torch.arange(b["sequences"]).flip(0)  # every sequence, out of order: the gathering path
    with torch.no_grad():
        log_probs, entropy, values, cols = learner.discoverer_forward(b, torch.arange(b["sequences"]))
        g_log_probs, g_entropy, g_values, g_cols = learner.discoverer_forward(b, flipped)
    assert torch.equal(cols, torch.arange(b["sequences"] * b["A"]))
    for whole, gathered in ((log_probs, g_log_probs), (entropy, g_entropy), (values, g_values)):
        torch.testing.assert_close(gathered, whole[:, g_cols], atol=1e-6, rtol=0)


def test_discriminator_update_is_the_same_without_gathering(pipeline, monkeypatch):
    """With one minibatch the discriminators learn from the batch's tensors as they are; forcing the
    gathering path instead must land on the same parameters."""
    _, agent, collector, learner = pipeline
    ro = collector.collect()
    nets = (agent.team_discriminator, agent.agent_discriminator)
    start = [copy.deepcopy(net.state_dict()) for net in nets]
    optim_start = copy.deepcopy(learner.discriminator_optim.state_dict())

    def learn() -> list[torch.Tensor]:
        for net, state in zip(nets, start):
            net.load_state_dict(state)
        learner.discriminator_optim.load_state_dict(copy.deepcopy(optim_start))
        learner.update_discriminators(ro)
        return [p.detach().clone() for net in nets for p in net.parameters()]

    whole = learn()
    monkeypatch.setattr(learner_module, "_whole", lambda idx, n: False)
    gathered = learn()
    moved = [not torch.equal(w, s) for w, s in zip(whole, (t for state in start for t in state.values()))]
    assert any(moved)  # the update did change the discriminators, so the comparison says something
    for w, g in zip(whole, gathered):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=0)


def test_replay_gives_each_agent_its_own_id_when_the_actor_sees_ids():
    """model.actor_agent_id: collection and training must agree on which row is which agent."""
    cfg, agent, collector, learner, vec = _pipeline(["model.actor_agent_id=true", "ppo.data_chunk_length=5"])
    try:
        with torch.no_grad():
            agent.actor.head.weight.mul_(100)  # make the ids matter for the action probabilities
        b, log_probs, _, cols = _replay(learner, collector.collect())
        torch.testing.assert_close(log_probs, b["old_log_probs"][:, cols], atol=1e-5, rtol=0)
        # the check is sensitive: the same rows with their agents' ids rotated give other log-probs
        A = b["A"]
        rotated = cols.reshape(-1, A).roll(1, dims=1).reshape(-1)
        skills = None if b["skills"] is None else b["skills"][:, rotated]
        with torch.no_grad():
            dist, _ = agent.actor.distribution(b["obs"][:, rotated], skills, b["actor_h0"][rotated],
                                               b["starts"][:, rotated])
        wrong = agent.actor.log_prob(dist, b["actions"][:, rotated])
        assert not torch.allclose(wrong, b["old_log_probs"][:, rotated], atol=1e-3)
    finally:
        learner.close()
        vec.close()


def test_running_input_norm_moves_once_per_update_with_the_batch_it_learned_from():
    """model.input_norm: running. The statistics hold still while a batch is collected and learned
    (the replay after an update still reproduces the collected log-probs), then absorb that batch."""
    _, agent, collector, learner, vec = _pipeline(["model.input_norm=running"])
    try:
        seen_obs, seen_state = [], []
        # a spy that calls through: the statistics the discoverer learns under
        learned_under, update_discoverer = [], learner.update_discoverer
        learner.update_discoverer = lambda ro: (learned_under.append(int(agent.actor.obs_norm.count)),
                                                update_discoverer(ro))[1]
        for update in range(2):
            ro = collector.collect()
            if update:  # statistics are no longer the identity: the check below has teeth
                assert not torch.equal(agent.actor.obs_norm.scale, torch.ones_like(agent.actor.obs_norm.scale))
            b, log_probs, _, cols = _replay(learner, ro)
            torch.testing.assert_close(log_probs, b["old_log_probs"][:, cols], atol=1e-5, rtol=0)
            # copies: the buffer is refilled in place by the next collection
            seen_obs.append(np.array(ro.buffer.obs).reshape(-1, ro.buffer.obs.shape[-1]))
            seen_state.append(np.array(ro.buffer.state).reshape(-1, ro.buffer.state.shape[-1]))
            learner.update(ro)
            for norm, seen in ((agent.actor.obs_norm, seen_obs), (agent.critic.state_norm, seen_state)):
                rows = torch.from_numpy(np.concatenate(seen)).double()
                assert int(norm.count) == rows.shape[0]
                torch.testing.assert_close(norm.mean, rows.mean(0))
        rows_per_batch = seen_obs[0].shape[0]
        assert learned_under == [0, rows_per_batch]  # each batch is learned under its collection's statistics
    finally:
        learner.close()
        vec.close()


def test_skills_are_assigned_every_k_steps_at_episode_starts_and_rollout_starts(pipeline):
    """The skill timer advances once per step: assignments happen exactly at t=0, after an episode
    end and k steps after the previous assignment, and segment lengths match."""
    cfg, agent, collector, learner = pipeline
    ro = collector.collect()
    learner.finalize(ro)
    buf, k = ro.buffer, cfg.hmasd.skill_interval
    assign = np.asarray(buf.assign).astype(bool)
    ended = np.asarray(buf.terminated).astype(bool) | np.asarray(buf.truncated).astype(bool)
    lengths = np.asarray(buf.segment_lengths)
    T, E = assign.shape
    for e in range(E):
        last = 0
        for t in range(T):
            expected = t == 0 or ended[t - 1, e] or t - last == k
            assert assign[t, e] == expected, f"env {e} step {t}"
            if assign[t, e]:
                if t > 0:
                    assert lengths[last, e] == t - last
                last = t
        assert lengths[last, e] == T - last
    assert assign.sum() > E  # k < T here, so there are segments beyond the rollout starts


@pytest.mark.parametrize("mode, rewards, expect", [
    ("rewarded", [0.0, 0.0, 0.0, 0.0], False),
    ("rewarded", [0.0, 2.0, 0.0, 0.0], True),
    ("always", [0.0, 0.0, 0.0, 0.0], True),
    ("off", [0.0, 2.0, 0.0, 0.0], False),
])
def test_coordinator_advantages_are_normalised_only_as_configured(mode, rewards, expect):
    adv = torch.tensor([0.01, 0.5, -0.02, 0.03])
    out, normalised = coordinator_advantages(adv, torch.tensor(rewards), mode)
    assert normalised is expect
    if expect:
        assert abs(out.mean().item()) < 1e-6 and out.std().item() == pytest.approx(1.0, abs=1e-5)
    else:
        torch.testing.assert_close(out, adv)


def test_update_reports_whether_the_rollout_earned_a_high_level_reward(pipeline):
    cfg, agent, collector, learner = pipeline
    assert cfg.ppo.high_advantage_norm == "rewarded"
    ro = collector.collect()
    stats = learner.update(ro)  # finalizes the buffer, which fills hl_rewards
    seg = np.asarray(ro.buffer.assign).astype(bool)
    rewarded = bool((np.asarray(ro.buffer.hl_rewards)[seg] != 0).any())
    assert rewarded  # simple_spread's dense negative reward makes every r^h non-zero
    assert stats["Diagnostics/Coordinator/AdvantagesNormalised"] == float(rewarded)


@pytest.mark.parametrize("schedule, expected", [("constant", [1.0, 1.0, 1.0]), ("linear", [1.0, 0.75, 0.25])])
def test_learning_rate_schedule_sets_every_optimiser(pipeline, schedule, expected):
    cfg, agent, _, _ = pipeline
    learner = Learner(agent, load_config("configs/smoke.yaml", [f"ppo.lr_schedule={schedule}", "total_env_steps=400",
                                                                "ppo.lr=0.002", "ppo.lr_high=0.0005"]))
    base = {"discoverer": 0.002, "coordinator": 0.0005, "discriminator": 0.002}
    try:
        for env_steps, scale in zip([0, 100, 300], expected):
            assert learner.set_learning_rate(env_steps) == pytest.approx(scale)
            rates = {name: o.param_groups[0]["lr"] for name, o in learner.optimizers().items()}
            assert rates == pytest.approx({name: lr * scale for name, lr in base.items()})
    finally:
        learner.close()


def test_skill_kl_is_zero_when_the_actor_ignores_its_skill_and_positive_when_it_does():
    """Diagnostics/Discoverer/SkillKL (training) and skill_kl (hmasd-eval): what the coordinator's choice of z
    changes in the agents' actions."""
    cfg, agent, collector, learner, vec = _pipeline(["model.input_norm=none"])
    try:
        learner.finalize(ro := collector.collect())
        b = learner.discoverer_batch(ro)
        n_z = agent.actor.n_agent_skills
        first = agent.actor.body.trunk[1]  # Linear over [obs, one-hot z]; no LayerNorm mixes them
        args = (b["obs"], b["skills"], b["actor_h0"], b["starts"])
        with torch.no_grad():
            first.weight[:, -n_z:] = 0.0
        assert (agent.actor.skill_kl(*args) == 0).all()
        assert run_evaluation(agent, cfg, episodes=2)["skill_kl"] == 0.0
        with torch.no_grad():
            first.weight[:, -n_z:] = torch.randn(first.weight.shape[0], n_z, generator=torch.Generator().manual_seed(0))
            agent.actor.head.weight.mul_(100)
        assert agent.actor.skill_kl(*args)[b["mask"]].mean() > 1e-3
        assert run_evaluation(agent, cfg, episodes=2)["skill_kl"] > 1e-3
        assert "Diagnostics/Discoverer/SkillKL" in learner.update(ro)
    finally:
        learner.close()
        vec.close()


def test_mappo_reports_no_skill_kl():
    cfg, agent, collector, learner, vec = _pipeline(["algo=mappo"])
    try:
        assert "Diagnostics/Discoverer/SkillKL" not in learner.update(collector.collect())
    finally:
        learner.close()
        vec.close()
