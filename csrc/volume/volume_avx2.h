// Host-only AVX2 + FMA paths of the float 3-D soft-argmax, chosen at run time by the CPU
// loops when the processor has AVX2 and FMA (pyhpe::cpu::avx2_enabled()). Torch-free; never
// seen by nvcc. They compute what sums_host / backward_map_host compute, 8 voxels at a
// time: the exponential is the decode family's expf8 (within 2.2 ulp of exp), the exponent
// beta * h - m one fused multiply-subtract, and the sums run in float lanes over at most
// kFlushRows rows before they are added in double. The extremes (the softmax shift and its
// state) are the exact max / min, so shift_of decides the defined answers as on every path.
#pragma once

#include "decode/decode_avx2.h"
#include "volume/volume_math.h"

#ifdef PYHPE_DECODE_AVX2
#define PYHPE_VOLUME_AVX2 1
#define PYHPE_VOLUME_TARGET_AVX2 __attribute__((target("avx2,fma")))

namespace pyhpe {
namespace volume {
namespace avx2 {

using decode::avx2::expf8;
using decode::avx2::hsum_pd;
using decode::avx2::lane_mask;

constexpr int kFlushRows = 16;

// Exact max, min and NaN flag of n floats.
PYHPE_VOLUME_TARGET_AVX2 inline Extremes<float> extremes(const float* h, int64_t n) {
  __m256 mx = _mm256_set1_ps(-INFINITY), mn = _mm256_set1_ps(INFINITY);
  __m256 nan = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(h + j);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    mx = _mm256_max_ps(mx, v);
    mn = _mm256_min_ps(mn, v);
  }
  float bx[8], bn[8];
  _mm256_storeu_ps(bx, mx);
  _mm256_storeu_ps(bn, mn);
  Extremes<float> e{bx[0], bn[0], _mm256_movemask_ps(nan) != 0};
  for (int l = 1; l < 8; ++l) extremes_merge(&e, Extremes<float>{bx[l], bn[l], false});
  for (; j < n; ++j) extremes_add(&e, h[j]);
  return e;
}

// The weights of 8 voxels (lanes outside `mask` are 0).
PYHPE_VOLUME_TARGET_AVX2 inline __m256 weights8(const float* p, __m256i mask, bool masked, bool softmax,
                                         __m256 vb, __m256 vm) {
  const __m256 h = masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
  __m256 e = softmax ? expf8(_mm256_fmsub_ps(vb, h, vm)) : h;
  return masked ? _mm256_and_ps(e, _mm256_castsi256_ps(mask)) : e;
}

// All sums of one map; false when the caller must take the generic path (not state 0).
PYHPE_VOLUME_TARGET_AVX2 inline bool sums(const SoftArgmax3dArgs<float>& a, int64_t m, VolumeSums* out) {
  const int64_t n = voxels(a);
  const float* h = a.volumes + m * n;
  const bool softmax = a.normalize == kNormSoftmax;
  VolumeSums s{0.0, 0.0, 0.0, 0.0, 0.0, 0};
  if (softmax) s = shift_of(a, extremes(h, n));
  if (s.state != 0) return false;
  const __m256 vb = _mm256_set1_ps(static_cast<float>(a.beta));
  const __m256 vm = _mm256_set1_ps(static_cast<float>(s.m));
  const int W = a.W, rows = a.D * a.H;
  const int full = W & ~7;
  const __m256i tail = lane_mask(W - full);
  const __m256 step = _mm256_set1_ps(8.0f), first = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  for (int r0 = 0; r0 < rows; r0 += kFlushRows) {
    const int r1 = r0 + kFlushRows < rows ? r0 + kFlushRows : rows;
    __m256 vs = _mm256_setzero_ps(), vx = vs, vy = vs, vz = vs;
    for (int r = r0; r < r1; ++r) {
      const float* hr = h + static_cast<int64_t>(r) * W;
      const __m256 y = _mm256_set1_ps(static_cast<float>(r % a.H));
      const __m256 z = _mm256_set1_ps(static_cast<float>(r / a.H));
      __m256 rs = _mm256_setzero_ps(), col = first;
      int c = 0;
      for (; c < full; c += 8) {
        const __m256 e = weights8(hr + c, tail, false, softmax, vb, vm);
        rs = _mm256_add_ps(rs, e);
        vx = _mm256_fmadd_ps(e, col, vx);
        col = _mm256_add_ps(col, step);
      }
      if (c < W) {
        const __m256 e = weights8(hr + c, tail, true, softmax, vb, vm);
        rs = _mm256_add_ps(rs, e);
        vx = _mm256_fmadd_ps(e, col, vx);
      }
      vs = _mm256_add_ps(vs, rs);
      vy = _mm256_fmadd_ps(rs, y, vy);
      vz = _mm256_fmadd_ps(rs, z, vz);
    }
    s.S += hsum_pd(vs);
    s.Sx += hsum_pd(vx);
    s.Sy += hsum_pd(vy);
    s.Sz += hsum_pd(vz);
  }
  *out = s;
  return true;
}

// Gradient of one map (non-degenerate; the caller handles st[6] != 0).
PYHPE_VOLUME_TARGET_AVX2 inline void grad_map(const SoftArgmax3dArgs<float>& a, int64_t m) {
  const int64_t n = voxels(a);
  const double* st = a.stats + m * kNumStats;
  const GradCoeffs c = grad_coeffs_of_map(a, m);
  const float* h = a.volumes + m * n;
  float* o = a.out + m * n;
  const bool softmax = a.normalize == kNormSoftmax;
  const __m256 vb = _mm256_set1_ps(static_cast<float>(a.beta));
  const __m256 vm = _mm256_set1_ps(static_cast<float>(st[0]));
  const __m256 kx = _mm256_set1_ps(static_cast<float>(c.kx));
  const int W = a.W, rows = a.D * a.H, full = W & ~7;
  const __m256i tail = lane_mask(W - full);
  const __m256 step = _mm256_set1_ps(8.0f), first = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  for (int r = 0; r < rows; ++r) {
    const int64_t off = static_cast<int64_t>(r) * W;
    const __m256 k0 = _mm256_set1_ps(static_cast<float>(c.k0 + c.ky * (r % a.H) +
                                                        c.kz * (r / a.H)));
    __m256 col = first;
    int x = 0;
    for (; x < full; x += 8) {
      __m256 v = _mm256_fmadd_ps(kx, col, k0);
      if (softmax) v = _mm256_mul_ps(v, expf8(_mm256_fmsub_ps(vb, _mm256_loadu_ps(h + off + x), vm)));
      _mm256_storeu_ps(o + off + x, v);
      col = _mm256_add_ps(col, step);
    }
    if (x < W) {
      __m256 v = _mm256_fmadd_ps(kx, col, k0);
      if (softmax)
        v = _mm256_mul_ps(v, expf8(_mm256_fmsub_ps(vb, _mm256_maskload_ps(h + off + x, tail), vm)));
      _mm256_maskstore_ps(o + off + x, tail, v);
    }
  }
}

}  // namespace avx2
}  // namespace volume
}  // namespace pyhpe

#undef PYHPE_VOLUME_TARGET_AVX2
#endif  // PYHPE_DECODE_AVX2
