// Host-only AVX2 + FMA paths of the float soft-argmax family (soft_argmax, the debiased
// forms' sums, DSNT), chosen at run time by the CPU loops when the processor has AVX2 and
// FMA (pyhpe::cpu::avx2_enabled()). Torch-free; never seen by nvcc.
//
// They compute what expectation_sums / expectation_backward_map compute, 8 lanes at a time:
//  * exp is expf8: a degree-5 minimax polynomial with fused multiply-adds (within 2.2 ulp of
//    exp where the result is a normal float; flushes to 0 below, like expf_vectorizable);
//    a C++ test checks it against expf;
//  * the sums run in float lanes over blocks of at most kFlushRows rows and are then added
//    in double, so a float partial sum never holds more than kFlushRows terms.
#pragma once

#if !defined(__CUDACC__) && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define PYHPE_DECODE_AVX2 1
#include <immintrin.h>

#include "decode/decode_math.h"

#define PYHPE_TARGET_AVX2 __attribute__((target("avx2,fma")))

namespace pyhpe {
namespace decode {
namespace avx2 {

constexpr int kFlushRows = 16;

// exp(x) for x <= 0 (callers pass beta * h - max(beta * h)); lanes above are garbage and
// must be masked by the caller; NaN gives NaN. After the Cody-Waite reduction to
// |r| <= ln2 / 2, a degree-5 polynomial 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3), minimax
// in relative error (Lawson iterations; 1.1e-7 on the interval), by FMA Horner: within
// 2.2 ulp of exp, which a softmax needs no more than. x is clamped at -88, where the power
// of two becomes 0, so results below FLT_MIN flush to 0 as in expf_vectorizable. The
// integer part n sits in the low mantissa bits of t (the 1.5 * 2^23 rounding trick), so
// 2^n is (t << 23) + (127 << 23).
PYHPE_TARGET_AVX2 inline __m256 expf8(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-88.0f), x);  // NaN stays NaN (maxps returns operand 2)
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 n = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(8.3124852107e-3f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1890571593e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6667116316e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.9999228678e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(t), 23),
                                        _mm256_set1_epi32(127 << 23));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// Lanes [0, n) set (n clipped to [0, 8]).
PYHPE_TARGET_AVX2 inline __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// scale * max(h) (scale * min(h) for scale < 0) in double; false if any h is NaN.
PYHPE_TARGET_AVX2 inline bool scaled_max(const float* h, int64_t n, double scale, double* out) {
  __m256 mx = _mm256_set1_ps(-INFINITY), mn = _mm256_set1_ps(INFINITY);
  __m256 nan = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(h + j);
    mx = _mm256_max_ps(mx, v);
    mn = _mm256_min_ps(mn, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(nan)) return false;
  float m8[8], n8[8];
  _mm256_storeu_ps(m8, mx);
  _mm256_storeu_ps(n8, mn);
  float best_max = m8[0], best_min = n8[0];
  for (int k = 1; k < 8; ++k) {
    best_max = m8[k] > best_max ? m8[k] : best_max;
    best_min = n8[k] < best_min ? n8[k] : best_min;
  }
  for (; j < n; ++j) {
    const float v = h[j];
    if (v != v) return false;
    best_max = v > best_max ? v : best_max;
    best_min = v < best_min ? v : best_min;
  }
  *out = scale * static_cast<double>(scale < 0.0 ? best_min : best_max);
  return true;
}

// Sums of lanes in double.
PYHPE_TARGET_AVX2 inline double hsum_pd(__m256 v) {
  const __m256d s = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                  _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

// sum_lane (col0 + lane) * v[lane] in double.
PYHPE_TARGET_AVX2 inline double hsum_weighted_pd(__m256 v, int col0) {
  const __m256d c = _mm256_add_pd(_mm256_set1_pd(col0), _mm256_setr_pd(0.0, 1.0, 2.0, 3.0));
  const __m256d s = _mm256_fmadd_pd(
      _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), _mm256_add_pd(c, _mm256_set1_pd(4.0)),
      _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), c));
  const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

// Streams the next map into the cache one line per step while the exp-heavy loops run on
// this one (the max scan would otherwise wait for it).
struct Prefetcher {
  const char* p;
  const char* end;
  inline void next() {
    if (p < end) {
      _mm_prefetch(p, _MM_HINT_T0);
      p += 64;
    }
  }
};

