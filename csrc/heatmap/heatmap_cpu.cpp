// CPU loops over heatmap_math.h. The GPU computes each output pixel independently (looping
// over the instances); here each map is zero-filled once and only the pixels inside an
// instance's window/box are evaluated, with the same window, value and accumulation
// functions and the same per-pixel instance order, so the results are identical.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "heatmap/heatmap.h"

namespace pyhpe {
namespace heatmap {

namespace {

// Maps are H*W pixels (typically 3k): a few per task amortize the scheduling.
inline int64_t map_grain(int64_t pixels_per_map) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, pixels_per_map));
}

}  // namespace

template <typename T>
void gaussian_heatmaps_cpu(const GaussianArgs<T>& a) {
  const int64_t plane = a.H * a.W;
  at::parallel_for(0, a.B * a.K, map_grain(plane), [&](int64_t begin, int64_t end) {
    std::vector<T> factor_x(a.encoding == kUnbiased ? a.W : 0);
    for (int64_t map = begin; map < end; ++map) {
      const int64_t b = map / a.K, k = map % a.K;
      T* out = a.heatmaps + map * plane;
      std::fill(out, out + plane, T(0));
      for (int64_t n = 0; n < a.N; ++n) {
        const GaussianWindow<T> w = gaussian_window(a, b, n, k);
        if (!w.active) continue;
        const int64_t x0 = std::max<int64_t>(w.left, 0), x1 = std::min(w.right, a.W);
        const int64_t y0 = std::max<int64_t>(w.top, 0), y1 = std::min(w.bottom, a.H);
        if (a.encoding == kUnbiased) {
          // gaussian_value's two factors, each computed once per column / row.
          for (int64_t x = 0; x < a.W; ++x) factor_x[x] = unbiased_factor(T(x), w.ux, w.two_var_t);
          for (int64_t y = 0; y < a.H; ++y) {
            const T fy = unbiased_factor(T(y), w.uy, w.two_var_t);
            T* row = out + y * a.W;
            for (int64_t x = 0; x < a.W; ++x) {
              const T v = mul_rn(factor_x[x], fy);
              row[x] = v > row[x] ? v : row[x];
            }
          }
          continue;
        }
        for (int64_t y = y0; y < y1; ++y) {
          T* row = out + y * a.W;
          for (int64_t x = x0; x < x1; ++x) {
            const T v = gaussian_value(w, a.encoding, x, y);
            if (v > row[x]) row[x] = v;
          }
        }
      }
    }
  });
  const int64_t instances = a.B * a.N * a.K;
  for (int64_t i = 0; i < instances; ++i) gaussian_weight_element(a, i);
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
void paf_targets_cpu(const PafArgs<T>& a) {
  const int64_t plane = a.H * a.W;
  at::parallel_for(0, a.B * a.L, map_grain(plane), [&](int64_t begin, int64_t end) {
    for (int64_t map = begin; map < end; ++map) {
      const int64_t b = map / a.L, l = map % a.L;
      T* px = a.pafs + (b * 2 * a.L + 2 * l) * plane;
      T* py = px + plane;
      T* pc = a.counts + map * plane;
      std::fill(px, px + 2 * plane, T(0));
      std::fill(pc, pc + plane, T(0));
      // The x/y planes hold the running sums until the final division.
      int64_t ux0 = a.W, ux1 = -1, uy0 = a.H, uy1 = -1;
      for (int64_t n = 0; n < a.N; ++n) {
        const PafLimb<T> lm = paf_limb(a, b, n, l);
        if (!lm.active) continue;
        ux0 = std::min(ux0, lm.x0);
        ux1 = std::max(ux1, lm.x1);
        uy0 = std::min(uy0, lm.y0);
        uy1 = std::max(uy1, lm.y1);
        for (int64_t y = lm.y0; y <= lm.y1; ++y) {
          for (int64_t x = lm.x0; x <= lm.x1; ++x) {
            const int64_t p = y * a.W + x;
            paf_accumulate(lm, paf_weight(lm, a.limb_width, a.mode, x, y), a.mode, px + p,
                           py + p, pc + p);
          }
        }
      }
      for (int64_t y = uy0; y <= uy1; ++y) {
        for (int64_t x = ux0; x <= ux1; ++x) {
          const int64_t p = y * a.W + x;
          px[p] = paf_average(px[p], pc[p]);
          py[p] = paf_average(py[p], pc[p]);
        }
      }
    }
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
