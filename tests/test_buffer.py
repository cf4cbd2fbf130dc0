"""Rollout buffer: the C++ backend against the NumPy reference, a hand-computed case, and errors."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from hmasd import _core
from hmasd.buffer import BACKENDS, ReferenceRolloutBuffer, make_rollout_buffer

OUTPUTS = ("rewards", "advantages", "returns", "hl_rewards", "segment_lengths", "hl_dones",
           "hl_advantages", "hl_returns")
STORED = ("obs", "state", "actions", "log_probs", "values", "reward", "terminated", "truncated",
          "bootstrap_values", "alive", "team_skill", "agent_skill", "assign", "hl_log_probs",
          "hl_values", "hl_bootstrap_values")
COEFS = dict(gamma=0.99, gae_lambda=0.95, gamma_high=0.97, gae_lambda_high=0.9,
             lambda_e=100.0, lambda_D=0.1, lambda_d=0.5)


def random_rollout(seed: int, T: int, E: int, A: int, k: int, O: int = 5, S: int = 7, D: int = 2,
                   p_term: float = 0.05, p_trunc: float = 0.05,
                   ends: tuple[tuple[int, int, str], ...] = ()):
    """Random steps and finalize() arguments for a rollout with skill interval k.

    ``ends`` forces (step, env, "term" | "trunc" | "both") episode ends. Skills are assigned at
    t = 0, after every episode end and k steps after the previous assignment. Every value the
    buffer must ignore (bootstrap values where not truncated, high-level values and log-probs
    where not assigned) is NaN, so reading one would show up in the results.
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32
    H = A + 1
    term = rng.random((T, E)) < p_term
    trunc = rng.random((T, E)) < p_trunc
    for t, e, kind in ends:
        term[t, e] = kind in ("term", "both")
        trunc[t, e] = kind in ("trunc", "both")
    assign = np.zeros((T, E), bool)
    since = np.zeros(E, int)
    for t in range(T):
        assign[t] = (t == 0) | (since >= k)
        if t > 0:
            assign[t] |= term[t - 1] | trunc[t - 1]
        since = np.where(assign[t], 1, since + 1)

    steps = []
    for t in range(T):
        boot = rng.normal(size=(E, A)).astype(f32)
        boot[~trunc[t]] = np.nan
        hl_boot = rng.normal(size=(E, H)).astype(f32)
        hl_boot[~trunc[t]] = np.nan
        hl_values = rng.normal(size=(E, H)).astype(f32)
        hl_values[~assign[t]] = np.nan
        hl_log_probs = -rng.random((E, H), dtype=f32)
        hl_log_probs[~assign[t]] = np.nan
        steps.append(dict(
            obs=rng.normal(size=(E, A, O)).astype(f32),
            state=rng.normal(size=(E, S)).astype(f32),
            actions=rng.normal(size=(E, A, D)).astype(f32),
            log_probs=-rng.random((E, A), dtype=f32),
            values=rng.normal(size=(E, A)).astype(f32),
            reward=(rng.random(E) < 0.3).astype(f32) * rng.normal(size=E).astype(f32),
            terminated=term[t].astype(np.uint8),
            truncated=trunc[t].astype(np.uint8),
            bootstrap_values=boot,
            alive=(rng.random((E, A)) < 0.9).astype(np.uint8),
            team_skill=rng.integers(0, 3, E),
            agent_skill=rng.integers(0, 4, (E, A)),
            assign=assign[t].astype(np.uint8),
            hl_log_probs=hl_log_probs,
            hl_values=hl_values,
            hl_bootstrap_values=hl_boot,
        ))
    fin = dict(
        log_q_team=np.log(rng.uniform(0.05, 1.0, (T, E))).astype(f32),
        log_q_agent=np.log(rng.uniform(0.05, 1.0, (T, E, A))).astype(f32),
        last_values=rng.normal(size=(E, A)).astype(f32),
        last_hl_values=rng.normal(size=(E, H)).astype(f32),
        **COEFS,
    )
    shape = dict(T=T, E=E, A=A, obs_dim=O, state_dim=S, action_dim=D)
    return shape, steps, fin


