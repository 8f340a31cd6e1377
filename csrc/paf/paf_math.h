// Bottom-up (OpenPose) peak finding and PAF pair scoring; torch-free per-element math shared
// by the CPU loops and the CUDA kernels.
//
// Peaks follow OpenPose nmsBase:
//  * nmsRegisterKernelCPU (mode kNmsCpu, the default): pixels with 2 <= x < W-2 and
//    2 <= y < H-2 are peaks when value > threshold and value is STRICTLY greater than its 8
//    neighbours; pixels on the first inner ring (x == 1, x == W-2, y == 1 or y == H-2, which
//    includes where those lines cross the outer border) are peaks when value > threshold and
//    value >= every neighbour, a neighbour outside the map counting as `threshold`; every
//    other outer-border pixel is never a peak.
//  * nmsRegisterKernel (mode kNmsGpu, OpenPose's CUDA kernel): strict 3x3 maximum for
//    0 < x < W-1, 0 < y < H-1; the outer border is never a peak.
//  Peaks are numbered in raster order and the first max_peaks kept. nmsAccuratePeakPosition:
//  (x, y) is the centroid of the window [x-r, x+r] x [y-r, y+r] (OpenPose: r = 3, a 7x7
//  window) clipped to the map, weighted by the values > 0; the score is the value at the peak.
//
// Pair scores follow OpenPose getScoreAB / the CUDA `process` of bodyPartConnectorBase:
//  n samples at A + m (B - A) / n, m = 0..n-1 (OpenPose: n = max(5, min(25, round(sqrt(5 *
//  max(|dx|, |dy|)))))), each rounded with int(v + 0.5) and clamped into the map; a sample
//  counts when the PAF projected on the unit A->B direction is > inter_threshold; the score is
//  the mean over counted samples when count / n > min_fraction. Otherwise, with the distance
//  prior, parts closer than sqrt(W * H) / 150 score prior_score + 1e-6 (OpenPose: the NMS
//  threshold); all other pairs (and coincident parts, and padding) score -1.
#pragma once

#include <math.h>
#include <stdint.h>

#include "common/fp.h"
#include "common/hd.h"

