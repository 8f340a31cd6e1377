// Pose NMS math shared by the CPU loops and the CUDA kernels; torch-free.
//
// Three algorithms, each over many images at once (image m owns rows offsets[m]..offsets[m+1]):
//  * OKS-NMS (mmpose oks_nms): visit poses in score order, keep the first, drop every later
//    pose whose OKS with it exceeds thr. The OKS is mmpose oks_iou (oks_math.h, kModeMMPose),
//    stored as float32 like mmpose's `ious` array and compared `ious <= thr` in float32.
//    The pairwise decisions form a suppression bitmask (rows: sorted positions, 64-bit words
//    over later positions) as in torchvision's nms; a sequential pass per image reduces it.
//  * soft-OKS-NMS (mmpose soft_oks_nms): repeatedly keep the best pose, rescore the rest by
//    their OKS with it (Gaussian s * exp(-o^2/thr) or linear s * (1 - o) when o >= thr) and
//    re-sort, up to max_dets poses. Sequential per image.
//  * parametric pose NMS (AlphaPose pPose_nms / pose_nms_body): pick the highest mean-score
//    pose, delete every pose whose parametric distance exceeds gamma or that matches at least
//    matchThreds keypoints within the reference distance, then merge each group score-weighted.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/hd.h"
#include "oks/oks_math.h"

namespace pyhpe {
namespace nms {

constexpr int kWordBits = 64;

PYHPE_HD_INLINE int64_t words_for(int64_t n) { return (n + kWordBits - 1) / kWordBits; }

// Image of a flat item index: the last image whose start is <= idx (skips empty images).
PYHPE_HD_INLINE int64_t image_of(const int64_t* offsets, int64_t num_images, int64_t idx) {
  return oks::find_segment(offsets, num_images, idx);
}

// A contiguous array as the terms of oks::numpy_pairwise_sum.
template <typename T>
struct ArrayTerms {
  const T* a;
  int num_keypoints;
  PYHPE_HD bool included(int) const { return true; }
  PYHPE_HD T term(int k) const { return a[k]; }
};

// numpy's pairwise summation of a contiguous array (np.add.reduce / ndarray.mean), in
// numpy's order, without recursion (see oks::numpy_pairwise_sum).
template <typename T>
PYHPE_HD T numpy_pairwise_sum(const T* a, int n) {
  return oks::numpy_pairwise_sum(ArrayTerms<T>{a, n}, 0, n);
}

// mmpose score_per_joint: scores = k['score'].mean() for each pose.
template <typename T>
struct RowMeanArgs {
  const T* values;  // N x K
  int64_t N;
  int K;
  T* out;           // N
};

template <typename T>
PYHPE_HD void row_mean_element(const RowMeanArgs<T>& a, int64_t i) {
  a.out[i] = (T(0) + numpy_pairwise_sum(a.values + i * a.K, a.K)) / T(a.K);
}

// ---------------------------------------------------------------------------------------
// OKS between pose g (the kept one) and pose d, as mmpose oks_iou(g, d, a_g, a_d) computes it.
// mmpose's sigmas are a float64 array, so they are float64 here whatever the pose dtype.
// exp is np.exp on the path numpy takes on this machine (exp_path, common/numpy_exp.h).
PYHPE_HD_INLINE double mmpose_oks(const double* g, const double* d, double a_g, double a_d,
                                  const double* sigmas, int K, bool has_vis_thr,
                                  double vis_thr, int exp_path) {
  return oks::compute_oks<double>(d, 3, g, sigmas, K, a_g, nullptr, a_d, oks::kModeMMPose,
                                  has_vis_thr, vis_thr, exp_path);
}

// float32 poses follow numpy's promotions in oks_iou: dx, dy, dx**2 + dy**2 and
// (a_g + a_d) / 2 stay float32; dividing by the float64 vars and adding np.spacing(1) turn
// e float64, and exp, the pairwise sum and the mean run in float64.
struct MixedOks {
  const float* g;
  const float* d;
  const double* sigmas;
  int num_keypoints;
  bool has_vis_thr;
  float vis_thr;
  double denom;
  int exp_path;

