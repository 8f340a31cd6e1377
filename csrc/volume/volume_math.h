// Volumetric (3-D) pose math, shared by the CPU loops and the CUDA kernels; torch-free (raw
// pointers and scalars), so that csrc/tests/test_volume_math.cpp checks what the GPU runs.
//
// Layout and coordinates: a volume is (D, H, W) row-major, voxel (z, y, x) = (depth, row,
// column), and its centre has the coordinates (x, y, z) in voxel units: a W-wide volume
// spans x in [-0.5, W - 0.5], as the 2-D decode family (decode_math.h) does for pixels.
//
// 3-D soft-argmax (integral regression, Sun et al. ECCV 2018, in 3-D):
//   coords = sum_j p_j (x_j, y_j, z_j) with p from the normalization
//     softmax: p = softmax(beta * h) over D*H*W,  sum: p = h / sum(h),  none: p = h
//   optional debiasing (softmax only; Gu, Yang, Yao ICCV 2021 in 3-D), with u = 1 / C,
//   C = mean(exp(beta * h)) and c the grid centre ((W-1)/2, (H-1)/2, (D-1)/2):
//     J = (J~ - c u) / (1 - u).
// Exponentials are max-shifted (beta * h - m, m = beta * max h, or beta * min h when
// beta < 0) and evaluated in the input dtype; sums are promoted to double per row (float
// rows: 8 float lanes, then double). Defined answers where the formula has none (stats[6] =
// 1, zero gradient), shared by every path:
//   * softmax with |m| >= 2^23 (float) / 2^52 (double), finite extreme: the dtype no
//     longer resolves the shifted exponent; the beta -> inf limit (mean of the maxima);
//   * sum with sum(h) == 0: the grid centre;
//   * debiasing with u == 1 (C == 1, e.g. a flat map at 0) or u = inf: the centre c.
// Volumes holding NaN (or +-inf under softmax) give NaN.
//
// 3-D Gaussian targets: mmpose generate_gaussian_heatmaps (MSRA / HRNet) in three axes:
// centre mu = int64(kp + 0.5) per axis, window [int64(mu - 3s), int64(mu + 3s + 1))
// (truncation toward zero), value exp(-(dx^2 + dy^2 + dz^2) / (2 s^2)) in the input dtype,
// d = voxel - left - floor((6s + 1) / 2). Visibility < 0.5: skipped (weight keeps the
// visibility); a visible keypoint whose window misses the volume, or with a non-finite
// coordinate, gets weight 0.
#pragma once

#include <math.h>
#include <stdint.h>

#include "common/fp.h"
#include "common/hd.h"
#include "decode/decode_math.h"  // expf_vectorizable

