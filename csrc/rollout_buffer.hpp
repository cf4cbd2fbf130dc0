// The fused rollout buffer of HMASD: one on-policy rollout of T steps from E envs with A agents,
// stored time-major ([T, E, A, ...]) in storage allocated once, plus the outputs of finalize():
// mixed low-level rewards (paper Eq. 4), high-level segment rewards, and GAE for both levels.
//
// Plain C++17 with no Python types; hmasd/_core (bindings.cpp) checks dtypes and shapes and
// hands over raw C-contiguous pointers. Not thread-safe: one writer at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gae.hpp"
#include "rollout_fields.hpp"

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

// The per-step shape [axes] of a field of rollout_fields.hpp (e.g. "E,A,O" -> {E, A, obs_dim}),
// its element count, and its label for messages ("[E, A, O]"). Throws std::logic_error for an
// axis symbol that is not in the list.
std::vector<std::int64_t> step_shape(const BufferShape& shape, const char* axes);
std::int64_t step_size(const BufferShape& shape, const char* axes);
std::string axes_label(const char* axes);

// One step of all envs: one C-contiguous pointer per field of rollout_fields.hpp, [axes]. An
// optional field whose axes are empty (action_mask when M = 0) is unused.
struct StepInputs {
#define HMASD_INPUT(name, type, axes) const type* name = nullptr;
  HMASD_STEP_FIELDS(HMASD_INPUT)
#undef HMASD_INPUT
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

  // Stored steps and the outputs of finalize(), [T, axes], one getter per field.
#define HMASD_GETTER(name, type, axes) \
  const type* name() const { return name##_.data(); }
  HMASD_STEP_FIELDS(HMASD_GETTER)
  HMASD_OUTPUT_FIELDS(HMASD_GETTER)
#undef HMASD_GETTER

 private:
  void check_segment_starts() const;

  BufferShape shape_;
  std::int64_t size_ = 0;
  bool finalized_ = false;

#define HMASD_STORAGE(name, type, axes) std::vector<type> name##_;
  HMASD_STEP_FIELDS(HMASD_STORAGE)
  HMASD_OUTPUT_FIELDS(HMASD_STORAGE)
#undef HMASD_STORAGE

  // Scratch for finalize(), sized once so finalize never allocates.
  std::vector<float> ll_carry_, hl_carry_, seg_sum_;
  std::vector<std::int64_t> seg_end_;
};

}  // namespace hmasd
