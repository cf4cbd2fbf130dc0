// The one C++ list of the fields the fused rollout buffer stores, in the order of add()'s
// arguments. rollout_buffer.hpp/.cpp (storage, StepInputs, getters, add) and bindings.cpp
// (argument names, checks, read-only properties, the module's STEP_FIELDS/OUTPUT_FIELDS) expand
// it; nothing else spells a field. The Python side has its own one table (hmasd/rollout_fields.py), held
// equal to this one by tests/test_rollout_schema.py through the exported STEP_FIELDS.
//
// X(name, ctype, axes): `axes` are the per-step axes after the leading T, comma-separated, in the
// symbols of hmasd/rollout_fields.py: E envs, A agents, O obs_dim, S state_dim, D action_dim,
// M mask_dim, A+1 high-level heads.
#pragma once

#include <cstdint>

// What add() stores at step t; every one is required.
#define HMASD_REQUIRED_STEP_FIELDS(X)           \
  X(obs, float, "E,A,O")                        \
  X(state, float, "E,S")                        \
  X(actions, float, "E,A,D")                    \
  X(log_probs, float, "E,A")                    \
  X(values, float, "E,A")                       \
  X(reward, float, "E")                         \
  X(terminated, std::uint8_t, "E")              \
  X(truncated, std::uint8_t, "E")               \
  X(bootstrap_values, float, "E,A")             \
  X(alive, std::uint8_t, "E,A")                 \
  X(team_skill, std::int64_t, "E")              \
  X(agent_skill, std::int64_t, "E,A")           \
  X(assign, std::uint8_t, "E")                  \
  X(hl_log_probs, float, "E,A+1")               \
  X(hl_values, float, "E,A+1")                  \
  X(hl_bootstrap_values, float, "E,A+1")

// Stored only when their axes are not empty (M > 0: envs with masked actions); None otherwise.
#define HMASD_OPTIONAL_STEP_FIELDS(X) X(action_mask, std::uint8_t, "E,A,M")

#define HMASD_STEP_FIELDS(X) HMASD_REQUIRED_STEP_FIELDS(X) HMASD_OPTIONAL_STEP_FIELDS(X)

// What finalize() computes, [T, axes].
#define HMASD_OUTPUT_FIELDS(X)         \
  X(rewards, float, "E,A")             \
  X(advantages, float, "E,A")          \
  X(returns, float, "E,A")             \
  X(hl_rewards, float, "E")            \
  X(segment_lengths, std::int32_t, "E") \
  X(hl_dones, std::uint8_t, "E")       \
  X(hl_advantages, float, "E,A+1")     \
  X(hl_returns, float, "E,A+1")
