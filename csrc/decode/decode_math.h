// Heatmap / SimCC decoding and soft-argmax math, shared by the CPU loops and the CUDA
// kernels; torch-free (raw pointers and scalars).
//
// Coordinates are (x, y) in heatmap pixels: pixel (col, row) has its centre at (col, row),
// so a W-wide map spans x in [-0.5, W - 0.5] and argmax coordinates are integers 0..W-1.
//
// References whose semantics are copied (see pyhpe/reference/decode.py for the oracles):
//  * argmax + quarter offset: HRNet get_max_preds / get_final_preds and mmpose 0.x
//    _get_max_preds / keypoints_from_heatmaps(post_process='default'); mmpose 1.x
//    get_heatmap_maximum + refine_keypoints (per-axis boundary rule) as an option.
//  * DARK: DarkPose / mmpose gaussian_blur (zero padding by the kernel radius, OpenCV
//    GaussianBlur with sigma from the kernel size, rescale to the original maximum),
//    log(max(., 1e-10)), refine_keypoints_dark (second-order Taylor step).
//  * DARK-UDP: mmpose 1.x refine_keypoints_dark_udp (same blur, clip to [1e-3, 50], log,
//    edge padding, UDP finite differences, (H + eps*I)^-1 in float64).
//  * SimCC: mmpose get_simcc_maximum, gaussian_blur1d and refine_simcc_dark.
//  * soft-argmax / integral regression, debiased IPR (Gu et al. ICCV 2021), DSNT (dsntnn).
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/fp.h"
#include "common/hd.h"

// Host-only SSE2 for the max / min scans (the compiler cannot if-convert float compares under
// the default -ftrapping-math) and the float softmax rows. Every SIMD path computes the same
// result as its scalar twin (the max, the first maximum, the polynomial exp bit for bit);
// only partial sums are grouped differently. Never seen by nvcc, whose host code only
// launches kernels, nor by compilers without SSE2 (scalar fallbacks).
#if !defined(__CUDACC__) && defined(__SSE2__)
#include <emmintrin.h>
#define PYHPE_DECODE_SSE2 1
#endif

