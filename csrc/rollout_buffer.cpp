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
  std::memcpy(dst.data() + step * per_step, src, static_cast<std::size_t>(per_step) * sizeof(T));
}

}  // namespace

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
  const auto TE = static_cast<std::size_t>(shape.T * shape.E);
  const auto TEA = TE * static_cast<std::size_t>(shape.A);
  const auto TEH = TE * static_cast<std::size_t>(shape.A + 1);
  obs_.resize(TEA * shape.obs_dim);
  state_.resize(TE * shape.state_dim);
  actions_.resize(TEA * shape.action_dim);
  log_probs_.resize(TEA);
  values_.resize(TEA);
  reward_.resize(TE);
  terminated_.resize(TE);
  truncated_.resize(TE);
  bootstrap_values_.resize(TEA);
  alive_.resize(TEA);
  team_skill_.resize(TE);
  agent_skill_.resize(TEA);
  assign_.resize(TE);
  hl_log_probs_.resize(TEH);
  hl_values_.resize(TEH);
  hl_bootstrap_values_.resize(TEH);
  action_mask_.resize(TEA * static_cast<std::size_t>(shape.mask_dim));

  rewards_.resize(TEA);
  advantages_.resize(TEA);
  returns_.resize(TEA);
  hl_rewards_.resize(TE);
  segment_lengths_.resize(TE);
  hl_dones_.resize(TE);
  hl_advantages_.resize(TEH);
  hl_returns_.resize(TEH);

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
  const std::int64_t t = size_, E = shape_.E, EA = E * shape_.A, EH = E * (shape_.A + 1);
  copy_step(obs_, s.obs, t, EA * shape_.obs_dim);
  copy_step(state_, s.state, t, E * shape_.state_dim);
  copy_step(actions_, s.actions, t, EA * shape_.action_dim);
  copy_step(log_probs_, s.log_probs, t, EA);
  copy_step(values_, s.values, t, EA);
  copy_step(reward_, s.reward, t, E);
  copy_step(terminated_, s.terminated, t, E);
  copy_step(truncated_, s.truncated, t, E);
  copy_step(bootstrap_values_, s.bootstrap_values, t, EA);
  copy_step(alive_, s.alive, t, EA);
  copy_step(team_skill_, s.team_skill, t, E);
  copy_step(agent_skill_, s.agent_skill, t, EA);
  copy_step(assign_, s.assign, t, E);
  copy_step(hl_log_probs_, s.hl_log_probs, t, EH);
  copy_step(hl_values_, s.hl_values, t, EH);
  copy_step(hl_bootstrap_values_, s.hl_bootstrap_values, t, EH);
  if (shape_.mask_dim > 0) copy_step(action_mask_, s.action_mask, t, EA * shape_.mask_dim);
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
