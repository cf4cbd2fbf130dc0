"""Overcooked through JaxMARL: the PettingZoo contract, the paper's reward, seeding, snapshots, and a
two-update training run whose trainer process never loads JAX."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, require_extra

require_extra("jaxmarl", "overcooked")

from pettingzoo.test import parallel_api_test  # noqa: E402

from hmasd_envs import make_env  # noqa: E402
from hmasd_envs.overcooked import LAYOUTS, OvercookedEnv  # noqa: E402
from hmasd_envs.snapshot import restore, snapshot  # noqa: E402

UP, DOWN, RIGHT, LEFT, STAY, INTERACT = range(6)
# cramped_room: agent_0 starts at (1, 1), an onion pile is left of it, the pot above (2, 1), the plate pile
# below (1, 2) and the serving spot below (3, 2). A move into a counter only turns the agent to face it.
_ONION_TRIP = [LEFT, LEFT, INTERACT, RIGHT, UP, INTERACT]  # from (2, 1): fetch an onion, put it in the pot
SOUP_PLAN = ([LEFT, INTERACT, RIGHT, UP, INTERACT] + _ONION_TRIP + _ONION_TRIP  # 3 onions: the pot cooks
             + [DOWN, LEFT, DOWN, INTERACT, RIGHT, UP, UP]  # take a plate, come back facing the pot
             + [STAY] * 20  # 20 cooking steps
             + [INTERACT, DOWN, RIGHT, DOWN, INTERACT])  # plate the soup, serve it


def test_parallel_api():
    parallel_api_test(OvercookedEnv("cramped_room"), num_cycles=450)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_declared_observation_shape_is_the_returned_one(layout):
    env = OvercookedEnv(layout)
    obs, _ = env.reset(seed=0)
    space = env.observation_space("agent_0")
    assert obs["agent_0"].shape == space.shape == (env.height, env.width, 26)
    assert env.state().shape == env.state_space.shape
    assert space.contains(obs["agent_0"]) and space.contains(obs["agent_1"])


def test_scripted_soup_pays_the_team_20_and_nothing_else():
    env = make_env("overcooked_cramped_room")
    env.reset(seed=0)
    rewards = [env.step(np.array([a, STAY])).reward for a in SOUP_PLAN]
    assert sum(rewards) == 20.0
    assert rewards[-1] == 20.0 and not any(rewards[:-1])


def test_shaped_reward_is_an_option_off_by_default():
    sparse, shaped = make_env("overcooked_cramped_room"), make_env("overcooked_cramped_room", shaped_reward=True)
    sparse.reset(seed=0)
    shaped.reset(seed=0)
    r_sparse = [sparse.step(np.array([a, STAY])).reward for a in SOUP_PLAN]
    r_shaped = [shaped.step(np.array([a, STAY])).reward for a in SOUP_PLAN]
    assert sum(r_sparse) == 20.0
    # 3 onions in the pot (3 each), the plate pick-up (3), the soup pick-up (5), and the delivery.
    assert sum(r_shaped) == 20.0 + 3 * 3 + 3 + 5


def test_episode_ends_by_truncation_at_400_steps():
    env = make_env("overcooked_cramped_room")
    env.reset(seed=0)
    steps = [env.step(np.array([STAY, STAY])) for _ in range(400)]
    assert not any(s.truncated or s.terminated for s in steps[:-1])
    assert steps[-1].truncated and not steps[-1].terminated
    assert steps[-1].episode == {"return": 0.0, "length": 400.0, "episode_soups": 0.0, "episode_shaped_return": 0.0}


def _trajectory(env, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _, _ = env.reset(seed=seed)
    return np.stack([obs] + [env.step(a).obs for a in actions])


def test_seeding_goes_through_reset():
    actions = np.random.default_rng(0).integers(0, 6, size=(60, 2))
    a, b = make_env("overcooked_asymmetric_advantages"), make_env("overcooked_asymmetric_advantages")
    assert np.array_equal(_trajectory(a, 3, actions), _trajectory(b, 3, actions))
    # Only the agents' starting orientations are random on a fixed layout: some seed among 8 differs.
    first = [make_env("overcooked_asymmetric_advantages").reset(seed=s)[0] for s in range(8)]
    assert any(not np.array_equal(first[0], f) for f in first[1:])


def _played(layout: str, seed: int, steps: int, rng: np.random.Generator):
    """An env of `layout` reset with `seed` and `steps` random steps into its episode."""
    env = make_env(f"overcooked_{layout}")
    env.reset(seed=seed)
    for a in rng.integers(0, 6, size=(steps, 2)):
        env.step(a)
    return env


def _continue_alike(env, copy, actions) -> list:
    """Step both with the same actions; they must agree on every step. -> env's steps."""
    steps_a, steps_b = [env.step(a) for a in actions], [copy.step(a) for a in actions]
    for x, y in zip(steps_a, steps_b):
        assert np.array_equal(x.obs, y.obs) and np.array_equal(x.state, y.state)
        assert (x.reward, x.truncated) == (y.reward, y.truncated)
    return steps_a