namespace pyhpe {
namespace decode {

// Largest odd Gaussian kernel the DARK variants accept (weights travel inside the args).
constexpr int kMaxKernel = 127;

enum HeatmapMethod : int {
  kMethodArgmax = 0,          // integer argmax only
  kMethodQuarterHRNet = 1,    // +-0.25 shift, HRNet / mmpose 0.x joint boundary rule
  kMethodQuarterMMPose1 = 2,  // +-0.25 shift, mmpose 1.x refine_keypoints per-axis rule
  kMethodDark = 3,
  kMethodDarkUdp = 4,
};


// Branch-free expf (scalar twin of expf_sse below, used for row tails): Cephes polynomial after
// round-to-nearest range reduction, within 2 ulp of expf where exp(x) is a normal float;
// results below FLT_MIN flush to 0 and inputs above ~88.7 give 0 as well (callers pass
// x <= 0). x is first clamped at -88 (as maxps(-88, x) in expf_sse and expf8), which changes
// no finite result (both sides flush to 0) but makes exp(-inf) 0 instead of inf - inf = NaN:
// a map holding -inf (log 0), or beta * h overflowing to -inf, decodes as on the AVX2 and
// CUDA paths. NaN inputs must be excluded by the caller.
PYHPE_HD_INLINE float expf_vectorizable(float x) {
  x = -88.0f > x ? -88.0f : x;
  const float t = x * 1.44269504088896341f + 12582912.0f;  // 1.5 * 2^23: rounds to nearest
  const float n = t - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t in_range = -static_cast<int32_t>((ni >= -126) & (ni <= 127));
  const int32_t bits = ((ni + 127) << 23) & in_range;
  float scale;
  memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

template <typename T>
PYHPE_HD_INLINE bool is_nan(T v) {
  return v != v;
}

// np.argmax / np.amax replacement rule: the first NaN wins, else the first strict maximum.
template <typename T>
PYHPE_HD_INLINE bool numpy_replaces(T v, T best) {
  return v > best || (is_nan(v) && !is_nan(best));
}

// np.sign (NaN stays NaN).
template <typename T>
PYHPE_HD_INLINE T numpy_sign(T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : (v == T(0) ? T(0) : v));
}

// np.maximum(v, lo) and np.clip(v, lo, hi): NaN propagates (unlike fmax/fmin).
template <typename T>
PYHPE_HD_INLINE T numpy_maximum(T v, T lo) {
  return is_nan(v) ? v : (v < lo ? lo : v);
}
template <typename T>
PYHPE_HD_INLINE T numpy_clip(T v, T lo, T hi) {
  return is_nan(v) ? v : (v < lo ? lo : (v > hi ? hi : v));
}

PYHPE_HD_INLINE int clamp_index(int i, int n) {
  return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

// First maximum of n values (numpy argmax semantics); returns the index, writes the value.
template <typename T>
PYHPE_HD int64_t numpy_argmax_scalar(const T* v, int64_t n, T* max_out) {
  int64_t best_i = 0;
  T best = v[0];
  for (int64_t i = 1; i < n; ++i) {
    if (numpy_replaces(v[i], best)) {
      best = v[i];
      best_i = i;
    }
  }
  *max_out = best;
  return best_i;
}

#ifdef PYHPE_DECODE_SSE2
// Max and min of v[0..n) (n >= 8); false when any value is NaN (results then unused).
inline bool simd_minmax(const float* v, int64_t n, float* mx, float* mn) {
  __m128 hi0 = _mm_loadu_ps(v), hi1 = _mm_loadu_ps(v + 4);
  __m128 lo0 = hi0, lo1 = hi1;
  __m128 nan = _mm_or_ps(_mm_cmpunord_ps(hi0, hi0), _mm_cmpunord_ps(hi1, hi1));
  int64_t j = 8;
  for (; j + 8 <= n; j += 8) {
    const __m128 a = _mm_loadu_ps(v + j), b = _mm_loadu_ps(v + j + 4);
    hi0 = _mm_max_ps(hi0, a);
    hi1 = _mm_max_ps(hi1, b);
    lo0 = _mm_min_ps(lo0, a);
    lo1 = _mm_min_ps(lo1, b);
    nan = _mm_or_ps(nan, _mm_or_ps(_mm_cmpunord_ps(a, a), _mm_cmpunord_ps(b, b)));
  }
  if (_mm_movemask_ps(nan)) return false;
  float h4[4], l4[4];
  _mm_storeu_ps(h4, _mm_max_ps(hi0, hi1));
  _mm_storeu_ps(l4, _mm_min_ps(lo0, lo1));
  float best = h4[0], worst = l4[0];
  for (int l = 1; l < 4; ++l) {
    best = h4[l] > best ? h4[l] : best;
    worst = l4[l] < worst ? l4[l] : worst;
  }
  for (; j < n; ++j) {
    if (v[j] != v[j]) return false;
    best = v[j] > best ? v[j] : best;
    worst = v[j] < worst ? v[j] : worst;
  }
  *mx = best;
  *mn = worst;
  return true;
}

inline bool simd_minmax(const double* v, int64_t n, double* mx, double* mn) {
  __m128d hi0 = _mm_loadu_pd(v), hi1 = _mm_loadu_pd(v + 2);
  __m128d lo0 = hi0, lo1 = hi1;
  __m128d nan = _mm_or_pd(_mm_cmpunord_pd(hi0, hi0), _mm_cmpunord_pd(hi1, hi1));
  int64_t j = 4;
  for (; j + 4 <= n; j += 4) {
    const __m128d a = _mm_loadu_pd(v + j), b = _mm_loadu_pd(v + j + 2);
    hi0 = _mm_max_pd(hi0, a);
    hi1 = _mm_max_pd(hi1, b);
    lo0 = _mm_min_pd(lo0, a);
    lo1 = _mm_min_pd(lo1, b);
    nan = _mm_or_pd(nan, _mm_or_pd(_mm_cmpunord_pd(a, a), _mm_cmpunord_pd(b, b)));
  }
  if (_mm_movemask_pd(nan)) return false;
  double h2[2], l2[2];
  _mm_storeu_pd(h2, _mm_max_pd(hi0, hi1));
  _mm_storeu_pd(l2, _mm_min_pd(lo0, lo1));
  double best = h2[0] > h2[1] ? h2[0] : h2[1], worst = l2[0] < l2[1] ? l2[0] : l2[1];
  for (; j < n; ++j) {
    if (v[j] != v[j]) return false;
    best = v[j] > best ? v[j] : best;
    worst = v[j] < worst ? v[j] : worst;
  }
  *mx = best;
  *mn = worst;
  return true;
}
#endif

#ifdef PYHPE_DECODE_SSE2
// Max of v[0..64); false when any value is NaN.
inline bool simd_max64(const float* v, float* mx) {
  __m128 a0 = _mm_loadu_ps(v), a1 = _mm_loadu_ps(v + 4);
  __m128 nan = _mm_or_ps(_mm_cmpunord_ps(a0, a0), _mm_cmpunord_ps(a1, a1));
  for (int j = 8; j < 64; j += 8) {
    const __m128 a = _mm_loadu_ps(v + j), b = _mm_loadu_ps(v + j + 4);
    a0 = _mm_max_ps(a0, a);
    a1 = _mm_max_ps(a1, b);
    nan = _mm_or_ps(nan, _mm_or_ps(_mm_cmpunord_ps(a, a), _mm_cmpunord_ps(b, b)));
  }
  if (_mm_movemask_ps(nan)) return false;
  a0 = _mm_max_ps(a0, a1);
  a0 = _mm_max_ps(a0, _mm_movehl_ps(a0, a0));
  a0 = _mm_max_ss(a0, _mm_shuffle_ps(a0, a0, 1));
  *mx = _mm_cvtss_f32(a0);
  return true;
}

inline bool simd_max64(const double* v, double* mx) {
  double hi, lo;
  if (!simd_minmax(v, 64, &hi, &lo)) return false;
  *mx = hi;
  return true;
}
#endif

template <typename T>
PYHPE_HD int64_t numpy_argmax(const T* v, int64_t n, T* max_out) {
#ifdef PYHPE_DECODE_SSE2
  // Host: one SIMD pass of 64-element chunk maxima (the first chunk holding the maximum
  // wins, as strict > keeps the earlier one), then a search inside that chunk only. NaN
  // inputs take the scalar path.
  constexpr int kChunk = 64;
  if (n >= kChunk) {
    T best = v[0];
    int64_t best_chunk = 0;
    bool ok = true;
    const int64_t full = n / kChunk * kChunk;
    for (int64_t c = 0; c < full && ok; c += kChunk) {
      T cm;
      ok = simd_max64(v + c, &cm);
      if (ok && (c == 0 || cm > best)) {
        best = cm;
        best_chunk = c;
      }
    }
    if (ok) {
      int64_t best_i = -1;
      for (int64_t j = full; j < n; ++j) {
        if (v[j] != v[j]) {
          ok = false;
          break;
        }
        if (v[j] > best) {
          best = v[j];
          best_i = j;
        }
      }
      if (ok) {
        if (best_i < 0) {
          best_i = best_chunk;
          while (!(v[best_i] == best)) ++best_i;
        }
        *max_out = best;
        return best_i;
      }
    }
  }
#endif
  return numpy_argmax_scalar(v, n, max_out);
}

// ---------------------------------------------------------------------------------------
// Zero-padded Gaussian blur sampled at single points.
//
// mmpose pads the map with `radius` zeros on every side before cv2.GaussianBlur and crops
// the padding off afterwards, so every output pixel only sees the padded image: the blur is
// exactly a zero-padded separable convolution (OpenCV's border mode never matters). The
// weights are OpenCV's getGaussianKernel(k, 0) in the image depth (computed on the host).
// Products and sums are rounded one by one (mul_rn / add_rn: no FMA contraction under nvcc),
// here and in the refinement steps below, so the GPU gives the CPU's bits.

template <typename T>
PYHPE_HD T blur2d_at(const T* hm, int H, int W, int x, int y, const T* w, int r) {
  T acc = T(0);
  const int x0 = x - r < 0 ? 0 : x - r;
  const int x1 = x + r > W - 1 ? W - 1 : x + r;
  for (int dy = -r; dy <= r; ++dy) {
    const int yy = y + dy;
    if (yy < 0 || yy >= H) continue;
    const T* row = hm + static_cast<int64_t>(yy) * W;
    T racc = T(0);
    for (int xx = x0; xx <= x1; ++xx) racc = add_rn(racc, mul_rn(w[xx - x + r], row[xx]));
    acc = add_rn(acc, mul_rn(w[dy + r], racc));
  }
  return acc;
}

// blur2d_at at `count` (<= 13) points whose rows span at most 5 per column, sharing the
// horizontal passes between points of the same column: the same sums in the same order
// as blur2d_at, about half the multiply-adds for the DARK stencil.
template <typename T>
PYHPE_HD void blur2d_points(const T* hm, int H, int W, const int* sx, const int* sy, int count,
                            const T* w, int r, T* out) {
  T hb[kMaxKernel + 4];
  bool done[13] = {false, false, false, false, false, false, false,
                   false, false, false, false, false, false};
  for (int i = 0; i < count; ++i) {
    if (done[i]) continue;
    const int px = sx[i];
    int ymin = sy[i], ymax = sy[i];
    for (int k = i + 1; k < count; ++k)
      if (sx[k] == px) {
        ymin = sy[k] < ymin ? sy[k] : ymin;
        ymax = sy[k] > ymax ? sy[k] : ymax;
      }
    const int r0 = ymin - r, r1 = ymax + r;
    const int x0 = px - r < 0 ? 0 : px - r;
    const int x1 = px + r > W - 1 ? W - 1 : px + r;
    for (int yy = r0; yy <= r1; ++yy) {
      T racc = T(0);
      if (yy >= 0 && yy < H) {
        const T* row = hm + static_cast<int64_t>(yy) * W;
        for (int xx = x0; xx <= x1; ++xx) racc = add_rn(racc, mul_rn(w[xx - px + r], row[xx]));
      }
      hb[yy - r0] = racc;
    }
    for (int k = i; k < count; ++k) {
      if (done[k] || sx[k] != px) continue;
      T acc = T(0);
      for (int dy = -r; dy <= r; ++dy) {
        const int yy = sy[k] + dy;
        if (yy < 0 || yy >= H) continue;
        acc = add_rn(acc, mul_rn(w[dy + r], hb[yy - r0]));
      }
      out[k] = acc;
      done[k] = true;
    }
  }
}

// np.max of the whole blurred map (the slow path; only taken when the fast path cannot
// prove the rescaling irrelevant).
template <typename T>
PYHPE_HD T blur2d_max(const T* hm, int H, int W, const T* w, int r) {
  T best = blur2d_at(hm, H, W, 0, 0, w, r);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      if (x == 0 && y == 0) continue;
      const T v = blur2d_at(hm, H, W, x, y, w, r);
      if (numpy_replaces(v, best)) best = v;
    }
  return best;
}

template <typename T>
PYHPE_HD T blur1d_at(const T* v, int n, int x, const T* w, int r) {
  T acc = T(0);
  const int x0 = x - r < 0 ? 0 : x - r;
  const int x1 = x + r > n - 1 ? n - 1 : x + r;
  for (int xx = x0; xx <= x1; ++xx) acc = add_rn(acc, mul_rn(w[xx - x + r], v[xx]));
  return acc;
}

template <typename T>
PYHPE_HD T blur1d_max(const T* v, int n, const T* w, int r) {
  T best = blur1d_at(v, n, 0, w, r);
  for (int x = 1; x < n; ++x) {
    const T b = blur1d_at(v, n, x, w, r);
    if (numpy_replaces(b, best)) best = b;
  }
  return best;
}

// The modulated values log(clamp(b_i * s)) at `count` sample points, where b_i are blurred
// samples and s = origin_max / max(blurred map) is mmpose's rescaling to the original
// maximum. Because the zero-padded kernel sums to <= 1, max(blurred) <= origin_max, so
// s >= 1 whenever origin_max > 0; and s * b_i <= origin_max. When every b_i clears the
// lower clamp with a margin and origin_max stays under the upper clamp, no clamp engages
// and log(s * b_i) = log(s) + log(b_i): the constant cancels in every finite difference, so
// log(b_i) gives the same refinement without blurring the whole map. Otherwise the exact
// maximum is computed (`full_max` is evaluated lazily through the functor).
template <typename T, typename FullMax>
PYHPE_HD void modulate_samples(T* b, int count, T origin_max, T lo, T hi, bool has_hi,
                               const FullMax& full_max) {
  bool fast = origin_max > T(0) && (!has_hi || origin_max < hi * T(0.998));
  for (int i = 0; i < count && fast; ++i) fast = b[i] >= lo * T(2);
  if (fast) {
    for (int i = 0; i < count; ++i) b[i] = log_of(b[i]);
    return;
  }
  const T s = origin_max / full_max();
  for (int i = 0; i < count; ++i) {
    const T v = b[i] * s;
    b[i] = log_of(has_hi ? numpy_clip(v, lo, hi) : numpy_maximum(v, lo));
  }
}

// ---------------------------------------------------------------------------------------
// 2-D heatmap decoding: one call per (instance, keypoint) map.

template <typename T>
struct HeatmapDecodeArgs {
  const T* heatmaps;  // M x H x W
  int64_t num_maps;   // M = B * K
  int H, W;
  int method;         // HeatmapMethod
  int radius;         // DARK kernel radius (kernel = 2 * radius + 1)
  T weights[kMaxKernel];
  T* coords;          // M x 2 (x, y)
  T* scores;          // M
};

template <typename T>
struct Blur2dMax {
  const T* hm;
  int H, W;
  const T* w;
  int r;
  PYHPE_HD T operator()() const { return blur2d_max(hm, H, W, w, r); }
};

// Map m given its first maximum: index idx (row-major) and value maxval (the CPU loops may
// find them with wider SIMD than numpy_argmax).
template <typename T>
PYHPE_HD void heatmap_decode_at(const HeatmapDecodeArgs<T>& a, int64_t m, int64_t idx,
                                T maxval) {
  const int H = a.H, W = a.W;
  const T* hm = a.heatmaps + m * static_cast<int64_t>(H) * W;
  a.scores[m] = maxval;
  if (!(maxval > T(0))) {  // mmpose / HRNet sentinel: maps whose max <= 0 decode to -1
    a.coords[2 * m] = T(-1);
    a.coords[2 * m + 1] = T(-1);
    return;
  }
  const int x = static_cast<int>(idx % W), y = static_cast<int>(idx / W);
  T fx = static_cast<T>(x), fy = static_cast<T>(y);
  const T* w = a.weights;
  const int r = a.radius;
  auto at = [&](int xx, int yy) { return hm[static_cast<int64_t>(yy) * W + xx]; };

  if (a.method == kMethodQuarterHRNet) {
    if (1 < x && x < W - 1 && 1 < y && y < H - 1) {
      fx += numpy_sign(T(at(x + 1, y) - at(x - 1, y))) * T(0.25);
      fy += numpy_sign(T(at(x, y + 1) - at(x, y - 1))) * T(0.25);
    }
  } else if (a.method == kMethodQuarterMMPose1) {
    // mmpose 1.x also requires 0 < y (resp. 0 < x): row / column 0 gets no shift.
    if (1 < x && x < W - 1 && 0 < y) fx += numpy_sign(T(at(x + 1, y) - at(x - 1, y))) * T(0.25);
    if (1 < y && y < H - 1 && 0 < x) fy += numpy_sign(T(at(x, y + 1) - at(x, y - 1))) * T(0.25);
  } else if (a.method == kMethodDark) {
    if (1 < x && x < W - 2 && 1 < y && y < H - 2) {
      // Samples: centre, x-2, x-1, x+1, x+2, y-2, y-1, y+1, y+2, and the 4 diagonals.
      const int ox[13] = {0, -2, -1, 1, 2, 0, 0, 0, 0, 1, 1, -1, -1};
      const int oy[13] = {0, 0, 0, 0, 0, -2, -1, 1, 2, 1, -1, 1, -1};
      int sx[13], sy[13];
      for (int i = 0; i < 13; ++i) {
        sx[i] = x + ox[i];
        sy[i] = y + oy[i];
      }
      T L[13];
      blur2d_points(hm, H, W, sx, sy, 13, w, r, L);
      modulate_samples(L, 13, maxval, T(1e-10), T(0), false, Blur2dMax<T>{hm, H, W, w, r});
      const T dx = T(0.5) * (L[3] - L[2]);
      const T dy = T(0.5) * (L[7] - L[6]);
      const T dxx = T(0.25) * (L[4] - T(2) * L[0] + L[1]);
      const T dxy = T(0.25) * (L[9] - L[10] - L[11] + L[12]);
      const T dyy = T(0.25) * (L[8] - T(2) * L[0] + L[5]);
      const T det = add_rn(mul_rn(dxx, dyy), -mul_rn(dxy, dxy));
      if (det != T(0)) {
        fx -= add_rn(mul_rn(dyy, dx), -mul_rn(dxy, dy)) / det;
        fy -= add_rn(mul_rn(dxx, dy), -mul_rn(dxy, dx)) / det;
      }
    }
  } else if (a.method == kMethodDarkUdp) {
    // Edge padding by one pixel == clamping the sample coordinates into the map.
    const int xm = clamp_index(x - 1, W), xp = clamp_index(x + 1, W);
    const int ym = clamp_index(y - 1, H), yp = clamp_index(y + 1, H);
    // i_, ix1, ix1_, iy1, iy1_, ix1y1, ix1_y1_
    const int sx[7] = {x, xp, xm, x, x, xp, xm};
    const int sy[7] = {y, y, y, yp, ym, yp, ym};
    T L[7];
    blur2d_points(hm, H, W, sx, sy, 7, w, r, L);
    modulate_samples(L, 7, maxval, T(1e-3), T(50), true, Blur2dMax<T>{hm, H, W, w, r});
    const T dx = T(0.5) * (L[1] - L[2]);
    const T dy = T(0.5) * (L[3] - L[4]);
    const T dxx = L[1] - T(2) * L[0] + L[2];
    const T dyy = L[3] - T(2) * L[0] + L[4];
    const T dxy = T(0.5) * (L[5] - L[1] - L[3] + L[0] + L[0] - L[2] - L[4] + L[6]);
    // numpy promotes hessian + np.finfo(np.float32).eps * np.eye(2) to float64.
    const double eps = 1.1920928955078125e-07;
    const double h00 = static_cast<double>(dxx) + eps, h11 = static_cast<double>(dyy) + eps;
    const double h01 = static_cast<double>(dxy);
    const double det = add_rn(mul_rn(h00, h11), -mul_rn(h01, h01));
    const double gx = static_cast<double>(dx), gy = static_cast<double>(dy);
    fx = static_cast<T>(static_cast<double>(fx) - add_rn(mul_rn(h11, gx), -mul_rn(h01, gy)) / det);
    fy = static_cast<T>(static_cast<double>(fy) - add_rn(mul_rn(h00, gy), -mul_rn(h01, gx)) / det);
  }
  a.coords[2 * m] = fx;
  a.coords[2 * m + 1] = fy;
}

template <typename T>
PYHPE_HD void heatmap_decode_element(const HeatmapDecodeArgs<T>& a, int64_t m) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  T maxval;
  const int64_t idx = numpy_argmax(a.heatmaps + m * HW, HW, &maxval);
  heatmap_decode_at(a, m, idx, maxval);
}

// ---------------------------------------------------------------------------------------
// SimCC decoding (mmpose SimCCLabel.decode): argmax per axis, score = min of the maxima,
// -1 sentinel where the score <= 0, optional 1-D DARK per axis, then / split_ratio.

template <typename T>
struct SimccDecodeArgs {
  const T* x_labels;  // M x Wx
  const T* y_labels;  // M x Wy
  int64_t num_maps;
  int Wx, Wy;
  T split_ratio;
  int radius_x, radius_y;  // 0: no DARK on that axis
  T weights_x[kMaxKernel];
  T weights_y[kMaxKernel];
  T* coords;  // M x 2
  T* scores;  // M
};

template <typename T>
struct Blur1dMax {
  const T* v;
  int n;
  const T* w;
  int r;
  PYHPE_HD T operator()() const { return blur1d_max(v, n, w, r); }
};

// mmpose refine_simcc_dark for one location: blur, rescale, clip [1e-3, 50], log, edge pad
// by 2, px = int(loc + 2.5), Newton step with dxx + 1e-9. Faithfully, the -1 sentinel is
// refined too (px = 1; numpy's negative index wraps to the last padded element).
template <typename T>
PYHPE_HD T simcc_refine(const T* v, int n, T loc, const T* w, int r) {
  const int padded = n + 4;
  const int px = static_cast<int>(loc + T(2.5));
  T L[5];
  for (int i = 0; i < 5; ++i) {
    int q = px - 2 + i;
    if (q < 0) q += padded;
    L[i] = blur1d_at(v, n, clamp_index(q - 2, n), w, r);
  }
  T origin_max;
  numpy_argmax(v, n, &origin_max);
  modulate_samples(L, 5, origin_max, T(1e-3), T(50), true, Blur1dMax<T>{v, n, w, r});
  const T dx = T(0.5) * (L[3] - L[1]);
  const T dxx = T(1e-9) + T(0.25) * (L[4] - T(2) * L[2] + L[0]);
  return loc - dx / dxx;
}

template <typename T>
PYHPE_HD void simcc_decode_element(const SimccDecodeArgs<T>& a, int64_t m) {
  const T* xv = a.x_labels + m * a.Wx;
  const T* yv = a.y_labels + m * a.Wy;
  T mx, my;
  const int64_t ix = numpy_argmax(xv, a.Wx, &mx);
  const int64_t iy = numpy_argmax(yv, a.Wy, &my);
  const T score = mx > my ? my : mx;
  T lx = static_cast<T>(ix), ly = static_cast<T>(iy);
  if (!(score > T(0))) lx = ly = T(-1);
  if (a.radius_x > 0) lx = simcc_refine(xv, a.Wx, lx, a.weights_x, a.radius_x);
  if (a.radius_y > 0) ly = simcc_refine(yv, a.Wy, ly, a.weights_y, a.radius_y);
  a.coords[2 * m] = lx / a.split_ratio;
  a.coords[2 * m + 1] = ly / a.split_ratio;
  a.scores[m] = score;
}

// ---------------------------------------------------------------------------------------
// Soft-argmax family: coords = sum_j p_j * (x_j, y_j) with grid x_j = ax * col + bx,
// y_j = ay * row + by, and p from the normalization:
//   softmax: p = softmax(beta * h) over H*W     (integral pose regression, kornia)
//   sum:     p = h / sum(h)
//   none:    p = h                              (DSNT: the input is already normalized)
// Optional debiasing (softmax only), with u = 1 / C:
//   J = C / (C - 1) * (J~ - c / C) = (J~ - c * u) / (1 - u)
//   paper  (Gu et al. ICCV 2021): C = mean(exp(beta * h)), c = pixel-grid centre
//          ((W - 1) / 2, (H - 1) / 2): removes exactly the uniform part of the softmax.
//   mmpose (IntegralRegressionHead debias=True): C = sum(exp(h)) (no beta), c = (W/2, H/2)
//          (mmpose's 1/(2C) on the [0, 1) grid j / W, here scaled back to pixels).
// Sums are accumulated in double; exponentials are max-shifted and evaluated in the input
// dtype. Loops run over rows and columns (no per-element integer division).
//
// Maps without a usable distribution get a defined answer and a zero gradient (stats[7] = 1),
// decided in expectation_finish, which every path (SSE2, AVX2, CUDA) shares:
//   * softmax with |m| = |beta| * max|h| >= 2^23 (float) / 2^52 (double): the shifted
//     exponent beta * h - m is no longer resolved by the dtype (beta = 1e30 would give
//     0 / 0); the result is the beta -> inf limit, the mean position of the maxima (the
//     minima for beta < 0);
//   * sum with sum(h) == 0: the grid centre;
//   * debiasing with u == 1 (C == 1: a flat map at h = 0, ...) or u = inf: the centre c.
// Maps holding NaN (or +-inf under softmax) still propagate NaN.

enum Normalize : int { kNormSoftmax = 0, kNormSum = 1, kNormNone = 2 };
enum Debias : int { kDebiasNone = 0, kDebiasPaper = 1, kDebiasMMPose = 2 };

constexpr int kNumStats = 8;  // m, S, xbar, ybar, mg, Sg, u, degenerate (1: zero gradient)
constexpr int kNumCoeffs = 4;  // GradCoeffs: k1, k00, k01, kr

template <typename T>
struct ExpectationArgs {
  const T* heatmaps;  // M x H x W
  int64_t num_maps;
  int H, W;
  int normalize;  // Normalize
  double beta;
  double ax, bx, ay, by;  // grid
  int debias;             // Debias
  double gamma;           // beta of C's exponent (paper: beta, mmpose: 1)
  double count_factor;    // paper: H * W (C is a mean), mmpose: 1 (C is a sum)
  double cx, cy;          // centre subtracted by the debiasing
  double* stats;          // M x kNumStats (workspace)
  const T* grad;          // M x 2, backward only
  double* coeffs;         // M x kNumCoeffs, CUDA backward only (nullptr: computed per element)
  T* out;                 // forward: M x 2 coords; backward: M x H x W
};

// The softmax shift from a map's extremes: scale * max (scale * min for scale < 0), NaN if
// the map holds a NaN (as scaled_max).
template <typename T>
PYHPE_HD_INLINE double scaled_extreme(double scale, T mx, T mn, bool nan_seen) {
  if (nan_seen) return static_cast<double>(NAN);
  return scale * static_cast<double>(scale < 0.0 ? mn : mx);
}

// max_j(scale * h_j) in double, NaN if any h_j is NaN. Multiplying by a constant is
// monotonic under rounding, so this is scale * max(h) (or * min(h) for scale < 0); the
// host reduces in 8 auto-vectorized lanes.
template <typename T>
PYHPE_HD double scaled_max(const T* h, int64_t n, double scale) {
  const bool neg = scale < 0.0;
#ifdef PYHPE_DECODE_SSE2
  if (n >= 16) {
    T mx, mn;
    if (!simd_minmax(h, n, &mx, &mn)) return static_cast<double>(NAN);
    return scale * static_cast<double>(neg ? mn : mx);
  }
#endif
  T best = h[0];
  bool nan_seen = h[0] != h[0];
  for (int64_t j = 1; j < n; ++j) {
    const T x = h[j];
    nan_seen |= x != x;
    best = neg ? (x < best ? x : best) : (x > best ? x : best);
  }
  return scaled_extreme(scale, best, best, nan_seen);
}

#ifdef PYHPE_DECODE_SSE2
// expf_vectorizable on 4 lanes: the same operations in the same order, so bitwise equal.
inline __m128 expf_sse(__m128 x) {
  x = _mm_max_ps(_mm_set1_ps(-88.0f), x);  // NaN stays NaN (maxps returns operand 2)
  const __m128 magic = _mm_set1_ps(12582912.0f);
  const __m128 t = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)), magic);
  const __m128 n = _mm_sub_ps(t, magic);
  __m128 r = _mm_sub_ps(x, _mm_mul_ps(n, _mm_set1_ps(0.693359375f)));
  r = _mm_sub_ps(r, _mm_mul_ps(n, _mm_set1_ps(-2.12194440e-4f)));
  __m128 p = _mm_set1_ps(1.9875691500e-4f);
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.3981999507e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(8.3334519073e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(4.1665795894e-2f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.6666665459e-1f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(5.0000001201e-1f));
  p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
  const __m128i ni = _mm_cvttps_epi32(n);
  const __m128i in_range = _mm_and_si128(_mm_cmpgt_epi32(ni, _mm_set1_epi32(-127)),
                                         _mm_cmplt_epi32(ni, _mm_set1_epi32(128)));
  const __m128i bits =
      _mm_and_si128(_mm_slli_epi32(_mm_add_epi32(ni, _mm_set1_epi32(127)), 23), in_range);
  return _mm_mul_ps(p, _mm_castsi128_ps(bits));
}
#endif