def run(backend: str, shape: dict, steps: list[dict], fin: dict):
    buf = make_rollout_buffer(backend, **shape)
    for step in steps:
        buf.add(**step)
    buf.finalize(**fin)
    return buf


def outputs(buf) -> dict[str, np.ndarray]:
    return {name: np.array(getattr(buf, name)) for name in OUTPUTS}


def assert_agree(cpp, ref) -> None:
    for name in OUTPUTS:
        got, want = getattr(cpp, name), getattr(ref, name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.isfinite(got.astype(np.float64)).all(), f"{name} has non-finite entries"
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)


# --- C++ against the NumPy reference ---------------------------------------------------------

SCENARIOS = {
    "mixed": dict(T=32, E=8, A=3, k=5),
    "k=1": dict(T=16, E=4, A=2, k=1),
    "k>T": dict(T=12, E=6, A=3, k=50, p_term=0.1, p_trunc=0.1),
    "single env and agent": dict(T=20, E=1, A=1, k=4, p_term=0.1, p_trunc=0.1),
    "ends at first and last step": dict(
        T=24, E=5, A=3, k=6, p_term=0.0, p_trunc=0.0,
        ends=((0, 0, "term"), (0, 1, "trunc"), (0, 4, "both"),
              (23, 2, "term"), (23, 3, "trunc"), (23, 4, "both"), (10, 0, "trunc"), (11, 0, "term"))),
    "long, frequent ends": dict(T=200, E=7, A=4, k=9, p_term=0.08, p_trunc=0.08),
}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cpp_agrees_with_reference(scenario: str, seed: int) -> None:
    shape, steps, fin = random_rollout(seed, **SCENARIOS[scenario])
    assert_agree(run("cpp", shape, steps, fin), run("numpy", shape, steps, fin))


def test_scenarios_cover_every_kind_of_segment_end() -> None:
    """The random rollouts really contain segments cut by k, by episode ends and by the rollout end."""
    shape, steps, fin = random_rollout(0, **SCENARIOS["mixed"])
    buf = run("cpp", shape, steps, fin)
    T, k = shape["T"], SCENARIOS["mixed"]["k"]
    starts = np.argwhere(buf.assign.astype(bool))
    ends = starts[:, 0] + buf.segment_lengths[starts[:, 0], starts[:, 1]] - 1
    ended = (buf.terminated | buf.truncated).astype(bool)[ends, starts[:, 1]]
    lengths = buf.segment_lengths[starts[:, 0], starts[:, 1]]
    assert ((lengths == k) & ~ended & (ends < T - 1)).any(), "no segment cut by k"
    assert buf.hl_dones.any(), "no segment cut by termination"
    assert (buf.truncated.astype(bool)[ends, starts[:, 1]] & ~buf.terminated.astype(bool)[ends, starts[:, 1]]).any()
    assert (ends == T - 1).any(), "no segment cut by the rollout end"
    # Segments tile each env's rollout exactly.
    assert (buf.segment_lengths.sum(axis=0) == T).all()


def test_terminated_wins_over_truncated() -> None:
    shape, steps, fin = random_rollout(3, T=10, E=2, A=2, k=3, p_term=0.0, p_trunc=0.0,
                                       ends=((4, 0, "term"), (4, 1, "term")))
    both = [dict(s) for s in steps]
    both[4] = dict(both[4], truncated=np.ones(2, np.uint8),
                   bootstrap_values=np.full((2, 2), 123.0, np.float32),
                   hl_bootstrap_values=np.full((2, 3), 123.0, np.float32))
    for backend in BACKENDS:
        assert_agree(run(backend, shape, both, fin), run(backend, shape, steps, fin))


# --- a case computed by hand -------------------------------------------------------------------

