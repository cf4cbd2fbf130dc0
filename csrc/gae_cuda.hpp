// Optional CUDA version of the low-level pass (reward mixing, Eq. 4, and GAE), compiled only when
// CMake is configured with -DHMASD_CUDA=ON and finds a CUDA toolkit (setup.py: HMASD_CUDA=1).
// Same contract as low_level_gae in gae.hpp, on host pointers: the function copies the inputs to the
// device, runs one thread per (env, agent) column backwards over t, and copies the outputs back.
#pragma once

#include <cstdint>
#include <string>

#include "gae.hpp"

namespace hmasd {

// True when a CUDA device can be used by this process.
bool cuda_device_available();

// Throws std::runtime_error (with the CUDA error text) if any CUDA call fails.
void low_level_gae_cuda(std::int64_t T, std::int64_t E, std::int64_t A, const Coefficients& c,
                        const LowLevelInputs& in, const LowLevelOutputs& out);

}  // namespace hmasd
