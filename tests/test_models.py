"""Model contracts: the coordinator's autoregressive sampling agrees with its teacher-forced pass,
later agents' skills depend on earlier ones, the masked GRU equals a step-by-step loop, and every
parameter is created in __init__ and receives a gradient."""
import pytest
import torch

from hmasd.models import AgentDiscriminator, DiscovererActor, DiscovererCritic, SkillCoordinator, TeamDiscriminator
from hmasd.models.common import MaskedGRU, RunningNorm, mlp
from hmasd.models.sparse_rows import SparseRows


def _coordinator(seed=0):
    torch.manual_seed(seed)
    return SkillCoordinator(state_dim=6, obs_dim=5, n_agents=3, n_team_skills=2, n_agent_skills=4, d=16, heads=4,
                            layers=2, ff=32)


def test_sampled_log_probs_equal_the_teacher_forced_evaluation():
    coord = _coordinator()
    state, obs = torch.randn(7, 6), torch.randn(7, 3, 5)
    team, agents, log_probs, values = coord.sample(state, obs)
    lp, ent, v = coord.evaluate(state, obs, team, agents)
    torch.testing.assert_close(lp, log_probs, atol=1e-5, rtol=0)
    torch.testing.assert_close(v, values)
    assert lp.shape == ent.shape == (7, 4)


def test_decoder_is_causal_and_autoregressive():
    coord = _coordinator()
    state, obs = torch.randn(1, 6), torch.randn(1, 3, 5)
    team = torch.tensor([0])
    base = coord.evaluate(state, obs, team, torch.tensor([[0, 0, 0]]))[0]
    # Changing z^2 must not change the log-probs of Z, z^1, z^2 (positions 0..2) ...
    changed_late = coord.evaluate(state, obs, team, torch.tensor([[0, 3, 0]]))[0]
    torch.testing.assert_close(changed_late[:, :2], base[:, :2])
    # ... but changing z^1 changes the distribution of z^2 (position 2), given the same z^2.
    with torch.no_grad():
        for p in coord.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # move off the near-uniform init
    base = coord.evaluate(state, obs, team, torch.tensor([[0, 0, 0]]))[0]
    changed_first = coord.evaluate(state, obs, team, torch.tensor([[2, 0, 0]]))[0]
    assert not torch.allclose(changed_first[:, 2], base[:, 2])
    torch.testing.assert_close(changed_first[:, 0], base[:, 0])


@pytest.mark.parametrize("norm_input", [True, False])
def test_trunk_is_layernorm_then_linear_with_the_same_parameters_and_gradients(norm_input):
    """The folded first layer (x_hat @ (W * gamma)^T + b + W beta) is the plain Sequential's function,
    and every parameter, LayerNorm's gamma and beta included, gets the plain Sequential's gradient."""
    torch.manual_seed(0)
    trunk = mlp(40, 16, norm_input=norm_input)
    with torch.no_grad():
        for p in trunk.parameters():
            p.add_(torch.randn_like(p))  # gamma and beta away from 1 and 0, biases away from 0
    plain = torch.nn.Sequential(*trunk)  # the same modules, run one after another
    assert plain.state_dict().keys() == trunk.state_dict().keys()  # checkpoints load either way
    x = torch.randn(3, 50, 40) * 5 + 2

    grads = []
    for forward in (plain, trunk, lambda v: trunk.from_normalized(trunk.normalize(v))):
        trunk.zero_grad()
        out = forward(x)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        grads.append((out.detach(), {n: p.grad.clone() for n, p in trunk.named_parameters()}))
    (ref_out, ref_grads), *others = grads
    for out, g in others:
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
        assert g.keys() == ref_grads.keys() and len(g) == (6 if norm_input else 4)
        for name in g:
            torch.testing.assert_close(g[name], ref_grads[name], atol=1e-4, rtol=1e-4, msg=name)
    assert not trunk.normalize(x).requires_grad  # x_hat holds no parameter: built once per update


