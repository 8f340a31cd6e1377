// Helpers for the family .cpp files that register ops (never included by .cu files).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#ifdef PYHPE_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <optional>

namespace pyhpe {

// Raw pointer of an optional tensor (nullptr when absent).
template <typename T>
inline const T* opt_ptr(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->data_ptr<T>() : nullptr;
}

inline std::optional<at::Tensor> opt_contiguous(const std::optional<at::Tensor>& t) {
  if (!t.has_value()) return t;
  return t->contiguous();
}

#ifdef PYHPE_WITH_CUDA
// Current stream of the tensor's device, as the void* the launchers take.
inline void* cuda_stream_of(const at::Tensor& t) {
  return static_cast<void*>(c10::cuda::getCurrentCUDAStream(t.device().index()).stream());
}
#endif

// Runs launcher `name` on the tensor's device, inside AT_DISPATCH (uses scalar_t):
// name##_cuda<scalar_t>(args..., stream) under a CUDAGuard for a CUDA tensor, else
// name##_cpu<scalar_t>(args...).
#ifdef PYHPE_WITH_CUDA
#define PYHPE_LAUNCH(tensor, name, ...)                                      \
  do {                                                                       \
    if ((tensor).is_cuda()) {                                                \
      c10::cuda::CUDAGuard pyhpe_launch_guard((tensor).device());            \
      name##_cuda<scalar_t>(__VA_ARGS__, ::pyhpe::cuda_stream_of(tensor));   \
    } else {                                                                 \
      name##_cpu<scalar_t>(__VA_ARGS__);                                     \
    }                                                                        \
  } while (0)
#else
#define PYHPE_LAUNCH(tensor, name, ...) name##_cpu<scalar_t>(__VA_ARGS__)
#endif

// Fails clearly when the extension was built without CUDA but a CUDA tensor arrives.
inline void require_cuda_build(const char* op, const at::Tensor& t) {
#ifndef PYHPE_WITH_CUDA
  TORCH_CHECK(!t.is_cuda(), op, ": pyhpe was built without CUDA kernels but got a CUDA tensor; "
              "rebuild with nvcc available (or FORCE_CUDA=1)");
#else
  (void)op;
  (void)t;
#endif
}

}  // namespace pyhpe
