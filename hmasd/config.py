"""Typed run configuration: schema, YAML loading, `--set` overrides and validation.

The schema lives here; `configs/*.yaml` hold values only. `load_config` is the single entry point:
it merges the YAML file, then each `KEY=VALUE` override, checks every key and type against the
dataclasses below, resolves derived values (rollout length from the batch size, gamma_high) and
validates the numbers. Every problem raises `ConfigError` with one line naming the key, the value
and the fix; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file, key or value a user can fix; the message is one line."""


@dataclass
class EnvConfig:
    id: str = "simple_spread_v3"  # registered id or "package.module:factory"
    kwargs: dict = field(default_factory=dict)  # passed to the env factory
    # An "action_mask" entry of a Dict observation masks the actions; true also feeds it to the networks
    # as part of the observation (it is left out by default: the mask already shapes the policy).
    action_mask_in_obs: bool = False


@dataclass
class HMASDConfig:
    """The paper's HMASD settings (Table of hyper-parameters, docs/spec.md, "Settings from the paper")."""

    skill_interval: int = 16  # k: env steps between skill assignments
    n_team_skills: int = 3  # n_Z
    n_agent_skills: int = 3  # n_z
    high_entropy_coef: float = 0.01  # lambda_h (Eq. 6)
    low_entropy_coef: float = 0.01  # lambda_l (Eq. 7); also the MAPPO entropy coefficient
    extrinsic_coef: float = 1.0  # lambda_e (Eq. 4)
    team_discriminator_coef: float = 0.1  # lambda_D (Eq. 4)
    # lambda_d (Eq. 4). 0.1, not SMAC 3m's 0.5: the default task is simple_spread, whose dense O(1) reward
    # the paper never tuned; 0.1 is what the simple_spread runs in docs/results.md used.
    agent_discriminator_coef: float = 0.1


@dataclass
class PPOConfig:
    lr: float = 1e-4
    lr_schedule: str = "constant"  # constant | linear: lr x (1 - env_steps / total_env_steps) (MAPPO's decay)
    lr_high: float | None = None  # the coordinator's learning rate; None = lr
    epochs: int = 15
    num_minibatches: int = 1
    clip: float = 0.2
    value_coef: float = 1.0
    gamma: float = 0.99
    gae_lambda: float = 0.95
    gamma_high: float | None = None  # per-segment discount of the coordinator; None = gamma
    gae_lambda_high: float | None = None  # None = gae_lambda
    huber_delta: float = 10.0
    max_grad_norm: float = 0.5
    adam_eps: float = 1e-5
    weight_decay: float = 0.0
    value_norm: bool = True
    normalize_advantages: bool = True  # discoverer (low level)
    # How the coordinator's advantages are scaled; the paper is silent. "always" is the MAT/MAPPO habit of
    # normalising every batch, "off" keeps them raw, "rewarded" normalises only a rollout in which some
    # segment got a non-zero r^h. Why not "always": a sparse r^h is all zeros until a first success, and
    # normalising then blows value noise up to unit-size advantages that push the skill policy away from
    # uniform (Alice_and_Bob: 0 successes in 1.8M steps). Why not "off": raw advantages of a 0/2 reward
    # are about 0.05 in size, far below lambda_h = 0.1 times the entropy gradient, so the coordinator
    # stayed uniform for 3M steps while about 10% of episodes succeeded (docs/results.md).
    high_advantage_norm: str = "rewarded"
    data_chunk_length: int | None = 8  # GRU training chunks (MAPPO); null = whole rollouts


@dataclass
class ModelConfig:
    hidden: int = 64
    coordinator_layers: int = 3  # L encoder blocks and L decoder blocks
    coordinator_heads: int = 8
    coordinator_ff: int = 256  # set explicitly: torch's default of 2048 is slow for nothing
    critic_agent_id: bool = True  # project choice: V_l also sees the agent's one-hot id
    actor_agent_id: bool = False  # the paper's pi_l(a|o,z); true: the actor also sees the one-hot id
    recurrent: bool = True  # MLP -> GRU -> MLP; False drops the GRU
    input_norm: str = "layer"  # discoverer inputs: layer (MAPPO's LayerNorm) | none (O(1) observations) | running
    # true: pi_l's weights on z and V_l's on Z start at zero, so the discoverer starts skill-blind
    # (it broke Alice_and_Bob, where the skills are the solution: docs/results.md)
    zero_init_skill_weights: bool = False