// Host fast path of one softmax row in float: 4-lane exponentials and float partial sums
// (at most W / 4 terms per lane), promoted to double per row. Advances *col past the
// columns it handled; the caller finishes the rest.
PYHPE_HD_INLINE void softmax_row_lanes(const float* hr, int W, float beta, float mmax, int* col,
                                       double* rs, double* rc) {
#ifdef PYHPE_DECODE_SSE2
  const __m128 vb = _mm_set1_ps(beta), vm = _mm_set1_ps(mmax), four = _mm_set1_ps(4.0f);
  __m128 s = _mm_setzero_ps(), sc = _mm_setzero_ps(), idx = _mm_setr_ps(0.f, 1.f, 2.f, 3.f);
  int c = 0;
  for (; c + 4 <= W; c += 4) {
    const __m128 e = expf_sse(_mm_sub_ps(_mm_mul_ps(vb, _mm_loadu_ps(hr + c)), vm));
    s = _mm_add_ps(s, e);
    sc = _mm_add_ps(sc, _mm_mul_ps(e, idx));
    idx = _mm_add_ps(idx, four);
  }
  float s4[4], c4[4];
  _mm_storeu_ps(s4, s);
  _mm_storeu_ps(c4, sc);
  *rs += (static_cast<double>(s4[0]) + s4[1]) + (static_cast<double>(s4[2]) + s4[3]);
  *rc += (static_cast<double>(c4[0]) + c4[1]) + (static_cast<double>(c4[2]) + c4[3]);
  *col = c;
#else
  (void)hr, (void)W, (void)beta, (void)mmax, (void)rs, (void)rc;
  *col = 0;
#endif
}

