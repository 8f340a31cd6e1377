// Thin CUDA kernels over heatmap_math.h: one thread per output element.
#include "common/cuda_utils.cuh"
#include "heatmap/heatmap.h"

namespace pyhpe {
namespace heatmap {

template <typename T>
__global__ void gaussian_heatmap_kernel(GaussianArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { gaussian_heatmap_element(args, idx); }
}

template <typename T>
__global__ void gaussian_weight_kernel(GaussianArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { gaussian_weight_element(args, idx); }
}

template <typename T>
__global__ void simcc_kernel(SimCCArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { simcc_element(args, idx); }
}

template <typename T>
__global__ void simcc_weight_kernel(SimCCArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { simcc_weight_element(args, idx); }
}

template <typename T>
__global__ void paf_kernel(PafArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { paf_element(args, idx); }
}

template <typename T>
void gaussian_heatmaps_cuda(const GaussianArgs<T>& args, void* stream) {
  const int64_t pixels = args.B * args.K * args.H * args.W;
  if (pixels > 0) {
    gaussian_heatmap_kernel<T><<<cuda::blocks_for(pixels), cuda::kThreadsPerBlock, 0,
                                 cuda::as_stream(stream)>>>(args, pixels);
    cuda::check_launch("gaussian heatmaps");
  }
  const int64_t instances = args.B * args.N * args.K;
  if (instances > 0) {
    gaussian_weight_kernel<T><<<cuda::blocks_for(instances), cuda::kThreadsPerBlock, 0,
                                cuda::as_stream(stream)>>>(args, instances);
    cuda::check_launch("gaussian heatmaps (weights)");
  }
}

template <typename T>
void simcc_labels_cuda(const SimCCArgs<T>& args, void* stream) {
  const int64_t total = args.B * args.K * (args.Wx + args.Wy);
  if (total > 0) {
    simcc_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                      cuda::as_stream(stream)>>>(args, total);
    cuda::check_launch("simcc_labels");
  }
  const int64_t bk = args.B * args.K;
  if (bk > 0) {
    simcc_weight_kernel<T><<<cuda::blocks_for(bk), cuda::kThreadsPerBlock, 0,
                             cuda::as_stream(stream)>>>(args, bk);
    cuda::check_launch("simcc_labels (weights)");
  }
}

template <typename T>
void paf_targets_cuda(const PafArgs<T>& args, void* stream) {
  const int64_t total = args.B * args.L * args.H * args.W;
  if (total == 0) return;
  paf_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                  cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("paf_targets");
}

template void gaussian_heatmaps_cuda<float>(const GaussianArgs<float>&, void*);
template void gaussian_heatmaps_cuda<double>(const GaussianArgs<double>&, void*);
template void simcc_labels_cuda<float>(const SimCCArgs<float>&, void*);
template void simcc_labels_cuda<double>(const SimCCArgs<double>&, void*);
template void paf_targets_cuda<float>(const PafArgs<float>&, void*);
template void paf_targets_cuda<double>(const PafArgs<double>&, void*);

}  // namespace heatmap
}  // namespace pyhpe
