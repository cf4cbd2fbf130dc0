"""Which VecEnv backend steps the envs, chosen by the config key `backend`.

    subprocess  hmasd.orchestrator.SubprocessVecEnv: `num_workers` worker processes (the default for training)
    local       hmasd.local_vec.LocalVecEnv: in this process (debugging, rendering, short evaluations)
    ray         hmasd.ray_vec.RayVecEnv: Ray actors, on this machine or the cluster at `ray_address`

All three implement the VecEnv protocol of hmasd/records.py with the same seeding, so for one seed they
give the same episodes (tests/test_backends.py holds subprocess and local to bit-identical updates).
"""
from __future__ import annotations

from hmasd.config import BACKENDS, Config, ConfigError
from hmasd.records import VecEnv


def make_vec_env(cfg: Config, *, seed: int, num_envs: int | None = None, env_kwargs: dict | None = None) -> VecEnv:
    """The envs of `cfg.env` on `cfg.backend`; env i is seeded with seed + i at the first reset.

    `num_envs` defaults to cfg.num_envs, `env_kwargs` to cfg.env.kwargs (evaluation adds render_mode).
    Raises ConfigError for an unknown backend, hmasd_envs.EnvError for a bad env id or arguments, and
    EnvFailure when the envs fail to start.
    """
    num_envs = cfg.num_envs if num_envs is None else num_envs
    env_kwargs = dict(cfg.env.kwargs if env_kwargs is None else env_kwargs)
    mask_in_obs = cfg.env.action_mask_in_obs
    if cfg.backend == "subprocess":
        from hmasd.orchestrator import SubprocessVecEnv

        return SubprocessVecEnv(cfg.env.id, env_kwargs, num_envs=num_envs, num_workers=cfg.num_workers, seed=seed,
                                step_timeout_s=cfg.step_timeout_s, mask_in_obs=mask_in_obs)
    if cfg.backend == "local":
        from hmasd.local_vec import LocalVecEnv

        return LocalVecEnv(cfg.env.id, env_kwargs, num_envs=num_envs, seed=seed, mask_in_obs=mask_in_obs)
    if cfg.backend == "ray":
        from hmasd.ray_vec import RayVecEnv  # imported here: Ray is an optional extra

        return RayVecEnv(cfg.env.id, env_kwargs, num_envs=num_envs, num_workers=cfg.num_workers, seed=seed,
                         step_timeout_s=cfg.step_timeout_s, mask_in_obs=mask_in_obs, address=cfg.ray_address)
    raise ConfigError(f"backend '{cfg.backend}' is unknown: use one of {', '.join(BACKENDS)}")
