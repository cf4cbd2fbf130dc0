// Reward mixing (paper Eq. 4) and GAE for both levels; see gae.hpp for the contracts.
#include "gae.hpp"

namespace hmasd {

void low_level_gae(std::int64_t T, std::int64_t E, std::int64_t A, const Coefficients& c,
                   const LowLevelInputs& in, const LowLevelOutputs& out) {
  const std::int64_t EA = E * A;
  const float gamma_lambda = c.gamma * c.gae_lambda;
  for (std::int64_t k = 0; k < EA; ++k) out.gae_carry[k] = 0.0f;

  for (std::int64_t t = T - 1; t >= 0; --t) {
    // V_l of the step after t; episode ends below override it per env.
    const float* next_values = (t == T - 1) ? in.last_values : in.values + (t + 1) * EA;
    for (std::int64_t e = 0; e < E; ++e) {
      const std::int64_t te = t * E + e;
      const bool terminated = in.terminated[te] != 0;
      const bool truncated = in.truncated[te] != 0;
      // The GAE chain stops at any episode end; only the bootstrap differs.
      const float not_ended = (terminated || truncated) ? 0.0f : 1.0f;
      const float team_term = c.lambda_e * in.reward[te];
      const float disc_term = c.lambda_D * in.log_q_team[te];
      for (std::int64_t i = 0; i < A; ++i) {
        const std::int64_t k = te * A + i;
        const float r = team_term + disc_term + c.lambda_d * in.log_q_agent[k];
        // Terminated wins over truncated: a real end has no future value to bootstrap.
        const float next_v = terminated  ? 0.0f
                             : truncated ? in.bootstrap_values[k]
                                         : next_values[e * A + i];
        const float v = in.values[k];
        const float delta = r + c.gamma * next_v - v;
        const float gae = delta + gamma_lambda * not_ended * out.gae_carry[e * A + i];
        out.gae_carry[e * A + i] = gae;
        out.rewards[k] = r;
        out.advantages[k] = gae;
        out.returns[k] = gae + v;
      }
    }
  }
}

void high_level_gae(std::int64_t T, std::int64_t E, std::int64_t A, const Coefficients& c,
                    const HighLevelInputs& in, const HighLevelOutputs& out) {
  const std::int64_t H = A + 1;
  const float gamma_lambda = c.gamma_high * c.gae_lambda_high;
  for (std::int64_t e = 0; e < E; ++e) {
    out.seg_end[e] = T - 1;
    out.seg_sum[e] = 0.0f;
  }
  for (std::int64_t k = 0; k < E * H; ++k) out.gae_carry[k] = 0.0f;

  // Backwards over t, so every segment is closed (reward summed, next segment's GAE known)
  // by the time its first step t0 is reached.
  for (std::int64_t t = T - 1; t >= 0; --t) {
    for (std::int64_t e = 0; e < E; ++e) {
      const std::int64_t te = t * E + e;
      if (t < T - 1 && in.assign[te + E] != 0) {
        // A segment starts at t + 1, so the one holding t ends here.
        out.seg_end[e] = t;
        out.seg_sum[e] = 0.0f;
      }
      out.seg_sum[e] = out.seg_sum[e] + in.reward[te];

      float* adv = out.hl_advantages + te * H;
      float* ret = out.hl_returns + te * H;
      if (in.assign[te] == 0) {
        out.hl_rewards[te] = 0.0f;
        out.segment_lengths[te] = 0;
        out.hl_dones[te] = 0;
        for (std::int64_t j = 0; j < H; ++j) adv[j] = ret[j] = 0.0f;
        continue;
      }

      const std::int64_t t1 = out.seg_end[e];
      const std::int64_t t1e = t1 * E + e;
      const bool terminated = in.terminated[t1e] != 0;
      const bool truncated = in.truncated[t1e] != 0;
      const bool rollout_end = t1 == T - 1;
      // The chain goes on only into a next segment of the same episode inside this rollout.
      const float continues = (terminated || truncated || rollout_end) ? 0.0f : 1.0f;
      const float r_h = out.seg_sum[e];
      out.hl_rewards[te] = r_h;
      out.segment_lengths[te] = static_cast<std::int32_t>(t1 - t + 1);
      out.hl_dones[te] = terminated ? 1 : 0;

      const float* v0 = in.hl_values + te * H;
      for (std::int64_t j = 0; j < H; ++j) {
        const float next_v = terminated    ? 0.0f
                             : truncated   ? in.hl_bootstrap_values[t1e * H + j]
                             : rollout_end ? in.last_hl_values[e * H + j]
                                           : in.hl_values[(t1e + E) * H + j];
        const float delta = r_h + c.gamma_high * next_v - v0[j];
        const float gae = delta + gamma_lambda * continues * out.gae_carry[e * H + j];
        out.gae_carry[e * H + j] = gae;
        adv[j] = gae;
        ret[j] = gae + v0[j];
      }
    }
  }
}

}  // namespace hmasd
