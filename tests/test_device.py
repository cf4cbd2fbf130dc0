"""`device`: the learner's device, the CPU acting copy synced from it, checkpoints that load on any
device, and the one-line error for `device: cuda` without CUDA. The CUDA tests run only where a CUDA
device is present; everything else runs on the CPU."""
from __future__ import annotations

import json

import pytest
import torch

from hmasd.agent import HMASDAgent
from hmasd.buffer import make_rollout_buffer
from hmasd.checkpoint import load_weights
from hmasd.collector import Collector
from hmasd.config import ConfigError, load_config
from hmasd.device import resolve_device, sync_acting_copy, to_cpu
from hmasd.learner import Learner
from hmasd.orchestrator import SubprocessVecEnv
from tests.conftest import ROOT, run_cli

SMOKE = str(ROOT / "configs" / "smoke.yaml")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def _cfg(*overrides):
    # Running input statistics and value normalisation on, so every kind of normaliser state is there.
    return load_config(SMOKE, ["ppo.epochs=1", "model.input_norm=running", "ppo.value_norm=true", *overrides])


@pytest.fixture(scope="module")
def envs():
    cfg = _cfg()
    vec = SubprocessVecEnv(cfg.env.id, cfg.env.kwargs, num_envs=cfg.num_envs, num_workers=2, seed=cfg.seed)
    yield vec
    vec.close()


def _learn(cfg, vec, device="cpu", updates=1):
    """A real collect -> update loop: (learner, acting agent) after `updates` updates."""
    spec = vec.spec
    agent = HMASDAgent(cfg, spec)
    buf = make_rollout_buffer("cpp", T=cfg.rollout_length, E=cfg.num_envs, A=spec.num_agents,
                              obs_dim=spec.obs_dim, state_dim=spec.state_dim, action_dim=spec.action_dim)
    collector = Collector(vec, agent, cfg, buf)
    learner = Learner(agent, cfg, device)
    for _ in range(updates):
        learner.update(collector.collect())
    return learner, agent


def _tensors(agent):
    return {**dict(agent.named_parameters()), **dict(agent.named_buffers())}


def _outputs(agent, spec, seed=0):
    """What the agent computes from a fixed random batch: actor logits, V_l, V_h and both
    discriminators, each through the normalisers the collector applies."""
    g = torch.Generator().manual_seed(seed)
    E, A, H, dev = 3, spec.num_agents, agent.hidden, agent.policy_version.device
    obs = torch.randn(1, E * A, spec.obs_dim, generator=g).to(dev)
    state = torch.randn(1, E, spec.state_dim, generator=g).to(dev)
    skills = torch.randint(agent.actor.n_agent_skills, (1, E * A), generator=g).to(dev)
    team = torch.randint(agent.critic.n_team_skills, (1, E), generator=g).to(dev)
    h = torch.zeros(E * A, H, device=dev)
    starts = torch.ones(1, E * A, dtype=torch.bool, device=dev)
    with torch.no_grad():
        dist, _ = agent.actor.distribution(obs, skills, h, starts)
        values, _ = agent.critic(state, team, h, starts)
        hl = agent.coordinator.values(state[0], obs[0].reshape(E, A, -1))
        return {"logits": dist.logits, "values": agent.low_value_norm.denormalize(values),
                "hl_values": agent.high_value_norm.denormalize(hl),
                "team_disc": agent.team_discriminator(state[0]),
                "agent_disc": agent.agent_discriminator(obs[0].reshape(E, A, -1), team[0, :, None].expand(E, A))}


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@no_cuda
def test_cuda_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match=r"device 'cuda' is not available here .*use device=cpu or auto"):
        resolve_device("cuda")


def test_sync_makes_the_acting_copy_equal_to_the_learned_agent(envs):
    cfg = _cfg()
    learner, learned = _learn(cfg, envs, updates=2)  # real updates: weights, every normaliser, version 2
    acting = HMASDAgent(cfg, envs.spec)  # a fresh agent: differs in all of it
    before = _tensors(acting)
    assert int(learned.policy_version) == 2 and int(acting.policy_version) == 0
    assert float(learned.actor.obs_norm.count) > 0 and float(learned.low_value_norm.debiasing_term) > 0
    kept = {name: t.data_ptr() for name, t in before.items()}

    sync_acting_copy(learned, acting)

    src, dst = _tensors(learned), _tensors(acting)
    assert src.keys() == dst.keys()
    for name, tensor in src.items():
        assert torch.equal(tensor, dst[name]), f"{name} differs after the sync"
    # in place: the collector's and evaluation's references to the acting agent stay valid
    assert {name: t.data_ptr() for name, t in dst.items()} == kept
    assert int(acting.policy_version) == 2
    for norm in ("low_value_norm", "high_value_norm"):
        a, b = getattr(learned, norm), getattr(acting, norm)
        assert (a.beta, a.epsilon, a.enabled) == (b.beta, b.epsilon, b.enabled)  # config, not state
    for name, out in _outputs(learned, envs.spec).items():
        assert torch.equal(out, _outputs(acting, envs.spec)[name]), f"{name} differs after the sync"
    learner.close()


