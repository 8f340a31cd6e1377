// Launchers of the volume family. Raw pointers only, so the .cu file needs no torch headers.
#pragma once

#include <stdint.h>

#include "volume/volume_math.h"

namespace pyhpe {
namespace volume {

template <typename T>
void soft_argmax_3d_forward_cpu(const SoftArgmax3dArgs<T>& args);
template <typename T>
void soft_argmax_3d_backward_cpu(const SoftArgmax3dArgs<T>& args);
template <typename T>
void gaussian_volumes_cpu(const GaussianVolumeArgs<T>& args);

#ifdef PYHPE_WITH_CUDA
// `stream` is a cudaStream_t.
template <typename T>
void soft_argmax_3d_forward_cuda(const SoftArgmax3dArgs<T>& args, void* stream);
template <typename T>
void soft_argmax_3d_backward_cuda(const SoftArgmax3dArgs<T>& args, void* stream);
template <typename T>
void gaussian_volumes_cuda(const GaussianVolumeArgs<T>& args, void* stream);
#endif

}  // namespace volume
}  // namespace pyhpe
