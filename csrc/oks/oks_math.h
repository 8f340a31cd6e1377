// Object Keypoint Similarity for one (detection, ground truth) pair.
// Shared by the CPU loops, the CUDA kernels and the COCO evaluator; torch-free.
//
// COCO mode follows pycocotools COCOeval.computeOks exactly, in this operation order:
//   var = (2*sigma)^2;  e = (dx^2 + dy^2) / var / (area + eps) / 2;  oks = sum(exp(-e)) / n
// with eps = np.spacing(1), the mean taken over GT keypoints with v > 0, and, for a GT with
// no visible keypoint, dx/dy measured to the GT box expanded to [x-w, x+2w] x [y-h, y+2h]
// over all K keypoints. exp is numpy's float64 exp on the path numpy takes on the running
// machine (common/numpy_exp.h) and the sum is numpy's pairwise summation, so float64 results
// are bitwise equal to pycocotools on every machine.
//
// MMPose mode follows mmpose oks_iou: area = (gt_area + dt_area) / 2, and with vis_thr the
// mean runs over keypoints whose GT and detection scores both exceed vis_thr; 0 when none do.
#pragma once

#include <math.h>
#include <stdint.h>

#include <utility>

#include "common/fp.h"
#include "common/hd.h"
#include "common/numpy_exp.h"

namespace pyhpe {
namespace oks {

enum Mode : int { kModeCoco = 0, kModeMMPose = 1 };

// np.spacing(1.0): pycocotools adds it to the area to avoid dividing by zero.
constexpr double kAreaEps = 2.220446049250313e-16;

// np.exp as numpy computes it in float64 on this machine; float32 OKS has no numpy reference.
PYHPE_HD_INLINE double exp_like_numpy(double x, int exp_path) { return numpy_exp(x, exp_path); }
PYHPE_HD_INLINE float exp_like_numpy(float x, int) { return exp_of(x); }

template <typename T>
PYHPE_HD_INLINE T max0(T v) {
  return v > T(0) ? v : T(0);
}

// Everything that describes one pair. Pointers are to K consecutive keypoints.
template <typename T>
struct OksPair {
  const T* dt;        // K x dt_channels (x, y[, score])
  int dt_channels;    // 2 or 3
  const T* gt;        // K x 3 (x, y, v)
  const T* sigmas;    // K
  const T* gt_box;    // 4 (x, y, w, h) or nullptr
  T gt_area;
  T dt_area;          // MMPose mode only
  int num_keypoints;  // K
  int mode;           // Mode
  bool has_vis_thr;   // MMPose mode only
  T vis_thr;
  int exp_path;       // NumpyExpPath

  // Filled by prepare().
  bool use_box;
  T denom, x0, x1, y0, y1;

  PYHPE_HD bool included(int k) const {
    if (mode == kModeCoco) return use_box || gt[3 * k + 2] > T(0);
    if (!has_vis_thr) return true;
    return gt[3 * k + 2] > vis_thr && dt[dt_channels * k + 2] > vis_thr;
  }

