"""make_env / register / validate_env_id: registered ids, import strings and bad ids."""
import numpy as np
import pytest

from hmasd_envs import EnvError, make_env, register, registered_ids, validate_env_id
from hmasd_envs import alice_and_bob


def test_builtin_ids_are_registered():
    assert {"alice_and_bob", "simple_spread_v3", "simple_spread_v3_continuous"} <= set(registered_ids())
    for env_id in registered_ids():
        validate_env_id(env_id)


def test_simple_spread_defaults_follow_mpe2():
    env = make_env("simple_spread_v3")
    raw = env.unwrapped.unwrapped
    assert env.spec.action_kind == "discrete"
    assert env.spec.num_agents == 3 and raw.max_cycles == 25
    assert raw.scenario is not None
    assert make_env("simple_spread_v3", N=4).spec.num_agents == 4


def test_unknown_id_suggests_the_closest():
    with pytest.raises(EnvError) as err:
        make_env("simple_spred_v3")
    message = str(err.value)
    assert "'simple_spread_v3'" in message and "package.module:factory" in message
    assert "\n" not in message
    with pytest.raises(EnvError, match="alice_and_bob"):
        validate_env_id("alice_bob")


@pytest.mark.parametrize(
    "env_id, fragment",
    [
        ("no_such_module_xyz:make", "cannot import"),
        ("mpe2.simple_spread_v3:no_such_factory", "no attribute"),
        ("mpe2.simple_spread_v3:", "import string"),
        ("mpe2.simple_spread_v3:__name__", "not callable"),
    ],
)
def test_bad_import_strings(env_id, fragment):
    with pytest.raises(EnvError, match=fragment):
        validate_env_id(env_id)


def test_import_strings_build_parallel_and_aec_envs():
    parallel = make_env("mpe2.simple_spread_v3:parallel_env", N=2)
    assert parallel.spec.num_agents == 2
    # An AEC factory is converted to a ParallelEnv.
    aec = make_env("mpe2.simple_spread_v3:env", max_cycles=5)
    assert aec.spec.num_agents == 3 and aec.spec.max_episode_steps == 5
    aec.reset(seed=0)
    episodes = [aec.step(np.zeros(3, np.int64)).episode for _ in range(5)]
    assert episodes[:4] == [None] * 4 and episodes[-1]["length"] == 5


def test_register_and_defaults_are_overridable():
    register("alice_and_bob_short", alice_and_bob.parallel_env, max_cycles=3)
    try:
        assert "alice_and_bob_short" in registered_ids()
        assert make_env("alice_and_bob_short").spec.max_episode_steps == 3
        assert make_env("alice_and_bob_short", max_cycles=9).spec.max_episode_steps == 9
    finally:
        from hmasd_envs import registry

        registry._REGISTRY.pop("alice_and_bob_short")
    with pytest.raises(EnvError):
        register("bad:id", alice_and_bob.parallel_env)


def test_rejected_arguments_are_one_line_env_errors():
    with pytest.raises(EnvError) as err:
        make_env("alice_and_bob", max_cycle=5)
    assert "alice_and_bob" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(EnvError, match="simple_spread_v3"):
        make_env("simple_spread_v3", local_ratio=2.0)


def test_factory_returning_something_else_is_refused():
    with pytest.raises(EnvError, match="not a PettingZoo"):
        make_env("builtins:dict")
