// Thin CUDA kernels over decode_math.h: one thread per (instance, keypoint) map, per
// keypoint, or (soft-argmax backward, from the forward's statistics) per heatmap element.
#include "common/cuda_utils.cuh"
#include "decode/decode.h"

namespace pyhpe {
namespace decode {

template <typename T>
__global__ void heatmap_decode_kernel(HeatmapDecodeArgs<T> args) {
  PYHPE_GRID_STRIDE_LOOP(m, args.num_maps) { heatmap_decode_element(args, m); }
}

template <typename T>
__global__ void simcc_decode_kernel(SimccDecodeArgs<T> args) {
  PYHPE_GRID_STRIDE_LOOP(m, args.num_maps) { simcc_decode_element(args, m); }
}

template <typename T>
__global__ void expectation_forward_kernel(ExpectationArgs<T> args) {
  PYHPE_GRID_STRIDE_LOOP(m, args.num_maps) { expectation_forward_element(args, m); }
}

template <typename T>
__global__ void expectation_backward_kernel(ExpectationArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { expectation_backward_element(args, idx); }
}

template <typename T>
__global__ void transform_preds_kernel(TransformPredsArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(i, total) { transform_preds_element(args, i); }
}

template <typename T>
__global__ void affine_points_kernel(AffinePointsArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(i, total) { affine_points_element(args, i); }
}

// Per-map kernels run few, long threads: small blocks spread them over more SMs.
constexpr int kMapThreads = 64;

template <typename T>
void heatmap_decode_cuda(const HeatmapDecodeArgs<T>& args, void* stream) {
  if (args.num_maps == 0) return;
  heatmap_decode_kernel<T><<<cuda::blocks_for(args.num_maps, kMapThreads), kMapThreads, 0,
                             cuda::as_stream(stream)>>>(args);
  cuda::check_launch("heatmap_decode");
}

template <typename T>
void simcc_decode_cuda(const SimccDecodeArgs<T>& args, void* stream) {
  if (args.num_maps == 0) return;
  simcc_decode_kernel<T><<<cuda::blocks_for(args.num_maps, kMapThreads), kMapThreads, 0,
                           cuda::as_stream(stream)>>>(args);
  cuda::check_launch("simcc_decode");
}

template <typename T>
void expectation_forward_cuda(const ExpectationArgs<T>& args, void* stream) {
  if (args.num_maps == 0) return;
  expectation_forward_kernel<T><<<cuda::blocks_for(args.num_maps, kMapThreads), kMapThreads, 0,
                                  cuda::as_stream(stream)>>>(args);
  cuda::check_launch("expectation_forward");
}

template <typename T>
void expectation_backward_cuda(const ExpectationArgs<T>& args, void* stream) {
  const int64_t total = args.num_maps * static_cast<int64_t>(args.H) * args.W;
  if (total == 0) return;
  expectation_backward_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                                   cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("expectation_backward");
}

template <typename T>
void transform_preds_cuda(const TransformPredsArgs<T>& args, void* stream) {
  const int64_t total = args.B * args.K;
  if (total == 0) return;
  transform_preds_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                              cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("transform_preds");
}

template <typename T>
void affine_points_cuda(const AffinePointsArgs<T>& args, void* stream) {
  const int64_t total = args.B * args.K;
  if (total == 0) return;
  affine_points_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                            cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("affine_transform_points");
}

#define PYHPE_DECODE_INSTANTIATE(T)                                             \
  template void heatmap_decode_cuda<T>(const HeatmapDecodeArgs<T>&, void*);     \
  template void simcc_decode_cuda<T>(const SimccDecodeArgs<T>&, void*);         \
  template void expectation_forward_cuda<T>(const ExpectationArgs<T>&, void*);  \
  template void expectation_backward_cuda<T>(const ExpectationArgs<T>&, void*); \
  template void transform_preds_cuda<T>(const TransformPredsArgs<T>&, void*);   \
  template void affine_points_cuda<T>(const AffinePointsArgs<T>&, void*);

PYHPE_DECODE_INSTANTIATE(float)
PYHPE_DECODE_INSTANTIATE(double)
#undef PYHPE_DECODE_INSTANTIATE

}  // namespace decode
}  // namespace pyhpe