  // exp(-e) for keypoint k, with pycocotools' operation order.
  PYHPE_HD T term(int k) const {
    const T xd = dt[dt_channels * k], yd = dt[dt_channels * k + 1];
    T dx, dy;
    if (use_box) {
      dx = add_rn(max0(T(x0 - xd)), max0(T(xd - x1)));
      dy = add_rn(max0(T(y0 - yd)), max0(T(yd - y1)));
    } else {
      dx = xd - gt[3 * k];
      dy = yd - gt[3 * k + 1];
    }
    const T two_sigma = mul_rn(sigmas[k], T(2));
    const T var = mul_rn(two_sigma, two_sigma);
    // Far keypoints: exp(-e) is exactly 0 on every exp path (each rounds exp(-746) and
    // expf(-105) to 0). Where d^2 exceeds 2 * var * denom * that bound (0.1% over it, far
    // beyond the three divisions' rounding) e does too, so neither the divisions nor exp
    // run; NaN fails the comparisons and propagates, and a non-positive bound (zero
    // sigma or area, a negative area) never skips.
    constexpr T kUnderflow = T(sizeof(T) == sizeof(double) ? 746.0 : 105.0);
    const T d2 = add_rn(mul_rn(dx, dx), mul_rn(dy, dy));
    const T far = mul_rn(mul_rn(var, denom), T(2.002) * kUnderflow);
    if (far > T(0) && d2 > far) return T(0);
    const T e = d2 / var / denom / T(2);
    if (e > kUnderflow) return T(0);
    return exp_like_numpy(-e, exp_path);
  }
};

// Sum of term(k) over the included keypoints whose rank (position among the included
// ones) lies in [first, first + n), n <= 128: numpy's pairwise_sum leaf, 8 interleaved
// partial sums combined as a tree, then the remainder added in order. P is any pair type
// with num_keypoints, included(k) and term(k) (OksPair here, the NMS's mixed-precision pair).
template <typename P, typename T = decltype(std::declval<const P&>().term(0))>
PYHPE_HD T numpy_pairwise_leaf(const P& p, int first, int n) {
  T partial[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  T res = T(0);
  const int blocked = n < 8 ? 0 : n - n % 8;
  bool combined = n < 8;
  int rank = 0;
  for (int k = 0; k < p.num_keypoints && rank < first + n; ++k) {
    if (!p.included(k)) continue;
    const int i = rank++ - first;
    if (i < 0) continue;
    const T v = p.term(k);
    if (i < blocked) {
      partial[i % 8] = i < 8 ? v : partial[i % 8] + v;
      continue;
    }
    if (!combined) {
      res = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
            ((partial[4] + partial[5]) + (partial[6] + partial[7]));
      combined = true;
    }
    res += v;
  }
  if (!combined) {
    res = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
          ((partial[4] + partial[5]) + (partial[6] + partial[7]));
  }
  return res;
}

// numpy's pairwise_sum over ranks [first, first + n): above 128 items it splits at half
// (rounded down to a multiple of 8) and adds the halves' sums. The recursion is unrolled onto
// a fixed stack (depth <= 25 for any int n) so device threads use no call stack per level;
// the order of the additions, and so the bits, are numpy's.
template <typename P, typename T = decltype(std::declval<const P&>().term(0))>
PYHPE_HD T numpy_pairwise_sum(const P& p, int first, int n) {
  if (n <= 128) return numpy_pairwise_leaf(p, first, n);
  struct Frame {
    int first, n, stage;
    T left;
  };
  Frame stack[32];
  int top = 0;
  stack[0] = Frame{first, n, 0, T(0)};
  T ret = T(0);
  while (top >= 0) {
    Frame& f = stack[top];
    if (f.n <= 128) {
      ret = numpy_pairwise_leaf(p, f.first, f.n);
      --top;
      continue;
    }
    int half = f.n / 2;
    half -= half % 8;
    if (f.stage == 0) {
      f.stage = 1;
      stack[++top] = Frame{f.first, half, 0, T(0)};
    } else if (f.stage == 1) {
      f.left = ret;
      f.stage = 2;
      stack[++top] = Frame{f.first + half, f.n - half, 0, T(0)};
    } else {
      ret = f.left + ret;
      --top;
    }
  }
  return ret;
}

// OKS of one pair; the pair's derived fields are filled here.
template <typename T>
PYHPE_HD T oks_pair(OksPair<T>& p) {
  const int K = p.num_keypoints;
  if (K <= 0) return T(0);
  int visible = 0;
  if (p.mode == kModeCoco) {
    for (int k = 0; k < K; ++k) visible += p.gt[3 * k + 2] > T(0);
    p.use_box = visible == 0;
    if (p.use_box) {
      if (p.gt_box == nullptr) return T(0);
      const T bx = p.gt_box[0], by = p.gt_box[1], bw = p.gt_box[2], bh = p.gt_box[3];
      p.x0 = bx - bw;
      p.x1 = add_rn(bx, mul_rn(bw, T(2)));
      p.y0 = by - bh;
      p.y1 = add_rn(by, mul_rn(bh, T(2)));
      visible = K;
    }
    p.denom = p.gt_area + T(kAreaEps);
  } else {
    p.use_box = false;
    for (int k = 0; k < K; ++k) visible += p.included(k);
    if (visible == 0) return T(0);
    p.denom = (p.gt_area + p.dt_area) / T(2) + T(kAreaEps);
  }
  // numpy adds the pairwise sum to the reduction's identity, 0.0.
  const T sum = T(0) + numpy_pairwise_sum(p, 0, visible);
  return sum / T(visible);
}

// Convenience for callers that hold raw rows.
template <typename T>
PYHPE_HD T compute_oks(const T* dt, int dt_channels, const T* gt, const T* sigmas, int K,
                       T gt_area, const T* gt_box, T dt_area, int mode, bool has_vis_thr,
                       T vis_thr, int exp_path = kNumpyExpLibm) {
  OksPair<T> p;
  p.dt = dt;
  p.dt_channels = dt_channels;
  p.gt = gt;
  p.sigmas = sigmas;
  p.gt_box = gt_box;
  p.gt_area = gt_area;
  p.dt_area = dt_area;
  p.num_keypoints = K;
  p.mode = mode;
  p.has_vis_thr = has_vis_thr;
  p.vis_thr = vis_thr;
  p.exp_path = exp_path;
  p.use_box = false;
  p.denom = p.x0 = p.x1 = p.y0 = p.y1 = T(0);
  return oks_pair(p);
}

// One output element of the padded batched matrix out[N, D, G]; cells beyond a
// per-image count are written as 0.
template <typename T>
struct OksMatrixArgs {
  const T* dt;               // N x D x K x C
  const T* gt;               // N x G x K x 3
  const T* gt_areas;         // N x G
  const T* sigmas;           // K
  const T* gt_boxes;         // N x G x 4 or nullptr
  const T* dt_areas;         // N x D or nullptr (MMPose mode)
  const int64_t* dt_counts;  // N or nullptr (all D valid)
  const int64_t* gt_counts;  // N or nullptr (all G valid)
  int64_t N, D, G;
  int K, C, mode;
  bool has_vis_thr;
  T vis_thr;
  int exp_path;  // NumpyExpPath
  T* out;
};

template <typename T>
PYHPE_HD void oks_matrix_element(const OksMatrixArgs<T>& a, int64_t idx) {
  const int64_t j = idx % a.G;
  const int64_t i = (idx / a.G) % a.D;
  const int64_t n = idx / (a.G * a.D);
  if ((a.dt_counts && i >= a.dt_counts[n]) || (a.gt_counts && j >= a.gt_counts[n])) {
    a.out[idx] = T(0);
    return;
  }
  const int64_t di = n * a.D + i, gj = n * a.G + j;
  a.out[idx] = compute_oks<T>(a.dt + di * a.K * a.C, a.C, a.gt + gj * a.K * 3, a.sigmas, a.K,
                              a.gt_areas[gj], a.gt_boxes ? a.gt_boxes + gj * 4 : nullptr,
                              a.dt_areas ? a.dt_areas[di] : T(0), a.mode, a.has_vis_thr,
                              a.vis_thr, a.exp_path);
}

// One output element of the ragged form: image n owns rows dt_offsets[n]..dt_offsets[n+1]
// and gt_offsets[n]..gt_offsets[n+1]; its D_n x G_n block starts at out_offsets[n].
template <typename T>
struct OksRaggedArgs {
  const T* dt;                 // sum(D_n) x K x C
  const T* gt;                 // sum(G_n) x K x 3
  const T* gt_areas;           // sum(G_n)
  const T* sigmas;             // K
  const T* gt_boxes;           // sum(G_n) x 4 or nullptr
  const T* dt_areas;           // sum(D_n) or nullptr
  const int64_t* dt_offsets;   // N + 1
  const int64_t* gt_offsets;   // N + 1
  const int64_t* out_offsets;  // N + 1
  int64_t N;
  int K, C, mode;
  bool has_vis_thr;
  T vis_thr;
  int exp_path;  // NumpyExpPath
  T* out;
};

// Largest n with offsets[n] <= idx (offsets non-decreasing, offsets[0] == 0).
PYHPE_HD_INLINE int64_t find_segment(const int64_t* offsets, int64_t count, int64_t idx) {
  int64_t lo = 0, hi = count;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (offsets[mid] <= idx) lo = mid; else hi = mid;
  }
  return lo;
}

template <typename T>
PYHPE_HD void oks_ragged_element(const OksRaggedArgs<T>& a, int64_t idx) {
  // Skip empty blocks that share a start: the last segment starting at or before idx.
  const int64_t n = find_segment(a.out_offsets, a.N, idx);
  const int64_t local = idx - a.out_offsets[n];
  const int64_t g_count = a.gt_offsets[n + 1] - a.gt_offsets[n];
  const int64_t di = a.dt_offsets[n] + local / g_count;
  const int64_t gj = a.gt_offsets[n] + local % g_count;
  a.out[idx] = compute_oks<T>(a.dt + di * a.K * a.C, a.C, a.gt + gj * a.K * 3, a.sigmas, a.K,
                              a.gt_areas[gj], a.gt_boxes ? a.gt_boxes + gj * 4 : nullptr,
                              a.dt_areas ? a.dt_areas[di] : T(0), a.mode, a.has_vis_thr,
                              a.vis_thr, a.exp_path);
}

}  // namespace oks
}  // namespace pyhpe