@dataclass
class Config:
    algo: str = "hmasd"  # hmasd | mappo
    seed: int = 1
    env: EnvConfig = field(default_factory=EnvConfig)
    num_envs: int = 32
    num_workers: int | None = None  # None: one worker per available CPU
    # Where the env workers run: subprocess (this machine) | local (in the trainer process) | ray (Ray actors).
    backend: str = "subprocess"
    ray_address: str | None = None  # backend ray: None starts a local Ray on 127.0.0.1, else the cluster to join
    device: str = "auto"  # where the update runs: auto (cuda if available) | cpu | cuda; acting stays on the CPU
    batch_size: int | None = None  # env steps per update; None = num_envs * rollout_length
    rollout_length: int | None = None  # steps per env per update; None = batch_size / num_envs
    total_env_steps: int = 4_000_000
    save_interval: int = 200_000  # env steps between checkpoints
    eval_interval: int = 200_000  # env steps between evaluations; 0 disables
    eval_episodes: int = 32
    log_interval: int = 1  # updates between progress lines
    step_timeout_s: float = 60.0  # an env worker silent for longer is reported as hung (and restarted)
    # Restarts of the env workers allowed for one rollout; one more failure stops the run. 0: never restart.
    max_worker_restarts: int = 3
    torch_threads: int = 1  # intra-op threads of this process; the env workers use the other cores
    parallel_update: bool = True  # update the coordinator and the discoverer on two threads at once
    run_name: str | None = None  # None: <algo>_<env>_s<seed>_<timestamp>; letters, digits, . _ + - only
    hmasd: HMASDConfig = field(default_factory=HMASDConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    @property
    def gamma_high(self) -> float:
        return self.ppo.gamma if self.ppo.gamma_high is None else self.ppo.gamma_high

    @property
    def lr_high(self) -> float:
        return self.ppo.lr if self.ppo.lr_high is None else self.ppo.lr_high

    @property
    def gae_lambda_high(self) -> float:
        return self.ppo.gae_lambda if self.ppo.gae_lambda_high is None else self.ppo.gae_lambda_high

    @property
    def uses_skills(self) -> bool:
        return self.algo == "hmasd"

    def to_dict(self, resolved: bool = False) -> dict:
        """Plain data for YAML and checkpoints. For checkpoints batch_size is left out (derived from
        num_envs x rollout_length), so a resumed run may change num_envs without a conflict; the
        run's own `<run>.config.yaml` keeps it (`resolved=True`) so a reader sees every value used."""
        data = dataclasses.asdict(self)
        if not resolved:
            data["batch_size"] = None
        return data


ALGOS = ("hmasd", "mappo")
HIGH_ADVANTAGE_NORMS = ("off", "always", "rewarded")  # ppo.high_advantage_norm
INPUT_NORMS = ("layer", "none", "running")  # model.input_norm
LR_SCHEDULES = ("constant", "linear")  # ppo.lr_schedule
BACKENDS = ("subprocess", "local", "ray")  # backend
DEVICES = ("auto", "cpu", "cuda")  # device
# Far above any skill count in the paper (at most 5) or in use; n_Z = 100000 took 7-9 GB and minutes per
# update, and such an update cannot be stopped, so the bound is checked before anything is built.
MAX_SKILLS = 1024
RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")  # one folder name: no separators, never "." or ".."


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _closest(name: str, options: list[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if match:
        return f"; did you mean '{prefix}{match[0]}'?"
    return f"; known keys: {', '.join(prefix + o for o in sorted(options))}"


def _coerce(path: str, value: Any, tp: Any) -> Any:
    """Check `value` against the annotation `tp`, converting only lossless cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(path, value, inner[0])
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # YAML reads 4e6 as a float
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
    else:  # pragma: no cover - schema uses only the types above
        return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"config key '{path}' must be {name}, got {value!r} ({type(value).__name__})")


def _build(cls: type, data: dict, prefix: str = "") -> Any:
    hints = _hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key '{path}'{_closest(key, known, prefix)}")
        tp = hints[key]
        if _is_dataclass_type(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{path}' must be a mapping of its sub-keys, got {value!r}")
            kwargs[key] = _build(tp, value, prefix=f"{path}.")
        else:
            kwargs[key] = _coerce(path, value, tp)
    return cls(**kwargs)


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Apply one `--set a.b.c=value`; unknown keys are caught later by `_build` with a suggestion."""
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set '{dotted}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    """`key.sub=value` -> (key.sub, YAML-parsed value): `--set ppo.lr=3e-4 --set env.kwargs={N: 3}`."""
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE, got '{item}' (example: --set total_env_steps=20000)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error: plain YAML keeps the last
    value silently, so a stale line further down a long config would win unseen."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"key '{key}' is given twice (lines {seen[key]} and "
                                  f"{key_node.start_mark.line + 1}): keep one")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found: pass an existing YAML file, e.g. configs/default.yaml")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(f"config file '{path}': {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file '{path}' is not valid YAML{where}: fix the syntax") from None
    if data is None:
        raise ConfigError(f"config file '{path}' is empty (no keys): give at least one key, or leave --config out "
                          "to use configs/default.yaml")
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of keys, got {type(data).__name__}")
    return data


def config_from_dict(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build, resolve and validate a Config from plain data plus `KEY=VALUE` overrides."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    cfg = _build(Config, data)
    resolve(cfg)
    validate(cfg)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    data = read_yaml(path) if path is not None else {}
    return config_from_dict(data, overrides)


def resolve(cfg: Config) -> None:
    """Fill derived values: rollout_length and batch_size from each other."""
    if cfg.num_envs < 1:
        raise ConfigError(f"num_envs ({cfg.num_envs}) must be at least 1")
    if cfg.batch_size is None and cfg.rollout_length is None:
        cfg.rollout_length = 32
    if cfg.batch_size is not None:
        if cfg.batch_size < 1 or cfg.batch_size % cfg.num_envs:
            lo = max(cfg.num_envs, cfg.batch_size // cfg.num_envs * cfg.num_envs)
            raise ConfigError(
                f"batch_size ({cfg.batch_size}) is not a whole number of steps of num_envs ({cfg.num_envs}) "
                f"envs: use a multiple of {cfg.num_envs}, e.g. {lo}"
            )
        steps = cfg.batch_size // cfg.num_envs
        if cfg.rollout_length is not None and cfg.rollout_length != steps:
            raise ConfigError(
                f"batch_size ({cfg.batch_size}) != num_envs ({cfg.num_envs}) x rollout_length "
                f"({cfg.rollout_length}): set only one of batch_size and rollout_length"
            )
        cfg.rollout_length = steps
    cfg.batch_size = cfg.num_envs * cfg.rollout_length


def validate(cfg: Config) -> None:
    """Check values a user can get wrong; each failure is one line naming the key and the fix."""
    if cfg.algo not in ALGOS:
        raise ConfigError(f"algo '{cfg.algo}' is unknown: use one of {', '.join(ALGOS)}")
    if cfg.ppo.high_advantage_norm not in HIGH_ADVANTAGE_NORMS:
        raise ConfigError(f"ppo.high_advantage_norm '{cfg.ppo.high_advantage_norm}' is unknown: "
                          f"use one of {', '.join(HIGH_ADVANTAGE_NORMS)}")
    if cfg.ppo.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"ppo.lr_schedule '{cfg.ppo.lr_schedule}' is unknown: use one of {', '.join(LR_SCHEDULES)}")
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"backend '{cfg.backend}' is unknown: use one of {', '.join(BACKENDS)}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device '{cfg.device}' is unknown: use one of {', '.join(DEVICES)}")
    if cfg.ray_address is not None and cfg.backend != "ray":
        raise ConfigError(f"ray_address ({cfg.ray_address}) is set but backend is '{cfg.backend}': "
                          f"set backend=ray, or ray_address=null")
    if cfg.model.input_norm not in INPUT_NORMS:
        raise ConfigError(f"model.input_norm '{cfg.model.input_norm}' is unknown: use one of {', '.join(INPUT_NORMS)}")
    k = cfg.hmasd.skill_interval
    positive = {
        "rollout_length": cfg.rollout_length,
        "total_env_steps": cfg.total_env_steps,
        "save_interval": cfg.save_interval,
        "eval_episodes": cfg.eval_episodes,
        "log_interval": cfg.log_interval,
        "torch_threads": cfg.torch_threads,
        "hmasd.skill_interval": k,
        "hmasd.n_team_skills": cfg.hmasd.n_team_skills,
        "hmasd.n_agent_skills": cfg.hmasd.n_agent_skills,
        "ppo.epochs": cfg.ppo.epochs,
        "ppo.num_minibatches": cfg.ppo.num_minibatches,
        "model.hidden": cfg.model.hidden,
        "model.coordinator_layers": cfg.model.coordinator_layers,
        "model.coordinator_heads": cfg.model.coordinator_heads,
        "model.coordinator_ff": cfg.model.coordinator_ff,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} ({value}) must be at least 1")
    for key in ("hmasd.n_team_skills", "hmasd.n_agent_skills"):
        if positive[key] > MAX_SKILLS:
            raise ConfigError(f"{key} ({positive[key]}) is above the bound of {MAX_SKILLS} skills: use a smaller count "
                              "(the paper uses 2 to 5)")
    h, ppo = cfg.hmasd, cfg.ppo
    for key, value in {"hmasd.high_entropy_coef": h.high_entropy_coef, "hmasd.low_entropy_coef": h.low_entropy_coef,
                       "hmasd.extrinsic_coef": h.extrinsic_coef,
                       "hmasd.team_discriminator_coef": h.team_discriminator_coef,
                       "hmasd.agent_discriminator_coef": h.agent_discriminator_coef,
                       "ppo.value_coef": ppo.value_coef, "ppo.weight_decay": ppo.weight_decay}.items():
        if value < 0:
            raise ConfigError(f"{key} ({value}) must be >= 0 (a negative weight turns the term it scales around)")
    if cfg.max_worker_restarts < 0:
        raise ConfigError(f"max_worker_restarts ({cfg.max_worker_restarts}) must be >= 0 (0: never restart a worker)")
    if cfg.run_name is not None and (not RUN_NAME.fullmatch(cfg.run_name) or ".." in cfg.run_name):
        raise ConfigError(f"run_name '{cfg.run_name}' must be one folder name (letters, digits, '.', '_', '+', '-'; "
                          "no '/' and no '..'): e.g. --set run_name=my_run")
    if cfg.num_workers is not None and cfg.num_workers < 1:
        raise ConfigError(f"num_workers ({cfg.num_workers}) must be at least 1, or null for one per CPU")
    if cfg.ppo.data_chunk_length is not None and cfg.ppo.data_chunk_length < 0:
        raise ConfigError(f"ppo.data_chunk_length ({cfg.ppo.data_chunk_length}) must be >= 0 (0 or null: whole rollouts)")
    if cfg.eval_interval < 0:
        raise ConfigError(f"eval_interval ({cfg.eval_interval}) must be >= 0 (0 disables evaluation)")
    if cfg.step_timeout_s <= 0:
        raise ConfigError(f"step_timeout_s ({cfg.step_timeout_s}) must be positive")
    if cfg.uses_skills and cfg.rollout_length % k:
        lo = max(k, cfg.rollout_length // k * k)
        raise ConfigError(
            f"rollout_length ({cfg.rollout_length}) must be a multiple of hmasd.skill_interval ({k}): "
            f"use {lo} or {lo + k}"
        )
    if cfg.model.hidden % cfg.model.coordinator_heads:
        raise ConfigError(
            f"model.hidden ({cfg.model.hidden}) must be divisible by model.coordinator_heads "
            f"({cfg.model.coordinator_heads})"
        )
    _validate_minibatches(cfg)
    unit = {"ppo.gamma": cfg.ppo.gamma, "ppo.gae_lambda": cfg.ppo.gae_lambda,
            "ppo.gamma_high": cfg.gamma_high, "ppo.gae_lambda_high": cfg.gae_lambda_high}
    for key, value in unit.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key} ({value}) must be in [0, 1]")
    for key, value in {"ppo.lr": cfg.ppo.lr, "ppo.lr_high": cfg.lr_high, "ppo.clip": cfg.ppo.clip,
                       "ppo.huber_delta": cfg.ppo.huber_delta, "ppo.max_grad_norm": cfg.ppo.max_grad_norm,
                       "ppo.adam_eps": cfg.ppo.adam_eps}.items():
        if value <= 0:
            raise ConfigError(f"{key} ({value}) must be positive")
    _validate_env_id(cfg.env.id)


def chunk_length(T: int, requested: int | None) -> int:
    """The data-chunk length actually used: the largest divisor of T not above the request
    (None or 0 = whole rollouts)."""
    if not requested or requested >= T:
        return T
    return max(d for d in range(1, requested + 1) if T % d == 0)


def _validate_minibatches(cfg: Config) -> None:
    """num_minibatches splits the smallest of the learner's sample sets: the discoverer's data chunks,
    the discriminators' steps and (with skills) the coordinator's segments, at least E x T/k of them."""
    T, E = cfg.rollout_length, cfg.num_envs
    sizes = {"discoverer data chunks": T // chunk_length(T, cfg.ppo.data_chunk_length) * E,
             "discriminator samples": T * E}
    if cfg.uses_skills:
        sizes["coordinator segments (at least)"] = T // cfg.hmasd.skill_interval * E
    what, smallest = min(sizes.items(), key=lambda kv: kv[1])
    if cfg.ppo.num_minibatches > smallest:
        raise ConfigError(f"ppo.num_minibatches ({cfg.ppo.num_minibatches}) is larger than the {smallest} {what} "
                          f"of one update: use at most {smallest}")


def config_warnings(cfg: Config) -> list[str]:
    """Settings that run, but probably not as meant; the trainer logs each once at start-up."""
    notes = []
    L = cfg.ppo.data_chunk_length
    if L and L < cfg.rollout_length and cfg.rollout_length % L:
        notes.append(f"ppo.data_chunk_length ({L}) does not divide rollout_length ({cfg.rollout_length}): "
                     f"chunks of {chunk_length(cfg.rollout_length, L)} steps are used")
    if cfg.total_env_steps < cfg.batch_size:
        notes.append(f"total_env_steps ({cfg.total_env_steps}) is below one batch ({cfg.batch_size} env steps): "
                     f"the run makes one update of {cfg.batch_size} steps")
    return notes


def _validate_env_id(env_id: str) -> None:
    from hmasd_envs import EnvError, validate_env_id

    try:
        validate_env_id(env_id)
    except EnvError as exc:
        raise ConfigError(f"env.id: {exc}") from None


# Keys older versions wrote into checkpoints and that no longer exist, applied when a checkpoint's
# embedded config is read so old checkpoints stay loadable (a user's YAML still gets the error):
# dotted key -> None (dropped) or (new dotted key, value converter).
CHECKPOINT_KEY_UPGRADES: dict[str, tuple[str, Any] | None] = {
    "device": None,
    "ppo.normalize_high_advantages": ("ppo.high_advantage_norm", lambda on: "always" if on else "off"),
}


def _pop_dotted(data: dict, dotted: str) -> tuple[bool, Any]:
    """Remove `a.b.c` from nested dicts -> (whether it was there, its value)."""
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or leaf not in node:
        return False, None
    return True, node.pop(leaf)


def upgrade_checkpoint_config(data: dict) -> dict:
    data = copy.deepcopy(data)
    for dotted, upgrade in CHECKPOINT_KEY_UPGRADES.items():
        found, value = _pop_dotted(data, dotted)
        if found and upgrade is not None:
            new_key, convert = upgrade
            _set_dotted(data, new_key, convert(value))
    return data


def dump_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (every run does; the checkpoint embeds the same dict)."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(resolved=True), sort_keys=False))
