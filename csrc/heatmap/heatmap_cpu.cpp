#include <ATen/Parallel.h>

#include "heatmap/heatmap.h"

namespace pyhpe {
namespace heatmap {

// A row is W pixels (mostly zeros); a few hundred rows amortize a task.
constexpr int64_t kRowGrain = 256;

template <typename T>
void gaussian_heatmaps_cpu(const GaussianArgs<T>& args) {
  const int64_t rows = args.B * args.K * args.H;
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) gaussian_heatmap_row(args, r);
  });
  const int64_t instances = args.B * args.N * args.K;
  for (int64_t i = 0; i < instances; ++i) gaussian_weight_element(args, i);
}

template <typename T>
void simcc_labels_cpu(const SimCCArgs<T>& args) {
  const int64_t total = args.B * args.K * (args.Wx + args.Wy);
  at::parallel_for(0, total, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) simcc_element(args, i);
  });
  for (int64_t bk = 0; bk < args.B * args.K; ++bk) simcc_weight_element(args, bk);
}

template <typename T>
void paf_targets_cpu(const PafArgs<T>& args) {
  const int64_t rows = args.B * args.L * args.H;
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) paf_row(args, r);
  });
}

template void gaussian_heatmaps_cpu<float>(const GaussianArgs<float>&);
template void gaussian_heatmaps_cpu<double>(const GaussianArgs<double>&);
template void simcc_labels_cpu<float>(const SimCCArgs<float>&);
template void simcc_labels_cpu<double>(const SimCCArgs<double>&);
template void paf_targets_cpu<float>(const PafArgs<float>&);
template void paf_targets_cpu<double>(const PafArgs<double>&);

}  // namespace heatmap
}  // namespace pyhpe
