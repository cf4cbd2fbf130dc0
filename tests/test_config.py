"""Config loading, overrides and validation: one clear line for each mistake a user can make."""
import dataclasses
from pathlib import Path

import pytest

from hmasd.config import ConfigError, config_from_dict, load_config, upgrade_checkpoint_config


def test_default_config_resolves_to_the_sync_defaults():
    cfg = load_config("configs/default.yaml")
    assert (cfg.num_envs, cfg.rollout_length, cfg.batch_size) == (32, 32, 1024)
    assert cfg.total_env_steps == 4_000_000 and cfg.ppo.lr == 1e-4 and cfg.ppo.epochs == 15
    assert cfg.hmasd.n_team_skills == cfg.hmasd.n_agent_skills == 3
    assert cfg.gamma_high == cfg.ppo.gamma


SHIPPED_CONFIGS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_the_shipped_configs_are_found():
    assert {"default", "alice_and_bob", "alice_and_bob_extrinsic", "simple_spread", "smoke"} <= set(SHIPPED_CONFIGS)


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_config_loads(name):
    load_config(f"configs/{name}.yaml")


def test_alice_and_bob_config_has_the_paper_settings():
    cfg = load_config("configs/alice_and_bob.yaml")
    h = cfg.hmasd
    assert (cfg.ppo.lr, cfg.rollout_length, cfg.total_env_steps) == (5e-4, 100, 3_000_000)
    assert (h.skill_interval, h.n_team_skills, h.n_agent_skills) == (50, 2, 4)
    assert (h.high_entropy_coef, h.low_entropy_coef, h.extrinsic_coef) == (0.1, 0.01, 0.0)
    assert (h.team_discriminator_coef, h.agent_discriminator_coef) == (0.1, 0.2)


def test_the_working_alice_config_departs_from_the_paper_only_in_lambda_e():
    paper, working = load_config("configs/alice_and_bob.yaml"), load_config("configs/alice_and_bob_extrinsic.yaml")
    assert working.hmasd.extrinsic_coef == 10.0
    same = dataclasses.replace(working, hmasd=dataclasses.replace(working.hmasd, extrinsic_coef=0.0))
    assert same == paper


def test_overrides_reach_nested_keys_and_parse_yaml_values():
    cfg = load_config("configs/default.yaml", ["env.id=alice_and_bob", "total_env_steps=20000", "ppo.lr=3e-4",
                                               "env.kwargs={max_cycles: 50}", "num_workers=null"])
    assert cfg.env.id == "alice_and_bob" and cfg.total_env_steps == 20000 and cfg.ppo.lr == 3e-4
    assert cfg.env.kwargs == {"max_cycles": 50} and cfg.num_workers is None


@pytest.mark.parametrize("overrides, fragment", [
    (["total_env_step=5"], "unknown config key 'total_env_step'; did you mean 'total_env_steps'?"),
    (["ppo.lrr=1"], "unknown config key 'ppo.lrr'; did you mean 'ppo.lr'?"),
    (["num_envs=abc"], "'num_envs' must be int, got 'abc'"),
    (["ppo.value_norm=3"], "'ppo.value_norm' must be bool"),
    (["batch_size=1000"], "batch_size (1000) is not a whole number of steps of num_envs (32)"),
    (["batch_size=null", "rollout_length=30"], "rollout_length (30) must be a multiple of hmasd.skill_interval (16)"),
    (["env.id=simple_sprad_v3"], "simple_spread_v3"),
    (["algo=ppo"], "algo 'ppo' is unknown"),
    (["ppo.gamma=1.5"], "ppo.gamma (1.5) must be in [0, 1]"),
    (["total_env_steps"], "--set expects KEY=VALUE"),
    (["ppo.lr_high=0"], "ppo.lr_high (0.0) must be positive"),
    (["model.input_norm=batch"], "model.input_norm 'batch' is unknown: use one of layer, none, running"),
])
def test_bad_values_give_one_line_naming_the_problem(overrides, fragment):
    with pytest.raises(ConfigError) as info:
        load_config("configs/default.yaml", overrides)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_missing_file_and_bad_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("algo: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_mappo_ignores_the_skill_interval_constraint():
    cfg = config_from_dict({"algo": "mappo", "rollout_length": 30, "num_envs": 2})
    assert cfg.batch_size == 60


def test_unknown_high_advantage_norm_is_one_clear_error():
    with pytest.raises(ConfigError, match="ppo.high_advantage_norm 'sometimes' is unknown: use one of off, always, rewarded"):
        load_config("configs/smoke.yaml", ["ppo.high_advantage_norm=sometimes"])


@pytest.mark.parametrize("old, new", [(True, "always"), (False, "off")])
def test_checkpoints_with_the_boolean_high_advantage_switch_still_load(old, new):
    data = upgrade_checkpoint_config({"device": "cpu", "ppo": {"lr": 1e-4, "normalize_high_advantages": old}})
    assert data == {"ppo": {"lr": 1e-4, "high_advantage_norm": new}}
    assert config_from_dict(data).ppo.high_advantage_norm == new
