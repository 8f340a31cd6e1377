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

#include "common/hd.h"

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

PYHPE_HD_INLINE float log_of(float v) { return logf(v); }
PYHPE_HD_INLINE double log_of(double v) { return log(v); }
PYHPE_HD_INLINE float exp_of(float v) { return expf(v); }
PYHPE_HD_INLINE double exp_of(double v) { return exp(v); }

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
PYHPE_HD int64_t numpy_argmax(const T* v, int64_t n, T* max_out) {
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

// ---------------------------------------------------------------------------------------
// Zero-padded Gaussian blur sampled at single points.
//
// mmpose pads the map with `radius` zeros on every side before cv2.GaussianBlur and crops
// the padding off afterwards, so every output pixel only sees the padded image: the blur is
// exactly a zero-padded separable convolution (OpenCV's border mode never matters). The
// weights are OpenCV's getGaussianKernel(k, 0) in the image depth (computed on the host).

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
    for (int xx = x0; xx <= x1; ++xx) racc += w[xx - x + r] * row[xx];
    acc += w[dy + r] * racc;
  }
  return acc;
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
  for (int xx = x0; xx <= x1; ++xx) acc += w[xx - x + r] * v[xx];
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

template <typename T>
PYHPE_HD void heatmap_decode_element(const HeatmapDecodeArgs<T>& a, int64_t m) {
  const int H = a.H, W = a.W;
  const T* hm = a.heatmaps + m * static_cast<int64_t>(H) * W;
  T maxval;
  const int64_t idx = numpy_argmax(hm, static_cast<int64_t>(H) * W, &maxval);
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
      T L[13];
      for (int i = 0; i < 13; ++i) L[i] = blur2d_at(hm, H, W, x + ox[i], y + oy[i], w, r);
      modulate_samples(L, 13, maxval, T(1e-10), T(0), false, Blur2dMax<T>{hm, H, W, w, r});
      const T dx = T(0.5) * (L[3] - L[2]);
      const T dy = T(0.5) * (L[7] - L[6]);
      const T dxx = T(0.25) * (L[4] - T(2) * L[0] + L[1]);
      const T dxy = T(0.25) * (L[9] - L[10] - L[11] + L[12]);
      const T dyy = T(0.25) * (L[8] - T(2) * L[0] + L[5]);
      const T det = dxx * dyy - dxy * dxy;
      if (det != T(0)) {
        fx -= (dyy * dx - dxy * dy) / det;
        fy -= (dxx * dy - dxy * dx) / det;
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
    for (int i = 0; i < 7; ++i) L[i] = blur2d_at(hm, H, W, sx[i], sy[i], w, r);
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
    const double det = h00 * h11 - h01 * h01;
    const double gx = static_cast<double>(dx), gy = static_cast<double>(dy);
    fx = static_cast<T>(static_cast<double>(fx) - (h11 * gx - h01 * gy) / det);
    fy = static_cast<T>(static_cast<double>(fy) - (h00 * gy - h01 * gx) / det);
  }
  a.coords[2 * m] = fx;
  a.coords[2 * m + 1] = fy;
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
// Statistics are accumulated in double; exponentials are max-shifted.

enum Normalize : int { kNormSoftmax = 0, kNormSum = 1, kNormNone = 2 };
enum Debias : int { kDebiasNone = 0, kDebiasPaper = 1, kDebiasMMPose = 2 };

constexpr int kNumStats = 8;  // m, S, xbar, ybar, mg, Sg, u, (spare)

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
  T* out;                 // forward: M x 2 coords; backward: M x H x W
};

