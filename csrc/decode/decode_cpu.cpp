#include <ATen/Parallel.h>

#include "decode/decode.h"

namespace pyhpe {
namespace decode {

template <typename T>
void heatmap_decode_cpu(const HeatmapDecodeArgs<T>& args) {
  // A map costs an H*W argmax plus O(k^2) samples; a handful of maps per task.
  at::parallel_for(0, args.num_maps, 16, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) heatmap_decode_element(args, m);
  });
}

template <typename T>
void simcc_decode_cpu(const SimccDecodeArgs<T>& args) {
  at::parallel_for(0, args.num_maps, 16, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) simcc_decode_element(args, m);
  });
}

template <typename T>
void expectation_forward_cpu(const ExpectationArgs<T>& args) {
  at::parallel_for(0, args.num_maps, 8, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) expectation_forward_element(args, m);
  });
}

template <typename T>
void expectation_backward_cpu(const ExpectationArgs<T>& args) {
  at::parallel_for(0, args.num_maps, 8, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) expectation_backward_map(args, m);
  });
}

template <typename T>
void transform_preds_cpu(const TransformPredsArgs<T>& args) {
  at::parallel_for(0, args.B * args.K, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) transform_preds_element(args, i);
  });
}

template <typename T>
void affine_points_cpu(const AffinePointsArgs<T>& args) {
  at::parallel_for(0, args.B * args.K, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) affine_points_element(args, i);
  });
}

#define PYHPE_DECODE_INSTANTIATE(T)                                           \
  template void heatmap_decode_cpu<T>(const HeatmapDecodeArgs<T>&);           \
  template void simcc_decode_cpu<T>(const SimccDecodeArgs<T>&);               \
  template void expectation_forward_cpu<T>(const ExpectationArgs<T>&);        \
  template void expectation_backward_cpu<T>(const ExpectationArgs<T>&);       \
  template void transform_preds_cpu<T>(const TransformPredsArgs<T>&);         \
  template void affine_points_cpu<T>(const AffinePointsArgs<T>&);

PYHPE_DECODE_INSTANTIATE(float)
PYHPE_DECODE_INSTANTIATE(double)
#undef PYHPE_DECODE_INSTANTIATE

}  // namespace decode
}  // namespace pyhpe