def hand_case():
    """T=6, one env, one agent (two high-level heads), every number exact in float32.

    Episode: terminated at t=1, truncated at t=4. Segments: [0,1] (ends by termination),
    [2,3] (cut by k=2, continues), [4] (ends by truncation), [5] (cut by the rollout end).
    """
    nan = np.nan
    f = lambda *x: np.array(x, np.float32)  # noqa: E731
    reward = f(1, 0, 2, 0, 4, 2)
    values = f(1, 2, 1, 0, 2, 1)
    boot = f(nan, nan, nan, nan, 2, nan)
    terminated = [0, 1, 0, 0, 0, 0]
    truncated = [0, 0, 0, 0, 1, 0]
    assign = [1, 0, 1, 0, 1, 1]
    hl_values = [f(1, 2), f(nan, nan), f(2, 0), f(nan, nan), f(1, 1), f(0, 2)]
    hl_boot = [f(nan, nan)] * 4 + [f(3, 1), f(nan, nan)]
    steps = [dict(
        obs=np.zeros((1, 1, 1), np.float32), state=np.zeros((1, 1), np.float32),
        actions=np.zeros((1, 1, 1), np.float32), log_probs=np.zeros((1, 1), np.float32),
        values=values[t].reshape(1, 1), reward=reward[t].reshape(1),
        terminated=np.array([terminated[t]], np.uint8), truncated=np.array([truncated[t]], np.uint8),
        bootstrap_values=boot[t].reshape(1, 1), alive=np.ones((1, 1), np.uint8),
        team_skill=np.zeros(1, np.int64), agent_skill=np.zeros((1, 1), np.int64),
        assign=np.array([assign[t]], np.uint8), hl_log_probs=np.zeros((1, 2), np.float32),
        hl_values=hl_values[t].reshape(1, 2), hl_bootstrap_values=hl_boot[t].reshape(1, 2),
    ) for t in range(6)]
    fin = dict(
        log_q_team=f(-2, 0, -2, 0, -4, 0).reshape(6, 1),
        log_q_agent=f(0, -4, 0, -4, 0, -8).reshape(6, 1, 1),
        last_values=f(4).reshape(1, 1), last_hl_values=f(2, 4).reshape(1, 2),
        gamma=0.5, gae_lambda=0.5, gamma_high=0.5, gae_lambda_high=0.5,
        lambda_e=1.0, lambda_D=0.5, lambda_d=0.25,
    )
    return dict(T=6, E=1, A=1, obs_dim=1, state_dim=1, action_dim=1), steps, fin


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_case(backend: str) -> None:
    buf = run(backend, *hand_case())
    # Eq. 4: r + 0.5 * log q_D + 0.25 * log q_d
    np.testing.assert_array_equal(buf.rewards[:, 0, 0], [0, -1, 1, -1, 2, 0])
    # Low level, gamma = lambda = 0.5, backwards:
    #   t5: delta = 0 + .5*4 (last) - 1 = 1                    gae = 1
    #   t4: truncated, delta = 2 + .5*2 (bootstrap) - 2 = 1    gae = 1 (chain cut)
    #   t3: delta = -1 + .5*2 - 0 = 0                          gae = 0 + .25*1 = .25
    #   t2: delta = 1 + .5*0 - 1 = 0                           gae = .25*.25 = .0625
    #   t1: terminated, delta = -1 + 0 - 2 = -3                gae = -3
    #   t0: delta = 0 + .5*2 - 1 = 0                           gae = .25*-3 = -.75
    np.testing.assert_array_equal(buf.advantages[:, 0, 0], [-0.75, -3, 0.0625, 0.25, 1, 1])
    np.testing.assert_array_equal(buf.returns[:, 0, 0], [0.25, -1, 1.0625, 0.25, 3, 2])
    # High level, segments [0,1] [2,3] [4] [5]; gamma_high = lambda_high = 0.5:
    #   [5]: rollout end, delta = 2 + .5*(2, 4) - (0, 2) = (3, 2)
    #   [4]: truncated, delta = 4 + .5*(3, 1) - (1, 1) = (4.5, 3.5), chain cut
    #   [2,3]: r_h = 2, delta = 2 + .5*(1, 1) - (2, 0) = (.5, 2.5); gae = delta + .25*(4.5, 3.5)
    #   [0,1]: terminated, r_h = 1, delta = 1 - (1, 2) = (0, -1)
    np.testing.assert_array_equal(buf.hl_rewards[:, 0], [1, 0, 2, 0, 4, 2])
    np.testing.assert_array_equal(buf.segment_lengths[:, 0], [2, 0, 2, 0, 1, 1])
    np.testing.assert_array_equal(buf.hl_dones[:, 0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        buf.hl_advantages[:, 0], [[0, -1], [0, 0], [1.625, 3.375], [0, 0], [4.5, 3.5], [3, 2]])
    np.testing.assert_array_equal(
        buf.hl_returns[:, 0], [[1, 1], [0, 0], [3.625, 3.375], [0, 0], [5.5, 4.5], [3, 4]])


# --- storage, views, reset -------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_stored_arrays_read_back(backend: str) -> None:
    shape, steps, fin = random_rollout(1, T=6, E=3, A=2, k=2)
    buf = make_rollout_buffer(backend, **shape)
    assert (buf.capacity, buf.num_envs, buf.num_agents, buf.size) == (6, 3, 2, 0)
    for step in steps:
        buf.add(**step)
    assert buf.size == 6 and not buf.finalized
    for name in STORED:
        view = getattr(buf, name)
        np.testing.assert_array_equal(view, np.stack([s[name] for s in steps]), err_msg=name)
        assert not view.flags.writeable, name
    # Views stay valid after the buffer object is dropped.
    obs = buf.obs
    del buf
    gc.collect()
    np.testing.assert_array_equal(obs, np.stack([s["obs"] for s in steps]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_makes_buffer_reusable(backend: str) -> None:
    shape, steps_a, fin_a = random_rollout(5, T=20, E=4, A=3, k=4)
    _, steps_b, fin_b = random_rollout(6, T=20, E=4, A=3, k=3)
    buf = make_rollout_buffer(backend, **shape)
    first = None
    for steps, fin in ((steps_a, fin_a), (steps_b, fin_b), (steps_a, fin_a)):
        buf.reset()
        assert buf.size == 0 and not buf.finalized
        with pytest.raises(RuntimeError, match="only after finalize"):
            _ = buf.advantages
        for step in steps:
            buf.add(**step)
        buf.finalize(**fin)
        if first is None:
            first = outputs(buf)
    again = outputs(buf)
    for name in OUTPUTS:
        np.testing.assert_array_equal(again[name], first[name], err_msg=name)


# --- errors ------------------------------------------------------------------------------------

def both_raise(exc: type[Exception], action) -> str:
    """Run ``action(backend)`` on both backends; both must raise ``exc`` with the same message."""
    messages = []
    for backend in BACKENDS:
        with pytest.raises(exc) as info:
            action(backend)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    return messages[0]


def add_with(backend: str, **override):
    shape, steps, fin = random_rollout(0, T=4, E=3, A=2, k=2)
    buf = make_rollout_buffer(backend, **shape)
    buf.add(**{**steps[0], **override})
    return buf


@pytest.mark.parametrize("name, bad, expected", [
    ("obs", np.zeros((3, 2, 5), np.float64), "obs must have dtype float32, got float64"),
    ("terminated", np.zeros(3, bool), "terminated must have dtype uint8, got bool"),
    ("team_skill", np.zeros(3, np.int32), "team_skill must have dtype int64, got int32"),
    ("reward", np.zeros(3, ">f4"), "reward must have dtype float32, got >f4"),
    ("values", [[0.0] * 2] * 3, "values must be a numpy.ndarray of dtype float32, got list"),
    ("assign", None, "assign must be a numpy.ndarray of dtype uint8, got NoneType"),
])
def test_wrong_dtype_is_refused(name: str, bad, expected: str) -> None:
    message = both_raise(TypeError, lambda b: add_with(b, **{name: bad}))
    assert message.startswith(expected)


def test_wrong_shape_is_refused() -> None:
    message = both_raise(ValueError, lambda b: add_with(b, values=np.zeros((3, 3), np.float32)))
    assert message == "values must have shape (3, 2) [E, A], got (3, 3)"
    message = both_raise(ValueError, lambda b: add_with(b, reward=np.zeros((3, 1), np.float32)))
    assert message == "reward must have shape (3,) [E], got (3, 1)"


def test_non_contiguous_is_refused() -> None:
    strided = np.zeros((3, 2, 10), np.float32)[:, :, ::2]
    message = both_raise(ValueError, lambda b: add_with(b, obs=strided))
    assert "obs must be C-contiguous" in message
    fortran = np.asfortranarray(np.zeros((3, 7), np.float32))
    assert "state must be C-contiguous" in both_raise(ValueError, lambda b: add_with(b, state=fortran))


def test_unaligned_is_refused() -> None:
    unaligned = np.frombuffer(bytearray(13), dtype=np.float32, offset=1, count=3)
    message = both_raise(ValueError, lambda b: add_with(b, reward=unaligned))
    assert message == "reward must be aligned for its dtype"


def test_refused_add_does_not_advance() -> None:
    for backend in BACKENDS:
        buf = add_with(backend)
        with pytest.raises(TypeError):
            buf.add(**{**random_rollout(0, T=4, E=3, A=2, k=2)[1][1],
                       "hl_values": np.zeros((3, 3), np.float64)})
        assert buf.size == 1


def test_add_past_capacity() -> None:
    def action(backend):
        shape, steps, fin = random_rollout(0, T=3, E=2, A=2, k=2)
        buf = make_rollout_buffer(backend, **shape)
        for step in steps:
            buf.add(**step)
        buf.add(**steps[0])
    message = both_raise(RuntimeError, action)
    assert message == "rollout buffer is full (3/3 steps): call reset() before add()"


def test_finalize_needs_full_buffer() -> None:
    def action(backend):
        shape, steps, fin = random_rollout(0, T=32, E=2, A=2, k=4)
        buf = make_rollout_buffer(backend, **shape)
        for step in steps[:17]:
            buf.add(**step)
        buf.finalize(**fin)
    assert both_raise(RuntimeError, action) == "finalize needs a full buffer: 17/32 steps"


def test_finalize_checks_its_arrays() -> None:
    def action(backend, **override):
        shape, steps, fin = random_rollout(0, T=4, E=2, A=2, k=2)
        buf = make_rollout_buffer(backend, **shape)
        for step in steps:
            buf.add(**step)
        buf.finalize(**{**fin, **override})
    message = both_raise(ValueError, lambda b: action(b, log_q_agent=np.zeros((4, 2, 3), np.float32)))
    assert message == "log_q_agent must have shape (4, 2, 2) [T, E, A], got (4, 2, 3)"
    message = both_raise(TypeError, lambda b: action(b, last_hl_values=np.zeros((2, 3), np.float64)))
    assert message.startswith("last_hl_values must have dtype float32")


def finalize_with_assign(backend: str, t: int, e: int):
    shape, steps, fin = random_rollout(0, T=8, E=3, A=2, k=3, p_term=0.0, p_trunc=0.0,
                                       ends=((2, 0, "trunc"), (4, 2, "term")))
    steps[t] = dict(steps[t], assign=steps[t]["assign"].copy())
    steps[t]["assign"][e] = 0
    buf = make_rollout_buffer(backend, **shape)
    for step in steps:
        buf.add(**step)
    try:
        buf.finalize(**fin)
    finally:
        # A refused finalize leaves nothing readable.
        assert not buf.finalized
        with pytest.raises(RuntimeError):
            _ = buf.hl_advantages


def test_missing_assign_at_rollout_start() -> None:
    message = both_raise(ValueError, lambda b: finalize_with_assign(b, 0, 1))
    assert "env 1 has assign=0 at step 0" in message


@pytest.mark.parametrize("t, e, ended", [(3, 0, 2), (5, 2, 4)])
def test_missing_assign_after_episode_end(t: int, e: int, ended: int) -> None:
    message = both_raise(ValueError, lambda b: finalize_with_assign(b, t, e))
    assert f"env {e} ended at step {ended} and has assign=0 at step {t}" in message


def test_bad_construction() -> None:
    for backend in BACKENDS:
        with pytest.raises(ValueError, match="E \\(num_envs\\) must be positive, got 0"):
            make_rollout_buffer(backend, T=4, E=0, A=1, obs_dim=1, state_dim=1, action_dim=1)
    with pytest.raises(ValueError, match="unknown rollout buffer backend 'cuda'"):
        make_rollout_buffer("cuda", T=4, E=1, A=1, obs_dim=1, state_dim=1, action_dim=1)


def test_factory_returns_each_backend() -> None:
    shape = dict(T=4, E=2, A=3, obs_dim=5, state_dim=6, action_dim=1)
    assert isinstance(make_rollout_buffer(**shape), _core.RolloutBuffer)
    assert isinstance(make_rollout_buffer("numpy", **shape), ReferenceRolloutBuffer)


def masked_rollout(seed: int = 3, M: int = 4):
    """random_rollout with a random action mask [E, A, M] at every step."""
    shape, steps, fin = random_rollout(seed, T=6, E=3, A=2, k=2)
    rng = np.random.default_rng(seed + 100)
    for step in steps:
        step["action_mask"] = (rng.random((3, 2, M)) < 0.6).astype(np.uint8)
    return {**shape, "mask_dim": M}, steps, fin


def test_both_backends_store_the_action_masks_alike() -> None:
    shape, steps, fin = masked_rollout()
    cpp, ref = run("cpp", shape, steps, fin), run("numpy", shape, steps, fin)
    assert cpp.mask_dim == ref.mask_dim == 4
    want = np.stack([s["action_mask"] for s in steps])  # [T, E, A, M]
    np.testing.assert_array_equal(np.asarray(cpp.action_mask), want)
    np.testing.assert_array_equal(np.asarray(ref.action_mask), want)
    assert_agree(cpp, ref)  # a mask changes no output of finalize
    unmasked = make_rollout_buffer("cpp", **{k: v for k, v in shape.items() if k != "mask_dim"})
    assert unmasked.mask_dim == 0 and np.asarray(unmasked.action_mask).shape == (6, 3, 2, 0)


@pytest.mark.parametrize("bad, exc, expected", [
    (np.ones((3, 2, 4), bool), TypeError, "action_mask must have dtype uint8, got bool"),
    (np.ones((3, 2, 5), np.uint8), ValueError, "action_mask must have shape (3, 2, 4) [E, A, M], got (3, 2, 5)"),
    (None, TypeError, "action_mask must be a numpy.ndarray of dtype uint8, got NoneType"),
])
def test_a_wrong_action_mask_is_refused(bad, exc, expected) -> None:
    shape, steps, _ = masked_rollout()

    def add(backend):
        make_rollout_buffer(backend, **shape).add(**{**steps[0], "action_mask": bad})

    assert both_raise(exc, add).startswith(expected)


def test_an_action_mask_for_a_buffer_without_masks_is_refused() -> None:
    mask = np.ones((3, 2, 4), np.uint8)
    message = both_raise(ValueError, lambda b: add_with(b, action_mask=mask))
    assert message == "action_mask given, but this buffer stores no masks (mask_dim=0)"
