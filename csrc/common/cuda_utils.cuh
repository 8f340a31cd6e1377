// Small CUDA helpers for the thin kernels. Deliberately torch-free so that .cu files
// compile in seconds: they see raw pointers, sizes and a stream only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pyhpe {
namespace cuda {

constexpr int kThreadsPerBlock = 256;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for a grid-stride loop over n items; capped so huge n reuses threads.
inline unsigned int blocks_for(int64_t n, int threads = kThreadsPerBlock) {
  int64_t blocks = ceil_div(n, threads);
  if (blocks < 1) blocks = 1;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return static_cast<unsigned int>(blocks);
}

#define PYHPE_GRID_STRIDE_LOOP(i, n)                                                  \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Throws std::runtime_error (surfaced as RuntimeError in Python) naming the kernel.
inline void check_launch(const char* kernel_name) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("pyhpe: CUDA kernel '") + kernel_name +
                             "' failed to launch: " + cudaGetErrorString(err));
  }
}

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

}  // namespace cuda
}  // namespace pyhpe
