// Target generation for heatmap-based pose estimation: Gaussian heatmaps (MSRA, UDP,
// unbiased/DARK), SimCC 1-D labels and part affinity fields. Torch-free; shared by the CPU
// loops and the CUDA kernels so that the CPU tests validate the math the GPU runs.
//
// Gaussian heatmaps follow mmpose (mmpose/codecs/utils/gaussian_heatmap.py) operation by
// operation, including numpy 2's type promotion:
//   MSRA     generate_gaussian_heatmaps: centre mu = int64(kp + 0.5); window
//            [int64(mu - 3s), int64(mu + 3s + 1)) (truncation toward zero, as astype does);
//            gaussian index = pixel - left, centred at floor((6s + 1) / 2); value
//            exp(-(dx^2 + dy^2) / (2 s^2)) in the input dtype.
//   UDP      generate_udp_gaussian_heatmaps: same window, centre shifted by the fraction
//            kp - mu; computed in float64 (numpy promotes the float64 centre), then rounded;
//            evaluated as a product of two 1-D float64 factors (see udp_factor).
//   UNBIASED generate_unbiased_gaussian_heatmaps: centre kp over the whole map, in the input
//            dtype; a keypoint is dropped only when kp -/+ 3s (+1) misses the map. Evaluated
//            as exp(-dx^2/2s^2) * exp(-dy^2/2s^2) (see unbiased_factor).
// Keypoints with visibility < 0.5 are skipped (weight keeps the visibility value); a visible
// keypoint whose window misses the map gets weight 0. Instances sharing a map are combined
// with max.
// SimCC follows mmpose SimCCLabel (gaussian smoothing), PAFs mmpose 0.x PAFGenerator.
#pragma once

#include <math.h>
#include <stdint.h>

#include "common/fp.h"
#include "common/hd.h"