// Loads 8 floats; masked only at the right edge of a map row.
template <bool kMasked>
PYHPE_TARGET_AVX2 inline __m256 load8(const float* p, __m256i mask) {
  if (kMasked) return _mm256_maskload_ps(p, mask);
  (void)mask;
  return _mm256_loadu_ps(p);
}

// Adds one column block (16 columns starting at c0, the lanes past W masked) of all rows
// to the sums: per-lane float sums of f and row * f over at most kFlushRows rows at a
// time, then added in double.
template <bool kMasked>
PYHPE_TARGET_AVX2 inline void block_sums(const float* h, int H, int W, int c0, bool softmax,
                                         __m256 vb, __m256 vm, MapSums* s, Prefetcher* pf) {
  const __m256i m0 = lane_mask(W - c0), m1 = lane_mask(W - c0 - 8);
  const __m256 f0 = _mm256_castsi256_ps(m0), f1 = _mm256_castsi256_ps(m1);
  for (int r0 = 0; r0 < H; r0 += kFlushRows) {
    const int r1 = r0 + kFlushRows < H ? r0 + kFlushRows : H;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, q0 = s0, q1 = s0;
    __m256 vr = _mm256_set1_ps(static_cast<float>(r0));
    for (int row = r0; row < r1; ++row) {
      const float* p = h + static_cast<int64_t>(row) * W + c0;
      __m256 v0 = load8<kMasked>(p, m0), v1 = load8<kMasked>(p + 8, m1);
      pf->next();
      if (softmax) {
        v0 = expf8(_mm256_fmsub_ps(vb, v0, vm));
        v1 = expf8(_mm256_fmsub_ps(vb, v1, vm));
        if (kMasked) {
          v0 = _mm256_and_ps(v0, f0);
          v1 = _mm256_and_ps(v1, f1);
        }
      }
      s0 = _mm256_add_ps(s0, v0);
      s1 = _mm256_add_ps(s1, v1);
      q0 = _mm256_fmadd_ps(v0, vr, q0);
      q1 = _mm256_fmadd_ps(v1, vr, q1);
      vr = _mm256_add_ps(vr, _mm256_set1_ps(1.0f));
    }
    s->S += hsum_pd(s0) + hsum_pd(s1);
    s->Sc += hsum_weighted_pd(s0, c0) + hsum_weighted_pd(s1, c0 + 8);
    s->Sr += hsum_pd(q0) + hsum_pd(q1);
  }
}

// Sums in row order, the order the map lies in memory, so it is read from memory once as a
// stream, in chunks of kFlushRows rows: per-column float lanes over one chunk, flushed into
// per-column double lanes. Under softmax the shift m follows the running maximum, chunk by
// chunk (a max scan of the chunk, which then sits in L1 for the exp pass); when it rises
// the double sums so far are rescaled by exp(m_old - m_new). The final m is the map's
// scaled_max, as the generic path and the backward use it. False on NaN under softmax.
// W <= 8 * kMaxRowVectors.
constexpr int kMaxRowVectors = 16;

