// Storage, add() and finalize() of the fused rollout buffer; see rollout_buffer.hpp.
#include "rollout_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace hmasd {

namespace {

template <typename T>
void copy_step(std::vector<T>& dst, const T* src, std::int64_t step, std::int64_t per_step) {
  if (per_step == 0) return;  // an optional field that is not stored (src may be null)
  std::memcpy(dst.data() + step * per_step, src, static_cast<std::size_t>(per_step) * sizeof(T));
}

// The axis symbols of rollout_fields.hpp, split at the commas.
std::vector<std::string> axis_names(const char* axes) {
  std::vector<std::string> names(1);
  for (const char* c = axes; *c != '\0'; ++c) {
    if (*c == ',') {
      names.emplace_back();
    } else {
      names.back() += *c;
    }
  }
  return names;
}

}  // namespace

std::vector<std::int64_t> step_shape(const BufferShape& s, const char* axes) {
  std::vector<std::int64_t> shape;
  for (const auto& axis : axis_names(axes)) {
    if (axis == "E") shape.push_back(s.E);
    else if (axis == "A") shape.push_back(s.A);
    else if (axis == "A+1") shape.push_back(s.A + 1);
    else if (axis == "O") shape.push_back(s.obs_dim);
    else if (axis == "S") shape.push_back(s.state_dim);
    else if (axis == "D") shape.push_back(s.action_dim);
    else if (axis == "M") shape.push_back(s.mask_dim);
    else throw std::logic_error("unknown axis '" + axis + "' in rollout_fields.hpp");
  }
  return shape;
}

std::int64_t step_size(const BufferShape& s, const char* axes) {
  std::int64_t n = 1;
  for (auto d : step_shape(s, axes)) n *= d;
  return n;
}

std::string axes_label(const char* axes) {
  std::string label = "[";
  for (const auto& axis : axis_names(axes)) label += (label.size() > 1 ? ", " : "") + axis;
  return label + "]";
}

RolloutBuffer::RolloutBuffer(const BufferShape& shape) : shape_(shape) {
  const std::pair<const char*, std::int64_t> dims[] = {
      {"T (rollout_length)", shape.T}, {"E (num_envs)", shape.E},
      {"A (num_agents)", shape.A},     {"obs_dim", shape.obs_dim},
      {"state_dim", shape.state_dim},  {"action_dim", shape.action_dim}};
  for (const auto& [name, value] : dims) {
    if (value <= 0) {
      throw std::invalid_argument(std::string(name) + " must be positive, got " +
                                  std::to_string(value));
    }
  }
  if (shape.mask_dim < 0) {
    throw std::invalid_argument("mask_dim must be 0 or positive, got " +
                                std::to_string(shape.mask_dim));
  }
#define HMASD_ALLOCATE(name, type, axes) \
  name##_.resize(static_cast<std::size_t>(shape.T * step_size(shape, axes)));
  HMASD_STEP_FIELDS(HMASD_ALLOCATE)
  HMASD_OUTPUT_FIELDS(HMASD_ALLOCATE)
#undef HMASD_ALLOCATE

  ll_carry_.resize(shape.E * shape.A);
  hl_carry_.resize(shape.E * (shape.A + 1));
  seg_sum_.resize(shape.E);
  seg_end_.resize(shape.E);
}

void RolloutBuffer::add(const StepInputs& s) {
  if (size_ >= shape_.T) {
    throw std::runtime_error("rollout buffer is full (" + std::to_string(shape_.T) + "/" +
                             std::to_string(shape_.T) + " steps): call reset() before add()");
  }
  const std::int64_t t = size_;
#define HMASD_COPY(name, type, axes) copy_step(name##_, s.name, t, step_size(shape_, axes));
  HMASD_STEP_FIELDS(HMASD_COPY)
#undef HMASD_COPY
  ++size_;
  finalized_ = false;
}

void RolloutBuffer::check_segment_starts() const {
  // Scanned time-major (lowest step, then lowest env) so the first violation reported matches
  // the NumPy reference.
  const std::int64_t T = shape_.T, E = shape_.E;
  for (std::int64_t t = 0; t < T; ++t) {
    for (std::int64_t e = 0; e < E; ++e) {
      if (assign_[t * E + e] != 0) continue;
      if (t == 0) {
        throw std::invalid_argument(
            "assign must be 1 at step 0 of every env (skills are assigned at the start of each "
            "rollout), but env " + std::to_string(e) + " has assign=0 at step 0");
      }
      const std::int64_t prev = (t - 1) * E + e;
      if (terminated_[prev] != 0 || truncated_[prev] != 0) {
        throw std::invalid_argument(
            "assign must be 1 at the step after an episode end (skills are assigned at the "
            "start of each episode), but env " + std::to_string(e) + " ended at step " +
            std::to_string(t - 1) + " and has assign=0 at step " + std::to_string(t));
      }
    }
  }
}

void RolloutBuffer::finalize(const FinalizeInputs& in, const Coefficients& c) {
  if (size_ != shape_.T) {
    throw std::runtime_error("finalize needs a full buffer: " + std::to_string(size_) + "/" +
                             std::to_string(shape_.T) + " steps");
  }
  check_segment_starts();
  const std::int64_t T = shape_.T, E = shape_.E, A = shape_.A;

  const LowLevelInputs ll_in{reward_.data(),           in.log_q_team,      in.log_q_agent,
                             values_.data(),           bootstrap_values_.data(),
                             in.last_values,           terminated_.data(), truncated_.data()};
  const LowLevelOutputs ll_out{rewards_.data(), advantages_.data(), returns_.data(),
                               ll_carry_.data()};
  low_level_gae(T, E, A, c, ll_in, ll_out);

  const HighLevelInputs hl_in{reward_.data(),    terminated_.data(),
                              truncated_.data(), assign_.data(),
                              hl_values_.data(), hl_bootstrap_values_.data(),
                              in.last_hl_values};
  const HighLevelOutputs hl_out{hl_rewards_.data(),    segment_lengths_.data(), hl_dones_.data(),
                                hl_advantages_.data(), hl_returns_.data(),      seg_end_.data(),
                                seg_sum_.data(),       hl_carry_.data()};
  high_level_gae(T, E, A, c, hl_in, hl_out);
  finalized_ = true;
}

void RolloutBuffer::reset() {
  size_ = 0;
  finalized_ = false;
}

}  // namespace hmasd