  PYHPE_HD bool included(int k) const {
    return !has_vis_thr || (g[3 * k + 2] > vis_thr && d[3 * k + 2] > vis_thr);
  }
  PYHPE_HD double term(int k) const {
    const float dx = d[3 * k] - g[3 * k], dy = d[3 * k + 1] - g[3 * k + 1];
    const float d2 = pyhpe::add_rn(pyhpe::mul_rn(dx, dx), pyhpe::mul_rn(dy, dy));
    const double two_sigma = pyhpe::mul_rn(sigmas[k], 2.0);
    const double var = pyhpe::mul_rn(two_sigma, two_sigma);
    return numpy_exp(-(double(d2) / var / denom / 2.0), exp_path);
  }
};

PYHPE_HD_INLINE double mmpose_oks(const float* g, const float* d, float a_g, float a_d,
                                  const double* sigmas, int K, bool has_vis_thr, float vis_thr,
                                  int exp_path) {
  MixedOks p{g, d, sigmas, K, has_vis_thr, vis_thr, 0.0, exp_path};
  int n = 0;
  for (int k = 0; k < K; ++k) n += p.included(k);
  if (n == 0) return 0.0;
  const float half = pyhpe::add_rn(a_g, a_d) / 2.0f;
  p.denom = double(half) + oks::kAreaEps;
  return (0.0 + oks::numpy_pairwise_sum(p, 0, n)) / double(n);
}

// Whether float32(oks(g, d)) > thr, deciding most pairs without any exp(): for e >= 0,
// 1 - e <= exp(-e) <= 1 / (1 + e), so the deficit n - sum(exp(-e_k)) lies between
// sum(e / (1 + e)) and sum(e). Either bound clearing thr by a 1e-3 margin (which dwarfs every
// rounding error) settles the pair; only the rest goes through the exact mmpose formula.
template <typename T>
PYHPE_HD bool oks_exceeds(const T* g, const T* d, T a_g, T a_d, const double* sigmas,
                          int K, bool has_vis_thr, T vis_thr, float thr, int exp_path) {
  int included = K;
  if (has_vis_thr) {
    included = 0;
    for (int k = 0; k < K; ++k) included += g[3 * k + 2] > vis_thr && d[3 * k + 2] > vis_thr;
  }
  if (included == 0) return 0.0f > thr;
  const double denom = (double(a_g) + double(a_d)) / 2.0 + oks::kAreaEps;
  const double max_deficit = (1.0 - double(thr) + 1e-3) * included;
  if (denom > 0.0 && max_deficit < included) {
    // 1 - exp(-e) also lies below e, so a small sum of e proves the mean above thr + 1e-3.
    const double min_deficit = (1.0 - double(thr) - 1e-3) * included;
    double deficit = 0.0, e_sum = 0.0;
    for (int k = 0; k < K; ++k) {
      if (has_vis_thr && !(g[3 * k + 2] > vis_thr && d[3 * k + 2] > vis_thr)) continue;
      const double dx = double(d[3 * k]) - double(g[3 * k]);
      const double dy = double(d[3 * k + 1]) - double(g[3 * k + 1]);
      const double s2 = 2.0 * double(sigmas[k]);
      const double e = (dx * dx + dy * dy) / (s2 * s2 * denom * 2.0);
      deficit += e / (1.0 + e);
      e_sum += e;
      if (deficit > max_deficit) return false;
    }
    if (e_sum < min_deficit) return true;
  }
  const float oks =
      static_cast<float>(mmpose_oks(g, d, a_g, a_d, sigmas, K, has_vis_thr, vis_thr, exp_path));
  return oks > thr;
}

// ---------------------------------------------------------------------------------------
// OKS-NMS suppression mask. Image m's block starts at word mask_offsets[m] and holds n_m rows
// (sorted positions a) of words_for(n_m) words; bit b of row a says that the pose at position
// b > a would be dropped by the pose at position a.
template <typename T>
struct OksNmsMaskArgs {
  const T* kpts;                // N x K x 3 (x, y, score)
  const T* areas;               // N
  const double* sigmas;         // K (float64, as mmpose)
  const int64_t* order;         // N: global row of each sorted position (per image)
  const int64_t* offsets;       // M + 1
  const int64_t* mask_offsets;  // M + 1 (words)
  const T* boxes;               // N x 4 (x0, y0, x1, y1) over all keypoints, or nullptr
  double box_skip;              // see box_rules_out
  int64_t M;
  int K;
  bool has_vis_thr;
  T vis_thr;
  float thr;
  int exp_path;  // NumpyExpPath
  uint64_t* mask;
};

// O(1) pre-check on the keypoint boxes: boxes a gap g apart put every keypoint pair at
// least g apart, so e_k >= g^2 / (max_var * denom * 2) for every k, and the mean of exp(-e_k)
// stays below thr - 1e-3 once e_min / (1 + e_min) > 1 - thr + 1e-3 =: r, i.e.
// g^2 > r / (1 - r) * max_var * 2 * denom = box_skip * denom (box_skip <= 0 disables it).
template <typename T>
PYHPE_HD_INLINE bool box_rules_out(const T* ba, const T* bb, double denom, double box_skip) {
  if (!(box_skip > 0.0) || !(denom > 0.0)) return false;
  const double lo_x = ba[0] > bb[0] ? ba[0] : bb[0], hi_x = ba[2] < bb[2] ? ba[2] : bb[2];
  const double lo_y = ba[1] > bb[1] ? ba[1] : bb[1], hi_y = ba[3] < bb[3] ? ba[3] : bb[3];
  const double gx = lo_x > hi_x ? lo_x - hi_x : 0.0, gy = lo_y > hi_y ? lo_y - hi_y : 0.0;
  return gx * gx + gy * gy > box_skip * denom;
}

template <typename T>
PYHPE_HD void oks_nms_mask_element(const OksNmsMaskArgs<T>& a, int64_t idx) {
  const int64_t m = image_of(a.mask_offsets, a.M, idx);
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
  const int64_t words = words_for(n);
  const int64_t local = idx - a.mask_offsets[m];
  const int64_t row = local / words, block = local % words;
  uint64_t bits = 0;
  const int64_t gi = a.order[start + row];
  const T* g = a.kpts + gi * a.K * 3;
  const int64_t first = block * kWordBits;
  for (int t = 0; t < kWordBits; ++t) {
    const int64_t col = first + t;
    if (col <= row) continue;
    if (col >= n) break;
    const int64_t di = a.order[start + col];
    if (a.boxes != nullptr &&
        box_rules_out(a.boxes + gi * 4, a.boxes + di * 4,
                      (double(a.areas[gi]) + double(a.areas[di])) / 2.0 + oks::kAreaEps,
                      a.box_skip)) {
      continue;
    }
    if (oks_exceeds(g, a.kpts + di * a.K * 3, a.areas[gi], a.areas[di], a.sigmas, a.K,
                    a.has_vis_thr, a.vis_thr, a.thr, a.exp_path)) {
      bits |= uint64_t(1) << t;
    }
  }
  a.mask[idx] = bits;
}

// Sequential reduce of one image: row 0 (position 0 is always kept) doubles as the
// accumulator of removed positions. keep_flags is indexed by sorted position.
struct OksNmsReduceArgs {
  uint64_t* mask;
  const int64_t* offsets;
  const int64_t* mask_offsets;
  int64_t M;
  bool* keep_flags;  // N
};

// The greedy pass over image m's mask rows, in order; row 0 (always kept) doubles as the
// removed set. One row's step is split over `lanes` workers (the GPU's warp: lane takes words
// lane, lane + lanes, ...); every lane finishes a row before any starts the next (a warp
// barrier on the GPU, the loop order here). Bit `row` is never written while row is read.
PYHPE_HD_INLINE void oks_nms_reduce_row(const OksNmsReduceArgs& a, int64_t m, int64_t row,
                                        int lane, int lanes) {
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
  const int64_t words = words_for(n);
  uint64_t* removed = a.mask + a.mask_offsets[m];
  const bool gone = row > 0 && ((removed[row / kWordBits] >> (row % kWordBits)) & 1);
  if (lane == 0) a.keep_flags[start + row] = !gone;
  if (gone || row == 0) return;
  const uint64_t* r = removed + row * words;
  for (int64_t w = row / kWordBits + lane; w < words; w += lanes) removed[w] |= r[w];
}

PYHPE_HD_INLINE void oks_nms_reduce_image(const OksNmsReduceArgs& a, int64_t m) {
  const int64_t n = a.offsets[m + 1] - a.offsets[m];
  for (int64_t row = 0; row < n; ++row) oks_nms_reduce_row(a, m, row, 0, 1);
}

// ---------------------------------------------------------------------------------------
// soft-OKS-NMS, one image per call. `work` holds kSoftScratch * N int64 and `work_scores`
// kSoftScratch * N T of scratch.
enum SoftMethod : int { kSoftGaussian = 0, kSoftLinear = 1 };
constexpr int64_t kSoftScratch = 4;

// The order of soft-NMS scores: descending, NaN above every number (numpy sorts NaN last,
// and mmpose reverses the sort). A strict weak order, so sorting and merging agree.
template <typename T>
PYHPE_HD_INLINE bool ranks_before(T a, T b) {
  return a > b || (a != a && b == b);
}
template <typename T>
PYHPE_HD_INLINE bool same_rank(T a, T b) {
  return !ranks_before(a, b) && !ranks_before(b, a);
}

template <typename T>
struct SoftNmsArgs {
  const T* kpts;            // N x K x 3
  const T* scores;          // N
  const T* areas;           // N
  const double* sigmas;     // K (float64, as mmpose)
  const int64_t* order;     // N: initial score order (global rows, per image)
  const int64_t* offsets;   // M + 1
  const T* boxes;           // N x 4 keypoint boxes for soft_rescore_is_identity, or nullptr
  double max_var;           // max_k (2 sigma_k)^2
  double identity_box;      // box_rules_out constant implying soft_rescore_is_identity's box
                            // bound (<= 0: none), see soft_identity_box
  double identity_limit;    // soft_identity_limit(thr, method)
  int64_t M;
  int K;
  bool has_vis_thr;
  T vis_thr;
  float thr;
  int method;
  int exp_path;  // NumpyExpPath
  int64_t max_dets;
  int64_t* work;            // kSoftScratch * N
  T* work_scores;           // kSoftScratch * N
  int64_t* keep;            // N: kept global rows, first counts[m] of image m's slots
  bool* keep_flags;         // N
};

// Stable merge sort of (idx, score) by ranks_before; src/dst ping-pong, result in `idx`.
template <typename T>
PYHPE_HD void stable_sort_desc(int64_t* idx, T* sc, int64_t* tmp_idx, T* tmp_sc, int64_t n) {
  int64_t* src_i = idx;
  T* src_s = sc;
  int64_t* dst_i = tmp_idx;
  T* dst_s = tmp_sc;
  for (int64_t width = 1; width < n; width *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * width) {
      const int64_t mid = lo + width < n ? lo + width : n;
      const int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
      int64_t i = lo, j = mid, o = lo;
      while (i < mid && j < hi) {
        if (ranks_before(src_s[j], src_s[i])) {
          dst_i[o] = src_i[j];
          dst_s[o++] = src_s[j++];
        } else {
          dst_i[o] = src_i[i];
          dst_s[o++] = src_s[i++];
        }
      }
      while (i < mid) { dst_i[o] = src_i[i]; dst_s[o++] = src_s[i++]; }
      while (j < hi) { dst_i[o] = src_i[j]; dst_s[o++] = src_s[j++]; }
    }
    int64_t* ti = src_i; src_i = dst_i; dst_i = ti;
    T* ts = src_s; src_s = dst_s; dst_s = ts;
  }
  if (src_i != idx) {
    for (int64_t k = 0; k < n; ++k) { idx[k] = src_i[k]; sc[k] = src_s[k]; }
  }
}

// numpy's float32 exp (the AVX2/AVX512F SIMD kernel of numpy's loops_exponent_log, which
// np.exp uses for float32 arrays on x86): Cody-Waite reduction by k = rint(x log2 e), a
// degree-5/degree-2 rational minimax approximation evaluated with FMAs, scaled by 2^k. It is
// not correctly rounded (up to 2.52 ulp), so matching mmpose's rescored scores bit for bit
// needs exactly this sequence of float operations.
PYHPE_HD_INLINE float numpy_exp_f32(float x) {
  if (x != x) return x;
  if (x >= 88.72283935546875f) return INFINITY;
  if (x <= -103.97208404541015625f) return 0.0f;
  const float magic = 12582912.0f;  // 0x1.8p23: adding and subtracting it rounds to nearest
  // volatile: no FMA contraction or reassociation may touch the rounding trick.
  volatile float scaled = pyhpe::mul_rn(x, 1.44269502163f);  // NPY_LOG2Ef
  volatile float shifted = scaled + magic;
  const float k = shifted - magic;
  float y = fma_rn(k, -6.93145752e-1f, x);
  y = fma_rn(k, -1.42860677e-6f, y);
  y = fma_rn(k, 0.0f, y);
  float num = fma_rn(5.082762527590693718096e-04f, y, 6.757896990527504603057e-03f);
  num = fma_rn(num, y, 5.114512081637298353406e-02f);
  num = fma_rn(num, y, 2.473615434895520810817e-01f);
  num = fma_rn(num, y, 7.257664613233124478488e-01f);
  num = fma_rn(num, y, 9.999999999980870924916e-01f);
  float den = fma_rn(2.159509375685829852307e-02f, y, -2.742335390411667452936e-01f);
  den = fma_rn(den, y, 1.0f);
  const float poly = num / den;
  // poly * 2^k as numpy's scalef: exact while the result stays normal; below 2^-125 numpy
  // scales to 2^-125 first and divides by the rest, which rounds the denormal once.
  const int ki = static_cast<int>(k);
  if (ki > 127) return (poly * ldexpf(1.0f, ki - 1)) * 2.0f;
  if (ki >= -125) return poly * ldexpf(1.0f, ki);
  return (poly * ldexpf(1.0f, -125)) / ldexpf(1.0f, -125 - ki);
}

// An upper bound of exp(-e) within a factor 2 and without exp: 2^-k for the largest integer
// k <= e / ln 2 (the constant is rounded down so that k ln 2 <= e survives rounding); 1 for
// NaN or e <= 0, and 2^-1000 beyond (every double exp(-e) there is smaller still).
PYHPE_HD_INLINE double exp_neg_upper(double e) {
  const double t = floor(e * (1.4426950408889634 * (1.0 - 1e-12)));
  if (!(t > 0.0)) return 1.0;
  const uint64_t bits = uint64_t(1023 - (t > 1000.0 ? 1000 : static_cast<int>(t))) << 52;
  double r;
  memcpy(&r, &bits, sizeof r);  // 2^-k, a normal double
  return r;
}

// Whether the pair's float32 OKS o provably leaves a soft-NMS score untouched, so that o
// need not be computed: Gaussian, numpy's float32 exp returns exactly 1 for |x| < 4e-8
// (k = 0, and both rational-polynomial factors round to 1), so o^2 / thr < 1e-8 suffices;
// linear, o < thr. The bound on o uses exp(-e) <= exp_neg_upper(e), first with the smallest
// e the two keypoint boxes allow (O(1)), then per keypoint.
// The bound on o below which a rescored score is provably unchanged (see below).
PYHPE_HD_INLINE double soft_identity_limit(float thr, int method) {
  return method == kSoftLinear ? double(thr) * (1.0 - 1e-4) - 1e-9 : sqrt(1e-8 * double(thr));
}

template <typename T>
PYHPE_HD bool soft_rescore_is_identity(const T* g, const T* d, T a_g, T a_d, const double* sigmas,
                                       int K, bool has_vis_thr, T vis_thr, float thr,
                                       double limit, const T* box_g, const T* box_d,
                                       double max_var) {
  if (!(thr > 0.0f)) return false;
  const double denom = (double(a_g) + double(a_d)) / 2.0 + oks::kAreaEps;
  if (!(denom > 0.0)) return false;
  // 1 + 1e-5: headroom for the rounding of o, o * o and the bounds themselves.
  const double slack = 1.0 + 1e-5;
  if (box_g != nullptr && max_var > 0.0) {
    const double lo_x = box_g[0] > box_d[0] ? box_g[0] : box_d[0];
    const double hi_x = box_g[2] < box_d[2] ? box_g[2] : box_d[2];
    const double lo_y = box_g[1] > box_d[1] ? box_g[1] : box_d[1];
    const double hi_y = box_g[3] < box_d[3] ? box_g[3] : box_d[3];
    const double gx = lo_x > hi_x ? lo_x - hi_x : 0.0, gy = lo_y > hi_y ? lo_y - hi_y : 0.0;
    const double e = (gx * gx + gy * gy) / (max_var * denom * 2.0);
    if (slack * exp_neg_upper(e) < limit) return true;
  }
  double bound = 0.0;
  int included = 0;
  // The test below needs bound < limit * included / slack <= limit * K / slack: once the
  // partial sum reaches that, the pair needs the exact o.
  const double give_up = limit * K / slack;
  for (int k = 0; k < K; ++k) {
    if (has_vis_thr && !(g[3 * k + 2] > vis_thr && d[3 * k + 2] > vis_thr)) continue;
    ++included;
    const double dx = double(d[3 * k]) - double(g[3 * k]);
    const double dy = double(d[3 * k + 1]) - double(g[3 * k + 1]);
    const double s2 = 2.0 * double(sigmas[k]);
    const double e = (dx * dx + dy * dy) / (s2 * s2 * denom * 2.0);
    bound += exp_neg_upper(e);
    if (bound >= give_up) return false;
  }
  if (included == 0) return true;  // o = 0
  return bound / included * slack < limit;
}

template <typename T>
PYHPE_HD bool soft_rescore_is_identity(const T* g, const T* d, T a_g, T a_d, const double* sigmas,
                                       int K, bool has_vis_thr, T vis_thr, float thr, int method,
                                       const T* box_g, const T* box_d, double max_var) {
  return soft_rescore_is_identity(g, d, a_g, a_d, sigmas, K, has_vis_thr, vis_thr, thr,
                                  soft_identity_limit(thr, method), box_g, box_d, max_var);
}

// The box bound of soft_rescore_is_identity as one comparison per pair: its test
// slack * exp_neg_upper(e) < limit, with e = g^2 / (max_var * denom * 2), holds for every
// e > e* = ln(2 slack / limit) (1 + 1e-9), since exp_neg_upper(e) <= 2 exp(-e (1 - 1e-12)),
// i.e. for g^2 > e* * max_var * 2 * denom. Returns that factor (box_rules_out's box_skip),
// or 0 where the bound never applies.
inline double soft_identity_box(float thr, int method, double max_var) {
  if (!(thr > 0.0f) || !(max_var > 0.0)) return 0.0;
  const double limit = soft_identity_limit(thr, method);
  if (!(limit > 0.0)) return 0.0;
  const double e_star = log(2.0 * (1.0 + 1e-5) / limit) * (1.0 + 1e-9);
  if (!(e_star > 0.0)) return 0.0;
  return e_star * max_var * 2.0;
}

// One image's soft-NMS state. The list (cur, cur_s) of the remaining poses is always in the
// order mmpose's loop has them: sorted by ranks_before, and within equal scores in the
// order its reversed stable argsorts left them.
template <typename T>
struct SoftNmsImage {
  int64_t* cur;   // remaining global rows
  T* cur_s;       // their scores
  int64_t* u;     // positions (in cur[1:]) whose score is unchanged by the pick
  T* u_s;
  int64_t* c;     // positions whose score changed
  T* c_s;
  int64_t* out;   // next list; out_s also receives the rescored scores of cur[1:]
  T* out_s;
  int64_t len;
  bool sorted;    // cur is sorted (false for a caller-supplied order, before the first pick)
};

template <typename T>
PYHPE_HD SoftNmsImage<T> soft_nms_begin(const SoftNmsArgs<T>& a, int64_t m) {
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start, N = a.offsets[a.M];
  SoftNmsImage<T> st;
  st.cur = a.work + start;
  st.u = a.work + N + start;
  st.c = a.work + 2 * N + start;
  st.out = a.work + 3 * N + start;
  st.cur_s = a.work_scores + start;
  st.u_s = a.work_scores + N + start;
  st.c_s = a.work_scores + 2 * N + start;
  st.out_s = a.work_scores + 3 * N + start;
  for (int64_t p = 0; p < n; ++p) {
    st.cur[p] = a.order[start + p];
    st.cur_s[p] = a.scores[st.cur[p]];
  }
  st.len = n;
  st.sorted = false;
  return st;
}

// Score of remaining pose di after picking gi (mmpose _rescore with the float32 OKS).
template <typename T>
PYHPE_HD T soft_rescored(const SoftNmsArgs<T>& a, int64_t m, int64_t gi, int64_t di, T s) {
  float o;
  if (a.boxes != nullptr &&
      (box_rules_out(a.boxes + gi * 4, a.boxes + di * 4,
                     (double(a.areas[gi]) + double(a.areas[di])) / 2.0 + oks::kAreaEps,
                     a.identity_box) ||
       soft_rescore_is_identity(a.kpts + gi * a.K * 3, a.kpts + di * a.K * 3, a.areas[gi],
                               a.areas[di], a.sigmas, a.K, a.has_vis_thr, a.vis_thr, a.thr,
                               a.identity_limit, a.boxes + gi * 4, a.boxes + di * 4,
                               a.max_var))) {
    o = 0.0f;  // same rescored score as the exact o
  } else {
    o = static_cast<float>(mmpose_oks(a.kpts + gi * a.K * 3, a.kpts + di * a.K * 3,
                                      a.areas[gi], a.areas[di], a.sigmas, a.K, a.has_vis_thr,
                                      a.vis_thr, a.exp_path));
  }
  if (a.method == kSoftLinear) {
    if (o >= a.thr) s = s * static_cast<T>(1.0f - o);
  } else {
    s = s * static_cast<T>(numpy_exp_f32(-(o * o) / a.thr));
  }
  return s;
}

// Rescored scores of cur[1 + p], p in [begin, end), into out_s[p] (independent per p).
template <typename T>
PYHPE_HD void soft_nms_rescore(const SoftNmsArgs<T>& a, int64_t m, const SoftNmsImage<T>& st,
                               int64_t begin, int64_t end) {
  const int64_t gi = st.cur[0];
  for (int64_t p = begin; p < end; ++p)
    st.out_s[p] = soft_rescored(a, m, gi, st.cur[1 + p], st.cur_s[1 + p]);
}

// mmpose's `scores[1:]` rescored then `argsort()[::-1]`: the order by score, equal scores in
// reverse of their current order, i.e. sorted by (score, position descending). Poses whose
// score is unchanged are already in score order (cur is sorted), so only the runs of equal
// scores among them flip; the changed ones are sorted on their own and merged in: O(len)
// plus a sort of the changed poses, where a full re-sort is O(len log len).
template <typename T>
PYHPE_HD void soft_nms_reorder(SoftNmsImage<T>& st) {
  const int64_t rest = st.len - 1;
  int64_t nu = 0, nc = 0;
  for (int64_t p = 0; p < rest; ++p) {
    const T s = st.out_s[p];
    if (st.sorted && same_rank(s, st.cur_s[1 + p])) {
      st.u[nu] = p;
      st.u_s[nu++] = s;
    } else {
      st.c[nc] = p;
      st.c_s[nc++] = s;
    }
  }
  // Changed poses: reversed (position descending), then stably sorted (out is free scratch).
  for (int64_t i = 0, j = nc - 1; i < j; ++i, --j) {
    const int64_t tp = st.c[i]; st.c[i] = st.c[j]; st.c[j] = tp;
    const T ts = st.c_s[i]; st.c_s[i] = st.c_s[j]; st.c_s[j] = ts;
  }
  stable_sort_desc(st.c, st.c_s, st.out, st.out_s, nc);
  // Unchanged poses: each run of equal scores reversed.
  for (int64_t i = 0; i < nu;) {
    int64_t j = i + 1;
    while (j < nu && same_rank(st.u_s[j], st.u_s[i])) ++j;
    for (int64_t lo = i, hi = j - 1; lo < hi; ++lo, --hi) {
      const int64_t tp = st.u[lo]; st.u[lo] = st.u[hi]; st.u[hi] = tp;
      const T ts = st.u_s[lo]; st.u_s[lo] = st.u_s[hi]; st.u_s[hi] = ts;
    }
    i = j;
  }
  int64_t i = 0, j = 0, q = 0;
  while (i < nu || j < nc) {
    const bool take_c =
        i == nu || (j < nc && (ranks_before(st.c_s[j], st.u_s[i]) ||
                               (same_rank(st.c_s[j], st.u_s[i]) && st.c[j] > st.u[i])));
    const int64_t p = take_c ? st.c[j] : st.u[i];
    st.out_s[q] = take_c ? st.c_s[j++] : st.u_s[i++];
    st.out[q++] = st.cur[1 + p];
  }
  int64_t* ti = st.cur; st.cur = st.out; st.out = ti;
  T* ts = st.cur_s; st.cur_s = st.out_s; st.out_s = ts;
  st.len = rest;
  st.sorted = true;
}

// Records the pick (cur[0]) as the image's kept-th pose.
template <typename T>
PYHPE_HD_INLINE void soft_nms_keep(const SoftNmsArgs<T>& a, int64_t m, const SoftNmsImage<T>& st,
                                   int64_t kept) {
  const int64_t start = a.offsets[m];
  a.keep[start + kept] = st.cur[0];
  a.keep_flags[start + kept] = true;
}

template <typename T>
PYHPE_HD void soft_nms_image(const SoftNmsArgs<T>& a, int64_t m) {
  SoftNmsImage<T> st = soft_nms_begin(a, m);
  for (int64_t kept = 0; st.len > 0 && kept < a.max_dets; ++kept) {
    soft_nms_keep(a, m, st, kept);
    soft_nms_rescore(a, m, st, 0, st.len - 1);
    soft_nms_reorder(st);
  }
}

// ---------------------------------------------------------------------------------------
// AlphaPose parametric pose NMS (pose_nms_body) and p_merge_fast.
struct AlphaPoseParams {
  double delta1, mu, delta2, gamma, score_thr, match_thr, area_thr;
  // Box gap beyond which K mu exp(-g / delta2) < gamma holds with alphapose_box_spares'
  // margins (alphapose_spare_gap); < 0: evaluate the exp per pair.
  double spare_gap = -1.0;
};

// Caps on the reference distance from AlphaPose: PCK_match uses min(ref, 7) and
// p_merge_fast min(ref, 15).
constexpr double kPckRefCap = 7.0;
constexpr double kMergeRefCap = 15.0;

// Rounded products and sums (common/fp.h) throughout: nvcc would otherwise fuse them into
// FMAs, and the thresholds below (dist <= 1, dist / ref <= 1, simi > gamma) could then decide
// differently on the GPU than on the CPU.
template <typename T>
PYHPE_HD_INLINE T joint_dist(const T* p, const T* q, int k) {
  const T dx = p[2 * k] - q[2 * k], dy = p[2 * k + 1] - q[2 * k + 1];
  return sqrt_of(add_rn(mul_rn(dx, dx), mul_rn(dy, dy)));
}

// Python's min(ref, cap) with cap an int: ref unless cap < ref.
template <typename T>
PYHPE_HD_INLINE T capped(T ref, double cap) {
  return T(cap) < ref ? T(cap) : ref;
}

template <typename T>
struct AlphaMaskArgs {
  const T* preds;          // N x K x 2
  const T* scores;         // N x K (zeros already replaced by 1e-5)
  const T* ref_dists;      // N: alpha * max(w, h)
  const int64_t* order;    // N: pick order (mean score desc, ties by lower index)
  const int64_t* offsets;
  const int64_t* mask_offsets;
  const T* boxes;          // N x 4 (x0, y0, x1, y1) keypoint boxes, or nullptr
  int64_t M;
  int K;
  AlphaPoseParams prm;
  uint64_t* mask;          // rows: positions a; bit b (b >= a): a deletes b
};

// O(1) pre-check: keypoint boxes a gap g apart put every joint pair at least g apart, so
// no score term (needs d <= 1), no PCK match (needs d <= min(ref, 7)) and a point term of at
// most exp(-g / delta2) each: pose b survives when g clears both distances and
// K * mu * exp(-g / delta2) stays below gamma (margins far above rounding).
template <typename T>
PYHPE_HD_INLINE bool alphapose_box_spares(const T* ba, const T* bb, T ref_dist, int K,
                                          const AlphaPoseParams& prm) {
  if (!(prm.delta2 > 0.0) || prm.mu < 0.0) return false;
  const double lo_x = ba[0] > bb[0] ? ba[0] : bb[0], hi_x = ba[2] < bb[2] ? ba[2] : bb[2];
  const double lo_y = ba[1] > bb[1] ? ba[1] : bb[1], hi_y = ba[3] < bb[3] ? ba[3] : bb[3];
  const double gx = lo_x > hi_x ? lo_x - hi_x : 0.0, gy = lo_y > hi_y ? lo_y - hi_y : 0.0;
  const double g2 = gx * gx + gy * gy;
  const double pck_ref = double(capped(ref_dist, kPckRefCap));
  if (!(pck_ref > 0.0)) return false;  // a non-positive reference matches every joint
  const double reach = (pck_ref > 1.0 ? pck_ref : 1.0) * (1.0 + 1e-5) + 1e-9;
  if (!(g2 > reach * reach)) return false;
  if (prm.spare_gap >= 0.0) return g2 > prm.spare_gap * prm.spare_gap;
  return K * prm.mu * exp(-sqrt(g2) / prm.delta2) < prm.gamma * (1.0 - 1e-5) - 1e-9;
}

// AlphaPoseParams::spare_gap for K keypoints: K mu exp(-g / delta2) < gamma (1 - 1e-5) - 1e-9
// for every g above it (a relative margin of 1e-6 over the logarithm's rounding).
inline double alphapose_spare_gap(const AlphaPoseParams& prm, int K) {
  if (!(prm.delta2 > 0.0) || prm.mu < 0.0) return -1.0;
  const double limit = prm.gamma * (1.0 - 1e-5) - 1e-9;
  if (!(limit > 0.0)) return INFINITY;
  const double scale = K * prm.mu;
  if (!(scale > 0.0)) return 0.0;
  const double gap = prm.delta2 * log(scale / limit);
  return (gap > 0.0 ? gap : 0.0) * (1.0 + 1e-6) + 1e-9;
}

// Whether picking pose i deletes pose j (get_parametric_distance > gamma or PCK_match >=
// matchThreds). AlphaPose keeps its score_dists buffer in float32 (torch.zeros default dtype),
// so the score part is rounded and summed in float32 whatever the input dtype.
template <typename T>
PYHPE_HD bool alphapose_deletes(const T* pi, const T* si, const T* pj, const T* sj, T ref_dist,
                                int K, const AlphaPoseParams& prm) {
  float score_sum = 0.0f;
  T point_sum = T(0);
  int matches = 0;
  const T pck_ref = capped(ref_dist, kPckRefCap);
  for (int k = 0; k < K; ++k) {
    const T dist = joint_dist(pi, pj, k);
    if (dist <= T(1)) {
      score_sum = add_rn(score_sum, static_cast<float>(mul_rn(tanh(si[k] / T(prm.delta1)),
                                                              tanh(sj[k] / T(prm.delta1)))));
    }
    point_sum = add_rn(point_sum, exp_of(T(-dist / T(prm.delta2))));
    matches += (dist / pck_ref <= T(1));
  }
  // float32 + T: the sum takes the wider of the two dtypes, as torch promotes.
  const T simi = add_rn(static_cast<T>(score_sum), mul_rn(T(prm.mu), point_sum));
  return simi > T(prm.gamma) || double(matches) >= prm.match_thr;
}

// Whether pick i provably spares pose j, without the exp, tanh and sqrt of the exact test:
// a score term needs d_k <= 1 and is at most 1 (|tanh| <= 1, and the float32 sum of terms
// <= 1 stays <= their count), a PCK match needs d_k <= min(ref, 7), and with
// y = d_k^2 / delta2^2, exp(-d_k / delta2) <= 1 / (1 + y/2 + y^2/24) (even terms of the exp
// series). Margins of 1e-4 dwarf every float32 rounding of the exact test.
template <typename T>
PYHPE_HD bool alphapose_surely_spares(const T* pi, const T* pj, T ref_dist, int K,
                                      const AlphaPoseParams& prm) {
  if (!(prm.mu >= 0.0) || !(prm.delta2 > 0.0)) return false;
  const double pck_ref = double(capped(ref_dist, kPckRefCap));
  if (!(pck_ref >= 0.0)) return false;
  const double match_d2 = pck_ref * pck_ref * (1.0 + 1e-4);
  const double inv_var = 1.0 / (prm.delta2 * prm.delta2);
  double close = 0.0, matches = 0.0, point_bound = 0.0;
  for (int k = 0; k < K; ++k) {
    const double dx = double(pi[2 * k]) - double(pj[2 * k]);
    const double dy = double(pi[2 * k + 1]) - double(pj[2 * k + 1]);
    const double d2 = dx * dx + dy * dy;
    close += d2 <= 1.0 + 1e-4 ? 1.0 : 0.0;
    matches += d2 <= match_d2 ? 1.0 : 0.0;
    const double y = d2 * inv_var;
    point_bound += 1.0 / (1.0 + y * (0.5 + y * (1.0 / 24.0)));
  }
  if (!(matches < prm.match_thr)) return false;
  const double gamma = prm.gamma;
  const double limit = gamma - 1e-4 * (gamma < 0.0 ? -gamma : gamma) - 1e-6;
  return close + prm.mu * point_bound * (1.0 + 1e-4) < limit;
}

// Whether the pick at sorted position row deletes the pose at position col >= row (the same
// answer as alphapose_deletes; the pre-checks only skip the exact test where it must say no).
template <typename T>
PYHPE_HD bool alpha_pair_deletes(const AlphaMaskArgs<T>& a, int64_t gi, int64_t gj, bool self) {
  if (!self && a.boxes != nullptr &&
      alphapose_box_spares(a.boxes + gi * 4, a.boxes + gj * 4, a.ref_dists[gi], a.K, a.prm)) {
    return false;
  }
  if (!self && alphapose_surely_spares(a.preds + gi * a.K * 2, a.preds + gj * a.K * 2,
                                       a.ref_dists[gi], a.K, a.prm)) {
    return false;
  }
  return alphapose_deletes(a.preds + gi * a.K * 2, a.scores + gi * a.K, a.preds + gj * a.K * 2,
                           a.scores + gj * a.K, a.ref_dists[gi], a.K, a.prm);
}

template <typename T>
PYHPE_HD void alpha_mask_element(const AlphaMaskArgs<T>& a, int64_t idx) {
  const int64_t m = image_of(a.mask_offsets, a.M, idx);
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
  const int64_t words = words_for(n);
  const int64_t local = idx - a.mask_offsets[m];
  const int64_t row = local / words, block = local % words;
  const int64_t gi = a.order[start + row];
  uint64_t bits = 0;
  const int64_t first = block * kWordBits;
  for (int t = 0; t < kWordBits; ++t) {
    const int64_t col = first + t;
    if (col < row) continue;
    if (col >= n) break;
    if (alpha_pair_deletes(a, gi, a.order[start + col], col == row)) bits |= uint64_t(1) << t;
  }
  a.mask[idx] = bits;
}

// Greedy pass of one image: picks (global rows) fill slots start.. of `picks`; owner[row]
// is the slot of the pick whose group swallowed the row. A pick that does not delete itself
// stays and is picked again with the group {itself}, exactly as AlphaPose's loop does.
struct AlphaReduceArgs {
  const uint64_t* mask;
  const int64_t* order;
  const int64_t* offsets;
  const int64_t* mask_offsets;
  int64_t M;
  uint64_t* removed;          // words_for(n_m) words per image at removed_offsets[m]
  const int64_t* removed_offsets;
  int64_t* picks;             // N
  int64_t* owner;             // N (global rows)
  int64_t* pick_counts;       // M
};

// A pick's step of alpha_reduce_image for one of `lanes` workers (words lane, lane + lanes,
// ...): its group is the rows it deletes that are not yet removed. Returns whether the lane's
// words held any; alpha_reduce_pick_done then runs once, after every lane's step.
PYHPE_HD_INLINE bool alpha_reduce_pick_lane(const AlphaReduceArgs& a, int64_t m, int64_t row,
                                            int64_t slot, int lane, int lanes) {
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
  const int64_t words = words_for(n);
  uint64_t* removed = a.removed + a.removed_offsets[m];
  const uint64_t* r = a.mask + a.mask_offsets[m] + row * words;
  bool any = false;
  for (int64_t w = row / kWordBits + lane; w < words; w += lanes) {
    uint64_t group = r[w] & ~removed[w];
    if (group) any = true;
    removed[w] |= group;
    while (group) {
      int bit = 0;
      while (!((group >> bit) & 1)) ++bit;
      group &= group - 1;
      a.owner[a.order[start + w * kWordBits + bit]] = slot;
    }
  }
  return any;
}

// A pick that deleted nobody (itself included) takes itself out as its group {itself}.
PYHPE_HD_INLINE void alpha_reduce_pick_done(const AlphaReduceArgs& a, int64_t m, int64_t row,
                                            int64_t slot, bool any) {
  const int64_t start = a.offsets[m];
  if (!any) {
    a.removed[a.removed_offsets[m] + row / kWordBits] |= uint64_t(1) << (row % kWordBits);
    a.owner[a.order[start + row]] = slot;
  }
  a.picks[slot] = a.order[start + row];
}

PYHPE_HD_INLINE bool alpha_row_removed(const AlphaReduceArgs& a, int64_t m, int64_t row) {
  return (a.removed[a.removed_offsets[m] + row / kWordBits] >> (row % kWordBits)) & 1;
}

// The greedy pass of image m with its pick steps split over `lanes` workers run in turn (the
// GPU runs them as a warp's lanes between barriers; the result is the same).
PYHPE_HD_INLINE void alpha_reduce_image(const AlphaReduceArgs& a, int64_t m, int lanes = 1) {
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
  int64_t count = 0;
  if (n > 0) {
    uint64_t* removed = a.removed + a.removed_offsets[m];
    for (int64_t w = 0; w < words_for(n); ++w) removed[w] = 0;
    int64_t row = 0;
    while (row < n) {
      if (alpha_row_removed(a, m, row)) {
        ++row;
        continue;
      }
      const int64_t slot = start + count++;
      bool any = false;
      for (int lane = 0; lane < lanes; ++lane)
        any |= alpha_reduce_pick_lane(a, m, row, slot, lane, lanes);
      alpha_reduce_pick_done(a, m, row, slot, any);
    }
  }
  a.pick_counts[m] = count;
}

// p_merge_fast for one pick slot plus AlphaPose's filters; writes the merged pose and
// scores and whether the pick survives.
template <typename T>
struct AlphaMergeArgs {
  const T* preds;
  const T* scores;
  const T* ref_dists;
  const int64_t* offsets;
  const int64_t* picks;
  const int64_t* pick_counts;
  const int64_t* members;         // N: rows grouped by owner slot, ascending within a slot
  const int64_t* member_offsets;  // N + 1: slot s owns members[member_offsets[s]..[s + 1])
  int64_t M;
  int K;
  AlphaPoseParams prm;
  T* out_preds;    // N x K x 2 (slots)
  T* out_scores;   // N x K
  bool* valid;     // N
};

template <typename T>
PYHPE_HD void alpha_merge_element(const AlphaMergeArgs<T>& a, int64_t slot) {
  const int64_t m = image_of(a.offsets, a.M, slot);
  const int64_t start = a.offsets[m];
  a.valid[slot] = false;
  if (slot - start >= a.pick_counts[m]) return;
  const int64_t pi = a.picks[slot];
  const T* ref = a.preds + pi * a.K * 2;
  T max_pick = a.scores[pi * a.K];
  for (int k = 1; k < a.K; ++k) max_pick = a.scores[pi * a.K + k] > max_pick ? a.scores[pi * a.K + k] : max_pick;
  if (max_pick < T(a.prm.score_thr)) return;
  const T merge_ref = capped(a.ref_dists[pi], kMergeRefCap);
  T* op = a.out_preds + slot * a.K * 2;
  T* os = a.out_scores + slot * a.K;
  bool has_nan = false;
  T max_merged = T(0);
  T xmin = T(0), xmax = T(0), ymin = T(0), ymax = T(0);
  const int64_t first = a.member_offsets[slot], last = a.member_offsets[slot + 1];
  for (int k = 0; k < a.K; ++k) {
    T total = T(0);
    for (int64_t i = first; i < last; ++i) {
      const int64_t r = a.members[i];
      if (joint_dist(ref, a.preds + r * a.K * 2, k) <= merge_ref) total += a.scores[r * a.K + k];
      else total += T(0);
    }
    T x = T(0), y = T(0), s = T(0);
    for (int64_t i = first; i < last; ++i) {
      const int64_t r = a.members[i];
      const T masked = joint_dist(ref, a.preds + r * a.K * 2, k) <= merge_ref
                           ? a.scores[r * a.K + k] : T(0);
      const T w = masked / total;
      x = add_rn(x, mul_rn(a.preds[(r * a.K + k) * 2], w));
      y = add_rn(y, mul_rn(a.preds[(r * a.K + k) * 2 + 1], w));
      s = add_rn(s, mul_rn(masked, w));
    }
    op[2 * k] = x;
    op[2 * k + 1] = y;
    os[k] = s;
    // torch.max propagates NaN; Python's max/min over the merged coordinates keep the first.
    if (s != s) has_nan = true;
    if (k == 0 || s > max_merged) max_merged = s;
    if (k == 0) {
      xmin = xmax = x;
      ymin = ymax = y;
    } else {
      if (x > xmax) xmax = x;
      if (x < xmin) xmin = x;
      if (y > ymax) ymax = y;
      if (y < ymin) ymin = y;
    }
  }
  if (!has_nan && max_merged < T(a.prm.score_thr)) return;
  if (T(2.25) * (xmax - xmin) * (ymax - ymin) < T(a.prm.area_thr)) return;
  a.valid[slot] = true;
}

}  // namespace nms
}  // namespace pyhpe
