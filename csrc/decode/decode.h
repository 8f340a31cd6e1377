// Launchers of the decode family. Raw pointers only, so the .cu file needs no torch headers.
#pragma once

#include <stdint.h>

#include "decode/decode_math.h"

namespace pyhpe {
namespace decode {

template <typename T>
void heatmap_decode_cpu(const HeatmapDecodeArgs<T>& args);
template <typename T>
void simcc_decode_cpu(const SimccDecodeArgs<T>& args);
template <typename T>
void expectation_forward_cpu(const ExpectationArgs<T>& args);
template <typename T>
void expectation_backward_cpu(const ExpectationArgs<T>& args);
template <typename T>
void transform_preds_cpu(const TransformPredsArgs<T>& args);
template <typename T>
void affine_points_cpu(const AffinePointsArgs<T>& args);
template <typename T>
void topdown_rescore_cpu(const TopdownRescoreArgs<T>& args);

#ifdef PYHPE_WITH_CUDA
// `stream` is a cudaStream_t.
template <typename T>
void heatmap_decode_cuda(const HeatmapDecodeArgs<T>& args, void* stream);
template <typename T>
void simcc_decode_cuda(const SimccDecodeArgs<T>& args, void* stream);
template <typename T>
void expectation_forward_cuda(const ExpectationArgs<T>& args, void* stream);
template <typename T>
void expectation_backward_cuda(const ExpectationArgs<T>& args, void* stream);
template <typename T>
void transform_preds_cuda(const TransformPredsArgs<T>& args, void* stream);
template <typename T>
void affine_points_cuda(const AffinePointsArgs<T>& args, void* stream);
template <typename T>
void topdown_rescore_cuda(const TopdownRescoreArgs<T>& args, void* stream);
#endif

}  // namespace decode
}  // namespace pyhpe
