#include <ATen/Parallel.h>

#include <type_traits>

#include "common/cpu_features.h"
#include "decode/decode.h"
#include "decode/decode_avx2.h"

namespace pyhpe {
namespace decode {

template <typename T>
void heatmap_decode_cpu(const HeatmapDecodeArgs<T>& args) {
  // A map costs an H*W argmax plus O(k^2) samples; a handful of maps per task. Float maps
  // take the AVX2 argmax when the CPU has it (NaN maps and small ones fall back).
  const bool avx2 = cpu::avx2_enabled();
  at::parallel_for(0, args.num_maps, 16, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
#ifdef PYHPE_DECODE_AVX2
      if (std::is_same<T, float>::value && avx2) {
        const int64_t HW = static_cast<int64_t>(args.H) * args.W;
        int64_t idx;
        float mx;
        if (avx2::argmax(reinterpret_cast<const float*>(args.heatmaps) + m * HW, HW, &idx, &mx)) {
          heatmap_decode_at(args, m, idx, static_cast<T>(mx));
          continue;
        }
      }
#endif
      heatmap_decode_element(args, m);
    }
  });
  (void)avx2;
}

template <typename T>
void simcc_decode_cpu(const SimccDecodeArgs<T>& args) {
  at::parallel_for(0, args.num_maps, 16, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) simcc_decode_element(args, m);
  });
}

// Float maps take the AVX2 + FMA paths of decode_avx2.h when the CPU has them; float64
// (gradcheck, references) and the rare cases those paths leave out run the generic math.
template <typename T>
MapSums expectation_sums_cpu(const ExpectationArgs<T>& a, int64_t m, int64_t end, bool avx2) {
#ifdef PYHPE_DECODE_AVX2
  if (std::is_same<T, float>::value && avx2) {
    MapSums s;
    const int64_t HW = static_cast<int64_t>(a.H) * a.W;
    const float* h = reinterpret_cast<const float*>(a.heatmaps) + m * HW;
    if (avx2::map_sums(h, a.H, a.W, a.normalize == kNormSoftmax, a.beta, &s,
                       m + 1 < end ? h + HW : nullptr))
      return s;
  }
#endif
  (void)avx2, (void)end;
  return expectation_sums(a, m);
}

// Maps per parallel task: at least ~64 K elements, so a single image's 17 maps run on the
// calling thread instead of waking a pool thread for a few microseconds of work.
template <typename T>
int64_t expectation_grain(const ExpectationArgs<T>& a) {
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  return hw >= 65536 ? 1 : (65536 + hw - 1) / hw;
}

template <typename T>
void expectation_forward_cpu(const ExpectationArgs<T>& args) {
  const bool avx2 = cpu::avx2_enabled();
  at::parallel_for(0, args.num_maps, expectation_grain(args), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      expectation_finish(args, m, expectation_sums_cpu(args, m, end, avx2));
      expectation_coords(args, m);
    }
  });
}

template <typename T>
void expectation_backward_map_cpu(const ExpectationArgs<T>& a, int64_t m, bool avx2) {
#ifdef PYHPE_DECODE_AVX2
  if (std::is_same<T, float>::value && avx2) {
    const double* st = a.stats + m * kNumStats;
    const bool softmax = a.normalize == kNormSoftmax;
    const GradCoeffs c = expectation_grad_coeffs_of_map(a, m);
    if (c.kr == 0.0 && st[7] == 0.0 && (!softmax || st[0] == st[0])) {
      const int64_t off = m * a.H * a.W;
      avx2::grad_map(reinterpret_cast<const float*>(a.heatmaps) + off,
                     reinterpret_cast<float*>(a.out) + off, a.H, a.W, softmax,
                     static_cast<float>(a.beta), static_cast<float>(st[0]), c);
      return;
    }
  }
#endif
  (void)avx2;
  expectation_backward_map(a, m);
}

template <typename T>
void expectation_backward_cpu(const ExpectationArgs<T>& args) {
  const bool avx2 = cpu::avx2_enabled();
  at::parallel_for(0, args.num_maps, expectation_grain(args), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) expectation_backward_map_cpu(args, m, avx2);
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

template <typename T>
void topdown_rescore_cpu(const TopdownRescoreArgs<T>& args) {
  at::parallel_for(0, args.N, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) topdown_rescore_element(args, n);
  });
}

#define PYHPE_DECODE_INSTANTIATE(T)                                           \
  template void heatmap_decode_cpu<T>(const HeatmapDecodeArgs<T>&);           \
  template void simcc_decode_cpu<T>(const SimccDecodeArgs<T>&);               \
  template void expectation_forward_cpu<T>(const ExpectationArgs<T>&);        \
  template void expectation_backward_cpu<T>(const ExpectationArgs<T>&);       \
  template void transform_preds_cpu<T>(const TransformPredsArgs<T>&);         \
  template void affine_points_cpu<T>(const AffinePointsArgs<T>&);             \
  template void topdown_rescore_cpu<T>(const TopdownRescoreArgs<T>&);

PYHPE_DECODE_INSTANTIATE(float)
PYHPE_DECODE_INSTANTIATE(double)
#undef PYHPE_DECODE_INSTANTIATE

}  // namespace decode
}  // namespace pyhpe
