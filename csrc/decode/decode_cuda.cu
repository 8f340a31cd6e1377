// Thin CUDA kernels over decode_math.h: one thread per (instance, keypoint) map, per
// keypoint, or (soft-argmax backward, from the forward's statistics) per heatmap element.
// The soft-argmax family's forward runs one warp per map instead: a map is a reduction
// over H * W elements, and one thread per map would read 32 maps' rows apart (uncoalesced)
// on a few SMs; the warp's lanes read consecutive elements, and the per-element weight and
// the statistics come from the same decode_math.h functions as the CPU path.
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

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

template <typename V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ void warp_extremes(T* mx, T* mn) {
  for (int o = kWarp / 2; o > 0; o >>= 1) {
    const T a = __shfl_xor_sync(kFullMask, *mx, o), b = __shfl_xor_sync(kFullMask, *mn, o);
    *mx = a > *mx ? a : *mx;
    *mn = b < *mn ? b : *mn;
  }
}

// One warp per map (grid-stride over maps): lane-strided max scan and sums, warp
// reductions, then lane 0 writes the statistics and coordinates (expectation_finish /
// expectation_coords, shared with the CPU).
template <typename T>
__global__ void expectation_forward_kernel(ExpectationArgs<T> a) {
  const int lane = threadIdx.x % kWarp;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  for (int64_t m = first; m < a.num_maps; m += stride) {
    const T* h = a.heatmaps + m * HW;
    MapSums s{0.0, 0.0, 0.0, 0.0};
    const bool gamma_pass = a.debias != kDebiasNone && a.gamma != a.beta;
    T mx = -INFINITY, mn = INFINITY;
    bool nan_any = false;
    if (a.normalize == kNormSoftmax || gamma_pass) {
      bool nan_seen = false;
      for (int64_t j = lane; j < HW; j += kWarp) {
        const T v = h[j];
        nan_seen |= v != v;
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
      }
      warp_extremes(&mx, &mn);
      nan_any = __any_sync(kFullMask, nan_seen) != 0;
    }
    if (a.normalize == kNormSoftmax) s.mmax = scaled_extreme(a.beta, mx, mn, nan_any);
    if (gamma_pass) {
      // The debias softmax's shift and sum spread over the lanes too (not lane 0 alone).
      s.mg = scaled_extreme(a.gamma, mx, mn, nan_any);
      const T gamma_t = static_cast<T>(a.gamma), mg_t = static_cast<T>(s.mg);
      double Sg = 0.0;
      for (int64_t j = lane; j < HW; j += kWarp) Sg += gamma_weight(gamma_t, h[j], mg_t);
      s.Sg = warp_sum(Sg);
      s.gamma_done = true;
    }
    const T beta_t = static_cast<T>(a.beta), mmax_t = static_cast<T>(s.mmax);
    for (int64_t j = lane; j < HW; j += kWarp) {
      const int row = static_cast<int>(j / a.W), col = static_cast<int>(j - row * a.W);
      const double f = expectation_weight(a, h[j], beta_t, mmax_t);
      s.S += f;
      s.Sc += f * col;
      s.Sr += f * row;
    }
    s.S = warp_sum(s.S);
    s.Sc = warp_sum(s.Sc);
    s.Sr = warp_sum(s.Sr);
    if (lane == 0) {
      expectation_finish(a, m, s);
      expectation_coords(a, m);
    }
  }
}

template <typename T>
__global__ void expectation_coeffs_kernel(ExpectationArgs<T> args) {
  PYHPE_GRID_STRIDE_LOOP(m, args.num_maps) { expectation_coeffs_element(args, m); }
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

template <typename T>
__global__ void topdown_rescore_kernel(TopdownRescoreArgs<T> args) {
  PYHPE_GRID_STRIDE_LOOP(n, args.N) { topdown_rescore_element(args, n); }
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
  // One warp per map, 8 maps per 256-thread block.
  expectation_forward_kernel<T><<<cuda::blocks_for(args.num_maps * kWarp), cuda::kThreadsPerBlock,
                                  0, cuda::as_stream(stream)>>>(args);
  cuda::check_launch("expectation_forward");
}

template <typename T>
void expectation_backward_cuda(const ExpectationArgs<T>& args, void* stream) {
  const int64_t total = args.num_maps * static_cast<int64_t>(args.H) * args.W;
  if (total == 0) return;
  if (args.coeffs != nullptr) {  // per-map coefficients first: no double division per element
    expectation_coeffs_kernel<T><<<cuda::blocks_for(args.num_maps), cuda::kThreadsPerBlock, 0,
                                   cuda::as_stream(stream)>>>(args);
    cuda::check_launch("expectation_coeffs");
  }
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

template <typename T>
void topdown_rescore_cuda(const TopdownRescoreArgs<T>& args, void* stream) {
  if (args.N == 0) return;
  topdown_rescore_kernel<T><<<cuda::blocks_for(args.N, kMapThreads), kMapThreads, 0,
                              cuda::as_stream(stream)>>>(args);
  cuda::check_launch("topdown_rescore");
}

#define PYHPE_DECODE_INSTANTIATE(T)                                             \
  template void heatmap_decode_cuda<T>(const HeatmapDecodeArgs<T>&, void*);     \
  template void simcc_decode_cuda<T>(const SimccDecodeArgs<T>&, void*);         \
  template void expectation_forward_cuda<T>(const ExpectationArgs<T>&, void*);  \
  template void expectation_backward_cuda<T>(const ExpectationArgs<T>&, void*); \
  template void transform_preds_cuda<T>(const TransformPredsArgs<T>&, void*);   \
  template void affine_points_cuda<T>(const AffinePointsArgs<T>&, void*);       \
  template void topdown_rescore_cuda<T>(const TopdownRescoreArgs<T>&, void*);

PYHPE_DECODE_INSTANTIATE(float)
PYHPE_DECODE_INSTANTIATE(double)
#undef PYHPE_DECODE_INSTANTIATE

}  // namespace decode
}  // namespace pyhpe