// kNV > 0: W spans exactly kNV vectors (the last may be partial), so the loops unroll and
// the per-column sums stay in registers; kNV == 0: any W up to 8 * kMaxRowVectors.
template <bool softmax, int kNV>
PYHPE_TARGET_AVX2 inline bool sums_by_rows(const float* h, int H, int W, double beta,
                                           MapSums* s, const float* next) {
  const int full = W / 8, nv = kNV > 0 ? kNV : (W + 7) / 8;
  const __m256i tail = lane_mask(W - 8 * full);
  const __m256 tail_f = _mm256_castsi256_ps(tail);
  const __m256 vb = _mm256_set1_ps(static_cast<float>(beta));
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY), pos_inf = _mm256_set1_ps(INFINITY);
  __m256 fs[kMaxRowVectors], fq[kMaxRowVectors];
  __m256d ds[2 * kMaxRowVectors], dq[2 * kMaxRowVectors];
  for (int v = 0; v < 2 * nv; ++v) ds[v] = dq[v] = _mm256_setzero_pd();
  double m = -INFINITY;  // scaled max so far (softmax)
  __m256 vm = _mm256_setzero_ps();
  for (int r0 = 0; r0 < H; r0 += kFlushRows) {
    const int r1 = r0 + kFlushRows < H ? r0 + kFlushRows : H;
    if (softmax) {
      // max(beta * h) is beta * max(h), or beta * min(h) for beta < 0. NaN is not looked
      // for here: it flows through expf8 into the sums, tested at the end.
      const bool neg = beta < 0.0;
      __m256 ext[kNV > 0 ? kNV : kMaxRowVectors];  // one dependency chain per column vector
      ext[0] = neg ? pos_inf : neg_inf;  // nv >= 1
      for (int v = 1; v < nv; ++v) ext[v] = ext[0];
      for (int row = r0; row < r1; ++row) {
        const float* p = h + static_cast<int64_t>(row) * W;
        if (neg) {
          for (int v = 0; v < full; ++v) ext[v] = _mm256_min_ps(ext[v], _mm256_loadu_ps(p + 8 * v));
        } else {
          for (int v = 0; v < full; ++v) ext[v] = _mm256_max_ps(ext[v], _mm256_loadu_ps(p + 8 * v));
        }
        if (full < nv) {
          const __m256 x = _mm256_blendv_ps(neg ? pos_inf : neg_inf,
                                            _mm256_maskload_ps(p + 8 * full, tail), tail_f);
          ext[full] = neg ? _mm256_min_ps(ext[full], x) : _mm256_max_ps(ext[full], x);
        }
      }
      for (int v = 1; v < nv; ++v)
        ext[0] = neg ? _mm256_min_ps(ext[0], ext[v]) : _mm256_max_ps(ext[0], ext[v]);
      float e8[8];
      _mm256_storeu_ps(e8, ext[0]);
      float cmax = e8[0], cmin = e8[0];
      for (int k = 1; k < 8; ++k) {
        cmax = e8[k] > cmax ? e8[k] : cmax;
        cmin = e8[k] < cmin ? e8[k] : cmin;
      }
      const double cand = beta * static_cast<double>(neg ? cmin : cmax);
      if (cand != cand) return false;
      if (cand > m) {
        if (m != -INFINITY) {  // rescale the sums so far to the new shift
          const double r = std::exp(static_cast<double>(static_cast<float>(m)) -
                                    static_cast<double>(static_cast<float>(cand)));
          const __m256d rd = _mm256_set1_pd(r);
          for (int v = 0; v < 2 * nv; ++v) {
            ds[v] = _mm256_mul_pd(ds[v], rd);
            dq[v] = _mm256_mul_pd(dq[v], rd);
          }
        }
        m = cand;
        vm = _mm256_set1_ps(static_cast<float>(m));
      }
    }
    for (int v = 0; v < nv; ++v) fs[v] = fq[v] = _mm256_setzero_ps();
    for (int row = r0; row < r1; ++row) {
      const float* p = h + static_cast<int64_t>(row) * W;
      const __m256 vr = _mm256_set1_ps(static_cast<float>(row));
      if (softmax) {  // the exp pass is compute-bound: fetch the next chunk's row meanwhile
        const int ahead = row + kFlushRows;
        const float* q = ahead < H         ? p + static_cast<int64_t>(kFlushRows) * W
                         : next != nullptr ? next + static_cast<int64_t>(ahead - H) * W
                                           : nullptr;
        const char* qb = reinterpret_cast<const char*>(q);
        if (q != nullptr)
          for (int b = 0; b < W * 4; b += 64) _mm_prefetch(qb + b, _MM_HINT_T0);
      }
      for (int v = 0; v < full; ++v) {
        __m256 x = _mm256_loadu_ps(p + 8 * v);
        if (softmax) x = expf8(_mm256_fmsub_ps(vb, x, vm));
        fs[v] = _mm256_add_ps(fs[v], x);
        fq[v] = _mm256_fmadd_ps(x, vr, fq[v]);
      }
      if (full < nv) {
        __m256 x = _mm256_maskload_ps(p + 8 * full, tail);
        if (softmax) x = _mm256_and_ps(expf8(_mm256_fmsub_ps(vb, x, vm)), tail_f);
        fs[full] = _mm256_add_ps(fs[full], x);
        fq[full] = _mm256_fmadd_ps(x, vr, fq[full]);
      }
    }
    for (int v = 0; v < nv; ++v) {
      ds[2 * v] = _mm256_add_pd(ds[2 * v], _mm256_cvtps_pd(_mm256_castps256_ps128(fs[v])));
      ds[2 * v + 1] =
          _mm256_add_pd(ds[2 * v + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(fs[v], 1)));
      dq[2 * v] = _mm256_add_pd(dq[2 * v], _mm256_cvtps_pd(_mm256_castps256_ps128(fq[v])));
      dq[2 * v + 1] =
          _mm256_add_pd(dq[2 * v + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(fq[v], 1)));
    }
  }
  __m256d S = _mm256_setzero_pd(), Sc = S, Sr = S;
  __m256d col = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
  for (int v = 0; v < 2 * nv; ++v) {
    S = _mm256_add_pd(S, ds[v]);
    Sc = _mm256_fmadd_pd(ds[v], col, Sc);
    Sr = _mm256_add_pd(Sr, dq[v]);
    col = _mm256_add_pd(col, _mm256_set1_pd(4.0));
  }
  double l[12];
  _mm256_storeu_pd(l, S);
  _mm256_storeu_pd(l + 4, Sc);
  _mm256_storeu_pd(l + 8, Sr);
  s->mmax = softmax ? m : 0.0;
  s->S = (l[0] + l[1]) + (l[2] + l[3]);
  s->Sc = (l[4] + l[5]) + (l[6] + l[7]);
  s->Sr = (l[8] + l[9]) + (l[10] + l[11]);
  return !softmax || (s->S == s->S && s->Sc == s->Sc && s->Sr == s->Sr);
}

