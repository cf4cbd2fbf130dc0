"""ArrayEnv on small test-only ParallelEnvs and on simple_spread: shapes, padding, agents that
leave, state fallback, episode ends, auto-reset, action handling and unsupported envs."""
import warnings

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv

from hmasd_envs import ArrayEnv, EnvError, make_env


class ToyEnv(ParallelEnv):
    """Agents a, b, c with observation sizes 2, 4, 3 and no global state.

    Each observation is filled with `10 * step + agent index`, so rows can be traced. Agent c
    terminates at step `c_leaves`; the rest end at step `length`, terminated if `end_terminates`
    else truncated. Every step records the actions it got in `received`.
    """

    metadata = {"name": "toy_v0", "is_parallelizable": True}

    def __init__(self, length=4, c_leaves=2, end_terminates=False, action_space=None, sizes=(2, 4, 3)):
        self.possible_agents = ["a", "b", "c"]
        self.agents = []
        self.sizes = dict(zip(self.possible_agents, sizes))
        self._obs_spaces = {a: spaces.Box(-100, 100, (n,), np.float32) for a, n in self.sizes.items()}
        space = action_space if action_space is not None else spaces.Discrete(3)
        self._act_spaces = {a: space for a in self.possible_agents}
        self.length, self.c_leaves, self.end_terminates = length, c_leaves, end_terminates
        self.received = []
        self.t = 0

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _obs(self, agents):
        return {
            a: np.full(self.sizes[a], 10 * self.t + self.possible_agents.index(a), np.float32)
            for a in agents
        }

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._obs(self.agents), {a: {} for a in self.agents}

    def step(self, actions):
        self.received.append(dict(actions))
        self.t += 1
        acting = list(self.agents)
        end = self.t >= self.length
        terms = {a: (a == "c" and self.t == self.c_leaves) or (end and self.end_terminates) for a in acting}
        truncs = {a: end and not self.end_terminates and not terms[a] for a in acting}
        rewards = {a: float(self.possible_agents.index(a) + 1) for a in acting}
        infos = {a: {"score": float(self.possible_agents.index(a)), "tag": "text"} for a in acting}
        obs = self._obs(acting)
        self.agents = [a for a in acting if not (terms[a] or truncs[a])]
        return obs, rewards, terms, truncs, infos


def make_toy(**kwargs):
    return ToyEnv(**kwargs)


class DictObsEnv(ToyEnv):
    """Dict observations: a Box "pos", a Box "aux" and a MultiBinary mask (ignored)."""

    def __init__(self, with_box=True, **kwargs):
        super().__init__(sizes=(1, 1, 1), **kwargs)
        box = {"pos": spaces.Box(-1, 1, (2,)), "aux": spaces.Box(-1, 1, (1,))} if with_box else {}
        space = spaces.Dict({**box, "mask": spaces.MultiBinary(3)})
        self._obs_spaces = {a: space for a in self.possible_agents}

    def _obs(self, agents):
        return {a: {"pos": np.array([0.1, 0.2]), "aux": np.array([0.9]), "mask": np.ones(3)} for a in agents}


class StateEnv(ToyEnv):
    """Equal observation sizes and a real global state."""

    def __init__(self, **kwargs):
        super().__init__(sizes=(3, 3, 3), **kwargs)
        self.state_space = spaces.Box(-1000, 1000, (2, 2), np.float32)

    def state(self):
        return np.array([[self.t, 1], [2, 3]], np.float32)


