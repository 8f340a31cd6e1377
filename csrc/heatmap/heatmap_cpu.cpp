// CPU loops over heatmap_math.h. The GPU computes each output pixel independently (looping
// over the instances); here each map is zero-filled once (unless an instance covers all of
// it) and only the pixels inside an instance's window/box are evaluated, with the same
// window, value and accumulation functions and the same per-pixel instance order, so the
// results are identical (checked bit for bit against the element functions run on the CPU).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "heatmap/heatmap.h"

namespace pyhpe {
namespace heatmap {

namespace {

// PYHPE_HEATMAP_CPU_ELEMENTWISE=1 runs the GPU's per-element functions on the CPU instead of
// the per-map loops (slower): the tests use it to check the CUDA code path without a GPU.
bool elementwise_requested() {
  const char* v = std::getenv("PYHPE_HEATMAP_CPU_ELEMENTWISE");
  return v != nullptr && v[0] == '1';
}

template <typename F>
void for_each_element(int64_t total, F&& element) {
  at::parallel_for(0, total, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) element(i);
  });
}

// Maps are H*W pixels (typically 3k): a few per task amortize the scheduling.
inline int64_t map_grain(int64_t pixels_per_map) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, pixels_per_map));
}

}  // namespace

// MSRA patches are identical for every keypoint with the same sigma: the values of one
// window, indexed by (y - top, x - left), are computed once and reused (bit-identical, since
// gaussian_value depends on nothing else).
template <typename T>
struct MsraPatchCache {
  std::vector<T> values;
  int64_t size = 0;
  double two_var = -1.0, centre = -1.0;

  // Patch for window w, or nullptr when it would be too large to be worth caching.
  const T* get(const GaussianWindow<T>& w) {
    const int64_t need = 2 * static_cast<int64_t>(w.cx) + 2;  // >= right - left
    if (need > 256) return nullptr;
    if (w.two_var != two_var || w.cx != centre) {
      size = need;
      two_var = w.two_var;
      centre = w.cx;
      values.resize(size * size);
      for (int64_t gy = 0; gy < size; ++gy)
        for (int64_t gx = 0; gx < size; ++gx)
          values[gy * size + gx] = gaussian_value(w, kMSRA, w.left + gx, w.top + gy);
    }
    return values.data();
  }
};

template <typename T>
void gaussian_heatmaps_cpu(const GaussianArgs<T>& a) {
  if (elementwise_requested()) {
    for_each_element(a.B * a.K * a.H * a.W, [&](int64_t i) { gaussian_heatmap_element(a, i); });
    for_each_element(a.B * a.N * a.K, [&](int64_t i) { gaussian_weight_element(a, i); });
    return;
  }
  const int64_t plane = a.H * a.W;
  at::parallel_for(0, a.B * a.K, map_grain(plane), [&](int64_t begin, int64_t end) {
    MsraPatchCache<T> cache;
    std::vector<T> factor_t;       // UNBIASED x factors
    std::vector<double> factor_d;  // UDP x factors
    for (int64_t map = begin; map < end; ++map) {
      const int64_t b = map / a.K, k = map % a.K;
      T* out = a.heatmaps + map * plane;
      // An UNBIASED instance covers the whole map, so the first one is written directly
      // (max(0, v) == v, exp is never negative) instead of over a zero fill.
      bool written = false;
      for (int64_t n = 0; n < a.N; ++n) {
        const GaussianWindow<T> w = gaussian_window(a, b, n, k);
        if (!w.active) continue;
        const int64_t x0 = std::max<int64_t>(w.left, 0), x1 = std::min(w.right, a.W);
        const int64_t y0 = std::max<int64_t>(w.top, 0), y1 = std::min(w.bottom, a.H);
        if (x0 >= x1 || y0 >= y1) continue;
        if (!written && a.encoding != kUnbiased) {
          std::fill(out, out + plane, T(0));
          written = true;
        }
        // Each branch evaluates exactly gaussian_value(w, encoding, x, y).
        if (a.encoding == kUnbiased) {
          factor_t.resize(x1 - x0);
          for (int64_t x = x0; x < x1; ++x)
            factor_t[x - x0] = unbiased_factor(T(x), w.ux, w.two_var_t);
          const T* __restrict__ fx = factor_t.data() - x0;
          const bool first = !written;
          written = true;
          for (int64_t y = y0; y < y1; ++y) {
            const T fy = unbiased_factor(T(y), w.uy, w.two_var_t);
            T* __restrict__ row = out + y * a.W;
            if (first) {
              for (int64_t x = x0; x < x1; ++x) row[x] = mul_rn(fx[x], fy);
              continue;
            }
            for (int64_t x = x0; x < x1; ++x) {
              const T v = mul_rn(fx[x], fy);
              row[x] = v > row[x] ? v : row[x];
            }
          }
        } else if (a.encoding == kUDP) {
          factor_d.resize(x1 - x0);
          for (int64_t x = x0; x < x1; ++x)
            factor_d[x - x0] = udp_factor(static_cast<double>(x - w.left) - w.cx, w.two_var);
          for (int64_t y = y0; y < y1; ++y) {
            const double fy = udp_factor(static_cast<double>(y - w.top) - w.cy, w.two_var);
            T* row = out + y * a.W;
            for (int64_t x = x0; x < x1; ++x) {
              const T v = T(mul_rn(factor_d[x - x0], fy));
              row[x] = v > row[x] ? v : row[x];
            }
          }
        } else {
          const T* patch = cache.get(w);
          for (int64_t y = y0; y < y1; ++y) {
            T* row = out + y * a.W;
            for (int64_t x = x0; x < x1; ++x) {
              const T v = patch ? patch[(y - w.top) * cache.size + (x - w.left)]
                                : gaussian_value(w, a.encoding, x, y);
              row[x] = v > row[x] ? v : row[x];
            }
          }
        }
      }
      if (!written) std::fill(out, out + plane, T(0));
    }
  });
  const int64_t instances = a.B * a.N * a.K;
  for (int64_t i = 0; i < instances; ++i) gaussian_weight_element(a, i);
}