def test_sync_refuses_agents_of_another_shape(envs):
    with pytest.raises(ValueError, match="agents differ"):
        sync_acting_copy(HMASDAgent(_cfg(), envs.spec), HMASDAgent(_cfg("algo=mappo"), envs.spec))


def test_on_the_cpu_the_learner_updates_the_acting_agent_itself(envs):
    cfg = _cfg()
    learner, acting = _learn(cfg, envs)
    assert learner.agent is acting and learner.device == torch.device("cpu")
    _assert_optimisers_step(learner)
    assert int(acting.policy_version) == 1
    learner.close()


def _assert_optimisers_step(learner) -> None:
    """Every parameter an optimiser steps is one of the learning agent's (never the acting copy's),
    and every optimiser has taken steps (Adam keeps no state for a parameter that never had a gradient)."""
    learning = {id(p) for p in learner.agent.parameters()}
    for name, optim in learner.optimizers().items():
        stepped = [p for group in optim.param_groups for p in group["params"]]
        assert stepped and all(id(p) in learning for p in stepped), name
        assert optim.state, f"the {name} optimiser never stepped"


def test_to_cpu_keeps_the_state_dict_loadable():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    state = to_cpu(module.state_dict())
    assert state._metadata == module.state_dict()._metadata  # load_state_dict reads the module versions
    # already on the CPU: not copied, so a CPU run writes the very tensors it wrote before
    assert all(state[k].data_ptr() == v.data_ptr() for k, v in module.state_dict().items())
    module.load_state_dict(state)


@no_cuda
def test_cuda_is_refused_through_the_cli_with_one_line_and_exit_2(tmp_path):
    proc = run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "device=cuda",
                   "--set", "total_env_steps=64", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["hmasd-train: error: device 'cuda' is not available here (torch.cuda.is_available() is "
                     "False): use device=cpu or auto"], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not list((tmp_path / "models").rglob("*.pth"))


def test_device_cpu_trains_and_logs_the_device_at_start_up(tmp_path):
    run_cli("hmasd-train", "--config", SMOKE, "--output-dir", str(tmp_path), "--set", "device=cpu",
            "--set", "total_env_steps=64", "--set", "eval_interval=0", "--set", "run_name=cpu_run",
            cwd=tmp_path, check=True)
    events = [json.loads(line) for line in (tmp_path / "logs" / "cpu_run.jsonl").read_text().splitlines()]
    started = [e for e in events if e["event"] == "training started"]
    assert len(started) == 1 and started[0]["device"] == "cpu"
    data = torch.load(tmp_path / "models" / "hmasd_sync_enhanced_final.pth", weights_only=True)
    assert data["counters"]["policy_version"] == 1


# -- on a CUDA device ------------------------------------------------------------------------------
@cuda
def test_on_cuda_the_learner_updates_a_copy_and_syncs_the_acting_agent(envs):
    cfg = _cfg()
    learner, acting = _learn(cfg, envs, device="cuda", updates=2)
    assert learner.agent is not acting
    _assert_optimisers_step(learner)
    assert all(t.device.type == "cuda" for t in _tensors(learner.agent).values())
    assert all(t.device.type == "cpu" for t in _tensors(acting).values())
    assert int(acting.policy_version) == int(learner.agent.policy_version) == 2
    learned = _tensors(learner.agent)
    for name, tensor in _tensors(acting).items():
        assert torch.equal(tensor, learned[name].cpu()), f"{name} differs after the sync"
    for name, out in _outputs(acting, envs.spec).items():
        torch.testing.assert_close(out, _outputs(learner.agent, envs.spec)[name].cpu(), rtol=1e-4, atol=1e-5)
    learner.close()


@cuda
@pytest.mark.parametrize("saved_on, loaded_on", [("cuda", "cpu"), ("cpu", "cuda")])
def test_checkpoint_state_is_on_the_cpu_and_loads_on_either_device(envs, saved_on, loaded_on):
    cfg = _cfg()
    source, _ = _learn(cfg, envs, device=saved_on)
    data = {"agent": to_cpu(source.agent.state_dict()),
            "optimizers": {k: to_cpu(o.state_dict()) for k, o in source.optimizers().items()}}
    flat = [t for t in data["agent"].values()] + [
        t for o in data["optimizers"].values() for s in o["state"].values() for t in s.values()]
    assert all(t.device.type == "cpu" for t in flat)
    target = Learner(HMASDAgent(cfg, envs.spec), cfg, loaded_on)
    load_weights(data, "in-memory", target.agent, target.optimizers())
    target.sync_acting()
    for name, optim in target.optimizers().items():
        for state in optim.state.values():
            assert state["exp_avg"].device.type == loaded_on, f"{name}'s Adam state was left on the CPU"
    for name, tensor in _tensors(target.acting).items():
        assert torch.equal(tensor, data["agent"].get(name, tensor).cpu()), f"{name} differs after loading"
    source.close()
    target.close()
