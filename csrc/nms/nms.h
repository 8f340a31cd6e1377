// Launchers of the pose NMS family. Raw pointers only, so the .cu file needs no torch headers.
#pragma once

#include <stdint.h>

#include "nms/nms_math.h"

namespace pyhpe {
namespace nms {

template <typename T>
void row_mean_cpu(const RowMeanArgs<T>& args);
template <typename T>
void oks_nms_mask_cpu(const OksNmsMaskArgs<T>& args, int64_t total_words);
void oks_nms_reduce_cpu(const OksNmsReduceArgs& args);
template <typename T>
void soft_nms_cpu(const SoftNmsArgs<T>& args);
// The mask-free greedy pass (picks, owners, pick counts; `mask` and `removed` unused).
template <typename T>
void alpha_greedy_cpu(const AlphaMaskArgs<T>& args, const AlphaReduceArgs& reduce);
template <typename T>
void alpha_merge_cpu(const AlphaMergeArgs<T>& args, int64_t slots);

#ifdef PYHPE_WITH_CUDA
// `stream` is a cudaStream_t.
template <typename T>
void row_mean_cuda(const RowMeanArgs<T>& args, void* stream);
template <typename T>
void oks_nms_mask_cuda(const OksNmsMaskArgs<T>& args, int64_t total_words, void* stream);
void oks_nms_reduce_cuda(const OksNmsReduceArgs& args, void* stream);
template <typename T>
void soft_nms_cuda(const SoftNmsArgs<T>& args, void* stream);
template <typename T>
void alpha_mask_cuda(const AlphaMaskArgs<T>& args, int64_t total_words, void* stream);
void alpha_reduce_cuda(const AlphaReduceArgs& args, void* stream);
template <typename T>
void alpha_merge_cuda(const AlphaMergeArgs<T>& args, int64_t slots, void* stream);
#endif

}  // namespace nms
}  // namespace pyhpe