// One label row per task item (x rows, then y rows). simcc_value depends on i - mu only
// (exact integers in float64), so every row is a slice of one table per axis, built with
// simcc_value itself: identical to the GPU's per-element evaluation.
template <typename T>
void simcc_labels_cpu(const SimCCArgs<T>& a) {
  const int64_t BK = a.B * a.K;
  if (elementwise_requested()) {
    for_each_element(BK * (a.Wx + a.Wy), [&](int64_t i) { simcc_element(a, i); });
    for_each_element(BK, [&](int64_t i) { simcc_weight_element(a, i); });
    return;
  }
  auto table_for = [&](int64_t len, double sigma) {
    std::vector<T> table(len > 0 ? 2 * len - 1 : 0);
    for (int64_t d = -(len - 1); d < len; ++d)
      table[d + len - 1] = simcc_value<T>(d, 0, sigma, a.normalize);
    return table;
  };
  const std::vector<T> table_x = table_for(a.Wx, a.sigma_x);
  const std::vector<T> table_y = table_for(a.Wy, a.sigma_y);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.Wx + a.Wy));
  at::parallel_for(0, 2 * BK, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const bool is_x = r < BK;
      const int64_t bk = is_x ? r : r - BK;
      const int64_t len = is_x ? a.Wx : a.Wy;
      T* row = (is_x ? a.x_labels : a.y_labels) + bk * len;
      int64_t mx = 0, my = 0;
      bool hit;
      if (!simcc_centre(a, bk, &mx, &my, &hit)) {
        std::fill(row, row + len, T(0));
        continue;
      }
      const int64_t mu = is_x ? mx : my;
      const T* table = (is_x ? table_x : table_y).data() + (len - 1);
      if (mu >= 0 && mu < len) {  // the whole row lies in the table
        std::copy(table - mu, table - mu + len, row);
        continue;
      }
      for (int64_t i = 0; i < len; ++i) {
        const int64_t d = i - mu;  // |d| < len unless mu lies off the row (then compute it)
        row[i] = (d > -len && d < len) ? table[d]
                                       : simcc_value<T>(i, mu, is_x ? a.sigma_x : a.sigma_y,
                                                        a.normalize);
      }
    }
  });
  for (int64_t bk = 0; bk < BK; ++bk) simcc_weight_element(a, bk);
}

template <typename T>
void paf_targets_cpu(const PafArgs<T>& a) {
  if (elementwise_requested()) {
    for_each_element(a.B * a.L * a.H * a.W, [&](int64_t i) { paf_element(a, i); });
    return;
  }
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
      bool overlap = false;  // some pixel has count > 1 and needs the division
      const double reach = a.mode == kPafSoft ? 3.0 * a.limb_width : a.limb_width;
      for (int64_t n = 0; n < a.N; ++n) {
        const PafLimb<T> lm = paf_limb(a, b, n, l);
        if (!lm.active) continue;
        ux0 = std::min(ux0, lm.x0);
        ux1 = std::max(ux1, lm.x1);
        uy0 = std::min(uy0, lm.y0);
        uy1 = std::max(uy1, lm.y1);
        const double ux = lm.ux, uy = lm.uy, sx = lm.sx, sy = lm.sy;
        for (int64_t y = lm.y0; y <= lm.y1; ++y) {
          int64_t xa = lm.x0, xb = lm.x1;
          if (std::fabs(uy) > 1e-6) {
            // The band |(x - sx) uy - (y - sy) ux| < reach is the open interval (lo, hi) of
            // x; widened by a pixel against rounding, it only skips pixels paf_weight would
            // reject, and paf_weight still decides every pixel it keeps.
            const double c = (static_cast<double>(y) - sy) * ux;
            double lo = sx + (c - reach) / uy, hi = sx + (c + reach) / uy;
            if (lo > hi) std::swap(lo, hi);
            lo = std::floor(lo) - 1.0;
            hi = std::ceil(hi) + 1.0;
            if (lo > static_cast<double>(lm.x1) || hi < static_cast<double>(lm.x0)) continue;
            if (lo > static_cast<double>(xa)) xa = static_cast<int64_t>(lo);
            if (hi < static_cast<double>(xb)) xb = static_cast<int64_t>(hi);
          }
          for (int64_t x = xa; x <= xb; ++x) {
            const int64_t p = y * a.W + x;
            paf_accumulate(lm, paf_weight(lm, a.limb_width, a.mode, x, y), a.mode, px + p,
                           py + p, pc + p);
            overlap = overlap || pc[p] > T(1);
          }
        }
      }
      if (!overlap) continue;  // sum / max(count, 1) == sum everywhere
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