// Per-map sums: the softmax's shift m (= max(beta * h), 0 without softmax), S = sum f,
// Sc = sum f * col and Sr = sum f * row, with f = exp(beta * h - m) (softmax) or h.
// With a debias gamma != beta, the sums may also carry that softmax's shift mg and sum Sg
// (gamma_done); else expectation_finish makes those two passes itself.
struct MapSums {
  double mmax, S, Sc, Sr;
  double mg = 0.0, Sg = 0.0;
  bool gamma_done = false;
};

// The summed weight of one element: exp(beta * h - m) under softmax, else h.
template <typename T>
PYHPE_HD_INLINE double expectation_weight(const ExpectationArgs<T>& a, T h, T beta_t, T mmax_t) {
  // Rounded product then sum: no FMA contraction on the GPU.
  if (a.normalize != kNormSoftmax) return static_cast<double>(h);
  return static_cast<double>(exp_of(add_rn(mul_rn(beta_t, h), -mmax_t)));
}

template <typename T>
PYHPE_HD MapSums expectation_sums(const ExpectationArgs<T>& a, int64_t m) {
  const int H = a.H, W = a.W;
  const int64_t HW = static_cast<int64_t>(H) * W;
  const T* h = a.heatmaps + m * HW;
  MapSums r{0.0, 0.0, 0.0, 0.0};
  const bool softmax = a.normalize == kNormSoftmax;
  if (softmax) r.mmax = scaled_max(h, HW, a.beta);
  const T beta_t = static_cast<T>(a.beta), mmax_t = static_cast<T>(r.mmax);
  for (int row = 0; row < H; ++row) {
    const T* hr = h + static_cast<int64_t>(row) * W;
    double rs = 0.0, rc = 0.0;
    if (softmax) {
      int col = 0;
#if !defined(__CUDA_ARCH__)
      if (sizeof(T) == sizeof(float) && r.mmax == r.mmax)
        softmax_row_lanes(reinterpret_cast<const float*>(hr), W, static_cast<float>(a.beta),
                          static_cast<float>(r.mmax), &col, &rs, &rc);
#endif
      for (; col < W; ++col) {
        const double e = expectation_weight(a, hr[col], beta_t, mmax_t);
        rs += e;
        rc += e * col;
      }
    } else {
      for (int col = 0; col < W; ++col) {
        const double v = static_cast<double>(hr[col]);
        rs += v;
        rc += v * col;
      }
    }
    r.S += rs;
    r.Sc += rc;
    r.Sr += rs * row;
  }
  return r;
}

