"""The optional CUDA GAE kernel agrees with the NumPy oracle (runs only where it was built, with
HMASD_CUDA=1, and a CUDA device is present; the CPU build has no kernel to test)."""
import numpy as np
import pytest

import hmasd._core as core
from tests.test_buffer import random_rollout, run

pytestmark = pytest.mark.skipif(not core.cuda_available(),
                                reason="CUDA kernel not built (HMASD_CUDA=1) or no CUDA device")


@pytest.mark.parametrize("seed", [0, 1])
def test_cuda_low_level_gae_matches_the_reference(seed):
    shape, steps, fin = random_rollout(seed, T=64, E=8, A=3, k=5)
    ref = run("numpy", shape, steps, fin)
    stack = lambda key: np.ascontiguousarray(np.stack([s[key] for s in steps]))  # noqa: E731
    rewards, advantages, returns = core.low_level_gae_cuda(
        reward=stack("reward"), log_q_team=fin["log_q_team"], log_q_agent=fin["log_q_agent"],
        values=stack("values"), bootstrap_values=stack("bootstrap_values"), last_values=fin["last_values"],
        terminated=stack("terminated"), truncated=stack("truncated"), gamma=fin["gamma"],
        gae_lambda=fin["gae_lambda"], lambda_e=fin["lambda_e"], lambda_D=fin["lambda_D"], lambda_d=fin["lambda_d"])
    np.testing.assert_allclose(rewards, ref.rewards, atol=1e-6, rtol=0)
    np.testing.assert_allclose(advantages, ref.advantages, atol=1e-5, rtol=1e-6)
    np.testing.assert_allclose(returns, ref.returns, atol=1e-5, rtol=1e-6)

