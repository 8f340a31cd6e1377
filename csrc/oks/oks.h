// Launchers of the OKS family. Raw pointers only, so the .cu file needs no torch headers.
#pragma once

#include <stdint.h>

#include "oks/oks_math.h"

namespace pyhpe {
namespace oks {

template <typename T>
void oks_matrix_cpu(const OksMatrixArgs<T>& args);
template <typename T>
void oks_ragged_cpu(const OksRaggedArgs<T>& args, int64_t total);

#ifdef PYHPE_WITH_CUDA
// `stream` is a cudaStream_t.
template <typename T>
void oks_matrix_cuda(const OksMatrixArgs<T>& args, void* stream);
template <typename T>
void oks_ragged_cuda(const OksRaggedArgs<T>& args, int64_t total, void* stream);
#endif

}  // namespace oks
}  // namespace pyhpe
