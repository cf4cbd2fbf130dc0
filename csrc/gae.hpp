// Reward mixing (paper Eq. 4) and GAE for both levels of HMASD, on raw time-major arrays.
//
// Shapes: T steps, E envs, A agents; the high level has A+1 heads (0 = team skill Z, 1+i = agent
// i's skill z^i). Every function is a single pass that writes into caller-owned storage and
// allocates nothing, so the rollout buffer can run it once per rollout without touching the heap.
//
// Arithmetic is float32 and the operations are written in the same order as the NumPy reference
// (hmasd/buffer.py), so the two agree to the last few ulps.
#pragma once

#include <cstdint>

namespace hmasd {

// Weights of the three low-level reward terms and the discounts of both levels.
struct Coefficients {
  float gamma;            // low-level discount
  float gae_lambda;       // low-level GAE lambda
  float gamma_high;       // high-level discount, applied once per skill segment
  float gae_lambda_high;  // high-level GAE lambda
  float lambda_e;         // weight of the team (extrinsic) reward
  float lambda_D;         // weight of log q_D(Z | s_{t+1}) (team discriminator)
  float lambda_d;         // weight of log q_d(z^i | o^i_{t+1}, Z) (individual discriminator)
};

// Inputs of the low-level pass. All arrays are C-contiguous.
struct LowLevelInputs {
  const float* reward;            // [T, E]     team reward r_t
  const float* log_q_team;        // [T, E]     log q_D(Z | s_{t+1})
  const float* log_q_agent;       // [T, E, A]  log q_d(z^i | o^i_{t+1}, Z)
  const float* values;            // [T, E, A]  V_l at step t
  const float* bootstrap_values;  // [T, E, A]  V_l of the final observation (read where truncated)
  const float* last_values;       // [E, A]     V_l of the observation after the rollout
  const std::uint8_t* terminated; // [T, E]
  const std::uint8_t* truncated;  // [T, E]
};

struct LowLevelOutputs {
  float* rewards;     // [T, E, A]  mixed reward r^i_t (Eq. 4)
  float* advantages;  // [T, E, A]
  float* returns;     // [T, E, A]  advantages + values
  float* gae_carry;   // [E, A]     scratch: running GAE of the step after t
};

// Mixes the rewards (Eq. 4) and runs the low-level GAE backwards over t for every (env, agent):
//   next_v = terminated ? 0 : truncated ? bootstrap_values[t] : (t == T-1 ? last_values : values[t+1])
//   delta  = r + gamma * next_v - values[t]
//   gae    = delta + gamma * gae_lambda * (1 - ended[t]) * gae_{t+1}
void low_level_gae(std::int64_t T, std::int64_t E, std::int64_t A, const Coefficients& c,
                   const LowLevelInputs& in, const LowLevelOutputs& out);

// Inputs of the high-level pass. All arrays are C-contiguous; H = A + 1 heads.
struct HighLevelInputs {
  const float* reward;               // [T, E]
  const std::uint8_t* terminated;    // [T, E]
  const std::uint8_t* truncated;     // [T, E]
  const std::uint8_t* assign;        // [T, E]     1 where a skill segment starts
  const float* hl_values;            // [T, E, H]  V_h at assignment steps
  const float* hl_bootstrap_values;  // [T, E, H]  V_h of the final state (read where truncated)
  const float* last_hl_values;       // [E, H]     V_h of the state after the rollout
};

struct HighLevelOutputs {
  float* hl_rewards;               // [T, E]     segment sum of r_t, at the segment's first step
  std::int32_t* segment_lengths;   // [T, E]     at the segment's first step, 0 elsewhere
  std::uint8_t* hl_dones;          // [T, E]     terminated at the segment's last step
  float* hl_advantages;            // [T, E, H]  at the segment's first step, 0 elsewhere
  float* hl_returns;               // [T, E, H]
  std::int64_t* seg_end;           // [E]        scratch: last step of the segment holding t
  float* seg_sum;                  // [E]        scratch: reward sum from t to seg_end
  float* gae_carry;                // [E, H]     scratch: GAE of the next segment
};

// Sums the team reward over each skill segment and runs GAE over each env's sequence of segments.
// A segment starts at an assign step t0 and ends at t1 = (next assign step) - 1, or T - 1:
//   next_v = terminated[t1] ? 0 : truncated[t1] ? hl_bootstrap_values[t1]
//          : t1 == T-1 ? last_hl_values : hl_values[t1+1]
//   delta  = r_h + gamma_high * next_v - hl_values[t0]
//   gae    = delta + gamma_high * gae_lambda_high * continues * gae_next_segment
// where `continues` is 0 when the segment ends the episode or the rollout.
// Requires assign[0, e] == 1 for every env (checked by the caller).
void high_level_gae(std::int64_t T, std::int64_t E, std::int64_t A, const Coefficients& c,
                    const HighLevelInputs& in, const HighLevelOutputs& out);

}  // namespace hmasd