template <bool softmax>
PYHPE_TARGET_AVX2 inline bool sums_by_rows_any(const float* h, int H, int W, double beta,
                                               MapSums* s, const float* next) {
  switch ((W + 7) / 8) {
    case 1: return sums_by_rows<softmax, 1>(h, H, W, beta, s, next);
    case 2: return sums_by_rows<softmax, 2>(h, H, W, beta, s, next);
    case 3: return sums_by_rows<softmax, 3>(h, H, W, beta, s, next);
    case 4: return sums_by_rows<softmax, 4>(h, H, W, beta, s, next);
    case 5: return sums_by_rows<softmax, 5>(h, H, W, beta, s, next);
    case 6: return sums_by_rows<softmax, 6>(h, H, W, beta, s, next);
    case 7: return sums_by_rows<softmax, 7>(h, H, W, beta, s, next);
    case 8: return sums_by_rows<softmax, 8>(h, H, W, beta, s, next);
    default: return sums_by_rows<softmax, 0>(h, H, W, beta, s, next);
  }
}

// expectation_sums of a float map: f = exp(beta * h - m) (softmax) or h, in column blocks of
// 16 over all rows (the map stays in L1 after the max scan). False when the map holds a NaN
// under softmax (the caller's generic path then gives NaN).
PYHPE_TARGET_AVX2 inline bool map_sums(const float* h, int H, int W, bool softmax, double beta,
                                       MapSums* out, const float* next = nullptr) {
  const int64_t bytes = next ? static_cast<int64_t>(H) * W * 4 : 0;
  Prefetcher pf{reinterpret_cast<const char*>(next), reinterpret_cast<const char*>(next) + bytes};
  MapSums s{0.0, 0.0, 0.0, 0.0};
  if (W <= 8 * kMaxRowVectors) {
    if (!(softmax ? sums_by_rows_any<true>(h, H, W, beta, &s, next)
                  : sums_by_rows_any<false>(h, H, W, beta, &s, next)))
      return false;
    *out = s;
    return true;
  }
  if (softmax && !scaled_max(h, static_cast<int64_t>(H) * W, beta, &s.mmax)) return false;
  const __m256 vb = _mm256_set1_ps(static_cast<float>(beta));
  const __m256 vm = _mm256_set1_ps(static_cast<float>(s.mmax));
  int c0 = 0;
  for (; c0 + 16 <= W; c0 += 16) block_sums<false>(h, H, W, c0, softmax, vb, vm, &s, &pf);
  if (c0 < W) block_sums<true>(h, H, W, c0, softmax, vb, vm, &s, &pf);
  *out = s;
  return true;
}

