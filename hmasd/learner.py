"""One synchronous update of HMASD (paper Algorithm 1, lines after the rollout).

Order: intrinsic rewards from the discriminators as they were during the rollout (Eq. 4) -> finalize
in the buffer (reward mixing, k-step high-level rewards, GAE for both levels) -> discriminators
(Eq. 8) -> coordinator (Eq. 6) -> discoverer (Eq. 7). Each part runs `ppo.epochs` epochs over
`ppo.num_minibatches` minibatches with its own Adam optimiser and gradient-norm clip.
Shapes: T steps, E envs, A agents, N = number of high-level segments.
"""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch
from torch import nn

from hmasd.agent import HMASDAgent
from hmasd.rollout import Rollout
from hmasd.config import Config, chunk_length
from hmasd.device import sync_acting_copy
from hmasd.losses import clipped_value_loss, discriminator_loss, entropy_loss, ppo_policy_loss


def _tensor(arr) -> torch.Tensor:
    """A torch copy of a buffer array (the buffer hands out read-only views it will overwrite)."""
    return torch.from_numpy(np.array(arr))


def _adam(params, cfg: Config, lr: float) -> torch.optim.Adam:
    # foreach: one fused kernel per step instead of a Python loop over every parameter tensor.
    return torch.optim.Adam(params, lr=lr, eps=cfg.ppo.adam_eps, weight_decay=cfg.ppo.weight_decay,
                            foreach=True)