def test_snapshot_round_trip_continues_exactly():
    rng = np.random.default_rng(1)
    env = _played("coordination_ring", seed=2, steps=37, rng=rng)
    copy = restore(snapshot(env))
    # 400 more steps cross the episode end and the seedless auto-reset
    steps = _continue_alike(env, copy, rng.integers(0, 6, size=(400, 2)))
    assert sum(s.truncated for s in steps) == 1


def test_snapshot_from_before_the_episode_totals_resumes():
    """Checkpoints of runs started before the env kept episode totals hold snapshots without them: a
    resume must continue those envs exactly (not fail a worker and restart them)."""
    rng = np.random.default_rng(3)
    env = _played("asymmetric_advantages", seed=4, steps=25, rng=rng)
    older = restore(snapshot(env))
    inner = older._env  # the OvercookedEnv inside the adapter
    del inner._episode_soups, inner._episode_shaped  # as an older version pickled it
    _continue_alike(env, restore(snapshot(older)), rng.integers(0, 6, size=(50, 2)))


@pytest.fixture(scope="module")
def two_update_run(tmp_path_factory):
    """The real CLI entry point, run in a fresh interpreter: two updates, a checkpoint and an evaluation;
    the interpreter then reports whether the trainer's own process ever imported JAX."""
    out = tmp_path_factory.mktemp("oc")
    script = (
        "import sys\n"
        "from hmasd.train import main\n"
        f"rc = main(['--config', {str(ROOT / 'configs' / 'overcooked_cramped_room.yaml')!r},"
        f" '--output-dir', {str(out)!r}, '--set', 'num_envs=2', '--set', 'num_workers=2',"
        " '--set', 'rollout_length=50', '--set', 'total_env_steps=200', '--set', 'save_interval=100',"
        " '--set', 'eval_interval=200', '--set', 'eval_episodes=2', '--set', 'ppo.epochs=2',"
        " '--set', 'run_name=oc'])\n"
        "print('JAX_IN_TRAINER', 'jax' in sys.modules, 'RC', rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=out)
    return out, proc


def test_two_update_training_keeps_jax_out_of_the_trainer(two_update_run):
    out, proc = two_update_run
    assert "JAX_IN_TRAINER False RC 0" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    events = [json.loads(line) for line in (out / "logs" / "oc.jsonl").read_text().splitlines()]
    versions = [e["policy_version"] for e in events if e.get("event", "").startswith("policy version ->")]
    assert versions == [1, 2]
    evaluation = [e for e in events if e.get("event") == "evaluation" and e.get("env_steps") == 200]
    # the env's episode infos reach the evaluation's log: soups counted whatever the reward regime
    assert len(evaluation) == 1 and evaluation[0]["Eval/episode_soups_Mean"] >= 0.0
    assert (out / "models" / "hmasd_sync_enhanced_final.pth").is_file()


def test_skill_map_reports_every_agent_and_skill(two_update_run):
    out, _ = two_update_run
    checkpoint = out / "models" / "hmasd_sync_enhanced_final.pth"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "overcooked_skill_map.py"), "--model-path",
                           str(checkpoint), "--envs", "2", "--steps", "30", "--settle", "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("agent ")]
    assert [line.split(" [")[0].split(":")[0] for line in lines] == [f"agent {i} z={z}" for i in range(2) for z in range(3)]
    counted = sum(int(line.split("[")[1].split(" steps")[0]) for line in lines if "never used" not in line)
    assert counted == 2 * 30 * 2  # settle 0: every step of every agent in every env counts once
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "overcooked_skill_map.py"), "--model-path",
                          str(checkpoint), "--skills", "7,0,0"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    missing = subprocess.run([sys.executable, str(ROOT / "scripts" / "overcooked_skill_map.py"), "--model-path",
                              str(out / "no-such.pth")], capture_output=True, text=True, timeout=600)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_episode_totals_count_the_scripted_soup_and_restart_at_reset():
    env = make_env("overcooked_cramped_room")
    for _ in range(2):  # the second episode must not carry the first one's totals
        env.reset(seed=0)
        steps = [env.step(np.array([a, STAY])) for a in SOUP_PLAN]
        steps += [env.step(np.array([STAY, STAY])) for _ in range(400 - len(SOUP_PLAN))]
        episode = steps[-1].episode
        assert episode["episode_soups"] == 1.0 and episode["return"] == 20.0
        # the per-step infos are not episode statistics (read at the last step they were 0 soups)
        assert "soups" not in episode and "shaped_reward" not in episode
        # agent_0 earned the shaped 3 x 3 + 3 + 5 = 17, agent_1 nothing: the episode stats average over agents
        assert episode["episode_shaped_return"] == 17.0 / 2


