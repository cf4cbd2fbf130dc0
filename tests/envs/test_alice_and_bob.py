"""Alice_and_Bob: PettingZoo API conformance, rules, truncation, rendering and seeding."""
import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

from hmasd_envs import alice_and_bob as ab
from hmasd_envs import make_env

STAY, UP, DOWN, LEFT, RIGHT = range(5)
RED_DIAMOND, BLUE_DIAMOND = (7, 0), (7, 7)
RED_BUTTON, BLUE_BUTTON = (0, 7), (0, 0)


def positions(obs):
    """(alice, bob) cells from alice's observation, which holds own then other position / 7."""
    cells = np.rint(obs["alice"][:4] * 7).astype(int)
    return (int(cells[0]), int(cells[1])), (int(cells[2]), int(cells[3]))


def toward(cell, target):
    """One greedy move from cell toward target (rows first); STAY when there."""
    if cell[0] != target[0]:
        return DOWN if target[0] > cell[0] else UP
    if cell[1] != target[1]:
        return RIGHT if target[1] > cell[1] else LEFT
    return STAY


def walk(env, obs, alice_target, bob_target, max_steps=20):
    """Move both agents greedily until both stand on their targets; returns the steps taken."""
    steps = []
    for _ in range(max_steps):
        alice, bob = positions(obs)
        if alice == alice_target and bob == bob_target:
            return obs, steps
        actions = {"alice": toward(alice, alice_target), "bob": toward(bob, bob_target)}
        result = env.step(actions)
        obs = result[0]
        steps.append(result)
    alice, bob = positions(obs)
    assert (alice, bob) == (alice_target, bob_target)
    return obs, steps


def test_parallel_api():
    parallel_api_test(ab.parallel_env(), num_cycles=1000)


def test_aec_api():
    api_test(ab.env(), num_cycles=200)


def test_metadata_and_spaces():
    env = ab.parallel_env()
    assert env.metadata["name"] == "alice_and_bob_v0"
    assert env.metadata["render_modes"] == ["rgb_array"]
    assert env.metadata["is_parallelizable"] is True
    assert env.possible_agents == ["alice", "bob"]
    for agent in env.possible_agents:
        assert env.observation_space(agent).shape == (6,)
        assert env.observation_space(agent).dtype == np.float32
        assert env.action_space(agent).n == 5
    assert env.state_space.shape == (6,)


def test_scripted_episode_collects_both_diamonds():
    env = ab.parallel_env()
    obs, infos = env.reset(seed=3)
    assert infos["alice"]["success"] == 0.0
    # Red first: Alice on the red diamond while Bob holds the red button.
    obs, steps = walk(env, obs, RED_DIAMOND, RED_BUTTON)
    assert steps, "the seed should not start on the goal cells"
    for _, rewards, terms, truncs, infos in steps:
        assert rewards == {"alice": 0.0, "bob": 0.0}
        assert not any(terms.values()) and not any(truncs.values())
        assert infos["alice"]["success"] == 0.0
    assert obs["alice"][4:].tolist() == [1.0, 0.0]  # red collected, blue not
    assert obs["bob"][4:].tolist() == [1.0, 0.0]
    assert env.state()[4:].tolist() == [1.0, 0.0]
    assert env.agents == ["alice", "bob"]

    # Then blue: Alice walks to the blue diamond, Bob to the blue button.
    obs, steps = walk(env, obs, BLUE_DIAMOND, BLUE_BUTTON)
    for _, rewards, terms, _, _ in steps[:-1]:
        assert rewards == {"alice": 0.0, "bob": 0.0} and not any(terms.values())
    _, rewards, terms, truncs, infos = steps[-1]
    assert rewards == {"alice": 1.0, "bob": 1.0}
    assert terms == {"alice": True, "bob": True}
    assert truncs == {"alice": False, "bob": False}
    assert infos == {"alice": {"success": 1.0}, "bob": {"success": 1.0}}
    assert obs["alice"][4:].tolist() == [1.0, 1.0]
    assert env.agents == []


def test_observation_and_state_layout():
    env = ab.parallel_env()
    obs, _ = env.reset(seed=11)
    alice, bob = positions(obs)
    np.testing.assert_allclose(obs["bob"][:4], np.array([*bob, *alice]) / 7)
    np.testing.assert_allclose(env.state(), np.array([*alice, *bob, 0, 0]) / np.array([7, 7, 7, 7, 1, 1]))
    for value in (*obs["alice"], *obs["bob"], *env.state()):
        assert 0.0 <= value <= 1.0