// u = 1 / C at which the debiasing J = (J~ - c u) / (1 - u) has no value.
PYHPE_HD_INLINE bool debias_singular(double u) { return u == 1.0 || u > 1.79769313486231570e308; }

// |beta * h| from which the softmax is taken as saturated (see above): one ulp of the shift
// m is then >= 1 in the exponent.
template <typename T>
PYHPE_HD_INLINE double softmax_saturation() {
  return sizeof(T) == sizeof(float) ? 8388608.0 : 4503599627370496.0;  // 2^23, 2^52
}

template <typename T>
PYHPE_HD_INLINE bool softmax_saturated(const ExpectationArgs<T>& a, double mmax) {
  return a.normalize == kNormSoftmax && fabs(mmax) >= softmax_saturation<T>() &&
         fabs(mmax) <= 1.79769313486231570e308;  // finite: NaN / inf maps propagate
}

// The beta -> inf limit of the softmax sums: weight 1 on each maximum (minimum for
// beta < 0), 0 elsewhere. A serial pass; it only runs for saturated maps.
template <typename T>
PYHPE_HD MapSums saturated_sums(const ExpectationArgs<T>& a, int64_t m, double mmax) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  const T* h = a.heatmaps + m * HW;
  const bool neg = a.beta < 0.0;
  T best = h[0];
  for (int64_t j = 1; j < HW; ++j) best = neg ? (h[j] < best ? h[j] : best)
                                             : (h[j] > best ? h[j] : best);
  MapSums r{mmax, 0.0, 0.0, 0.0};
  for (int row = 0; row < a.H; ++row) {
    const T* hr = h + static_cast<int64_t>(row) * a.W;
    for (int col = 0; col < a.W; ++col) {
      if (hr[col] != best) continue;
      r.S += 1.0;
      r.Sc += col;
      r.Sr += row;
    }
  }
  return r;
}

