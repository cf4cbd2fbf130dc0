"""Action masks from the env to the PPO ratio, in this process (the CLI tests drive the same through
worker subprocesses): the actions drawn respect the masks, the buffer keeps the masks they were drawn
under, and the update applies the same masks, so that before any step its log-probs are the collected
ones. Also the adapter's one-line error for an all-zero mask, and agents that leave mid-episode."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hmasd.config import load_config
from hmasd.pipeline import build
from hmasd_envs import EnvError, make_env

sys.path.insert(0, str(Path(__file__).resolve().parent))  # "fixture_envs:..." ids import from here

MASKED = "fixture_envs:make_masked"


def _collect(algo: str, convention: str):
    cfg = load_config("configs/smoke.yaml", [f"algo={algo}", f"env.id={MASKED}", "ppo.num_minibatches=1"])
    torch.manual_seed(0)
    p = build(cfg, backend="local", env_kwargs={"convention": convention, "leaves_at": 3})
    return cfg, p.agent, p.collector.collect(), p.learner, p.vec


@pytest.mark.parametrize("algo, convention", [("hmasd", "obs"), ("hmasd", "info"), ("mappo", "obs")])
def test_the_update_uses_the_masks_the_actions_were_drawn_under(algo, convention):
    cfg, agent, ro, learner, vec = _collect(algo, convention)
    buf = ro.buffer
    mask = np.asarray(buf.action_mask).astype(bool)  # [T, E, A, M]
    alive = np.asarray(buf.alive).astype(bool)  # [T, E, A]
    actions = np.asarray(buf.actions)[..., 0].astype(np.int64)  # [T, E, A]
    assert mask.shape[-1] == 5 and not mask[..., 0, 3:].any()  # agent_0 has 3 actions: 3, 4 are padding
    assert np.take_along_axis(mask, actions[..., None], -1)[..., 0][alive].all()
    # the last agent leaves at step 3 of each 6-step episode: absent rows are in the data, marked dead
    assert not alive[..., 1].all() and alive[..., 0].all()

    learner.finalize(ro)
    b = learner.discoverer_batch(ro)
    seq = torch.arange(b["sequences"])
    with torch.no_grad():
        log_probs, _, _, cols = learner.discoverer_forward(b, seq)
        keep = b["mask"][:, cols]
        torch.testing.assert_close(log_probs[keep], b["old_log_probs"][:, cols][keep])  # ratio 1 before a step
        # the same forward without the masks gives other log-probs: the check above can fail
        b["action_mask"] = None
        unmasked, _, _, _ = learner.discoverer_forward(b, seq)
    assert not torch.allclose(unmasked[keep], log_probs[keep])
    learner.close()
    vec.close()


def test_an_all_zero_mask_of_a_live_agent_names_the_agent_and_the_step():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = make_env(MASKED, convention="info", all_zero_at=2)
    env.reset(seed=0)

    def first_allowed():
        return np.array([np.flatnonzero(row)[0] for row in env.action_mask])

    env.step(first_allowed())
    with pytest.raises(EnvError) as err:
        env.step(first_allowed())
    message = str(err.value)
    assert "agent 'agent_0'" in message and "all-zero action mask at step 2" in message and "\n" not in message


def test_mask_in_obs_feeds_the_dict_mask_to_the_networks():
    assert make_env(MASKED).spec.obs_dim == 2
    spec = make_env(MASKED, mask_in_obs=True).spec
    assert spec.obs_dim == 2 + 5 + 2  # 2 values and a mask of 3 or 5, padded to 7, plus the agent-id one-hot