def test_walls_stop_moves():
    env = ab.parallel_env()
    obs, _ = env.reset(seed=5)
    obs, _ = walk(env, obs, (0, 0), (7, 7))
    obs = env.step({"alice": UP, "bob": DOWN})[0]
    assert positions(obs) == ((0, 0), (7, 7))
    obs = env.step({"alice": LEFT, "bob": RIGHT})[0]
    assert positions(obs) == ((0, 0), (7, 7))
    obs = env.step({"alice": RIGHT, "bob": UP})[0]
    assert positions(obs) == ((0, 1), (6, 7))


def test_agents_may_share_a_cell():
    env = ab.parallel_env()
    obs, _ = env.reset(seed=8)
    obs, _ = walk(env, obs, (3, 3), (3, 3))
    assert positions(obs) == ((3, 3), (3, 3))


@pytest.mark.parametrize(
    "diamond, wrong_button",
    [(RED_DIAMOND, BLUE_BUTTON), (BLUE_DIAMOND, RED_BUTTON)],
)
def test_no_collection_when_partner_on_wrong_button(diamond, wrong_button):
    env = ab.parallel_env()
    obs, _ = env.reset(seed=2)
    obs, steps = walk(env, obs, diamond, wrong_button)
    for _ in range(3):  # standing there longer changes nothing
        steps.append(env.step({"alice": STAY, "bob": STAY}))
    obs = steps[-1][0]
    assert obs["alice"][4:].tolist() == [0.0, 0.0]
    assert all(s[1] == {"alice": 0.0, "bob": 0.0} for s in steps)
    # Bob alone on the right button, Alice elsewhere: still nothing.
    obs, steps = walk(env, obs, (4, 4), RED_BUTTON)
    assert obs["alice"][4:].tolist() == [0.0, 0.0]


def test_roles_may_be_swapped():
    """Either agent can take the diamond; Bob on the red diamond with Alice on the red button."""
    env = ab.parallel_env()
    obs, _ = env.reset(seed=4)
    obs, _ = walk(env, obs, RED_BUTTON, RED_DIAMOND)
    assert obs["alice"][4:].tolist() == [1.0, 0.0]


def test_truncation_at_max_cycles():
    env = ab.parallel_env(max_cycles=5)
    env.reset(seed=0)
    for t in range(1, 6):
        _, rewards, terms, truncs, infos = env.step({"alice": STAY, "bob": STAY})
        assert rewards == {"alice": 0.0, "bob": 0.0}
        assert not any(terms.values())
        assert all(truncs.values()) == (t == 5)
        assert infos["bob"] == {"success": 0.0}
    assert env.agents == []


def test_default_max_cycles_is_100():
    assert ab.parallel_env().max_cycles == 100
    arr = make_env("alice_and_bob")
    assert arr.spec.max_episode_steps == 100
    arr.reset(seed=0)
    for _ in range(99):
        assert arr.step(np.zeros(2, dtype=np.int64)).episode is None
    last = arr.step(np.zeros(2, dtype=np.int64))
    assert last.truncated and not last.terminated
    assert last.episode == {"return": 0.0, "length": 100.0, "success": 0.0}


def test_render_rgb_array():
    env = ab.parallel_env(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (320, 320, 3)
    # Frames change when an agent moves.
    env.step({"alice": RIGHT if positions(obs)[0][1] < 7 else LEFT, "bob": STAY})
    assert not np.array_equal(frame, env.render())
    with pytest.warns(UserWarning):
        assert ab.parallel_env().render() is None
    with pytest.raises(ValueError):
        ab.parallel_env(render_mode="human")


def test_seeding():
    env = ab.parallel_env()
    starts = {}
    for seed in range(6):
        first = positions(env.reset(seed=seed)[0])
        env.step({"alice": DOWN, "bob": UP})
        again = positions(env.reset(seed=seed)[0])
        assert first == again
        starts[seed] = first
    assert len(set(starts.values())) == len(starts), starts


def test_starts_are_free_distinct_cells():
    env = ab.parallel_env()
    env.reset(seed=0)
    special = {RED_DIAMOND, BLUE_DIAMOND, RED_BUTTON, BLUE_BUTTON}
    seen = set()
    for _ in range(300):  # unseeded resets continue the RNG
        alice, bob = positions(env.reset()[0])
        assert alice != bob
        assert alice not in special and bob not in special
        seen.update((alice, bob))
    assert len(seen) > 40  # starts cover the floor