namespace pyhpe {
namespace volume {

enum Normalize : int { kNormSoftmax = 0, kNormSum = 1, kNormNone = 2 };

// Per-map statistics the forward returns and the backward reuses:
// m (softmax shift), S (sum of weights), xbar, ybar, zbar, u (debias 1 / C), degenerate, 0.
constexpr int kNumStats = 8;
constexpr int kNumCoeffs = 4;  // backward: kx, ky, kz, k0

// The exponential of the softmax weights: branch-free polynomial for float (vectorizable on
// the host, same function on the GPU), the C library's exp for double.
PYHPE_HD_INLINE float vexp(float x) { return decode::expf_vectorizable(x); }
PYHPE_HD_INLINE double vexp(double x) { return exp_of(x); }

template <typename T>
struct SoftArgmax3dArgs {
  const T* volumes;  // M x D x H x W
  int64_t num_maps;
  int D, H, W;
  int normalize;   // Normalize
  double beta;
  bool debias;     // paper debiasing (softmax only)
  double* stats;   // M x kNumStats
  const T* grad;   // M x 3, backward only
  double* coeffs;  // M x kNumCoeffs, CUDA backward only (nullptr: per element)
  T* out;          // forward: M x 3 coords; backward: M x D x H x W
};

template <typename T>
PYHPE_HD_INLINE int64_t voxels(const SoftArgmax3dArgs<T>& a) {
  return static_cast<int64_t>(a.D) * a.H * a.W;
}

// Partial extremes over the flat indices start, start + step, ... (the GPU's threads; the
// CPU runs start 0, step 1). nan records a NaN.
template <typename T>
struct Extremes {
  T mx, mn;
  bool nan;
};

template <typename T>
PYHPE_HD_INLINE Extremes<T> extremes_init() {
  return Extremes<T>{static_cast<T>(-INFINITY), static_cast<T>(INFINITY), false};
}

template <typename T>
PYHPE_HD_INLINE void extremes_add(Extremes<T>* e, T v) {
  e->nan |= v != v;
  e->mx = v > e->mx ? v : e->mx;
  e->mn = v < e->mn ? v : e->mn;
}

template <typename T>
PYHPE_HD_INLINE void extremes_merge(Extremes<T>* e, const Extremes<T>& o) {
  e->nan |= o.nan;
  e->mx = o.mx > e->mx ? o.mx : e->mx;
  e->mn = o.mn < e->mn ? o.mn : e->mn;
}

template <typename T>
PYHPE_HD Extremes<T> extremes_partial(const T* h, int64_t n, int64_t start, int64_t step) {
  Extremes<T> e = extremes_init<T>();
  for (int64_t j = start; j < n; j += step) extremes_add(&e, h[j]);
  return e;
}

// The sums of one map: shift m, S = sum f, Sx = sum f x, Sy = sum f y, Sz = sum f z, with
// f = exp(beta h - m) (softmax) or h. `state`: 0 normal, 1 NaN (NaN / inf softmax shift),
// 2 saturated softmax.
struct VolumeSums {
  double m, S, Sx, Sy, Sz;
  int state;
};

template <typename T>
PYHPE_HD_INLINE double softmax_saturation() {
  return sizeof(T) == sizeof(float) ? 8388608.0 : 4503599627370496.0;  // 2^23, 2^52
}

// The softmax shift from the map's extremes, and its state (see VolumeSums).
template <typename T>
PYHPE_HD_INLINE VolumeSums shift_of(const SoftArgmax3dArgs<T>& a, const Extremes<T>& e) {
  VolumeSums s{0.0, 0.0, 0.0, 0.0, 0.0, 0};
  if (a.normalize != kNormSoftmax) return s;
  const T ext = a.beta < 0.0 ? e.mn : e.mx;
  if (e.nan || !(ext - ext == T(0))) {  // NaN, or an infinite extreme
    s.state = 1;
    s.m = static_cast<double>(NAN);
    return s;
  }
  s.m = a.beta * static_cast<double>(ext);
  if (!(fabs(s.m) < softmax_saturation<T>())) s.state = 2;
  return s;
}

// The weight of one element (softmax: exp(beta h - m) with a rounded product and sum, no FMA
// contraction on the GPU; else h).
template <typename T>
PYHPE_HD_INLINE T volume_weight(bool softmax, T h, T beta_t, T m_t) {
  return softmax ? vexp(add_rn(mul_rn(beta_t, h), -m_t)) : h;
}

// Partial sums over the flat indices start, start + step, ... (the GPU's per-thread work),
// given the shift in s (state 0). Accumulated in double, element by element.
template <typename T>
PYHPE_HD void sums_partial(const SoftArgmax3dArgs<T>& a, int64_t m, int64_t start, int64_t step,
                           VolumeSums* s) {
  const int64_t n = voxels(a), hw = static_cast<int64_t>(a.H) * a.W;
  const T* h = a.volumes + m * n;
  const bool softmax = a.normalize == kNormSoftmax;
  const T beta_t = static_cast<T>(a.beta), m_t = static_cast<T>(s->m);
  for (int64_t j = start; j < n; j += step) {
    const double f = static_cast<double>(volume_weight(softmax, h[j], beta_t, m_t));
    const int64_t z = j / hw, r = j - z * hw, y = r / a.W, x = r - y * a.W;
    s->S += f;
    s->Sx += f * static_cast<double>(x);
    s->Sy += f * static_cast<double>(y);
    s->Sz += f * static_cast<double>(z);
  }
}

// One row's sums (host): 8 lanes in T (a loop the compiler vectorizes: no reassociation),
// promoted to double, then the tail.
template <typename T>
inline void row_sums_host(const T* hr, int W, bool softmax, T beta_t, T m_t, double* rs,
                          double* rx) {
  constexpr int L = 8;
  T s[L], sx[L];
  for (int l = 0; l < L; ++l) s[l] = sx[l] = T(0);
  int c = 0;
  for (; c + L <= W; c += L) {
    T e[L];
    for (int l = 0; l < L; ++l) e[l] = volume_weight(softmax, hr[c + l], beta_t, m_t);
    for (int l = 0; l < L; ++l) {
      s[l] += e[l];
      sx[l] += e[l] * static_cast<T>(c + l);
    }
  }
  double ds = 0.0, dx = 0.0;
  for (int l = 0; l < L; ++l) {
    ds += static_cast<double>(s[l]);
    dx += static_cast<double>(sx[l]);
  }
  for (; c < W; ++c) {
    const double f = static_cast<double>(volume_weight(softmax, hr[c], beta_t, m_t));
    ds += f;
    dx += f * c;
  }
  *rs = ds;
  *rx = dx;
}

// All sums of one map on the host (row by row).
template <typename T>
inline VolumeSums sums_host(const SoftArgmax3dArgs<T>& a, int64_t m) {
  const int64_t n = voxels(a);
  const T* h = a.volumes + m * n;
  VolumeSums s{0.0, 0.0, 0.0, 0.0, 0.0, 0};
  if (a.normalize == kNormSoftmax) s = shift_of(a, extremes_partial(h, n, 0, 1));
  if (s.state != 0) return s;
  const bool softmax = a.normalize == kNormSoftmax;
  const T beta_t = static_cast<T>(a.beta), m_t = static_cast<T>(s.m);
  for (int z = 0; z < a.D; ++z) {
    double ps = 0.0, py = 0.0;
    for (int y = 0; y < a.H; ++y) {
      double rs, rx;
      row_sums_host(h + (static_cast<int64_t>(z) * a.H + y) * a.W, a.W, softmax, beta_t, m_t,
                    &rs, &rx);
      ps += rs;
      py += rs * y;
      s.Sx += rx;
    }
    s.S += ps;
    s.Sy += py;
    s.Sz += ps * z;
  }
  return s;
}

// The beta -> inf limit: weight 1 on each maximum (minimum for beta < 0). Serial; only for
// saturated maps.
template <typename T>
PYHPE_HD void saturated_sums(const SoftArgmax3dArgs<T>& a, int64_t m, VolumeSums* s) {
  const int64_t n = voxels(a), hw = static_cast<int64_t>(a.H) * a.W;
  const T* h = a.volumes + m * n;
  const Extremes<T> e = extremes_partial(h, n, 0, 1);
  const T best = a.beta < 0.0 ? e.mn : e.mx;
  s->S = s->Sx = s->Sy = s->Sz = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    if (h[j] != best) continue;
    const int64_t z = j / hw, r = j - z * hw, y = r / a.W, x = r - y * a.W;
    s->S += 1.0;
    s->Sx += static_cast<double>(x);
    s->Sy += static_cast<double>(y);
    s->Sz += static_cast<double>(z);
  }
}

PYHPE_HD_INLINE bool debias_singular(double u) {
  return u == 1.0 || u > 1.79769313486231570e308;
}

// Statistics and coordinates of map m from its sums (every path ends here).
template <typename T>
PYHPE_HD void volume_finish(const SoftArgmax3dArgs<T>& a, int64_t m, VolumeSums s) {
  double* st = a.stats + m * kNumStats;
  double degenerate = 0.0;
  const double cx = (a.W - 1.0) * 0.5, cy = (a.H - 1.0) * 0.5, cz = (a.D - 1.0) * 0.5;
  if (s.state == 1) {
    s.S = s.Sx = s.Sy = s.Sz = static_cast<double>(NAN);
  } else if (s.state == 2) {
    saturated_sums(a, m, &s);
    degenerate = 1.0;
  }
  double x, y, z;
  if (a.normalize == kNormNone) {
    x = s.Sx;
    y = s.Sy;
    z = s.Sz;
  } else if (s.S == 0.0) {  // 'sum' of a map summing to 0: the grid centre
    x = cx;
    y = cy;
    z = cz;
    degenerate = 1.0;
  } else {
    x = s.Sx / s.S;
    y = s.Sy / s.S;
    z = s.Sz / s.S;
  }
  st[0] = s.m;
  st[1] = s.S;
  st[2] = x;
  st[3] = y;
  st[4] = z;
  st[5] = 0.0;
  st[7] = 0.0;
  if (a.debias) {
    // u = 1 / C = N exp(-m) / S (a saturated map: ~0, or inf when beta * max h << 0).
    const double u = static_cast<double>(voxels(a)) * exp(-s.m) / s.S;
    st[5] = u;
    if (debias_singular(u)) {
      x = cx;
      y = cy;
      z = cz;
      degenerate = 1.0;
    } else {
      x = (x - cx * u) / (1.0 - u);
      y = (y - cy * u) / (1.0 - u);
      z = (z - cz * u) / (1.0 - u);
    }
  }
  st[6] = degenerate;
  a.out[3 * m] = static_cast<T>(x);
  a.out[3 * m + 1] = static_cast<T>(y);
  a.out[3 * m + 2] = static_cast<T>(z);
}

// The gradient is affine in (x, y, z), times the weight:
//   dL/dh_j = f_j (kx x + ky y + kz z + k0),   f_j = exp(beta h_j - m) (softmax) or 1
//   softmax: beta / S * g . (x_j - xbar)   [debias: / (1 - u), and
//            - beta u / (1 - u)^2 / S * g . (xbar - c)]
//   sum:     g . (x_j - xbar) / S;         none: g . x_j
struct GradCoeffs {
  double kx, ky, kz, k0;
};

template <typename T>
PYHPE_HD_INLINE GradCoeffs grad_coeffs(const SoftArgmax3dArgs<T>& a, const double* st,
                                       double gx, double gy, double gz) {
  GradCoeffs c{0.0, 0.0, 0.0, 0.0};
  if (st[6] != 0.0) return c;  // degenerate: a constant answer
  if (a.normalize == kNormNone) {
    c.kx = gx;
    c.ky = gy;
    c.kz = gz;
    return c;
  }
  double scale = 1.0 / st[1];
  double extra = 0.0;
  if (a.normalize == kNormSoftmax) {
    scale *= a.beta;
    if (a.debias) {
      const double u = st[5], inv = 1.0 / (1.0 - u);
      scale *= inv;
      extra = -a.beta * u * inv * inv / st[1] *
              (gx * (st[2] - (a.W - 1.0) * 0.5) + gy * (st[3] - (a.H - 1.0) * 0.5) +
               gz * (st[4] - (a.D - 1.0) * 0.5));
    }
  }
  c.kx = scale * gx;
  c.ky = scale * gy;
  c.kz = scale * gz;
  c.k0 = -scale * (gx * st[2] + gy * st[3] + gz * st[4]) + extra;
  return c;
}

template <typename T>
PYHPE_HD_INLINE GradCoeffs grad_coeffs_of_map(const SoftArgmax3dArgs<T>& a, int64_t m) {
  return grad_coeffs(a, a.stats + m * kNumStats, static_cast<double>(a.grad[3 * m]),
                     static_cast<double>(a.grad[3 * m + 1]),
                     static_cast<double>(a.grad[3 * m + 2]));
}

// The CUDA backward's first pass: coefficients per map.
template <typename T>
PYHPE_HD void coeffs_element(const SoftArgmax3dArgs<T>& a, int64_t m) {
  const GradCoeffs c = grad_coeffs_of_map(a, m);
  double* o = a.coeffs + m * kNumCoeffs;
  o[0] = c.kx;
  o[1] = c.ky;
  o[2] = c.kz;
  o[3] = c.k0;
}

// Gradient of one element (the GPU: one thread each), flat index over (map, z, y, x).
template <typename T>
PYHPE_HD void backward_element(const SoftArgmax3dArgs<T>& a, int64_t idx) {
  const int64_t n = voxels(a), hw = static_cast<int64_t>(a.H) * a.W;
  const int64_t m = idx / n, j = idx - m * n;
  const int64_t z = j / hw, r = j - z * hw, y = r / a.W, x = r - y * a.W;
  const double* st = a.stats + m * kNumStats;
  GradCoeffs c;
  if (a.coeffs != nullptr) {
    const double* k = a.coeffs + m * kNumCoeffs;
    c = GradCoeffs{k[0], k[1], k[2], k[3]};
  } else {
    c = grad_coeffs_of_map(a, m);
  }
  if (st[6] != 0.0) {
    a.out[idx] = T(0);
    return;
  }
  const T k0 = static_cast<T>(c.k0 + c.ky * static_cast<double>(y) +
                              c.kz * static_cast<double>(z));
  T v = add_rn(mul_rn(static_cast<T>(c.kx), static_cast<T>(x)), k0);
  if (a.normalize == kNormSoftmax)
    v = mul_rn(v, volume_weight(true, a.volumes[idx], static_cast<T>(a.beta),
                                static_cast<T>(st[0])));
  a.out[idx] = v;
}

// Gradient of a whole map (host): one read of the map, one write of its gradient.
template <typename T>
inline void backward_map_host(const SoftArgmax3dArgs<T>& a, int64_t m) {
  const int64_t n = voxels(a);
  const double* st = a.stats + m * kNumStats;
  const T* h = a.volumes + m * n;
  T* o = a.out + m * n;
  if (st[6] != 0.0) {
    for (int64_t j = 0; j < n; ++j) o[j] = T(0);
    return;
  }
  const GradCoeffs c = grad_coeffs_of_map(a, m);
  const bool softmax = a.normalize == kNormSoftmax;
  const T kx = static_cast<T>(c.kx), beta_t = static_cast<T>(a.beta),
          m_t = static_cast<T>(st[0]);
  for (int z = 0; z < a.D; ++z) {
    for (int y = 0; y < a.H; ++y) {
      const int64_t off = (static_cast<int64_t>(z) * a.H + y) * a.W;
      const T k0 = static_cast<T>(c.k0 + c.ky * y + c.kz * z);
      const T* hr = h + off;
      T* orow = o + off;
      if (softmax) {
        for (int x = 0; x < a.W; ++x)
          orow[x] = (kx * static_cast<T>(x) + k0) * volume_weight(true, hr[x], beta_t, m_t);
      } else {
        for (int x = 0; x < a.W; ++x) orow[x] = kx * static_cast<T>(x) + k0;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// 3-D Gaussian targets (MSRA convention in three axes)
// ---------------------------------------------------------------------------------------

// Coordinates beyond this magnitude miss the volume (keeps float -> int64 defined).
constexpr double kMaxCoord = 1e15;

template <typename T>
PYHPE_HD_INLINE bool usable_coord(T v) {
  return v == v && v < T(kMaxCoord) && v > T(-kMaxCoord);
}

template <typename T>
struct GaussianVolumeArgs {
  const T* keypoints;   // B x K x C (x, y, z first)
  const T* visibility;  // B x K
  const double* sigma;  // B x K
  int64_t B, K, C;
  int64_t D, H, W;
  T* volumes;  // B x K x D x H x W
  T* weights;  // B x K
};

// The window [lo, hi) per axis (x, y, z) and the Gaussian's centre inside it.
struct VolumeWindow {
  bool active;       // draws something
  bool keep_weight;  // false: visible keypoint that misses the volume (weight 0)
  int64_t lo[3], hi[3];
  double centre;
  double two_var;    // 2 sigma^2, at least the smallest normal double
};

template <typename T>
PYHPE_HD VolumeWindow volume_window(const GaussianVolumeArgs<T>& a, int64_t bk) {
  VolumeWindow w;
  w.active = false;
  w.keep_weight = true;
  for (int d = 0; d < 3; ++d) w.lo[d] = w.hi[d] = 0;
  w.centre = 0.0;
  w.two_var = 1.0;
  if (a.visibility[bk] < T(0.5)) return w;  // unlabelled: skipped, weight kept
  const T* kp = a.keypoints + bk * a.C;
  if (!usable_coord(kp[0]) || !usable_coord(kp[1]) || !usable_coord(kp[2])) {
    w.keep_weight = false;
    return w;
  }
  const double sigma = a.sigma[bk];
  const double v = 2.0 * (sigma * sigma);
  w.two_var = v < 2.2250738585072014e-308 ? 2.2250738585072014e-308 : v;
  const double radius = sigma * 3.0 < kMaxCoord ? sigma * 3.0 : kMaxCoord;
  const int64_t size[3] = {a.W, a.H, a.D};
  for (int d = 0; d < 3; ++d) {
    const int64_t mu = static_cast<int64_t>(add_rn(kp[d], T(0.5)));
    w.lo[d] = static_cast<int64_t>(static_cast<double>(mu) - radius);
    w.hi[d] = static_cast<int64_t>(add_rn(add_rn(static_cast<double>(mu), radius), 1.0));
    if (w.lo[d] >= size[d] || w.hi[d] < 0) w.keep_weight = false;  // mmpose's test
  }
  if (!w.keep_weight) return w;
  w.centre = floor((2.0 * radius + 1.0) / 2.0);
  w.active = true;
  return w;
}

// The value of voxel (x, y, z) (0 outside the window).
template <typename T>
PYHPE_HD T volume_gaussian_value(const VolumeWindow& w, int64_t x, int64_t y, int64_t z) {
  if (!w.active || x < w.lo[0] || x >= w.hi[0] || y < w.lo[1] || y >= w.hi[1] ||
      z < w.lo[2] || z >= w.hi[2])
    return T(0);
  const T c = static_cast<T>(w.centre);
  const T dx = static_cast<T>(x - w.lo[0]) - c;
  const T dy = static_cast<T>(y - w.lo[1]) - c;
  const T dz = static_cast<T>(z - w.lo[2]) - c;
  const T min_normal = sizeof(T) == sizeof(float) ? T(1.17549435e-38f) : T(2.2250738585072014e-308);
  T tv = static_cast<T>(w.two_var);
  tv = tv < min_normal ? min_normal : tv;
  return exp_of(-add_rn(add_rn(mul_rn(dx, dx), mul_rn(dy, dy)), mul_rn(dz, dz)) / tv);
}

// The GPU: one thread per voxel, flat index over (b, k, z, y, x).
template <typename T>
PYHPE_HD void gaussian_volume_element(const GaussianVolumeArgs<T>& a, int64_t idx) {
  const int64_t hw = a.H * a.W, n = a.D * hw;
  const int64_t bk = idx / n, j = idx - bk * n;
  const int64_t z = j / hw, r = j - z * hw, y = r / a.W, x = r - y * a.W;
  a.volumes[idx] = volume_gaussian_value<T>(volume_window(a, bk), x, y, z);
}

template <typename T>
PYHPE_HD void gaussian_volume_weight_element(const GaussianVolumeArgs<T>& a, int64_t bk) {
  const VolumeWindow w = volume_window(a, bk);
  a.weights[bk] = w.keep_weight ? a.visibility[bk] : T(0);
}

}  // namespace volume
}  // namespace pyhpe
