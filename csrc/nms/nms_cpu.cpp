#include <ATen/Parallel.h>

#include "nms/nms.h"

namespace pyhpe {
namespace nms {

// A mask word costs up to 64 screened OKS pairs; images are independent sequential passes.
constexpr int64_t kWordGrain = 16;
constexpr int64_t kImageGrain = 1;

template <typename T>
void row_mean_cpu(const RowMeanArgs<T>& args) {
  at::parallel_for(0, args.N, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) row_mean_element(args, i);
  });
}

template <typename T>
void oks_nms_mask_cpu(const OksNmsMaskArgs<T>& args, int64_t total_words) {
  at::parallel_for(0, total_words, kWordGrain, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) oks_nms_mask_element(args, idx);
  });
}

void oks_nms_reduce_cpu(const OksNmsReduceArgs& args) {
  at::parallel_for(0, args.M, kImageGrain, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) oks_nms_reduce_image(args, m);
  });
}

template <typename T>
void soft_nms_cpu(const SoftNmsArgs<T>& args) {
  at::parallel_for(0, args.M, kImageGrain, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) soft_nms_image(args, m);
  });
}

template <typename T>
void alpha_mask_cpu(const AlphaMaskArgs<T>& args, int64_t total_words) {
  at::parallel_for(0, total_words, kWordGrain, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) alpha_mask_element(args, idx);
  });
}

void alpha_reduce_cpu(const AlphaReduceArgs& args) {
  at::parallel_for(0, args.M, kImageGrain, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) alpha_reduce_image(args, m);
  });
}

template <typename T>
void alpha_merge_cpu(const AlphaMergeArgs<T>& args, int64_t slots) {
  at::parallel_for(0, slots, 16, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) alpha_merge_element(args, s);
  });
}

#define PYHPE_NMS_INSTANTIATE(T)                                                 \
  template void row_mean_cpu<T>(const RowMeanArgs<T>&);                          \
  template void oks_nms_mask_cpu<T>(const OksNmsMaskArgs<T>&, int64_t);          \
  template void soft_nms_cpu<T>(const SoftNmsArgs<T>&);                          \
  template void alpha_mask_cpu<T>(const AlphaMaskArgs<T>&, int64_t);             \
  template void alpha_merge_cpu<T>(const AlphaMergeArgs<T>&, int64_t);
PYHPE_NMS_INSTANTIATE(float)
PYHPE_NMS_INSTANTIATE(double)
#undef PYHPE_NMS_INSTANTIATE

}  // namespace nms
}  // namespace pyhpe