def toy_array_env(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ArrayEnv(ToyEnv(**kwargs), "toy")


def test_padding_and_id_one_hot():
    env = toy_array_env()
    assert env.spec.num_agents == 3 and env.spec.agent_names == ("a", "b", "c")
    assert env.spec.obs_dim == 4 + 3  # the largest size plus a one-hot over 3 agents
    obs, state, alive = env.reset()
    assert obs.dtype == np.float32 and obs.shape == (3, 7)
    np.testing.assert_array_equal(obs[0], [0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(obs[1], [1, 1, 1, 1, 0, 1, 0])
    np.testing.assert_array_equal(obs[2], [2, 2, 2, 0, 0, 0, 1])
    assert alive.tolist() == [True, True, True]


def test_equal_sizes_get_no_one_hot_and_env_state():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an env with a state must not warn
        env = ArrayEnv(StateEnv(), "state_toy")
    assert env.spec.obs_dim == 3
    assert env.spec.state_from_env and env.spec.state_dim == 4
    obs, state, _ = env.reset()
    np.testing.assert_array_equal(obs, [[0] * 3, [1] * 3, [2] * 3])
    assert state.dtype == np.float32
    np.testing.assert_array_equal(state, [0, 1, 2, 3])
    np.testing.assert_array_equal(env.step(np.zeros(3, np.int64)).state, [1, 1, 2, 3])


def test_state_fallback_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = ArrayEnv(ToyEnv(), "toy_without_state")
        obs, state, _ = env.reset(seed=0)
        for _ in range(6):  # through an episode end and auto-reset
            step = env.step(np.zeros(3, np.int64))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "toy_without_state" in messages[0]
    assert not env.spec.state_from_env
    assert env.spec.state_dim == 3 * 7
    np.testing.assert_array_equal(state, obs.reshape(-1))
    np.testing.assert_array_equal(step.state, step.obs.reshape(-1))


def test_env_may_name_its_episode_statistics():
    """`episode_info_keys` on the env: only those final infos are episode statistics."""
    env = toy_array_env(length=4, c_leaves=2)
    env.unwrapped.episode_info_keys = ()  # "score" is then a per-step value, not an episode's
    env.reset()
    last = [env.step(np.array([0, 0, 0])) for _ in range(4)][-1]
    assert set(last.episode) == {"return", "length"}


def test_agent_leaving_mid_episode():
    env = toy_array_env(length=4, c_leaves=2)
    env.reset()
    first = env.step(np.array([0, 1, 2]))
    assert first.alive.tolist() == [True, True, True] and first.episode is None
    second = env.step(np.array([1, 1, 1]))  # c terminates here
    assert second.alive.tolist() == [True, True, False]
    np.testing.assert_array_equal(second.obs[2], np.zeros(7))
    np.testing.assert_array_equal(second.obs[0], [20, 20, 0, 0, 1, 0, 0])
    assert second.reward == 1 + 2 + 3
    third = env.step(np.array([2, 2, 2]))
    assert third.reward == 1 + 2  # c is gone
    assert set(env.unwrapped.received[2]) == {"a", "b"}  # no action sent for c
    assert env.unwrapped.received[0] == {"a": 0, "b": 1, "c": 2}
    last = env.step(np.array([0, 0, 0]))
    # c terminated earlier, but a and b were truncated: the episode is truncated.
    assert last.truncated and not last.terminated
    np.testing.assert_array_equal(last.final_obs[2], np.zeros(7))
    np.testing.assert_array_equal(last.final_obs[1], [41, 41, 41, 41, 0, 1, 0])
    assert last.episode["return"] == 6 + 6 + 3 + 3
    assert last.episode["length"] == 4
    assert last.episode["score"] == pytest.approx(0.5)  # mean over a and b, the agents in the final infos
    assert "tag" not in last.episode  # not numeric
    # Auto-reset: obs is the new episode's first obs, all agents back.
    assert last.alive.tolist() == [True, True, True]
    np.testing.assert_array_equal(last.obs[2], [2, 2, 2, 0, 0, 0, 1])
    assert not np.array_equal(last.obs, last.final_obs)


def test_episode_terminates_when_all_present_agents_terminate():
    env = toy_array_env(length=3, c_leaves=2, end_terminates=True)
    env.reset()
    steps = [env.step(np.zeros(3, np.int64)) for _ in range(3)]
    assert [s.episode is not None for s in steps] == [False, False, True]
    assert steps[-1].terminated and not steps[-1].truncated
    # Not done: final_obs is obs.
    assert steps[0].final_obs is steps[0].obs and steps[0].final_state is steps[0].state


def test_box_actions_are_clipped():
    box = spaces.Box(np.array([-1, 0], np.float32), np.array([1, 2], np.float32))
    env = toy_array_env(action_space=box)
    assert env.spec.action_kind == "box" and env.spec.action_dim == 2 and env.spec.n_actions == 0
    assert env.spec.action_low == (-1.0, 0.0) and env.spec.action_high == (1.0, 2.0)
    env.reset()
    env.step(np.array([[5, 5], [-5, -5], [0.5, 1.5]], np.float32))
    got = env.unwrapped.received[0]
    np.testing.assert_array_equal(got["a"], [1, 2])
    np.testing.assert_array_equal(got["b"], [-1, 0])
    np.testing.assert_array_equal(got["c"], [0.5, 1.5])
    assert got["a"].dtype == np.float32


def test_bad_action_arrays_and_step_before_reset():
    env = toy_array_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, np.int64))
    env.reset()
    with pytest.raises(ValueError, match=r"\[3\]"):
        env.step(np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="integers"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        env.step(np.array([0, 3, 0]))


def test_dict_observations_use_sorted_box_entries():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = ArrayEnv(DictObsEnv(), "dict_toy")
    assert env.spec.obs_dim == 3
    obs, _, _ = env.reset()
    np.testing.assert_allclose(obs[0], [0.9, 0.1, 0.2])  # "aux" sorts before "pos"


def test_dict_observations_without_box_are_refused():
    with pytest.raises(EnvError) as err:
        ArrayEnv(DictObsEnv(with_box=False), "dict_toy")
    message = str(err.value)
    assert "dict_toy" in message and "'a'" in message and "Box" in message
    assert "\n" not in message


def test_discrete_and_box_agents_mixed_are_refused():
    env = ToyEnv()
    env._act_spaces["b"] = spaces.Box(-1.0, 1.0, (2,), np.float32)
    with pytest.raises(EnvError) as err:
        ArrayEnv(env, "mixed_toy")
    message = str(err.value)
    assert "mixed_toy" in message and "'b'" in message and "Discrete" in message and "Box" in message
    assert "\n" not in message


def test_different_action_counts_are_padded_and_the_padding_masked():
    env = ToyEnv()
    env._act_spaces["b"] = spaces.Discrete(5)
    arr = ArrayEnv(env, "uneven_toy")
    assert arr.spec.n_actions == 5 and arr.spec.masked and arr.spec.mask_dim == 5
    assert arr.spec.agent_action_sizes == (3, 5, 3)
    arr.reset(seed=0)
    np.testing.assert_array_equal(arr.action_mask.sum(axis=1), [3, 5, 3])
    arr.step(np.array([2, 4, 0]))  # agent b's own range is wider
    with pytest.raises(ValueError, match=r"'a'.*\[0, 3\)"):
        arr.step(np.array([4, 0, 0]))  # a padded action of agent a never reaches the env


def test_unsupported_spaces_and_no_agents_are_refused():
    with pytest.raises(EnvError, match="multi_discrete_toy"):
        ArrayEnv(ToyEnv(action_space=spaces.MultiDiscrete([2, 2])), "multi_discrete_toy")
    env = ToyEnv()
    env._obs_spaces["c"] = spaces.Discrete(3)
    with pytest.raises(EnvError, match="discrete_obs_toy.*'c'"):
        ArrayEnv(env, "discrete_obs_toy")
    env = ToyEnv()
    env.possible_agents = []
    with pytest.raises(EnvError, match="empty_toy"):
        ArrayEnv(env, "empty_toy")
    assert issubclass(EnvError, ValueError)


def test_import_string_with_a_test_env():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = make_env(f"{__name__}:make_toy", length=2)
    assert env.spec.env_id == f"{__name__}:make_toy"
    env.reset()
    env.step(np.zeros(3, np.int64))
    assert env.step(np.zeros(3, np.int64)).episode["length"] == 2


def test_continuous_simple_spread_clips_actions():
    env = make_env("simple_spread_v3_continuous")
    spec = env.spec
    assert spec.action_kind == "box" and spec.action_dim == 5 and spec.n_actions == 0
    assert spec.action_low == (0.0,) * 5 and spec.action_high == (1.0,) * 5
    assert spec.max_episode_steps == 25 and spec.state_from_env and spec.state_dim == 54
    rng = np.random.default_rng(0)
    raw = rng.normal(0.5, 2.0, size=(10, 3, 5)).astype(np.float32)
    runs = []
    for actions in (raw, np.clip(raw, 0.0, 1.0)):  # out-of-range vs in-range: same trajectory
        env.reset(seed=7)
        runs.append([env.step(a) for a in actions])
    for wide, clipped in zip(*runs):
        np.testing.assert_array_equal(wide.obs, clipped.obs)
        assert wide.reward == clipped.reward
    assert not np.array_equal(runs[0][0].obs, runs[0][-1].obs)  # the agents did move


def test_simple_spread_episode_end_and_auto_reset():
    env = make_env("simple_spread_v3")
    spec = env.spec
    assert (spec.num_agents, spec.obs_dim, spec.state_dim, spec.n_actions) == (3, 18, 54, 5)
    obs, state, alive = env.reset(seed=1)
    assert obs.shape == (3, 18) and state.shape == (54,) and alive.all()
    rng = np.random.default_rng(1)
    total = 0.0
    for t in range(1, 26):
        step = env.step(rng.integers(0, 5, size=3))
        total += step.reward
        if t < 25:
            assert step.episode is None and not (step.terminated or step.truncated)
    assert step.truncated and not step.terminated
    assert step.episode["length"] == 25
    assert step.episode["return"] == pytest.approx(total)
    assert not np.array_equal(step.final_obs, step.obs)
    assert not np.array_equal(step.final_state, step.state)
    assert step.alive.all()
    # The auto-reset continues the env's RNG: the next episode differs from the first.
    assert not np.array_equal(step.obs, obs)
    # The same seed gives the same first observation.
    np.testing.assert_array_equal(env.reset(seed=1)[0], obs)


def test_render_passes_frames_through():
    env = make_env("alice_and_bob", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (320, 320, 3) and frame.dtype == np.uint8
    assert make_env("alice_and_bob").render() is None
    env.close()


def test_alice_and_bob_through_the_adapter():
    env = make_env("alice_and_bob", max_cycles=7)
    assert env.spec.max_episode_steps == 7 and env.spec.state_from_env
    env.reset(seed=0)
    for _ in range(6):
        assert env.step(np.array([0, 0])).episode is None
    last = env.step(np.array([0, 0]))
    assert last.truncated and last.episode == {"return": 0.0, "length": 7.0, "success": 0.0}