// One term of the debias softmax's sum: exp(gamma * h - mg), rounded as expectation_weight.
template <typename T>
PYHPE_HD_INLINE double gamma_weight(T gamma_t, T h, T mg_t) {
  return static_cast<double>(exp_of(add_rn(mul_rn(gamma_t, h), -mg_t)));
}

// Per-map statistics from the sums (the forward pass); the backward reuses them (the op
// returns them).
template <typename T>
PYHPE_HD void expectation_finish(const ExpectationArgs<T>& a, int64_t m, const MapSums& sums) {
  double* st = a.stats + m * kNumStats;
  double degenerate = 0.0;
  MapSums s = sums;
  if (softmax_saturated(a, s.mmax)) {
    s = saturated_sums(a, m, s.mmax);
    degenerate = 1.0;
  }
  double xbar, ybar;
  if (a.normalize == kNormNone) {
    xbar = a.ax * s.Sc + a.bx * s.S;
    ybar = a.ay * s.Sr + a.by * s.S;
  } else if (s.S == 0.0) {  // sum normalization of a map summing to 0: the grid centre
    xbar = a.ax * (static_cast<double>(a.W) - 1.0) * 0.5 + a.bx;
    ybar = a.ay * (static_cast<double>(a.H) - 1.0) * 0.5 + a.by;
    degenerate = 1.0;
  } else {
    xbar = a.ax * (s.Sc / s.S) + a.bx;
    ybar = a.ay * (s.Sr / s.S) + a.by;
  }
  st[0] = s.mmax;
  st[1] = s.S;
  st[2] = xbar;
  st[3] = ybar;
  st[4] = s.mmax;
  st[5] = s.S;
  st[6] = 0.0;
  st[7] = degenerate;
  if (a.debias != kDebiasNone) {
    double mg = s.mmax, Sg = s.S;
    if (a.gamma != a.beta && sums.gamma_done) {
      mg = sums.mg;
      Sg = sums.Sg;
    } else if (a.gamma != a.beta) {
      const int64_t HW = static_cast<int64_t>(a.H) * a.W;
      const T* h = a.heatmaps + m * HW;
      mg = scaled_max(h, HW, a.gamma);
      const T gamma_t = static_cast<T>(a.gamma), mg_t = static_cast<T>(mg);
      Sg = 0.0;
      for (int64_t j = 0; j < HW; ++j) Sg += gamma_weight(gamma_t, h[j], mg_t);
    }
    st[4] = mg;
    st[5] = Sg;
    st[6] = a.count_factor * exp(-mg) / Sg;  // u = 1 / C
    if (debias_singular(st[6])) st[7] = 1.0;
  }
}

