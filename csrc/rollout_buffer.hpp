// The fused rollout buffer of HMASD: one on-policy rollout of T steps from E envs with A agents,
// stored time-major ([T, E, A, ...]) in storage allocated once, plus the outputs of finalize():
// mixed low-level rewards (paper Eq. 4), high-level segment rewards, and GAE for both levels.
//
// Plain C++17 with no Python types; hmasd/_core (bindings.cpp) checks dtypes and shapes and
// hands over raw C-contiguous pointers. Not thread-safe: one writer at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "gae.hpp"

namespace hmasd {

struct BufferShape {
  std::int64_t T;           // rollout_length (steps)
  std::int64_t E;           // envs
  std::int64_t A;           // agents
  std::int64_t obs_dim;     // O
  std::int64_t state_dim;   // S
  std::int64_t action_dim;  // D (1 for discrete actions)
  std::int64_t mask_dim = 0;  // M: width of the stored action masks; 0 = actions are not masked
};

// One step of all envs; every pointer is C-contiguous with the shape in the comment.
struct StepInputs {
  const float* obs;                   // [E, A, O]
  const float* state;                 // [E, S]
  const float* actions;               // [E, A, D]
  const float* log_probs;             // [E, A]
  const float* values;                // [E, A]
  const float* reward;                // [E]
  const std::uint8_t* terminated;     // [E]
  const std::uint8_t* truncated;      // [E]
  const float* bootstrap_values;      // [E, A]
  const std::uint8_t* alive;          // [E, A]
  const std::int64_t* team_skill;     // [E]
  const std::int64_t* agent_skill;    // [E, A]
  const std::uint8_t* assign;         // [E]
  const float* hl_log_probs;          // [E, A+1]
  const float* hl_values;             // [E, A+1]
  const float* hl_bootstrap_values;   // [E, A+1]
  const std::uint8_t* action_mask;    // [E, A, M] the mask each action was drawn under; unused if M = 0
};

// Per-rollout inputs of finalize(), computed after the rollout.
struct FinalizeInputs {
  const float* log_q_team;      // [T, E]     log q_D(Z | s_{t+1})
  const float* log_q_agent;     // [T, E, A]  log q_d(z^i | o^i_{t+1}, Z)
  const float* last_values;     // [E, A]     V_l after the last step
  const float* last_hl_values;  // [E, A+1]   V_h after the last step
};

class RolloutBuffer {
 public:
  // Throws std::invalid_argument if a dimension is not positive.
  explicit RolloutBuffer(const BufferShape& shape);

  // Copies step t = size() and advances size(). Throws std::runtime_error when the buffer is full.
  void add(const StepInputs& step);

  // Computes every output from the full buffer. Throws std::runtime_error if size() != T, and
  // std::invalid_argument (before writing anything) if a skill segment does not start at t = 0
  // or right after an episode end.
  void finalize(const FinalizeInputs& in, const Coefficients& c);

  // Empties the buffer for the next rollout; keeps the storage.
  void reset();

  const BufferShape& shape() const { return shape_; }
  std::int64_t size() const { return size_; }
  std::int64_t capacity() const { return shape_.T; }
  bool finalized() const { return finalized_; }

  // Stored steps, [T, E, ...].
  const float* obs() const { return obs_.data(); }
  const float* state() const { return state_.data(); }
  const float* actions() const { return actions_.data(); }
  const float* log_probs() const { return log_probs_.data(); }
  const float* values() const { return values_.data(); }
  const float* reward() const { return reward_.data(); }
  const std::uint8_t* terminated() const { return terminated_.data(); }
  const std::uint8_t* truncated() const { return truncated_.data(); }
  const float* bootstrap_values() const { return bootstrap_values_.data(); }
  const std::uint8_t* alive() const { return alive_.data(); }
  const std::int64_t* team_skill() const { return team_skill_.data(); }
  const std::int64_t* agent_skill() const { return agent_skill_.data(); }
  const std::uint8_t* assign() const { return assign_.data(); }
  const float* hl_log_probs() const { return hl_log_probs_.data(); }
  const float* hl_values() const { return hl_values_.data(); }
  const float* hl_bootstrap_values() const { return hl_bootstrap_values_.data(); }
  const std::uint8_t* action_mask() const { return action_mask_.data(); }

  // Outputs of finalize(), [T, E, ...].
  const float* rewards() const { return rewards_.data(); }
  const float* advantages() const { return advantages_.data(); }
  const float* returns() const { return returns_.data(); }
  const float* hl_rewards() const { return hl_rewards_.data(); }
  const std::int32_t* segment_lengths() const { return segment_lengths_.data(); }
  const std::uint8_t* hl_dones() const { return hl_dones_.data(); }
  const float* hl_advantages() const { return hl_advantages_.data(); }
  const float* hl_returns() const { return hl_returns_.data(); }

 private:
  void check_segment_starts() const;

  BufferShape shape_;
  std::int64_t size_ = 0;
  bool finalized_ = false;

  std::vector<float> obs_, state_, actions_, log_probs_, values_, reward_, bootstrap_values_;
  std::vector<std::uint8_t> terminated_, truncated_, alive_, assign_;
  std::vector<std::int64_t> team_skill_, agent_skill_;
  std::vector<float> hl_log_probs_, hl_values_, hl_bootstrap_values_;
  std::vector<std::uint8_t> action_mask_;

  std::vector<float> rewards_, advantages_, returns_, hl_rewards_, hl_advantages_, hl_returns_;
  std::vector<std::int32_t> segment_lengths_;
  std::vector<std::uint8_t> hl_dones_;

  // Scratch for finalize(), sized once so finalize never allocates.
  std::vector<float> ll_carry_, hl_carry_, seg_sum_;
  std::vector<std::int64_t> seg_end_;
};

}  // namespace hmasd
