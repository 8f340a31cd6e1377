// Thin CUDA kernels over nms_math.h: one thread per mask word (row a, 64-wide block of
// later positions, like torchvision's nms), per pick slot; the inherently sequential greedy
// passes run a warp per image (each row's words over the lanes), soft-NMS a block per image.
#include "common/cuda_utils.cuh"
#include "nms/nms.h"

namespace pyhpe {
namespace nms {

template <typename T>
__global__ void row_mean_kernel(RowMeanArgs<T> args) {
  PYHPE_GRID_STRIDE_LOOP(i, args.N) { row_mean_element(args, i); }
}

template <typename T>
__global__ void oks_nms_mask_kernel(OksNmsMaskArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { oks_nms_mask_element(args, idx); }
}

constexpr int kWarpLanes = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// The greedy passes run one warp per image: rows in order (a warp barrier between rows),
// each row's mask words spread over the lanes (nms_math.h's lane-split steps).
__device__ __forceinline__ int64_t warp_id() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpLanes;
}
__device__ __forceinline__ int64_t warp_count() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x / kWarpLanes;
}

__global__ void oks_nms_reduce_kernel(OksNmsReduceArgs a) {
  const int lane = threadIdx.x % kWarpLanes;
  for (int64_t m = warp_id(); m < a.M; m += warp_count()) {
    const int64_t n = a.offsets[m + 1] - a.offsets[m];
    for (int64_t row = 0; row < n; ++row) {
      oks_nms_reduce_row(a, m, row, lane, kWarpLanes);
      __syncwarp();
    }
  }
}

// soft_nms_image with one block per image: every pick's rescoring (an OKS per remaining
// pose, computed on the fly) is spread over the block's threads; thread 0 records the pick
// and reorders the list, as the CPU loop does, between barriers.
template <typename T>
__global__ void soft_nms_block_kernel(SoftNmsArgs<T> args) {
  __shared__ SoftNmsImage<T> st;
  for (int64_t m = blockIdx.x; m < args.M; m += gridDim.x) {
    if (threadIdx.x == 0) st = soft_nms_begin(args, m);
    __syncthreads();
    for (int64_t kept = 0; st.len > 0 && kept < args.max_dets; ++kept) {
      if (threadIdx.x == 0) soft_nms_keep(args, m, st, kept);
      for (int64_t p = threadIdx.x; p < st.len - 1; p += blockDim.x) {
        soft_nms_rescore(args, m, st, p, p + 1);
      }
      __syncthreads();
      if (threadIdx.x == 0) soft_nms_reorder(st);
      __syncthreads();
    }
    __syncthreads();  // every thread has read st before the next image overwrites it
  }
}

template <typename T>
__global__ void alpha_mask_kernel(AlphaMaskArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { alpha_mask_element(args, idx); }
}

__global__ void alpha_reduce_kernel(AlphaReduceArgs a) {
  const int lane = threadIdx.x % kWarpLanes;
  for (int64_t m = warp_id(); m < a.M; m += warp_count()) {
    const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
    int64_t count = 0;
    uint64_t* removed = a.removed + a.removed_offsets[m];
    for (int64_t w = lane; w < words_for(n); w += kWarpLanes) removed[w] = 0;
    __syncwarp();
    int64_t row = 0;
    while (row < n) {
      if (alpha_row_removed(a, m, row)) {  // the same answer on every lane
        ++row;
        continue;
      }
      const int64_t slot = start + count++;
      const bool mine = alpha_reduce_pick_lane(a, m, row, slot, lane, kWarpLanes);
      const bool any = __any_sync(kFullMask, mine) != 0;
      __syncwarp();
      if (lane == 0) alpha_reduce_pick_done(a, m, row, slot, any);
      __syncwarp();
    }
    if (lane == 0) a.pick_counts[m] = count;
  }
}

template <typename T>
__global__ void alpha_merge_kernel(AlphaMergeArgs<T> args, int64_t slots) {
  PYHPE_GRID_STRIDE_LOOP(s, slots) { alpha_merge_element(args, s); }
}

