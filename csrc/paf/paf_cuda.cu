// Thin CUDA kernels over paf_math.h: one thread per pixel (peaks) or per (b, limb, i, j).
#include "common/cuda_utils.cuh"
#include "paf/paf.h"

namespace pyhpe {
namespace paf {

template <typename T>
__global__ void peak_flags_kernel(PeakArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { peak_flag_element(args, idx); }
}

template <typename T>
__global__ void peak_write_kernel(PeakArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { peak_write_element(args, idx); }
}

template <typename T>
__global__ void paf_scores_kernel(ScoreArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { score_element(args, idx); }
}

template <typename T>
void peak_flags_cuda(const PeakArgs<T>& args, void* stream) {
  const int64_t total = args.channels * args.H * args.W;
  if (total == 0) return;
  peak_flags_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                         cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("find_peaks (flags)");
}

template <typename T>
void peak_write_cuda(const PeakArgs<T>& args, void* stream) {
  const int64_t total = args.channels * args.H * args.W;
  if (total == 0) return;
  peak_write_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                         cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("find_peaks (write)");
}

template <typename T>
void paf_scores_cuda(const ScoreArgs<T>& args, void* stream) {
  const int64_t total = args.B * args.L * args.M * args.M;
  if (total == 0) return;
  paf_scores_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                         cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("paf_scores");
}

template void peak_flags_cuda<float>(const PeakArgs<float>&, void*);
template void peak_flags_cuda<double>(const PeakArgs<double>&, void*);
template void peak_write_cuda<float>(const PeakArgs<float>&, void*);
template void peak_write_cuda<double>(const PeakArgs<double>&, void*);
template void paf_scores_cuda<float>(const ScoreArgs<float>&, void*);
template void paf_scores_cuda<double>(const ScoreArgs<double>&, void*);

}  // namespace paf
}  // namespace pyhpe
