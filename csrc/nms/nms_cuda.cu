// Thin CUDA kernels over nms_math.h: one thread per mask word (row a, 64-wide block of
// later positions, like torchvision's nms), per OKS matrix cell, per pick slot; the
// inherently sequential passes run one thread per image.
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

template <typename T>
__global__ void oks_sim_kernel(OksSimArgs<T> args, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { oks_sim_element(args, idx); }
}

template <typename T>
__global__ void soft_nms_kernel(SoftNmsArgs<T> args) {
  PYHPE_GRID_STRIDE_LOOP(m, args.M) { soft_nms_image(args, m); }
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
void oks_sim_cuda(const OksSimArgs<T>& args, int64_t total, void* stream) {
  if (total == 0) return;
  oks_sim_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                      cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("oks_nms_similarity");
}

template <typename T>
void soft_nms_cuda(const SoftNmsArgs<T>& args, void* stream) {
  if (args.M == 0) return;
  soft_nms_kernel<T><<<cuda::blocks_for(args.M, kImageThreads), kImageThreads, 0,
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
  template void oks_sim_cuda<T>(const OksSimArgs<T>&, int64_t, void*);            \
  template void soft_nms_cuda<T>(const SoftNmsArgs<T>&, void*);                   \
  template void alpha_mask_cuda<T>(const AlphaMaskArgs<T>&, int64_t, void*);      \
  template void alpha_merge_cuda<T>(const AlphaMergeArgs<T>&, int64_t, void*);
PYHPE_NMS_INSTANTIATE(float)
PYHPE_NMS_INSTANTIATE(double)
#undef PYHPE_NMS_INSTANTIATE

}  // namespace nms
}  // namespace pyhpe