// The greedy passes: a warp per image, four warps a block.
constexpr int kReduceThreads = 4 * kWarpLanes;
// Soft-NMS: a block per image (grid-strided beyond this many images).
constexpr int kSoftNmsThreads = 256;
constexpr int64_t kSoftNmsMaxBlocks = 65535;

template <typename T>
void row_mean_cuda(const RowMeanArgs<T>& args, void* stream) {
  if (args.N == 0) return;
  row_mean_kernel<T><<<cuda::blocks_for(args.N), cuda::kThreadsPerBlock, 0,
                       cuda::as_stream(stream)>>>(args);
  cuda::check_launch("nms_row_mean");
}

template <typename T>
void oks_nms_mask_cuda(const OksNmsMaskArgs<T>& args, int64_t total_words, void* stream) {
  if (total_words == 0) return;
  oks_nms_mask_kernel<T><<<cuda::blocks_for(total_words), cuda::kThreadsPerBlock, 0,
                           cuda::as_stream(stream)>>>(args, total_words);
  cuda::check_launch("oks_nms_mask");
}

void oks_nms_reduce_cuda(const OksNmsReduceArgs& args, void* stream) {
  if (args.M == 0) return;
  oks_nms_reduce_kernel<<<cuda::blocks_for(args.M * kWarpLanes, kReduceThreads), kReduceThreads,
                          0, cuda::as_stream(stream)>>>(args);
  cuda::check_launch("oks_nms_reduce");
}

template <typename T>
void soft_nms_cuda(const SoftNmsArgs<T>& args, void* stream) {
  if (args.M == 0) return;
  const int64_t blocks = args.M < kSoftNmsMaxBlocks ? args.M : kSoftNmsMaxBlocks;
  soft_nms_block_kernel<T><<<static_cast<unsigned>(blocks), kSoftNmsThreads, 0,
                             cuda::as_stream(stream)>>>(args);
  cuda::check_launch("soft_oks_nms");
}

template <typename T>
void alpha_mask_cuda(const AlphaMaskArgs<T>& args, int64_t total_words, void* stream) {
  if (total_words == 0) return;
  alpha_mask_kernel<T><<<cuda::blocks_for(total_words), cuda::kThreadsPerBlock, 0,
                         cuda::as_stream(stream)>>>(args, total_words);
  cuda::check_launch("pose_nms_alphapose_mask");
}

void alpha_reduce_cuda(const AlphaReduceArgs& args, void* stream) {
  if (args.M == 0) return;
  alpha_reduce_kernel<<<cuda::blocks_for(args.M * kWarpLanes, kReduceThreads), kReduceThreads,
                        0, cuda::as_stream(stream)>>>(args);
  cuda::check_launch("pose_nms_alphapose_reduce");
}

template <typename T>
void alpha_merge_cuda(const AlphaMergeArgs<T>& args, int64_t slots, void* stream) {
  if (slots == 0) return;
  alpha_merge_kernel<T><<<cuda::blocks_for(slots), cuda::kThreadsPerBlock, 0,
                          cuda::as_stream(stream)>>>(args, slots);
  cuda::check_launch("pose_nms_alphapose_merge");
}

#define PYHPE_NMS_INSTANTIATE(T)                                                  \
  template void row_mean_cuda<T>(const RowMeanArgs<T>&, void*);                   \
  template void oks_nms_mask_cuda<T>(const OksNmsMaskArgs<T>&, int64_t, void*);   \
  template void soft_nms_cuda<T>(const SoftNmsArgs<T>&, void*);                   \
  template void alpha_mask_cuda<T>(const AlphaMaskArgs<T>&, int64_t, void*);      \
  template void alpha_merge_cuda<T>(const AlphaMergeArgs<T>&, int64_t, void*);
PYHPE_NMS_INSTANTIATE(float)
PYHPE_NMS_INSTANTIATE(double)
#undef PYHPE_NMS_INSTANTIATE

}  // namespace nms
}  // namespace pyhpe