@pytest.mark.parametrize("norm_input", [True, False])
def test_sparse_rows_give_the_dense_trunk_output_and_gradients(norm_input):
    """Mostly-zero inputs kept sparse (`normalize(sparse=True)`) give the dense path's output and every
    parameter's gradient; dense inputs stay dense whatever is asked."""
    torch.manual_seed(1)
    trunk = mlp(300, 16, norm_input=norm_input)
    with torch.no_grad():
        for p in trunk.parameters():
            p.add_(torch.randn_like(p))
    grid = torch.randint(1, 3, (6, 40, 300)).float() * (torch.rand(6, 40, 300) < 0.03)  # a grid-like 0/1/2 input
    grid[0, 0] = 0.0  # an all-zero row: mean 0, variance 0
    sparse = trunk.normalize(grid, sparse=True)
    assert isinstance(sparse, SparseRows)
    assert isinstance(trunk.normalize(torch.randn(6, 40, 300), sparse=True), torch.Tensor)
    assert isinstance(trunk.normalize(grid), torch.Tensor)  # only where asked: sparse rows are never gathered

    results = []
    for x_hat in (trunk.normalize(grid), sparse):
        trunk.zero_grad()
        out = trunk.from_normalized(x_hat)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in trunk.named_parameters()}))
    (dense_out, dense_grads), (sparse_out, sparse_grads) = results
    assert sparse_out.shape == (6, 40, 16)
    torch.testing.assert_close(sparse_out, dense_out, atol=1e-4, rtol=1e-4)
    for name in dense_grads:
        torch.testing.assert_close(sparse_grads[name], dense_grads[name], atol=1e-3, rtol=1e-4, msg=name)
    with pytest.raises(TypeError, match="used whole"):
        sparse[:, :3]