// expectation_backward_map of a float map when kr == 0:
//   o = (k1 * col + k0(row)) * f,  f = exp(beta * h - m) (softmax) or 1 (h is not read).
PYHPE_TARGET_AVX2 inline void grad_map(const float* h, float* o, int H, int W, bool softmax,
                                       float beta, float m, const GradCoeffs& c) {
  const __m256 vb = _mm256_set1_ps(beta), vm = _mm256_set1_ps(m);
  const __m256 vk1 = _mm256_set1_ps(static_cast<float>(c.k1));
  const __m256 lanes = _mm256_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f);
  const int full = W & ~7;
  const __m256i tail = lane_mask(W - full);
  for (int row = 0; row < H; ++row) {
    const int64_t base = static_cast<int64_t>(row) * W;
    const __m256 vk0 = _mm256_set1_ps(static_cast<float>(c.k0(row)));
    for (int col = 0; col < W; col += 8) {
      const bool is_tail = col == full;
      const __m256 cols = _mm256_add_ps(_mm256_set1_ps(static_cast<float>(col)), lanes);
      __m256 v = _mm256_fmadd_ps(vk1, cols, vk0);
      if (softmax) {
        const __m256 x = is_tail ? _mm256_maskload_ps(h + base + col, tail)
                                 : _mm256_loadu_ps(h + base + col);
        v = _mm256_mul_ps(v, expf8(_mm256_fmsub_ps(vb, x, vm)));
      }
      if (is_tail) {
        _mm256_maskstore_ps(o + base + col, tail, v);
      } else {
        _mm256_storeu_ps(o + base + col, v);
      }
    }
  }
}

// numpy argmax of float v[0..n) (the first maximum): blocks of kArgmaxBlock values are
// reduced with four 8-lane max accumulators, the first block holding the largest maximum is
// kept (strict >), and the first index equal to it is searched in that block only. Returns
// false (leaving the NaN rule to numpy_argmax) when n < kArgmaxBlock or any value is NaN.
// The value written is v[*idx] itself, so -0.0 / 0.0 come out as numpy's.
constexpr int64_t kArgmaxBlock = 256;

PYHPE_TARGET_AVX2 inline bool argmax(const float* v, int64_t n, int64_t* idx, float* mx) {
  if (n < kArgmaxBlock) return false;
  __m256 nan = _mm256_setzero_ps();
  float best = 0.0f;
  int64_t best_block = 0;
  const int64_t full = n / kArgmaxBlock * kArgmaxBlock;
  for (int64_t b = 0; b < full; b += kArgmaxBlock) {
    const float* p = v + b;
    __m256 m0 = _mm256_loadu_ps(p), m1 = _mm256_loadu_ps(p + 8);
    __m256 m2 = _mm256_loadu_ps(p + 16), m3 = _mm256_loadu_ps(p + 24);
    nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(m0, m1, _CMP_UNORD_Q),
                                         _mm256_cmp_ps(m2, m3, _CMP_UNORD_Q)));
    for (int64_t j = 32; j < kArgmaxBlock; j += 32) {
      const __m256 a0 = _mm256_loadu_ps(p + j), a1 = _mm256_loadu_ps(p + j + 8);
      const __m256 a2 = _mm256_loadu_ps(p + j + 16), a3 = _mm256_loadu_ps(p + j + 24);
      nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(a0, a1, _CMP_UNORD_Q),
                                           _mm256_cmp_ps(a2, a3, _CMP_UNORD_Q)));
      m0 = _mm256_max_ps(m0, a0);
      m1 = _mm256_max_ps(m1, a1);
      m2 = _mm256_max_ps(m2, a2);
      m3 = _mm256_max_ps(m3, a3);
    }
    __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_shuffle_ps(q, q, 1));
    const float bm = _mm_cvtss_f32(q);
    if (b == 0 || bm > best) {
      best = bm;
      best_block = b;
    }
  }
  if (_mm256_movemask_ps(nan)) return false;
  int64_t best_i = -1;
  for (int64_t j = full; j < n; ++j) {
    if (v[j] != v[j]) return false;
    if (v[j] > best) {
      best = v[j];
      best_i = j;
    }
  }
  if (best_i < 0) {
    const __m256 bv = _mm256_set1_ps(best);
    for (int64_t j = best_block;; j += 8) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + j), bv, _CMP_EQ_OQ));
      if (hit) {
        best_i = j + __builtin_ctz(static_cast<unsigned>(hit));
        break;
      }
    }
  }
  *idx = best_i;
  *mx = v[best_i];
  return true;
}

}  // namespace avx2
}  // namespace decode
}  // namespace pyhpe

#undef PYHPE_TARGET_AVX2
#endif
