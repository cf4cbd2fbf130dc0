"""The env backends are interchangeable: for one seed they give the same rollout and the same update,
the same error for an env that raises, and (in-process) snapshots that continue exactly.

Add a backend to BACKENDS and every check covers it."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hmasd.backends import make_vec_env
from hmasd.config import load_config
from hmasd.pipeline import build
from hmasd.records import EnvFailure, VecEnv
from hmasd.rollout_fields import STEP_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # "fixture_envs:..." ids import here and in workers

BACKENDS = ["subprocess", "local"]
if importlib.util.find_spec("ray") is not None or os.environ.get("HMASD_REQUIRE_EXTRAS") == "1":
    BACKENDS.append("ray")  # the optional extra [ray]; the test command installs it (and then requires it)
REFERENCE = BACKENDS[0]


@pytest.fixture(scope="module", autouse=True)
def _stop_ray():
    """A local Ray started by the ray backend (on 127.0.0.1) stops with this module."""
    yield
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()
FAULTY = "fixture_envs:make_faulty"


def _first_update(backend: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(the first rollout's stored fields, copied; the first update's stats) on `backend`."""
    cfg = load_config("configs/smoke.yaml")
    torch.manual_seed(cfg.seed)
    pipe = build(cfg, backend=backend)
    try:
        ro = pipe.collector.collect()
        fields = {f.name: np.array(getattr(ro, f.name)) for f in STEP_FIELDS}
        fields.update(next_obs=ro.next_obs, next_state=ro.next_state, starts=ro.starts)
        return fields, pipe.learner.update(ro)
    finally:
        pipe.close()


@pytest.fixture(scope="module")
def first_updates() -> dict[str, tuple[dict, dict]]:
    return {}


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != REFERENCE])
def test_first_update_losses_are_bit_identical_to_the_subprocess_backend(backend, first_updates):
    for name in (REFERENCE, backend):
        if name not in first_updates:
            first_updates[name] = _first_update(name)
    (ref_fields, ref_stats), (fields, stats) = first_updates[REFERENCE], first_updates[backend]
    for name, arr in ref_fields.items():
        np.testing.assert_array_equal(fields[name], arr, err_msg=name)
    losses = sorted(k for k in ref_stats if k.startswith("Losses/"))
    assert losses and losses == sorted(k for k in stats if k.startswith("Losses/"))
    for key in losses:
        assert stats[key] == ref_stats[key], (key, stats[key], ref_stats[key])


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_env_that_raises_in_step_is_an_env_failure(backend):
    # Env 3 (seed 3) raises at its second step.
    cfg = load_config("configs/smoke.yaml", [f"backend={backend}", f"env.id={FAULTY}", "num_workers=2"])
    kwargs = {"crash_at": 2, "target_seed": 3, "episode_length": 1000}
    vec = make_vec_env(cfg, seed=0, env_kwargs=kwargs)
    try:
        vec.reset()
        actions = np.zeros((cfg.num_envs, 2), np.int64)
        vec.step(actions)
        with pytest.raises(EnvFailure) as info:
            vec.step(actions)
        err = info.value
        assert 3 in err.envs and "during step" in err.summary
        assert "RuntimeError: fixture env crashed at step 2" in str(err)
        assert "fixture_envs.py" in err.worker_traceback
        with pytest.raises(EnvFailure):  # the envs are gone: the same report again, not a hang
            vec.step(actions)
    finally:
        vec.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_actions_of_the_wrong_shape_are_a_value_error(backend):
    cfg = load_config("configs/smoke.yaml", [f"backend={backend}"])
    vec = make_vec_env(cfg, seed=0, num_envs=2)
    try:
        assert isinstance(vec, VecEnv) and vec.num_envs == 2  # the protocol's members are all there
        vec.reset()
        with pytest.raises(ValueError, match=r"actions have shape \(2, 2\); this VecEnv expects \(2, 3\)"):
            vec.step(np.zeros((2, 2), np.int64))
    finally:
        vec.close()


def test_local_snapshots_continue_exactly():
    cfg = load_config("configs/smoke.yaml", ["backend=local"])
    vec = make_vec_env(cfg, seed=5)
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, vec.spec.n_actions, (cfg.num_envs, vec.spec.num_agents)) for _ in range(30)]
    try:
        vec.reset()
        for a in actions[:7]:
            vec.step(a)
        states = vec.get_env_states()
        first = [vec.step(a) for a in actions[7:]]
        vec.set_env_states(states)
        again = [vec.step(a) for a in actions[7:]]
    finally:
        vec.close()
    assert any(s.truncated.any() for s in first)  # the replay crosses an auto-reset (25-step episodes)
    for t, (a, b) in enumerate(zip(first, again)):
        for name in ("obs", "state", "alive", "reward", "terminated", "truncated", "final_obs", "final_state"):
            np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=f"step {t}: {name}")
        assert [(e.env_index, e.stats) for e in b.episodes] == [(e.env_index, e.stats) for e in a.episodes]