def _normalize(adv: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    sel = adv if mask is None else adv[mask.bool()]
    return (adv - sel.mean()) / (sel.std() + 1e-8) if sel.numel() > 1 else adv


def coordinator_advantages(advantages: torch.Tensor, rewards: torch.Tensor, mode: str) -> tuple[torch.Tensor, bool]:
    """Scale the coordinator's advantages per `ppo.high_advantage_norm` (config.py says why).

    "rewarded" normalises only when some segment of the rollout earned a non-zero r^h: then the batch
    holds a learning signal to scale up; otherwise it holds only value noise, which must stay small.
    """
    normalised = mode == "always" or (mode == "rewarded" and bool((rewards != 0).any()))
    return (_normalize(advantages, None) if normalised else advantages), normalised


def explained_variance(pred: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - pred] / Var[target]: 1 is perfect, 0 is no better than the mean."""
    var = float(np.var(target))
    return float("nan") if var == 0 else 1.0 - float(np.var(target - pred)) / var


def _usage_entropy(choices: torch.Tensor, n: int) -> float:
    """Entropy (nats) of how often each of the n skills was chosen: log n = all used evenly."""
    p = torch.bincount(choices, minlength=n).float()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def _minibatches(n: int, count: int, generator: torch.Generator) -> list[torch.Tensor]:
    if count <= 1:
        return [torch.arange(n)]
    return list(torch.randperm(n, generator=generator).chunk(count))


def _whole(idx: torch.Tensor, n: int) -> bool:
    """Whether the minibatch `idx` is all n rows in order (one minibatch, as the paper's Overcooked
    settings use): then the learner uses its tensors as they are instead of gathering a copy of each
    (on Overcooked's 1,170-wide grid a copy of the batch every epoch)."""
    return len(idx) == n and bool((idx == torch.arange(n, device=idx.device)).all())


class Learner:
    """Updates the agent on `device`. `acting` is the agent the collector and evaluation act with, on
    the CPU (hmasd/device.py says why). On the CPU the learner updates that very agent; on another
    device it updates its own copy there (`agent`) and syncs `acting` from it after each update."""

    def __init__(self, agent: HMASDAgent, cfg: Config, device: torch.device | str = "cpu") -> None:
        self.cfg, self.device, self.acting = cfg, torch.device(device), agent
        self.agent = agent if self.device.type == "cpu" else copy.deepcopy(agent).to(self.device)
        agent = self.agent  # the optimisers step the copy that learns, never the acting copy
        # Polled between epochs, so a stop request (Ctrl-C, SIGTERM) is honoured within one epoch even
        # during a long update; the update then ends early and counts as done.
        self.stop_requested: Callable[[], bool] = lambda: False
        # Each part's learning rate before the schedule's scale (set_learning_rate).
        self.base_lrs = {"discoverer": cfg.ppo.lr, "coordinator": cfg.lr_high, "discriminator": cfg.ppo.lr}
        self.discoverer_optim = _adam(list(agent.actor.parameters()) + list(agent.critic.parameters()), cfg,
                                     self.base_lrs["discoverer"])
        self.coordinator_optim = self.discriminator_optim = None
        if agent.uses_skills:
            self.coordinator_optim = _adam(agent.coordinator.parameters(), cfg, self.base_lrs["coordinator"])
            disc_params = list(agent.team_discriminator.parameters()) + list(agent.agent_discriminator.parameters())
            self.discriminator_optim = _adam(disc_params, cfg, self.base_lrs["discriminator"])
        # One generator per part: the parts may update concurrently and must stay deterministic. CPU
        # generators on every device, so a run draws the same minibatches wherever it learns.
        self.generators = {name: torch.Generator().manual_seed(cfg.seed + i)
                           for i, name in enumerate(("discoverer", "coordinator", "discriminator"))}
        # The coordinator (+ discriminators) and the discoverer share no parameters and read the same
        # finalized rollout, so their updates can run on two threads with the same result as in
        # sequence; torch ops release the GIL, and during the update the env workers are idle.
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="hmasd-high") if cfg.parallel_update else None

    def sync_acting(self) -> None:
        """Bring the acting copy up to the learner's agent (weights, normalisers, policy version); a
        no-op on the CPU, where they are one agent."""
        if self.agent is not self.acting:
            sync_acting_copy(self.agent, self.acting)

    def _t(self, arr) -> torch.Tensor:
        """A buffer array as a tensor on the learner's device (a copy: the buffer reuses its arrays)."""
        return _tensor(arr).to(self.device)

    def _whole_every_epoch(self) -> bool:
        """Whether every epoch's single minibatch is the whole batch in order (`_minibatches` with one
        minibatch): then inputs built once per update are never gathered, and may stay sparse."""
        return self.cfg.ppo.num_minibatches <= 1

    def _minibatches(self, n: int, count: int, part: str) -> list[torch.Tensor]:
        """Drawn on the part's CPU generator (deterministic on every device), then moved."""
        return [idx.to(self.device) for idx in _minibatches(n, count, self.generators[part])]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        named = {"discoverer": self.discoverer_optim, "coordinator": self.coordinator_optim,
                 "discriminator": self.discriminator_optim}
        return {k: v for k, v in named.items() if v is not None}

    def set_learning_rate(self, env_steps: int) -> float:
        """Sets the learning rate of every optimiser for the coming update; returns the scale applied.

        `ppo.lr_schedule = linear` decays the rates to 0 at total_env_steps (MAPPO's linear decay), so
        late updates refine instead of jumping. It is computed from the env-step counter, so a resumed
        run continues the same schedule (the rate stored in an optimiser's checkpoint is overwritten).
        """
        scale = 1.0
        if self.cfg.ppo.lr_schedule == "linear":
            scale = max(0.0, 1.0 - env_steps / self.cfg.total_env_steps)
        for name, optim in self.optimizers().items():
            for group in optim.param_groups:
                group["lr"] = self.base_lrs[name] * scale
        return scale

    # -- rewards and returns ----------------------------------------------------------------------
    @torch.no_grad()
    def intrinsic_log_probs(self, ro: Rollout) -> tuple[np.ndarray, np.ndarray]:
        """log q_D(Z | s_{t+1}) [T, E] and log q_d(z^i | o^i_{t+1}, Z) [T, E, A] in one batched pass.

        The discriminators do not change inside a rollout, so this equals evaluating them per step.
        """
        T, E, A = ro.team_skill.shape[0], ro.team_skill.shape[1], ro.agent_skill.shape[2]
        if not self.agent.uses_skills:
            return np.zeros((T, E), np.float32), np.zeros((T, E, A), np.float32)
        team = self._t(ro.team_skill)
        agents = self._t(ro.agent_skill)
        team_lp = torch.log_softmax(self.agent.team_discriminator(self._t(ro.next_state)), -1)
        team_lp = team_lp.gather(-1, team[..., None])[..., 0]
        team_rep = team[:, :, None].expand(T, E, A)  # [T, E] -> [T, E, A]
        agent_lp = torch.log_softmax(self.agent.agent_discriminator(self._t(ro.next_obs), team_rep), -1)
        agent_lp = agent_lp.gather(-1, agents[..., None])[..., 0]
        return team_lp.cpu().numpy().astype(np.float32), agent_lp.cpu().numpy().astype(np.float32)

    def finalize(self, ro: Rollout) -> dict[str, float]:
        cfg, h = self.cfg, self.cfg.hmasd
        log_q_team, log_q_agent = self.intrinsic_log_probs(ro)
        skills = self.agent.uses_skills
        ro.finalize(
            log_q_team=log_q_team, log_q_agent=log_q_agent, last_values=ro.last_values,
            last_hl_values=ro.last_hl_values, gamma=cfg.ppo.gamma, gae_lambda=cfg.ppo.gae_lambda,
            gamma_high=cfg.gamma_high, gae_lambda_high=cfg.gae_lambda_high,
            lambda_e=h.extrinsic_coef if skills else 1.0,
            lambda_D=h.team_discriminator_coef if skills else 0.0,
            lambda_d=h.agent_discriminator_coef if skills else 0.0,
        )
        stats = {}
        if skills:
            assign = np.asarray(ro.assign).astype(bool)
            stats["Rewards/Intrinsic/Team_Mean"] = float(h.team_discriminator_coef * log_q_team.mean())
            stats["Rewards/Intrinsic/Individual_Mean"] = float(h.agent_discriminator_coef * log_q_agent.mean())
            stats["Rewards/HighLevel/K_Step_Accumulated_Mean"] = float(np.asarray(ro.hl_rewards)[assign].mean())
            stats["Rewards/HighLevel/SegmentLength_Mean"] = float(np.asarray(ro.segment_lengths)[assign].mean())
        stats["Rewards/LowLevel/Mixed_Mean"] = float(np.asarray(ro.rewards).mean())
        return stats

    # -- the three updates ------------------------------------------------------------------------
    def update(self, ro: Rollout) -> dict[str, float]:
        """Finalize and update every part; returns the metrics under their TensorBoard tags.

        Raises RuntimeError if any sample was collected under another policy version than the
        current one (strictly on-policy: no sample crosses a version).
        """
        version = int(self.agent.policy_version)
        if ro.versions is None or not (ro.versions == version).all():
            raise RuntimeError(f"rollout mixes policy versions {np.unique(ro.versions)} (current {version})")
        stats = self.finalize(ro)
        high = None
        if self.agent.uses_skills:
            if self.pool is not None:
                high = self.pool.submit(self._update_high_level, ro)
            else:
                stats.update(self._update_high_level(ro))
        stats.update(self.update_discoverer(ro))
        if high is not None:
            stats.update(high.result())
        # After the learning, not before: the batch was collected under the old statistics.
        self.agent.update_input_stats(ro.obs, ro.state, ro.alive)
        self.agent.policy_version += 1
        self.sync_acting()
        return stats

    def _update_high_level(self, ro: Rollout) -> dict[str, float]:
        stats = self.update_discriminators(ro)
        stats.update(self.update_coordinator(ro))
        return stats

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def _step(self, optim: torch.optim.Optimizer, loss: torch.Tensor, groups: list[list[nn.Parameter]]) -> float:
        optim.zero_grad(set_to_none=True)
        loss.backward()
        norm = 0.0
        for params in groups:  # actor and critic are clipped separately, as MAPPO does
            norm += float(nn.utils.clip_grad_norm_(params, self.cfg.ppo.max_grad_norm))
        optim.step()
        return norm

    def update_discriminators(self, ro: Rollout) -> dict[str, float]:
        """Paper Eq. 8 on the (s_{t+1}, Z, o_{t+1}, z) pairs of the rollout."""
        agent = self.agent
        T, E, A = np.asarray(ro.agent_skill).shape
        state = self._t(ro.next_state).reshape(T * E, -1)  # [T, E, S] -> [T*E, S]
        obs = self._t(ro.next_obs).reshape(T * E, A, -1)  # [T, E, A, O] -> [T*E, A, O]
        team = self._t(ro.team_skill).reshape(T * E)
        agents = self._t(ro.agent_skill).reshape(T * E, A)
        alive = self._t(ro.alive).reshape(T * E, A).bool()
        # The inputs, normalised once per update, not per epoch; sparse rows when no minibatch gathers them.
        sparse = self._whole_every_epoch()
        team_in = agent.team_discriminator.normalize(state, sparse)
        agent_in = agent.agent_discriminator.inputs(obs, team[:, None].expand(-1, A))
        agent_in = agent.agent_discriminator.normalize(agent_in, sparse)
        params = [list(agent.team_discriminator.parameters()) + list(agent.agent_discriminator.parameters())]
        stats: dict[str, float] = {}
        for epoch in range(self.cfg.ppo.epochs):
            if epoch and self.stop_requested():
                break
            for idx in self._minibatches(T * E, self.cfg.ppo.num_minibatches, "discriminator"):
                whole = _whole(idx, T * E)

                def take(x: torch.Tensor) -> torch.Tensor:
                    return x if whole else x[idx]

                team_logits = agent.team_discriminator.logits_of(take(team_in))
                agent_logits = agent.agent_discriminator.logits_of(take(agent_in))
                loss, stats = discriminator_loss(team_logits, take(team), agent_logits, take(agents), take(alive))
                self._step(self.discriminator_optim, loss, params)
        return {
            "Losses/Discriminator/Team": stats["team"],
            "Losses/Discriminator/Individual": stats["individual"],
            "Skills/TeamDiscriminatorAccuracy": stats["team_accuracy"],
            "Skills/IndividualDiscriminatorAccuracy": stats["individual_accuracy"],
        }

    def update_coordinator(self, ro: Rollout) -> dict[str, float]:
        """Paper Eq. 6: PPO for Z with V_h(s_hat) and for each z^i with V_h(o_hat^i), all on r^h."""
        agent, ppo = self.agent, self.cfg.ppo
        seg = self._t(ro.assign).bool()  # [T, E] segment starts
        state = self._t(ro.state)[seg]  # [T, E, S] -> [N, S]
        obs = self._t(ro.obs)[seg]  # [T, E, A, O] -> [N, A, O]
        team = self._t(ro.team_skill)[seg]  # [N]
        agents = self._t(ro.agent_skill)[seg]  # [N, A]
        old_log_probs = self._t(ro.hl_log_probs)[seg]  # [N, A+1]
        old_values = self._t(ro.hl_values)[seg]  # real scale
        returns = self._t(ro.hl_returns)[seg]
        advantages = self._t(ro.hl_advantages)[seg]
        advantage_std = float(advantages.std())
        norm = agent.high_value_norm
        old_values_n = norm.normalize(old_values)  # the critic's outputs at collection time
        norm.update(returns)
        returns_n = norm.normalize(returns)
        advantages, normalised = coordinator_advantages(advantages, self._t(ro.hl_rewards)[seg],
                                                        ppo.high_advantage_norm)
        n = state.shape[0]
        params = [list(agent.coordinator.parameters())]
        for epoch in range(ppo.epochs):
            if epoch and self.stop_requested():
                break
            for idx in self._minibatches(n, ppo.num_minibatches, "coordinator"):
                log_probs, entropy, values = agent.coordinator.evaluate(state[idx], obs[idx], team[idx], agents[idx])
                # Eq. 6 sums one PPO term per skill (Z and every z^i): mean over samples, sum over A+1.
                width = log_probs.shape[1]
                pol, pol_stats = ppo_policy_loss(log_probs, old_log_probs[idx], advantages[idx], ppo.clip)
                val, _ = clipped_value_loss(values, old_values_n[idx], returns_n[idx], ppo.clip, ppo.huber_delta)
                ent, ent_stats = entropy_loss(entropy, self.cfg.hmasd.high_entropy_coef)
                total = width * (pol + ppo.value_coef * val + ent)
                grad_norm = self._step(self.coordinator_optim, total, params)
        with torch.no_grad():
            team_entropy = entropy[:, 0].mean().item()
            agent_entropy = entropy[:, 1:].mean().item()
            team_usage = _usage_entropy(team, agent.coordinator.n_team_skills)
            agent_usage = _usage_entropy(agents.reshape(-1), agent.coordinator.n_agent_skills)
        return {
            "Losses/Coordinator/Total": total.item(),
            "Losses/Coordinator/Policy": width * pol.item(),
            "Losses/Coordinator/Value": width * val.item(),
            "Losses/Coordinator/Entropy": width * ent.item(),
            "Skills/TeamSkillEntropy": team_entropy,
            "Skills/TeamSkillUsageEntropy": team_usage,
            "Skills/AgentSkillEntropy": agent_entropy,
            "Skills/AgentSkillUsageEntropy": agent_usage,
            "Diagnostics/Coordinator/ApproxKL": pol_stats["approx_kl"],
            "Diagnostics/Coordinator/ClipFraction": pol_stats["clip_fraction"],
            "Diagnostics/Coordinator/GradNorm": grad_norm,
            "Diagnostics/Coordinator/ExplainedVariance": explained_variance(old_values.cpu().numpy(),
                                                                            returns.cpu().numpy()),
            "Diagnostics/Coordinator/AdvantageStd": advantage_std,
            "Diagnostics/Coordinator/AdvantagesNormalised": float(normalised),
            "Buffer/HighLevelSamples": float(n),
        }

    def discoverer_batch(self, ro: Rollout) -> dict:
        """The rollout in the discoverer's training layout: MAPPO's data chunks.

        The rollout is cut into chunks of `ppo.data_chunk_length` steps; each chunk replays the GRUs
        from the hidden state stored at collection, so the GRU runs L steps over a C-times wider batch
        instead of T steps over a narrow one. Column c*N + n holds chunk c of sequence n.
        """
        agent = self.agent
        T, E, A = np.asarray(ro.agent_skill).shape
        L = chunk_length(T, self.cfg.ppo.data_chunk_length)
        C = T // L  # chunks per sequence
        whole = self._whole_every_epoch()

        def chunked(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(C, L, *x.shape[1:]).transpose(0, 1).reshape(L, C * x.shape[1], *x.shape[2:])

        alive = self._t(ro.alive).reshape(T, E * A).bool()
        # The masks the actions were drawn under (envs with masked actions): the ratio needs the same ones.
        masked = ro.masked
        obs = self._t(ro.obs).reshape(T, E * A, -1)  # [T, E, A, O] -> [T, E*A, O]
        skills = self._t(ro.agent_skill).reshape(T, E * A) if agent.uses_skills else None
        team = self._t(ro.team_skill) if agent.uses_skills else None
        return {
            "A": A, "sequences": C * E,
            "obs": chunked(obs),  # [L, C*E*A, O]
            # The networks' inputs (observation or state with the skill one-hots and agent ids, through
            # the input LayerNorm's parameter-free part) do not change during the update: built once
            # here rather than once per epoch (on Overcooked's 1,170-wide grid the concatenation alone
            # was about 15% of the discoverer's update, the normalisation as much again).
            # With one minibatch, every epoch uses them whole, and inputs that are mostly zeros (grid
            # observations) stay sparse (`Trunk.normalize`).
            "actor_in": agent.actor.normalize(chunked(agent.actor.inputs(obs, skills)), whole),  # [L, C*E*A, width]
            "critic_in": agent.critic.normalize(chunked(agent.critic.inputs(self._t(ro.state), team)), whole),
            "skills": chunked(skills) if agent.uses_skills else None,
            "team": chunked(team) if agent.uses_skills else None,
            "actions": chunked(self._t(ro.actions).reshape(T, E * A, -1)),
            # [T, E, A, M] -> [L, C*E*A, M]
            "action_mask": chunked(self._t(ro.action_mask).reshape(T, E * A, -1).bool()) if masked else None,
            "old_log_probs": chunked(self._t(ro.log_probs).reshape(T, E * A)),
            "old_values": self._t(ro.values).reshape(T, E * A),  # real scale, not chunked
            "returns": self._t(ro.returns).reshape(T, E * A),
            "advantages": chunked(self._t(ro.advantages).reshape(T, E * A)),
            "alive": alive,
            "mask": chunked(alive),
            "starts": chunked(self._t(np.repeat(ro.starts, A, axis=1))),  # [T, E] -> [L, C*E*A]
            "actor_h0": ro.actor_h[::L].reshape(C * E * A, -1).to(self.device),  # hidden state at each chunk start
            "critic_h0": ro.critic_h[::L].reshape(C * E * A, -1).to(self.device),
            "chunked": chunked,
        }

    def discoverer_forward(self, b: dict, seq: torch.Tensor):
        """Replay the chunks `seq` -> (log_probs, entropy, values, cols), all [L, len(seq)*A]."""
        agent, A = self.agent, b["A"]
        cols = (seq[:, None] * A + torch.arange(A, device=seq.device)).reshape(-1)  # sequence -> agent columns
        whole = _whole(seq, b["sequences"])

        def take(x: torch.Tensor | None) -> torch.Tensor | None:
            return x if x is None or whole else x[:, cols]

        mask = take(b["action_mask"])
        dist, _ = agent.actor.distribution_of(take(b["actor_in"]), b["actor_h0"][cols], take(b["starts"]), mask)
        values, _ = agent.critic.values_of(take(b["critic_in"]), b["critic_h0"][cols], take(b["starts"]))
        log_probs = agent.actor.log_prob(dist, take(b["actions"]), mask)
        return log_probs, agent.actor.entropy(dist, mask), values, cols

    def update_discoverer(self, ro: Rollout) -> dict[str, float]:
        """Paper Eq. 7: PPO on pi_l(a^i | o^i, z^i) with V_l and the mixed reward r^i."""
        agent, ppo = self.agent, self.cfg.ppo
        b = self.discoverer_batch(ro)
        norm = agent.low_value_norm
        old_values_n = b["chunked"](norm.normalize(b["old_values"]))
        norm.update(b["returns"][b["alive"]])
        returns_n = b["chunked"](norm.normalize(b["returns"]))
        advantages = _normalize(b["advantages"], b["mask"]) if ppo.normalize_advantages else b["advantages"]
        actor_params, critic_params = list(agent.actor.parameters()), list(agent.critic.parameters())
        # Minibatches split whole chunks, so the GRUs always replay from a stored state.
        for epoch in range(ppo.epochs):
            if epoch and self.stop_requested():
                break
            for seq in self._minibatches(b["sequences"], ppo.num_minibatches, "discoverer"):
                log_probs, entropy, values, cols = self.discoverer_forward(b, seq)
                m = b["mask"][:, cols]
                pol, pol_stats = ppo_policy_loss(log_probs, b["old_log_probs"][:, cols], advantages[:, cols],
                                                 ppo.clip, m)
                val, _ = clipped_value_loss(values, old_values_n[:, cols], returns_n[:, cols], ppo.clip,
                                            ppo.huber_delta, m)
                ent, ent_stats = entropy_loss(entropy, self.cfg.hmasd.low_entropy_coef, m)
                total = pol + ppo.value_coef * val + ent
                grad_norm = self._step(self.discoverer_optim, total, [actor_params, critic_params])
        old_values, returns = b["old_values"].cpu().numpy(), b["returns"].cpu().numpy()
        stats = {}
        if b["skills"] is not None:
            # after the update, over the whole batch
            kl = agent.actor.skill_kl(b["obs"], b["skills"], b["actor_h0"], b["starts"], b["action_mask"])
            stats["Diagnostics/Discoverer/SkillKL"] = float(kl[b["mask"]].mean())
        return stats | {
            "Losses/Discoverer/Total": total.item(),
            "Losses/Discoverer/Policy": pol.item(),
            "Losses/Discoverer/Value": val.item(),
            "Losses/Discoverer/Entropy": ent.item(),
            "Diagnostics/Discoverer/ActionEntropy": ent_stats["entropy"],
            "Diagnostics/Discoverer/ApproxKL": pol_stats["approx_kl"],
            "Diagnostics/Discoverer/ClipFraction": pol_stats["clip_fraction"],
            "Diagnostics/Discoverer/GradNorm": grad_norm,
            "Diagnostics/Discoverer/ExplainedVariance": explained_variance(old_values, returns),
            "Diagnostics/Discoverer/AdvantageStd": float(np.asarray(ro.advantages).std()),
        }