// Writes the coordinates of map m from its statistics.
template <typename T>
PYHPE_HD void expectation_coords(const ExpectationArgs<T>& a, int64_t m) {
  const double* st = a.stats + m * kNumStats;
  double x = st[2], y = st[3];
  if (a.debias != kDebiasNone) {
    const double u = st[6];
    if (debias_singular(u)) {  // (J~ - c u) / (1 - u) is 0 / 0 or inf / inf: its centre
      x = a.cx;
      y = a.cy;
    } else {
      x = (x - a.cx * u) / (1.0 - u);
      y = (y - a.cy * u) / (1.0 - u);
    }
  }
  a.out[2 * m] = static_cast<T>(x);
  a.out[2 * m + 1] = static_cast<T>(y);
}

// The gradient is affine in the column and in the row:
//   dL/dh = f_j * (k1 * col + k00 + k01 * row) + kr * r_j
// with f_j = exp(beta * h_j - m) (softmax) or 1, and
// r_j = exp(gamma * h_j - m_gamma) only for the mmpose debiasing with beta != 1.
//   softmax: beta p (g . (x_j - xbar)) [/ (1 - u)]  - gamma r u / (1 - u)^2 g . (xbar - c)
//   sum:     g . (x_j - xbar) / S;     none: g . x_j
// Coefficients in double (once per map); k0 = k00 + k01 * row per row; the per-element
// product in the input dtype.
struct GradCoeffs {
  double k1, k00, k01, kr;
  PYHPE_HD_INLINE double k0(int row) const { return k00 + k01 * row; }
};

template <typename T>
PYHPE_HD_INLINE GradCoeffs expectation_grad_coeffs(const ExpectationArgs<T>& a,
                                                   const double* st, double gx, double gy) {
  GradCoeffs c;
  c.kr = 0.0;
  if (a.normalize == kNormNone) {
    c.k1 = gx * a.ax;
    c.k00 = gx * a.bx + gy * a.by;
    c.k01 = gy * a.ay;
    return c;
  }
  const double lin0 = gx * (a.bx - st[2]) + gy * (a.by - st[3]);
  if (a.normalize == kNormSum) {
    c.k1 = gx * a.ax / st[1];
    c.k00 = lin0 / st[1];
    c.k01 = gy * a.ay / st[1];
    return c;
  }
  double scale = a.beta / st[1];
  double extra = 0.0;
  if (a.debias != kDebiasNone) {
    const double u = st[6], inv = 1.0 / (1.0 - u);
    scale *= inv;
    const double d = -a.gamma * u * inv * inv * (gx * (st[2] - a.cx) + gy * (st[3] - a.cy));
    if (a.gamma == a.beta) {
      extra = d / st[1];  // r_j = p_j = f_j / S
    } else {
      c.kr = d;
    }
  }
  c.k1 = scale * gx * a.ax;
  c.k00 = scale * lin0 + extra;
  c.k01 = scale * gy * a.ay;
  return c;
}

template <typename T>
PYHPE_HD_INLINE GradCoeffs expectation_grad_coeffs_of_map(const ExpectationArgs<T>& a,
                                                          int64_t m) {
  return expectation_grad_coeffs(a, a.stats + m * kNumStats, static_cast<double>(a.grad[2 * m]),
                                 static_cast<double>(a.grad[2 * m + 1]));
}

template <typename T>
PYHPE_HD_INLINE T expectation_grad_value(const ExpectationArgs<T>& a, const double* st, T k1,
                                         T k0, double kr, int col, T h) {
  if (st[7] != 0.0) return T(0);  // degenerate map: its defined answer is constant
  T v = k1 * static_cast<T>(col) + k0;
  if (a.normalize == kNormSoftmax)
    v *= exp_of(T(static_cast<T>(a.beta) * h - static_cast<T>(st[0])));
  if (kr != 0.0)
    v += static_cast<T>(kr / st[5]) *
         exp_of(T(static_cast<T>(a.gamma) * h - static_cast<T>(st[4])));
  return v;
}

// Per-map gradient coefficients into a.coeffs (the CUDA backward's first pass, so that
// the per-element pass does no double divisions).
template <typename T>
PYHPE_HD void expectation_coeffs_element(const ExpectationArgs<T>& a, int64_t m) {
  const GradCoeffs c = expectation_grad_coeffs_of_map(a, m);
  double* out = a.coeffs + m * kNumCoeffs;
  out[0] = c.k1;
  out[1] = c.k00;
  out[2] = c.k01;
  out[3] = c.kr;
}

// Backward gradient of one heatmap element (CUDA: one thread each), from the statistics
// the forward returned and, when a.coeffs is set, the per-map coefficients.
template <typename T>
PYHPE_HD void expectation_backward_element(const ExpectationArgs<T>& a, int64_t idx) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  const int64_t m = idx / HW, j = idx % HW;
  const int row = static_cast<int>(j / a.W);
  GradCoeffs c;
  if (a.coeffs != nullptr) {
    const double* k = a.coeffs + m * kNumCoeffs;
    c = GradCoeffs{k[0], k[1], k[2], k[3]};
  } else {
    c = expectation_grad_coeffs_of_map(a, m);
  }
  a.out[idx] = expectation_grad_value(a, a.stats + m * kNumStats, static_cast<T>(c.k1),
                                      static_cast<T>(c.k0(row)), c.kr,
                                      static_cast<int>(j % a.W), a.heatmaps[idx]);
}

// Host fast path of one softmax gradient row in float.
PYHPE_HD_INLINE void softmax_grad_row(const float* hr, float* orow, int W, float beta, float m,
                                      float k1, float k0) {
  int col = 0;
#ifdef PYHPE_DECODE_SSE2
  const __m128 vb = _mm_set1_ps(beta), vm = _mm_set1_ps(m), vk1 = _mm_set1_ps(k1),
               vk0 = _mm_set1_ps(k0), four = _mm_set1_ps(4.0f);
  __m128 idx = _mm_setr_ps(0.f, 1.f, 2.f, 3.f);
  for (; col + 4 <= W; col += 4) {
    const __m128 e = expf_sse(_mm_sub_ps(_mm_mul_ps(vb, _mm_loadu_ps(hr + col)), vm));
    _mm_storeu_ps(orow + col, _mm_mul_ps(_mm_add_ps(_mm_mul_ps(vk1, idx), vk0), e));
    idx = _mm_add_ps(idx, four);
  }
#endif
  for (; col < W; ++col)
    orow[col] = (k1 * static_cast<float>(col) + k0) * expf_vectorizable(beta * hr[col] - m);
}