namespace pyhpe {
namespace heatmap {

enum Encoding : int { kMSRA = 0, kUDP = 1, kUnbiased = 2 };
enum PafMode : int { kPafHard = 0, kPafSoft = 1 };

// Coordinates beyond this magnitude are treated as missing the map; it keeps every float ->
// int64 conversion defined (mmpose would also drop them: their window lies off the map).
constexpr double kMaxCoord = 1e15;

template <typename T>
PYHPE_HD_INLINE bool usable_coord(T v) {
  return v == v && v < T(kMaxCoord) && v > T(-kMaxCoord);
}

// A Gaussian's denominator 2 sigma^2, no smaller than the least normal number of T. Tiny
// sigmas (1e-30, or small enough for sigma^2 to underflow) then draw the sigma -> 0 limit,
// 1 at a centre that falls exactly on a pixel and 0 elsewhere, instead of 0 / 0 = NaN there;
// every other sigma is unchanged.
PYHPE_HD_INLINE double two_variance(double sigma) {
  const double v = 2.0 * (sigma * sigma);
  return v < 2.2250738585072014e-308 ? 2.2250738585072014e-308 : v;  // DBL_MIN
}

template <typename T>
PYHPE_HD_INLINE T two_variance_in(double two_var) {
  const T min_normal = sizeof(T) == sizeof(float) ? T(1.17549435e-38f) : T(2.2250738585072014e-308);
  const T v = T(two_var);
  return v < min_normal ? min_normal : v;
}

// ---------------------------------------------------------------------------------------
// Gaussian heatmaps
// ---------------------------------------------------------------------------------------

template <typename T>
struct GaussianArgs {
  const T* keypoints;       // B x N x K x C (x, y first)
  const T* visibility;      // B x N x K
  const double* sigma;      // B x N x K
  int64_t B, N, K, C;
  int64_t H, W;
  int encoding;             // Encoding
  T* heatmaps;              // B x K x H x W
  T* weights;               // B x N x K
};

// What one (b, n, k) contributes to its map. `active` is false for skipped keypoints.
// MSRA/UDP: the integer window [left, right) x [top, bottom) and the Gaussian centre (cx, cy)
// in window coordinates. UNBIASED: the centre in map pixels; the window is the whole map.
template <typename T>
struct GaussianWindow {
  bool active;
  bool keep_weight;  // false: visible keypoint whose window misses the map (weight 0)
  int64_t left, right, top, bottom;
  double cx, cy;     // MSRA/UDP centre inside the window
  T ux, uy;          // UNBIASED centre
  double two_var;    // 2 * sigma^2 (numpy: a python float)
  T two_var_t;       // the same rounded to T, as numpy does for float32 arrays
};

template <typename T>
PYHPE_HD GaussianWindow<T> gaussian_window(const GaussianArgs<T>& a, int64_t b, int64_t n,
                                           int64_t k) {
  GaussianWindow<T> w;
  w.active = false;
  w.keep_weight = true;
  w.left = w.right = w.top = w.bottom = 0;
  w.cx = w.cy = 0.0;
  w.ux = w.uy = T(0);
  w.two_var = 1.0;
  w.two_var_t = T(1);
  const int64_t inst = (b * a.N + n) * a.K + k;
  const T vis = a.visibility[inst];
  if (vis < T(0.5)) return w;  // unlabelled: skipped, weight keeps its value
  const double sigma = a.sigma[inst];
  w.two_var = two_variance(sigma);
  w.two_var_t = two_variance_in<T>(w.two_var);
  const T* kp = a.keypoints + inst * a.C;
  const T kx = kp[0], ky = kp[1];
  if (!usable_coord(kx) || !usable_coord(ky)) {
    w.keep_weight = false;
    return w;
  }
  // Clamped so that the window bounds below convert to int64 defined; a window that wide
  // covers any map either way.
  const double radius = sigma * 3.0 < kMaxCoord ? sigma * 3.0 : kMaxCoord;
  if (a.encoding == kUnbiased) {
    // numpy: float32 keypoint with a weak python-float radius, so the input dtype throughout.
    const T r = T(radius);
    const T left = kx - r, top = ky - r;
    const T right = add_rn(add_rn(kx, r), T(1)), bottom = add_rn(add_rn(ky, r), T(1));
    if (left >= T(a.W) || top >= T(a.H) || right < T(0) || bottom < T(0)) {
      w.keep_weight = false;
      return w;
    }
    w.ux = kx;
    w.uy = ky;
    w.left = 0;
    w.right = a.W;
    w.top = 0;
    w.bottom = a.H;
    w.active = true;
    return w;
  }
  const int64_t mux = static_cast<int64_t>(add_rn(kx, T(0.5)));
  const int64_t muy = static_cast<int64_t>(add_rn(ky, T(0.5)));
  w.left = static_cast<int64_t>(static_cast<double>(mux) - radius);
  w.top = static_cast<int64_t>(static_cast<double>(muy) - radius);
  w.right = static_cast<int64_t>(add_rn(add_rn(static_cast<double>(mux), radius), 1.0));
  w.bottom = static_cast<int64_t>(add_rn(add_rn(static_cast<double>(muy), radius), 1.0));
  if (w.left >= a.W || w.top >= a.H || w.right < 0 || w.bottom < 0) {
    w.keep_weight = false;
    return w;
  }
  const double centre = floor((2.0 * radius + 1.0) / 2.0);
  w.cx = w.cy = centre;
  if (a.encoding == kUDP) {
    w.cx = centre + (static_cast<double>(kx) - static_cast<double>(mux));
    w.cy = centre + (static_cast<double>(ky) - static_cast<double>(muy));
  }
  w.active = true;
  return w;
}

// UNBIASED maps cover every pixel, so they are evaluated as the product of two 1-D factors
// (W + H exponentials per instance on the CPU instead of W * H). The product is within 3 ulp
// of mmpose's exp of the sum (< 2e-7 absolute), well inside the 1e-6 contract.
template <typename T>
PYHPE_HD_INLINE T unbiased_factor(T coord, T centre, T two_var_t) {
  const T d = coord - centre;
  return exp_of(-mul_rn(d, d) / two_var_t);
}

// UDP factorizes the same way, in float64: the float64 product rounded to float32 equals
// float32(exp of the sum) except within 1e-16 relative of a rounding boundary (1 ulp then).
PYHPE_HD_INLINE double udp_factor(double d, double two_var) {
  return exp_of(-mul_rn(d, d) / two_var);
}

// Value of one window at map pixel (x, y); the caller guarantees the pixel is inside it.
template <typename T>
PYHPE_HD T gaussian_value(const GaussianWindow<T>& w, int encoding, int64_t x, int64_t y) {
  if (encoding == kUDP) {
    return T(mul_rn(udp_factor(static_cast<double>(x - w.left) - w.cx, w.two_var),
                    udp_factor(static_cast<double>(y - w.top) - w.cy, w.two_var)));
  }
  if (encoding == kUnbiased) {
    return mul_rn(unbiased_factor(T(x), w.ux, w.two_var_t),
                  unbiased_factor(T(y), w.uy, w.two_var_t));
  }
  const T dx = T(x - w.left) - T(w.cx);
  const T dy = T(y - w.top) - T(w.cy);
  return exp_of(-add_rn(mul_rn(dx, dx), mul_rn(dy, dy)) / w.two_var_t);
}

template <typename T>
PYHPE_HD_INLINE bool window_covers_row(const GaussianWindow<T>& w, int64_t y) {
  return w.active && y >= w.top && y < w.bottom;
}

// One heatmap pixel: max over the instances of the map (0 where none covers it).
template <typename T>
PYHPE_HD T gaussian_pixel(const GaussianArgs<T>& a, int64_t b, int64_t k, int64_t y, int64_t x) {
  T best = T(0);
  for (int64_t n = 0; n < a.N; ++n) {
    const GaussianWindow<T> w = gaussian_window(a, b, n, k);
    if (!window_covers_row(w, y) || x < w.left || x >= w.right) continue;
    const T v = gaussian_value(w, a.encoding, x, y);
    if (v > best) best = v;
  }
  return best;
}

// GPU: one thread per heatmap element, flat index over (b, k, y, x).
template <typename T>
PYHPE_HD void gaussian_heatmap_element(const GaussianArgs<T>& a, int64_t idx) {
  const int64_t x = idx % a.W;
  const int64_t y = (idx / a.W) % a.H;
  const int64_t k = (idx / (a.W * a.H)) % a.K;
  const int64_t b = idx / (a.W * a.H * a.K);
  a.heatmaps[idx] = gaussian_pixel(a, b, k, y, x);
}

// One target weight, flat index over (b, n, k).
template <typename T>
PYHPE_HD void gaussian_weight_element(const GaussianArgs<T>& a, int64_t idx) {
  const int64_t k = idx % a.K;
  const int64_t n = (idx / a.K) % a.N;
  const int64_t b = idx / (a.K * a.N);
  const GaussianWindow<T> w = gaussian_window(a, b, n, k);
  a.weights[idx] = w.keep_weight ? a.visibility[idx] : T(0);
}

// ---------------------------------------------------------------------------------------
// SimCC labels (mmpose SimCCLabel, smoothing_type='gaussian')
// ---------------------------------------------------------------------------------------

template <typename T>
struct SimCCArgs {
  const T* keypoints;   // B x K x C
  const T* visibility;  // B x K
  int64_t B, K, C;
  int64_t Wx, Wy;       // label lengths: round(w * ratio), round(h * ratio)
  double sigma_x, sigma_y, split_ratio;
  bool normalize;
  T* x_labels;          // B x K x Wx
  T* y_labels;          // B x K x Wy
  T* weights;           // B x K
};

// Split-space centre (numpy: around(kp * ratio) in the input dtype, half to even, then
// int64); false when the keypoint is skipped (invisible) or missing (see `hit`).
template <typename T>
PYHPE_HD bool simcc_centre(const SimCCArgs<T>& a, int64_t bk, int64_t* mx, int64_t* my,
                           bool* hit) {
  *hit = true;
  if (a.visibility[bk] < T(0.5)) return false;
  const T* kp = a.keypoints + bk * a.C;
  const T sx = mul_rn(kp[0], T(a.split_ratio)), sy = mul_rn(kp[1], T(a.split_ratio));
  if (!usable_coord(sx) || !usable_coord(sy)) {
    *hit = false;
    return false;
  }
  *mx = static_cast<int64_t>(rint_of(sx));
  *my = static_cast<int64_t>(rint_of(sy));
  // numpy: int64 centre minus the float64 radius array.
  const double rx = a.sigma_x * 3.0, ry = a.sigma_y * 3.0;
  const double left = static_cast<double>(*mx) - rx, top = static_cast<double>(*my) - ry;
  const double right = add_rn(add_rn(static_cast<double>(*mx), rx), 1.0);
  const double bottom = add_rn(add_rn(static_cast<double>(*my), ry), 1.0);
  if (left >= static_cast<double>(a.Wx) || top >= static_cast<double>(a.Wy) || right < 0.0 ||
      bottom < 0.0) {
    *hit = false;
    return false;
  }
  return true;
}

// numpy 2 computes the label in float64 (float32 grid minus an int64 centre) and rounds
// it into the float32 target; normalize divides that float32 value in float64 again.
template <typename T>
PYHPE_HD T simcc_value(int64_t i, int64_t mu, double sigma, bool normalize) {
  const double d = static_cast<double>(i) - static_cast<double>(mu);
  const double e = -mul_rn(d, d) / two_variance(sigma);
  // Below these exponents exp() rounds to 0 in T anyway (float: exp(-104) < 2^-150).
  if (e < (sizeof(T) == sizeof(float) ? -104.0 : -746.0)) return T(0);
  T v = T(exp(e));
  if (normalize) v = T(static_cast<double>(v) / mul_rn(sigma, 2.5066282746310002));
  return v;
}

// Flat index over the concatenation of x labels (B*K*Wx) then y labels (B*K*Wy).
template <typename T>
PYHPE_HD void simcc_element(const SimCCArgs<T>& a, int64_t idx) {
  const int64_t nx = a.B * a.K * a.Wx;
  const bool is_x = idx < nx;
  const int64_t local = is_x ? idx : idx - nx;
  const int64_t len = is_x ? a.Wx : a.Wy;
  const int64_t bk = local / len, i = local % len;
  int64_t mx = 0, my = 0;
  bool hit;
  const bool on = simcc_centre(a, bk, &mx, &my, &hit);
  T* out = is_x ? a.x_labels : a.y_labels;
  out[local] = on ? simcc_value<T>(i, is_x ? mx : my, is_x ? a.sigma_x : a.sigma_y, a.normalize)
                  : T(0);
}

template <typename T>
PYHPE_HD void simcc_weight_element(const SimCCArgs<T>& a, int64_t bk) {
  int64_t mx, my;
  bool hit;
  simcc_centre(a, bk, &mx, &my, &hit);
  a.weights[bk] = hit ? a.visibility[bk] : T(0);
}

// ---------------------------------------------------------------------------------------
// Part affinity fields (mmpose 0.x PAFGenerator, OpenPose semantics)
// ---------------------------------------------------------------------------------------

template <typename T>
struct PafArgs {
  const T* keypoints;    // B x N x K x C
  const T* visibility;   // B x N x K
  const int64_t* limbs;  // L x 2 (src, dst), validated in [0, K)
  int64_t B, N, K, C, L;
  int64_t H, W;
  double limb_width;
  int mode;              // PafMode
  T* pafs;               // B x 2L x H x W
  T* counts;             // B x L x H x W
};

// One limb of one instance: unit vector, inclusive pixel box, source point.
template <typename T>
struct PafLimb {
  bool active;
  T ux, uy;
  T sx, sy;
  int64_t x0, x1, y0, y1;  // inclusive box
};

template <typename T>
PYHPE_HD PafLimb<T> paf_limb(const PafArgs<T>& a, int64_t b, int64_t n, int64_t l) {
  PafLimb<T> lm;
  lm.active = false;
  lm.ux = lm.uy = lm.sx = lm.sy = T(0);
  lm.x0 = lm.y0 = 0;
  lm.x1 = lm.y1 = -1;
  const int64_t base = (b * a.N + n) * a.K;
  const int64_t ks = a.limbs[2 * l], kd = a.limbs[2 * l + 1];
  if (!(a.visibility[base + ks] > T(0)) || !(a.visibility[base + kd] > T(0))) return lm;
  const T* src = a.keypoints + (base + ks) * a.C;
  const T* dst = a.keypoints + (base + kd) * a.C;
  if (!usable_coord(src[0]) || !usable_coord(src[1]) || !usable_coord(dst[0]) ||
      !usable_coord(dst[1]))
    return lm;
  const T vx = dst[0] - src[0], vy = dst[1] - src[1];
  const T norm = sqrt_of(add_rn(mul_rn(vx, vx), mul_rn(vy, vy)));
  if (!(norm > T(0))) return lm;  // zero-length limb: skipped
  lm.ux = vx / norm;
  lm.uy = vy / norm;
  lm.sx = src[0];
  lm.sy = src[1];
  // Soft mode reaches 3 widths; the box grows with it.
  const T reach = T(a.mode == kPafSoft ? 3.0 * a.limb_width : a.limb_width);
  const T lox = floor_of((src[0] < dst[0] ? src[0] : dst[0]) - reach);
  const T hix = ceil_of(add_rn(src[0] > dst[0] ? src[0] : dst[0], reach));
  const T loy = floor_of((src[1] < dst[1] ? src[1] : dst[1]) - reach);
  const T hiy = ceil_of(add_rn(src[1] > dst[1] ? src[1] : dst[1], reach));
  lm.x0 = lox > T(0) ? static_cast<int64_t>(lox) : 0;
  lm.y0 = loy > T(0) ? static_cast<int64_t>(loy) : 0;
  lm.x1 = hix < T(a.W - 1) ? static_cast<int64_t>(hix) : a.W - 1;
  lm.y1 = hiy < T(a.H - 1) ? static_cast<int64_t>(hiy) : a.H - 1;
  lm.active = lm.x0 <= lm.x1 && lm.y0 <= lm.y1;
  return lm;
}

// Weight of one limb at pixel (x, y): hard 1 within limb_width of the limb's line (numpy:
// float64 distance from float32 unit vector), soft exp(-d^2 / (2 w^2)) within 3 widths.
template <typename T>
PYHPE_HD T paf_weight(const PafLimb<T>& lm, double limb_width, int mode, int64_t x, int64_t y) {
  if (!lm.active || x < lm.x0 || x > lm.x1 || y < lm.y0 || y > lm.y1) return T(0);
  const double dx = static_cast<double>(x) - static_cast<double>(lm.sx);
  const double dy = static_cast<double>(y) - static_cast<double>(lm.sy);
  const double dist = fabs(mul_rn(dx, static_cast<double>(lm.uy)) -
                           mul_rn(dy, static_cast<double>(lm.ux)));
  if (mode == kPafHard) return dist < limb_width ? T(1) : T(0);
  if (!(dist < 3.0 * limb_width)) return T(0);
  return T(exp(-mul_rn(dist, dist) / two_variance(limb_width)));
}

// Adds one instance's contribution (weight 0: none) to a pixel's sums, in instance order.
template <typename T>
PYHPE_HD_INLINE void paf_accumulate(const PafLimb<T>& lm, T wgt, int mode, T* sx, T* sy,
                                    T* count) {
  if (wgt == T(0)) return;
  if (mode == kPafHard) {
    *sx = *sx + lm.ux;
    *sy = *sy + lm.uy;
    *count = *count + T(1);
  } else {
    *sx = add_rn(*sx, mul_rn(wgt, lm.ux));
    *sy = add_rn(*sy, mul_rn(wgt, lm.uy));
    *count = *count + wgt;
  }
}

// Final value of an accumulated pixel: sum / max(count, 1) (exactly sum where count <= 1).
template <typename T>
PYHPE_HD_INLINE T paf_average(T sum, T count) {
  return sum / (count > T(1) ? count : T(1));
}

// One pixel of limb l: mean of the unit vectors of the instances covering it (weighted in
// soft mode), as mmpose: sum / max(count, 1).
template <typename T>
PYHPE_HD void paf_pixel(const PafArgs<T>& a, int64_t b, int64_t l, int64_t y, int64_t x) {
  T sx = T(0), sy = T(0), count = T(0);
  for (int64_t n = 0; n < a.N; ++n) {
    const PafLimb<T> lm = paf_limb(a, b, n, l);
    paf_accumulate(lm, paf_weight(lm, a.limb_width, a.mode, x, y), a.mode, &sx, &sy, &count);
  }
  const int64_t plane = a.H * a.W, pix = y * a.W + x;
  a.pafs[(b * 2 * a.L + 2 * l) * plane + pix] = paf_average(sx, count);
  a.pafs[(b * 2 * a.L + 2 * l + 1) * plane + pix] = paf_average(sy, count);
  a.counts[(b * a.L + l) * plane + pix] = count;
}

// GPU: one thread per (b, l, y, x).
template <typename T>
PYHPE_HD void paf_element(const PafArgs<T>& a, int64_t idx) {
  const int64_t x = idx % a.W;
  const int64_t y = (idx / a.W) % a.H;
  const int64_t l = (idx / (a.W * a.H)) % a.L;
  const int64_t b = idx / (a.W * a.H * a.L);
  paf_pixel(a, b, l, y, x);
}

}  // namespace heatmap
}  // namespace pyhpe
