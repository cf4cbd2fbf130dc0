"""Config loading, overrides and validation: one clear line for each mistake a user can make."""
import dataclasses
from pathlib import Path

import pytest

from hmasd.config import (Config, ConfigError, config_from_dict, config_warnings, dump_config, load_config, read_yaml,
                          upgrade_checkpoint_config)


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
    (["ppo.weight_decay=-0.1"], "ppo.weight_decay (-0.1) must be >= 0"),
    (["ppo.value_coef=-1"], "ppo.value_coef (-1.0) must be >= 0"),
    (["hmasd.high_entropy_coef=-0.01"], "hmasd.high_entropy_coef (-0.01) must be >= 0"),
    (["hmasd.low_entropy_coef=-0.01"], "hmasd.low_entropy_coef (-0.01) must be >= 0"),
    (["hmasd.extrinsic_coef=-1"], "hmasd.extrinsic_coef (-1.0) must be >= 0"),
    (["hmasd.team_discriminator_coef=-1"], "hmasd.team_discriminator_coef (-1.0) must be >= 0"),
    (["hmasd.agent_discriminator_coef=-1"], "hmasd.agent_discriminator_coef (-1.0) must be >= 0"),
    (["hmasd.n_team_skills=100000"], "hmasd.n_team_skills (100000) is above the bound of 1024 skills"),
    (["hmasd.n_agent_skills=1025"], "hmasd.n_agent_skills (1025) is above the bound of 1024 skills"),
    # 32 envs x 32 steps: 4 chunks of 8 per env -> 128 discoverer chunks, 2 segments per env -> 64 coordinator ones
    (["ppo.num_minibatches=65"], "ppo.num_minibatches (65) is larger than the 64 coordinator segments"),
    (["max_worker_restarts=-1"], "max_worker_restarts (-1) must be >= 0"),
    (["run_name=../../x"], "run_name '../../x' must be one folder name"),
    (["run_name=a/b"], "run_name 'a/b' must be one folder name"),
    (["run_name=.."], "run_name '..' must be one folder name"),
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


def test_the_bounds_themselves_are_accepted():
    cfg = load_config("configs/smoke.yaml", ["hmasd.n_team_skills=1024", "ppo.num_minibatches=8",
                                             "run_name=run-1.b_c+d", "ppo.weight_decay=0"])
    assert cfg.hmasd.n_team_skills == 1024 and cfg.run_name == "run-1.b_c+d"


def test_default_yaml_is_the_schema_defaults():
    """One source of defaults: the fully commented default config runs exactly what an empty config runs,
    and names every key of the schema."""
    assert load_config("configs/default.yaml") == load_config(None)

    def keys(data, prefix=""):
        out = set()
        for key, value in data.items():
            out.add(prefix + key)
            if isinstance(value, dict) and key != "kwargs":
                out |= keys(value, f"{prefix}{key}.")
        return out

    assert keys(read_yaml("configs/default.yaml")) == keys(Config().to_dict())


def test_duplicate_keys_and_an_empty_file_are_config_errors(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("seed: 1\nppo:\n  lr: 1.0e-4\n  lr: 3.0e-4\n")
    with pytest.raises(ConfigError, match=r"key 'lr' is given twice \(lines 3 and 4\): keep one"):
        load_config(twice)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing but a comment\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(empty)


def test_settings_that_run_but_not_as_meant_are_warned_about():
    assert config_warnings(load_config("configs/default.yaml")) == []
    notes = config_warnings(load_config("configs/smoke.yaml", ["rollout_length=12", "hmasd.skill_interval=4",
                                                               "ppo.data_chunk_length=8", "total_env_steps=10"]))
    assert len(notes) == 2
    assert "ppo.data_chunk_length (8) does not divide rollout_length (12): chunks of 6 steps are used" in notes[0]
    assert "total_env_steps (10) is below one batch (48 env steps)" in notes[1]


def test_the_saved_config_holds_resolved_values(tmp_path):
    dump_config(load_config("configs/default.yaml"), tmp_path / "run.config.yaml")
    saved = read_yaml(tmp_path / "run.config.yaml")
    assert saved["batch_size"] == 1024 and saved["rollout_length"] == 32
    assert config_from_dict(saved) == load_config("configs/default.yaml")


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