// Backward of a whole map (CPU): the same math, looping rows/columns; one read of the map
// and one write of its gradient.
template <typename T>
PYHPE_HD void expectation_backward_map(const ExpectationArgs<T>& a, int64_t m) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  const double* st = a.stats + m * kNumStats;
  const GradCoeffs c = expectation_grad_coeffs_of_map(a, m);
  const T* h = a.heatmaps + m * HW;
  T* o = a.out + m * HW;
  const bool softmax = a.normalize == kNormSoftmax;
  const T k1 = static_cast<T>(c.k1);
  if (st[7] != 0.0) {  // degenerate map: zero gradient
    for (int64_t j = 0; j < HW; ++j) o[j] = T(0);
    return;
  }
  for (int row = 0; row < a.H; ++row) {
    T* orow = o + static_cast<int64_t>(row) * a.W;
    const T* hrow = h + static_cast<int64_t>(row) * a.W;
    const T k0 = static_cast<T>(c.k0(row));
#if !defined(__CUDA_ARCH__)
    if (sizeof(T) == sizeof(float) && softmax && c.kr == 0.0 && st[0] == st[0]) {
      softmax_grad_row(reinterpret_cast<const float*>(hrow), reinterpret_cast<float*>(orow),
                       a.W, static_cast<float>(a.beta), static_cast<float>(st[0]),
                       static_cast<float>(k1), static_cast<float>(k0));
      continue;
    }
#endif
    if (!softmax && c.kr == 0.0) {
      for (int col = 0; col < a.W; ++col) orow[col] = k1 * static_cast<T>(col) + k0;
    } else {
      for (int col = 0; col < a.W; ++col)
        orow[col] = expectation_grad_value(a, st, k1, k0, c.kr, col, hrow[col]);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Back-transforms (one call per keypoint).

// mmpose 0.x transform_preds with `scale` in pixels (mmpose 0.x passes scale / 200 and
// multiplies by 200; mmpose 1.x codecs take the bbox size in pixels):
//   x' = x * scale_x / (W or W - 1 with UDP) + center_x - scale_x * 0.5
template <typename T>
struct TransformPredsArgs {
  const T* coords;  // B x K x 2
  const T* center;  // B x 2
  const T* scale;   // B x 2
  int64_t B, K;
  T size_x, size_y;  // W, H (or W - 1, H - 1 with UDP)
  T* out;
};

template <typename T>
PYHPE_HD void transform_preds_element(const TransformPredsArgs<T>& a, int64_t idx) {
  const int64_t b = idx / a.K;
  const T sx = a.scale[2 * b], sy = a.scale[2 * b + 1];
  const T fx = sx / a.size_x, fy = sy / a.size_y;
  a.out[2 * idx] =
      add_rn(add_rn(mul_rn(a.coords[2 * idx], fx), a.center[2 * b]), -mul_rn(sx, T(0.5)));
  a.out[2 * idx + 1] =
      add_rn(add_rn(mul_rn(a.coords[2 * idx + 1], fy), a.center[2 * b + 1]), -mul_rn(sy, T(0.5)));
}

// Top-down crops back to the image with mmpose's rescoring, one call per instance n:
//   (x, y) = coords / size * scale + center - 0.5 * scale, step by step in double and rounded
//   to T at the end (mmpose 1.x add_pred_to_datasample: numpy promotes the division by the
//   integer input_size to float64 and stores into the float32 keypoints); size = (W, H), or
//   (W - 1, H - 1) for UDP crops; keypoints[n, k] = (x, y, score) in double;
//   final[n] = box_score * mean of the scores > score_thr (compared in T; 0 when none; the
//   mean summed in double in keypoint order).
template <typename T>
struct TopdownRescoreArgs {
  const T* coords;           // N x K x 2, input pixels
  const T* scores;           // N x K
  const T* center;           // N x 2
  const T* scale;            // N x 2
  const double* box_scores;  // N
  int64_t N, K;
  T size_x, size_y;
  T score_thr;
  double* keypoints;  // N x K x 3
  double* final_scores;  // N
};

template <typename T>
PYHPE_HD void topdown_rescore_element(const TopdownRescoreArgs<T>& a, int64_t n) {
  const double sx = a.scale[2 * n], sy = a.scale[2 * n + 1];
  const double cx = a.center[2 * n], cy = a.center[2 * n + 1];
  const double hx = mul_rn(0.5, sx), hy = mul_rn(0.5, sy);
  const double wx = a.size_x, wy = a.size_y;
  const T* c = a.coords + 2 * n * a.K;
  const T* s = a.scores + n * a.K;
  double* out = a.keypoints + 3 * n * a.K;
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t k = 0; k < a.K; ++k) {
    const double x = add_rn(add_rn(mul_rn(static_cast<double>(c[2 * k]) / wx, sx), cx), -hx);
    const double y =
        add_rn(add_rn(mul_rn(static_cast<double>(c[2 * k + 1]) / wy, sy), cy), -hy);
    out[3 * k] = round_as(x, T());
    out[3 * k + 1] = round_as(y, T());
    out[3 * k + 2] = static_cast<double>(s[k]);
    if (s[k] > a.score_thr) {
      sum += static_cast<double>(s[k]);
      ++count;
    }
  }
  a.final_scores[n] = a.box_scores[n] * (count > 0 ? sum / static_cast<double>(count) : 0.0);
}

// (x', y') = M[:, :2] @ (x, y) + M[:, 2] (mmpose affine_transform, batched).
template <typename T>
struct AffinePointsArgs {
  const T* coords;  // B x K x 2
  const T* matrix;  // B x 2 x 3
  int64_t B, K;
  T* out;
};

template <typename T>
PYHPE_HD void affine_points_element(const AffinePointsArgs<T>& a, int64_t idx) {
  const T* M = a.matrix + (idx / a.K) * 6;
  const T x = a.coords[2 * idx], y = a.coords[2 * idx + 1];
  a.out[2 * idx] = add_rn(add_rn(mul_rn(M[0], x), mul_rn(M[1], y)), M[2]);
  a.out[2 * idx + 1] = add_rn(add_rn(mul_rn(M[3], x), mul_rn(M[4], y)), M[5]);
}

}  // namespace decode
}  // namespace pyhpe
