#include <ATen/Parallel.h>

#include "oks/oks.h"

namespace pyhpe {
namespace oks {

// A pair costs about 20*K flops; keep a grain of a few thousand pairs.
constexpr int64_t kGrain = 2048;

template <typename T>
void oks_matrix_cpu(const OksMatrixArgs<T>& args) {
  const int64_t total = args.N * args.D * args.G;
  at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) oks_matrix_element(args, idx);
  });
}

template <typename T>
void oks_ragged_cpu(const OksRaggedArgs<T>& args, int64_t total) {
  at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) oks_ragged_element(args, idx);
  });
}

template void oks_matrix_cpu<float>(const OksMatrixArgs<float>&);
template void oks_matrix_cpu<double>(const OksMatrixArgs<double>&);
template void oks_ragged_cpu<float>(const OksRaggedArgs<float>&, int64_t);
template void oks_ragged_cpu<double>(const OksRaggedArgs<double>&, int64_t);

}  // namespace oks
}  // namespace pyhpe
