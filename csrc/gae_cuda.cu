// CUDA low-level GAE; see gae_cuda.hpp. Mirrors low_level_gae in gae.cpp operation for operation, so
// the float32 results agree with the CPU core (and its NumPy oracle) to a few ulps.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "gae_cuda.hpp"

namespace hmasd {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA ") + what + " failed: " + cudaGetErrorString(err));
  }
}

// Device copy of one host array; freed by the destructor.
template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  std::size_t n = 0;
  explicit DeviceArray(std::size_t count) : n(count) {
    check(cudaMalloc(&ptr, count * sizeof(T)), "cudaMalloc");
  }
  DeviceArray(const T* host, std::size_t count) : DeviceArray(count) {
    check(cudaMemcpy(ptr, host, count * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  ~DeviceArray() { cudaFree(ptr); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void to_host(T* host) const {
    check(cudaMemcpy(host, ptr, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  }
};

// One thread per (env, agent) column: the recursion over t is sequential, the columns independent.
__global__ void low_level_gae_kernel(std::int64_t T, std::int64_t E, std::int64_t A, Coefficients c,
                                     const float* reward, const float* log_q_team,
                                     const float* log_q_agent, const float* values,
                                     const float* bootstrap_values, const float* last_values,
                                     const std::uint8_t* terminated, const std::uint8_t* truncated,
                                     float* rewards, float* advantages, float* returns) {
  const std::int64_t col = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t EA = E * A;
  if (col >= EA) return;
  const std::int64_t e = col / A;
  const float gamma_lambda = c.gamma * c.gae_lambda;
  float carry = 0.0f;
  for (std::int64_t t = T - 1; t >= 0; --t) {
    const std::int64_t te = t * E + e;
    const std::int64_t k = t * EA + col;
    const bool term = terminated[te] != 0;
    const bool trunc = truncated[te] != 0;
    const float not_ended = (term || trunc) ? 0.0f : 1.0f;
    const float r = c.lambda_e * reward[te] + c.lambda_D * log_q_team[te] + c.lambda_d * log_q_agent[k];
    const float next_v = term ? 0.0f : trunc ? bootstrap_values[k]
                                             : (t == T - 1 ? last_values[col] : values[k + EA]);
    const float v = values[k];
    const float delta = r + c.gamma * next_v - v;
    carry = delta + gamma_lambda * not_ended * carry;
    rewards[k] = r;
    advantages[k] = carry;
    returns[k] = carry + v;
  }
}

}  // namespace

bool cuda_device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

void low_level_gae_cuda(std::int64_t T, std::int64_t E, std::int64_t A, const Coefficients& c,
                        const LowLevelInputs& in, const LowLevelOutputs& out) {
  const std::size_t te = static_cast<std::size_t>(T * E), tea = te * static_cast<std::size_t>(A);
  const std::size_t ea = static_cast<std::size_t>(E * A);
  DeviceArray<float> reward(in.reward, te), log_q_team(in.log_q_team, te);
  DeviceArray<float> log_q_agent(in.log_q_agent, tea), values(in.values, tea);
  DeviceArray<float> bootstrap(in.bootstrap_values, tea), last(in.last_values, ea);
  DeviceArray<std::uint8_t> term(in.terminated, te), trunc(in.truncated, te);
  DeviceArray<float> rewards(tea), advantages(tea), returns(tea);
  const int threads = 128;
  const int blocks = static_cast<int>((ea + threads - 1) / threads);
  low_level_gae_kernel<<<blocks, threads>>>(T, E, A, c, reward.ptr, log_q_team.ptr, log_q_agent.ptr,
                                            values.ptr, bootstrap.ptr, last.ptr, term.ptr, trunc.ptr,
                                            rewards.ptr, advantages.ptr, returns.ptr);
  check(cudaGetLastError(), "kernel launch");
  check(cudaDeviceSynchronize(), "kernel");
  rewards.to_host(out.rewards);
  advantages.to_host(out.advantages);
  returns.to_host(out.returns);
}

}  // namespace hmasd