namespace pyhpe {
namespace paf {

enum NmsMode : int { kNmsCpu = 0, kNmsGpu = 1 };

// Value of a pair that is not a candidate connection (OpenPose's pafScoreKernel uses -1).
constexpr double kInvalidScore = -1.0;

// OpenPose intRound: int(a + 0.5), truncating toward zero.
template <typename T>
PYHPE_HD_INLINE int int_round(T a) {
  return static_cast<int>(add_rn(a, T(0.5)));
}

// Whether v is neither infinite nor NaN (inf - inf and NaN - NaN are NaN).
template <typename T>
PYHPE_HD_INLINE bool is_finite(T v) {
  return v - v == T(0);
}

// clamp(int_round(v), 0, hi) with the clamp done before the conversion, so that coordinates
// beyond the int range (or NaN: 0) never reach an undefined float-to-int cast.
template <typename T>
PYHPE_HD_INLINE int clamped_round(T v, int hi) {
  const T r = add_rn(v, T(0.5));
  if (!(r > T(0))) return 0;
  if (r >= T(hi)) return hi;
  return static_cast<int>(r);
}

// ---------------------------------------------------------------------------------------
// Peaks

template <typename T>
PYHPE_HD bool is_peak(const T* map, int W, int H, int x, int y, T threshold, int mode) {
  const T v = map[y * W + x];
  if (!(v > threshold)) return false;
  if (mode == kNmsGpu) {
    if (!(0 < x && x < W - 1 && 0 < y && y < H - 1)) return false;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        if ((dx || dy) && !(v > map[(y + dy) * W + x + dx])) return false;
    return true;
  }
  if (1 < x && x < W - 2 && 1 < y && y < H - 2) {
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        if ((dx || dy) && !(v > map[(y + dy) * W + x + dx])) return false;
    return true;
  }
  if (x == 1 || x == W - 2 || y == 1 || y == H - 2) {
    for (int dy = -1; dy <= 1; ++dy) {
      for (int dx = -1; dx <= 1; ++dx) {
        if (!dx && !dy) continue;
        const int xx = x + dx, yy = y + dy;
        const bool inside = 0 <= xx && xx < W && 0 <= yy && yy < H;
        const T n = inside ? map[yy * W + xx] : threshold;
        if (!(v >= n)) return false;
      }
    }
    return true;
  }
  return false;
}

// Writes (x, y, score) of the peak at (x, y); radius < 0 keeps the integer position. The
// window is clipped to the map before the loops (any radius costs at most the map). When
// the weighted sums are not finite (a +inf pixel in the window, or overflow) or no value in
// the window is positive (a threshold below 0), the centroid is undefined and the integer
// position is kept.
template <typename T>
PYHPE_HD void refine_peak(const T* map, int W, int H, int x, int y, int radius, T* out) {
  const T score = map[y * W + x];
  out[0] = T(x);
  out[1] = T(y);
  out[2] = score;
  if (radius < 0) return;
  const int y0 = y > radius ? y - radius : 0;
  const int y1 = static_cast<int>(int64_t(y) + radius < H ? int64_t(y) + radius : H - 1);
  const int x0 = x > radius ? x - radius : 0;
  const int x1 = static_cast<int>(int64_t(x) + radius < W ? int64_t(x) + radius : W - 1);
  T x_acc = T(0), y_acc = T(0), score_acc = T(0);
  for (int yy = y0; yy <= y1; ++yy) {
    for (int xx = x0; xx <= x1; ++xx) {
      const T s = map[static_cast<int64_t>(yy) * W + xx];
      if (s > T(0)) {
        x_acc = add_rn(x_acc, mul_rn(T(xx), s));
        y_acc = add_rn(y_acc, mul_rn(T(yy), s));
        score_acc = add_rn(score_acc, s);
      }
    }
  }
  if (!(score_acc > T(0) && is_finite(x_acc) && is_finite(y_acc) && is_finite(score_acc))) return;
  out[0] = x_acc / score_acc;
  out[1] = y_acc / score_acc;
}

template <typename T>
struct PeakArgs {
  const T* heatmaps;      // channels x H x W (channels = B * K)
  int64_t channels;
  int H, W;
  T threshold;
  int mode;               // NmsMode
  int radius;             // refinement half-window; < 0: no refinement
  int max_peaks;          // M
  T* peaks;               // channels x M x 3, zero-filled by the caller
  int64_t* counts;        // channels
  int32_t* flags;         // channels x H x W (two-pass GPU form)
  const int64_t* ranks;   // inclusive running count of flags within each channel
};

// Pass 1 of the GPU form: one element per pixel.
template <typename T>
PYHPE_HD void peak_flag_element(const PeakArgs<T>& a, int64_t idx) {
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  const int64_t c = idx / hw, p = idx % hw;
  const int x = static_cast<int>(p % a.W), y = static_cast<int>(p / a.W);
  a.flags[idx] = is_peak(a.heatmaps + c * hw, a.W, a.H, x, y, a.threshold, a.mode) ? 1 : 0;
}

// Pass 2 (compaction): a flagged pixel with running count r is peak r - 1.
template <typename T>
PYHPE_HD void peak_write_element(const PeakArgs<T>& a, int64_t idx) {
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  const int64_t c = idx / hw, p = idx % hw;
  const int64_t rank = a.ranks[idx];
  if (p == hw - 1) a.counts[c] = rank < a.max_peaks ? rank : a.max_peaks;
  if (!a.flags[idx] || rank > a.max_peaks) return;
  const int x = static_cast<int>(p % a.W), y = static_cast<int>(p / a.W);
  refine_peak(a.heatmaps + c * hw, a.W, a.H, x, y, a.radius, a.peaks + (c * a.max_peaks + rank - 1) * 3);
}

// CPU form: one channel, raster order, as nmsCpu. Most pixels are below the threshold, so a
// tight pre-test skips them before the neighbourhood test.
template <typename T>
PYHPE_HD void peak_channel(const PeakArgs<T>& a, int64_t c) {
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  const T* map = a.heatmaps + c * hw;
  const T threshold = a.threshold;
  int64_t count = 0;
  constexpr int kBlock = 16;
  for (int y = 0; y < a.H; ++y) {
    const T* row = map + static_cast<int64_t>(y) * a.W;
    for (int x0 = 0; x0 < a.W; x0 += kBlock) {
      const int x1 = x0 + kBlock < a.W ? x0 + kBlock : a.W;
      // Branch-free block maximum (vectorizes); NaN never exceeds the threshold either way.
      T block_max = row[x0];
      for (int x = x0 + 1; x < x1; ++x) block_max = row[x] > block_max ? row[x] : block_max;
      if (!(block_max > threshold)) continue;
      for (int x = x0; x < x1; ++x) {
        if (!(row[x] > threshold)) continue;
        if (!is_peak(map, a.W, a.H, x, y, threshold, a.mode)) continue;
        refine_peak(map, a.W, a.H, x, y, a.radius, a.peaks + (c * a.max_peaks + count) * 3);
        if (++count == a.max_peaks) {
          a.counts[c] = count;
          return;
        }
      }
    }
  }
  a.counts[c] = count;
}

// ---------------------------------------------------------------------------------------
// Pair scores

template <typename T>
PYHPE_HD T score_pair(const T* pa, const T* pb, const T* map_x, const T* map_y, int W, int H,
                      int num_samples, T inter_threshold, T min_fraction, bool distance_prior,
                      T prior_score) {
  const T dx = pb[0] - pa[0];
  const T dy = pb[1] - pa[1];
  int n = num_samples;
  if (n <= 0) {
    const T adx = dx < T(0) ? -dx : dx, ady = dy < T(0) ? -dy : dy;
    const T vmax = adx > ady ? adx : ady;
    n = clamped_round(sqrt_of(mul_rn(T(5), vmax)), 25);
    n = n > 5 ? n : 5;
  }
  const T norm = sqrt_of(add_rn(mul_rn(dx, dx), mul_rn(dy, dy)));
  if (!(norm > T(1e-6))) return T(kInvalidScore);
  const T ux = dx / norm, uy = dy / norm;
  const T step_x = dx / T(n), step_y = dy / T(n);
  T sum = T(0);
  int count = 0;
  // A pair is accepted when count / n > min_fraction; once even every remaining sample
  // counting could not get there, the line integral cannot matter (count / n is monotonic in
  // count), so the loop stops: same result, most wrong pairs cost a sample or two.
  const T guess = mul_rn(min_fraction, T(n));
  int needed = guess <= T(0) ? 0 : (guess >= T(n + 1) ? n + 1 : static_cast<int>(guess));
  while (needed > 0 && T(needed - 1) / T(n) > min_fraction) --needed;
  while (needed <= n && !(T(needed) / T(n) > min_fraction)) ++needed;
  for (int m = 0; m < n; ++m) {
    if (count + (n - m) < needed) break;
    const int sx = clamped_round(add_rn(pa[0], mul_rn(T(m), step_x)), W - 1);
    const int sy = clamped_round(add_rn(pa[1], mul_rn(T(m), step_y)), H - 1);
    const int64_t i = static_cast<int64_t>(sy) * W + sx;
    const T s = add_rn(mul_rn(ux, map_x[i]), mul_rn(uy, map_y[i]));
    if (s > inter_threshold) {
      sum = add_rn(sum, s);
      ++count;
    }
  }
  if (T(count) / T(n) > min_fraction) return sum / T(count);
  if (distance_prior) {
    const T limit = sqrt_of(T(W) * T(H)) / T(150);
    if (norm < limit) return add_rn(prior_score, T(1e-6));
  }
  return T(kInvalidScore);
}

template <typename T>
struct ScoreArgs {
  const T* pafs;            // B x C x H x W
  const T* peaks;           // B x K x M x 3
  const int64_t* counts;    // B x K
  const int64_t* limbs;     // L x 2 (part A, part B)
  const int64_t* channels;  // L x 2 (PAF x channel, PAF y channel)
  int64_t B, L;
  int K, M, C, H, W;
  int num_samples;          // <= 0: OpenPose's adaptive count
  T inter_threshold, min_fraction;
  bool distance_prior;
  T prior_score;
  T* out;                   // B x L x M x M
};

// Score of peak i of part A and peak j of part B for limb l of image b.
template <typename T>
PYHPE_HD T score_at(const ScoreArgs<T>& a, int64_t b, int64_t l, int64_t i, int64_t j) {
  const int64_t M = a.M;
  const int64_t part_a = a.limbs[2 * l], part_b = a.limbs[2 * l + 1];
  if (i >= a.counts[b * a.K + part_a] || j >= a.counts[b * a.K + part_b]) return T(kInvalidScore);
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  const T* pa = a.peaks + ((b * a.K + part_a) * M + i) * 3;
  const T* pb = a.peaks + ((b * a.K + part_b) * M + j) * 3;
  const T* map_x = a.pafs + (b * a.C + a.channels[2 * l]) * hw;
  const T* map_y = a.pafs + (b * a.C + a.channels[2 * l + 1]) * hw;
  return score_pair(pa, pb, map_x, map_y, a.W, a.H, a.num_samples, a.inter_threshold,
                    a.min_fraction, a.distance_prior, a.prior_score);
}

// One output element of out[B, L, M, M] (the CUDA form).
template <typename T>
PYHPE_HD void score_element(const ScoreArgs<T>& a, int64_t idx) {
  const int64_t M = a.M;
  const int64_t j = idx % M;
  const int64_t i = (idx / M) % M;
  const int64_t l = (idx / (M * M)) % a.L;
  const int64_t b = idx / (M * M * a.L);
  a.out[idx] = score_at(a, b, l, i, j);
}

// One output row out[b, l, i, :] (the CPU form: the index decode is paid once per row).
template <typename T>
PYHPE_HD void score_row(const ScoreArgs<T>& a, int64_t row) {
  const int64_t M = a.M;
  const int64_t i = row % M;
  const int64_t l = (row / M) % a.L;
  const int64_t b = row / (M * a.L);
  T* out = a.out + row * M;
  for (int64_t j = 0; j < M; ++j) out[j] = score_at(a, b, l, i, j);
}

// ---------------------------------------------------------------------------------------
// Grouping (host only: sequential per image, as OpenPose's connectBodyPartsCpu).

enum GroupMethod : int { kGreedy = 0, kHungarian = 1 };
// kAssemblyCpu: connectBodyPartsCpu (createPeopleVector: limb by limb, no merging).
// kAssemblyGpu: the assembly of OpenPose's connectBodyPartsGpu (pafPtrIntoVector +
// pafVectorIntoPeopleVector: all connections of all limbs sorted by score + 0.1 (sA + sB),
// people grown from either end and merged when their parts are disjoint).
enum Assembly : int { kAssemblyCpu = 0, kAssemblyGpu = 1 };

template <typename T>
struct GroupArgs {
  const T* peaks;            // B x K x M x 3
  const int64_t* counts;     // B x K
  const T* scores;           // B x L x M x M
  const int64_t* limbs;      // L x 2
  const uint8_t* redundant;  // L: OpenPose's ear-shoulder pairs (fill only, never create)
  int64_t B;
  int K, M, L;
  int min_parts;
  T min_mean_score;
  int method;                // GroupMethod
  int64_t max_persons;       // < 0: unlimited
  bool dedupe_singletons;    // OpenPose: every model but MPI-15
  int assembly;              // Assembly
};

}  // namespace paf
}  // namespace pyhpe