def test_random_play_script_counts_soups_in_multiples_of_20(capfd):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import overcooked_random_play as random_play
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    returns = random_play.random_returns("cramped_room", episodes=8, max_steps=60, seed=0)
    assert returns.shape == (8,) and (returns >= 0).all() and (returns % 20 == 0).all()
    assert random_play.main(["--layout", "no_such_layout"]) == 2
    assert len(capfd.readouterr().err.strip().splitlines()) == 1


def test_learner_keeps_the_grid_sparse_and_lands_where_the_dense_path_does(monkeypatch):
    """With one minibatch the learner keeps Overcooked's grid inputs as sparse rows (about 3% of the
    grid is nonzero); one epoch of the discriminators and of the discoverer must land on the
    parameters the dense inputs give, up to float rounding."""
    import copy

    import torch

    from hmasd.config import load_config
    from hmasd.models import sparse_rows
    from hmasd.pipeline import build

    cfg = load_config(ROOT / "configs" / "overcooked_cramped_room.yaml",
                      ["num_envs=2", "num_workers=1", "rollout_length=50", "ppo.epochs=1"])
    torch.manual_seed(cfg.seed)
    p = build(cfg, backend="subprocess")
    try:
        ro = p.collector.collect()
        p.learner.finalize(ro)
        nets = [p.agent.actor, p.agent.critic, p.agent.team_discriminator, p.agent.agent_discriminator]
        value_norm = p.agent.low_value_norm  # moves with every update: each run starts from the same one
        start, norm_start = copy.deepcopy([net.state_dict() for net in nets]), copy.deepcopy(value_norm.state_dict())
        optims = copy.deepcopy([o.state_dict() for o in (p.learner.discoverer_optim, p.learner.discriminator_optim)])

        def learn() -> list[torch.Tensor]:
            for net, state in zip(nets, copy.deepcopy(start)):
                net.load_state_dict(state)
            value_norm.load_state_dict(norm_start)
            for o, state in zip((p.learner.discoverer_optim, p.learner.discriminator_optim), copy.deepcopy(optims)):
                o.load_state_dict(state)
            p.learner.update_discriminators(ro)
            p.learner.update_discoverer(ro)
            return [t.detach().clone() for net in nets for t in net.parameters()]

        assert isinstance(p.learner.discoverer_batch(ro)["actor_in"], sparse_rows.SparseRows)
        sparse = learn()
        monkeypatch.setattr(sparse_rows, "MAX_DENSITY", -1.0)  # nothing is sparse enough: the dense path
        assert isinstance(p.learner.discoverer_batch(ro)["actor_in"], torch.Tensor)
        dense = learn()
    finally:
        p.close()
    before = [t for state in start for t in state.values()]
    assert sum(not torch.equal(s, b) for s, b in zip(sparse, before)) > len(sparse) // 2  # the epoch moved them
    for s, d in zip(sparse, dense):
        torch.testing.assert_close(s, d, atol=1e-6, rtol=1e-5)