template <typename T>
PYHPE_HD void expectation_stats(const ExpectationArgs<T>& a, int64_t m) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  const T* h = a.heatmaps + m * HW;
  double* st = a.stats + m * kNumStats;
  double mmax = 0.0, S = 0.0, Sc = 0.0, Sr = 0.0;
  if (a.normalize == kNormSoftmax) {
    mmax = a.beta * static_cast<double>(h[0]);
    for (int64_t j = 1; j < HW; ++j) {
      const double v = a.beta * static_cast<double>(h[j]);
      if (numpy_replaces(v, mmax)) mmax = v;
    }
    for (int64_t j = 0; j < HW; ++j) {
      const double e = exp(a.beta * static_cast<double>(h[j]) - mmax);
      S += e;
      Sc += e * static_cast<double>(j % a.W);
      Sr += e * static_cast<double>(j / a.W);
    }
  } else {
    for (int64_t j = 0; j < HW; ++j) {
      const double v = static_cast<double>(h[j]);
      S += v;
      Sc += v * static_cast<double>(j % a.W);
      Sr += v * static_cast<double>(j / a.W);
    }
  }
  double xbar, ybar;
  if (a.normalize == kNormNone) {
    xbar = a.ax * Sc + a.bx * S;
    ybar = a.ay * Sr + a.by * S;
  } else {
    xbar = a.ax * (Sc / S) + a.bx;
    ybar = a.ay * (Sr / S) + a.by;
  }
  st[0] = mmax;
  st[1] = S;
  st[2] = xbar;
  st[3] = ybar;
  st[4] = mmax;
  st[5] = S;
  st[6] = 0.0;
  st[7] = 0.0;
  if (a.debias != kDebiasNone) {
    double mg = mmax, Sg = S;
    if (a.gamma != a.beta) {
      mg = a.gamma * static_cast<double>(h[0]);
      for (int64_t j = 1; j < HW; ++j) {
        const double v = a.gamma * static_cast<double>(h[j]);
        if (numpy_replaces(v, mg)) mg = v;
      }
      Sg = 0.0;
      for (int64_t j = 0; j < HW; ++j) Sg += exp(a.gamma * static_cast<double>(h[j]) - mg);
    }
    st[4] = mg;
    st[5] = Sg;
    st[6] = a.count_factor * exp(-mg) / Sg;  // u = 1 / C
  }
}

template <typename T>
PYHPE_HD void expectation_forward_element(const ExpectationArgs<T>& a, int64_t m) {
  expectation_stats(a, m);
  const double* st = a.stats + m * kNumStats;
  double x = st[2], y = st[3];
  if (a.debias != kDebiasNone) {
    const double u = st[6];
    x = (x - a.cx * u) / (1.0 - u);
    y = (y - a.cy * u) / (1.0 - u);
  }
  a.out[2 * m] = static_cast<T>(x);
  a.out[2 * m + 1] = static_cast<T>(y);
}

// d(loss)/d(h) for one heatmap element; expectation_stats must have run for its map.
template <typename T>
PYHPE_HD void expectation_backward_element(const ExpectationArgs<T>& a, int64_t idx) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  const int64_t m = idx / HW, j = idx % HW;
  const double* st = a.stats + m * kNumStats;
  const double gx = static_cast<double>(a.grad[2 * m]), gy = static_cast<double>(a.grad[2 * m + 1]);
  const double xj = a.ax * static_cast<double>(j % a.W) + a.bx;
  const double yj = a.ay * static_cast<double>(j / a.W) + a.by;
  const double h = static_cast<double>(a.heatmaps[idx]);
  double g;
  if (a.normalize == kNormNone) {
    g = gx * xj + gy * yj;
  } else if (a.normalize == kNormSum) {
    g = (gx * (xj - st[2]) + gy * (yj - st[3])) / st[1];
  } else {
    const double p = exp(a.beta * h - st[0]) / st[1];
    if (a.debias == kDebiasNone) {
      g = a.beta * p * (gx * (xj - st[2]) + gy * (yj - st[3]));
    } else {
      const double u = st[6], inv = 1.0 / (1.0 - u);
      const double r = exp(a.gamma * h - st[4]) / st[5];
      g = a.beta * p * inv * (gx * (xj - st[2]) + gy * (yj - st[3])) -
          a.gamma * r * u * inv * inv * (gx * (st[2] - a.cx) + gy * (st[3] - a.cy));
    }
  }
  a.out[idx] = static_cast<T>(g);
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
  a.out[2 * idx] = a.coords[2 * idx] * fx + a.center[2 * b] - sx * T(0.5);
  a.out[2 * idx + 1] = a.coords[2 * idx + 1] * fy + a.center[2 * b + 1] - sy * T(0.5);
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
  a.out[2 * idx] = M[0] * x + M[1] * y + M[2];
  a.out[2 * idx + 1] = M[3] * x + M[4] * y + M[5];
}

}  // namespace decode
}  // namespace pyhpe
