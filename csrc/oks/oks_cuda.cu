// Thin CUDA kernels over oks_math.h: one thread per output element.
#include "common/cuda_utils.cuh"
#include "oks/oks.h"

namespace pyhpe {
namespace oks {

template <typename T>
__global__ void oks_matrix_kernel(OksMatrixArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { oks_matrix_element(args, idx); }
}

template <typename T>
__global__ void oks_ragged_kernel(OksRaggedArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { oks_ragged_element(args, idx); }
}

template <typename T>
void oks_matrix_cuda(const OksMatrixArgs<T>& args, void* stream) {
  const int64_t total = args.N * args.D * args.G;
  if (total == 0) return;
  oks_matrix_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                         cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("oks_matrix");
}

template <typename T>
void oks_ragged_cuda(const OksRaggedArgs<T>& args, int64_t total, void* stream) {
  if (total == 0) return;
  oks_ragged_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                         cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("oks_matrix_ragged");
}

template void oks_matrix_cuda<float>(const OksMatrixArgs<float>&, void*);
template void oks_matrix_cuda<double>(const OksMatrixArgs<double>&, void*);
template void oks_ragged_cuda<float>(const OksRaggedArgs<float>&, int64_t, void*);
template void oks_ragged_cuda<double>(const OksRaggedArgs<double>&, int64_t, void*);

}  // namespace oks
}  // namespace pyhpe
