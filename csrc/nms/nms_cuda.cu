// Thin CUDA kernels over nms_math.h: one thread per mask word (row a, 64-wide block of
// later positions, like torchvision's nms), per pick slot; the inherently sequential passes
// run one thread per image, soft-NMS one block per image.
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

__global__ void oks_nms_reduce_kernel(OksNmsReduceArgs args) {
  PYHPE_GRID_STRIDE_LOOP(m, args.M) { oks_nms_reduce_image(args, m); }
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

__global__ void alpha_reduce_kernel(AlphaReduceArgs args) {
  PYHPE_GRID_STRIDE_LOOP(m, args.M) { alpha_reduce_image(args, m); }
}

template <typename T>
__global__ void alpha_merge_kernel(AlphaMergeArgs<T> args, int64_t slots) {
  PYHPE_GRID_STRIDE_LOOP(s, slots) { alpha_merge_element(args, s); }
}

// The sequential passes use few threads each; small blocks spread images over the SMs.
constexpr int kImageThreads = 32;
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
  oks_nms_reduce_kernel<<<cuda::blocks_for(args.M, kImageThreads), kImageThreads, 0,
                          cuda::as_stream(stream)>>>(args);
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
  alpha_reduce_kernel<<<cuda::blocks_for(args.M, kImageThreads), kImageThreads, 0,
                        cuda::as_stream(stream)>>>(args);
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