def test_masked_gru_matches_a_step_loop_with_resets():
    torch.manual_seed(1)
    gru = MaskedGRU(8)
    x, h0 = torch.randn(10, 5, 8), torch.randn(5, 8)
    starts = torch.zeros(10, 5, dtype=torch.bool)
    starts[0, 1] = starts[3, 0] = starts[3, 4] = starts[7, 2] = True
    out, h_last = gru(x, h0, starts)
    h = h0.clone()
    ref = []
    for t in range(10):
        h = h * (~starts[t]).float()[:, None]
        h = gru.gru(x[t : t + 1], h[None])[1][0]
        ref.append(h)
    torch.testing.assert_close(out, gru.norm(torch.stack(ref)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_last, ref[-1], atol=1e-5, rtol=1e-5)


def test_every_parameter_exists_after_init_and_gets_a_gradient():
    coord = _coordinator()
    actor = DiscovererActor(5, 4, "discrete", 5, 1, hidden=16)
    gaussian = DiscovererActor(5, 4, "box", 0, 2, hidden=16)
    critic = DiscovererCritic(6, 2, 3, hidden=16)
    team_d, agent_d = TeamDiscriminator(6, 2, 16), AgentDiscriminator(5, 2, 4, 16)
    T, E, A = 4, 2, 3
    starts = torch.zeros(T, E * A, dtype=torch.bool)
    skills = torch.randint(0, 4, (T, E * A))
    lp, ent, v = coord.evaluate(torch.randn(E, 6), torch.randn(E, A, 5), torch.tensor([0, 1]), torch.randint(0, 4, (E, A)))
    dist, _ = actor.distribution(torch.randn(T, E * A, 5), skills, torch.zeros(E * A, 16), starts)
    gdist, _ = gaussian.distribution(torch.randn(T, E * A, 5), skills, torch.zeros(E * A, 16), starts)
    g_lp = gaussian.log_prob(gdist, torch.randn(T, E * A, 2))
    values, _ = critic(torch.randn(T, E, 6), torch.randint(0, 2, (T, E)), torch.zeros(E * A, 16), starts)
    loss = (lp.sum() + ent.sum() + v.sum() + actor.log_prob(dist, torch.ones(T, E * A, 1)).sum() + g_lp.sum()
            + values.sum() + team_d(torch.randn(3, 6)).sum() + agent_d(torch.randn(3, 5), torch.tensor([0, 1, 1])).sum())
    loss.backward()
    for module in (coord, actor, gaussian, critic, team_d, agent_d):
        for name, p in module.named_parameters():
            assert p.grad is not None, f"{type(module).__name__}.{name} got no gradient"
    assert values.shape == (T, E * A)


def test_actor_act_returns_actions_in_the_buffer_layout():
    actor = DiscovererActor(5, 4, "discrete", 5, 1, hidden=16)
    actions, log_probs, h = actor.act(torch.randn(6, 5), torch.randint(0, 4, (6,)), torch.zeros(6, 16),
                                      torch.ones(6, dtype=torch.bool))
    assert actions.shape == (6, 1) and actions.dtype == torch.float32
    assert ((actions >= 0) & (actions < 5)).all() and log_probs.shape == (6,) and h.shape == (6, 16)


def test_actor_agent_id_tells_the_agents_of_one_env_apart():
    torch.manual_seed(2)
    T, E, A = 3, 2, 3
    starts = torch.zeros(T, E * A, dtype=torch.bool)
    same_obs = torch.randn(1, 1, 5).expand(T, E * A, 5)  # every agent sees the same thing
    skills = torch.zeros(T, E * A, dtype=torch.long)
    for with_id in (False, True):
        actor = DiscovererActor(5, 4, "discrete", 5, 1, hidden=16, n_agents=A, agent_id=with_id)
        with torch.no_grad():
            actor.head.weight.mul_(100)  # move off the near-uniform output init
        logits = actor.distribution(same_obs, skills, torch.zeros(E * A, 16), starts)[0].logits
        per_agent = logits.reshape(T, E, A, 5)
        # rows are agent-minor: the same agent in two envs acts alike, and only the id sets agents apart
        torch.testing.assert_close(per_agent[:, 0], per_agent[:, 1])
        assert with_id != torch.allclose(per_agent[:, :, 0], per_agent[:, :, 1])


def test_actor_agent_id_rejects_rows_that_are_not_whole_agent_groups():
    actor = DiscovererActor(5, 0, "discrete", 5, 1, hidden=16, n_agents=3, agent_id=True)
    with pytest.raises(ValueError, match="not whole groups of 3 agents"):
        actor.act(torch.randn(4, 5), None, torch.zeros(4, 16), torch.ones(4, dtype=torch.bool))


def test_input_layernorm_is_blind_to_scale_and_the_other_options_are_not():
    # LN(2x) = LN(x): with model.input_norm = layer an actor cannot tell near from far when every
    # input scales together (simple_spread's relative positions); with none or running it can.
    torch.manual_seed(3)
    obs = torch.randn(1, 4, 5)
    starts = torch.ones(1, 4, dtype=torch.bool)
    for input_norm in ("layer", "none", "running"):
        actor = DiscovererActor(5, 0, "discrete", 5, 1, hidden=16, recurrent=False, input_norm=input_norm)
        if input_norm == "running":
            actor.obs_norm.update(torch.randn(200, 5) * 3.0 + 1.0)
        with torch.no_grad():
            actor.head.weight.mul_(100)
        near, far = (actor.distribution(x, None, torch.zeros(4, 16), starts)[0].logits for x in (obs, 2 * obs))
        assert (input_norm == "layer") == torch.allclose(near, far, atol=1e-3)


def test_input_norm_none_keeps_the_checkpoint_keys_of_the_linear_layers():
    layer = DiscovererCritic(6, 2, 3, hidden=16, input_norm="layer").state_dict().keys()
    none = DiscovererCritic(6, 2, 3, hidden=16, input_norm="none").state_dict().keys()
    running = DiscovererCritic(6, 2, 3, hidden=16, input_norm="running").state_dict().keys()
    assert set(none) == {k for k in layer if not k.startswith("body.trunk.0.")}
    assert set(running) == set(none) | {f"state_norm.{b}" for b in ("count", "mean", "m2", "shift", "scale")}


def test_running_norm_matches_the_statistics_of_all_data_merged_batch_by_batch():
    torch.manual_seed(0)
    data = torch.randn(3, 50, 4) * torch.tensor([0.1, 1.0, 10.0, 0.0]) + torch.tensor([5.0, -1.0, 0.0, 2.0])
    norm = RunningNorm(4)
    x = torch.randn(7, 4)
    torch.testing.assert_close(norm(x), x)  # identity until the first update
    for batch in data:  # three updates of 50 rows = one of 150
        norm.update(batch)
    flat = data.reshape(-1, 4).double()
    torch.testing.assert_close(norm.mean, flat.mean(0))
    torch.testing.assert_close(norm.m2 / norm.count, flat.var(0, unbiased=False))
    out = norm(data.reshape(-1, 4))
    torch.testing.assert_close(out[:, :3].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, :3].std(0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    assert (out[:, 3] == 0).all()  # a constant feature maps to 0, not to inf or nan
    assert norm(torch.full((1, 4), 1e6)).max() == RunningNorm.CLIP


@pytest.mark.parametrize("input_norm", ["layer", "none"])
def test_zero_init_skill_weights_starts_the_discoverer_skill_blind_but_free_to_learn(input_norm):
    torch.manual_seed(3)
    obs, state = torch.randn(1, 6, 5), torch.randn(1, 2, 7)
    starts = torch.zeros(1, 6, dtype=torch.bool)

    def per_skill(actor, critic):
        logits = [actor.distribution(obs, torch.full((1, 6), z), torch.zeros(6, 16), starts)[0].logits for z in range(3)]
        values = [critic(state, torch.full((1, 2), z), torch.zeros(6, 16), starts)[0] for z in range(2)]
        return logits, values

    for zero in (False, True):
        actor = DiscovererActor(5, 3, "discrete", 4, 1, hidden=16, recurrent=False, input_norm=input_norm,
                                zero_skill_weights=zero)
        critic = DiscovererCritic(7, 2, 3, hidden=16, recurrent=False, input_norm=input_norm, zero_skill_weights=zero)
        logits, values = per_skill(actor, critic)
        blind = all(torch.allclose(x, logits[0], atol=1e-6) for x in logits)
        assert blind == zero and torch.allclose(values[0], values[1], atol=1e-6) == zero
    # Zero is only the start: on the zero-initialised actor (the last pass), a loss that tells the
    # skills apart moves their weights apart.
    loss = sum((z + 1.0) * logits[z][..., 0].sum() for z in range(3))
    loss.backward()
    grad = actor.body.trunk[1].weight.grad[:, 5:8]
    assert grad.abs().sum() > 0 and not torch.allclose(grad[:, 0], grad[:, 1], atol=0, rtol=1e-3)


def test_skill_kl_stays_finite_when_a_skill_makes_an_action_all_but_impossible():
    # Skill 0 puts action 2 200 logits down (probability exactly 0 in float32), skill 1 leaves it at
    # 1/3: KL(skill 1 || skill 0) is large but finite, where torch's Categorical KL says inf.
    actor = DiscovererActor(4, 2, "discrete", 3, 1, hidden=8, recurrent=False, input_norm="none")
    first, second, post = actor.body.trunk[1], actor.body.trunk[3], actor.body.post[0]
    with torch.no_grad():
        for layer in (first, second, post, actor.head):
            layer.weight.zero_()
            layer.bias.zero_()
        first.weight[0, 4] = 1.0  # unit 0 fires for skill 0 only (input 4 is the skill-0 one-hot)
        second.weight[0, 0] = post.weight[0, 0] = 1.0
        actor.head.weight[2, 0] = -200.0
    obs, skill = torch.randn(1, 2, 4), torch.tensor([[1, 1]])  # shifted skill: 0
    kl = actor.skill_kl(obs, skill, torch.zeros(2, 8), torch.zeros(1, 2, dtype=torch.bool))
    assert torch.isfinite(kl).all() and (kl > 10).all()
