// Associative Embedding grouping math (torch.ops.pyhpe.ae_group), shared by the CPU loops
// and the CUDA kernels; torch-free (raw pointers and scalars).
//
// Semantics: mmpose 1.3.2 AssociativeEmbedding.batch_decode (see pyhpe/reference/ae.py, the
// numpy oracle): batch_heatmap_nms, per-keypoint top-k, _group_keypoints_by_tags with the
// munkres package's Munkres (classic 1.1.x algorithm) or a greedy rule, refine_keypoints /
// refine_keypoints_dark_udp, decode_center_shift and _fill_missing_keypoints.
//
// Arithmetic follows mmpose's dtypes: candidate rows and the cost matrix in float64
// (numpy promotes the int64 locations), group mean tags in float32 summed in numpy's order
// (pairwise over a contiguous axis, row by row over an outer one), fill-missing costs in
// float32. Products and sums go through mul_rn / add_rn so that nvcc contracts nothing and
// the GPU computes the CPU's bits.
#pragma once

#include <math.h>
#include <stdint.h>

#include "common/fp.h"
#include "common/hd.h"
#include "decode/decode_math.h"

namespace pyhpe {
namespace ae {

enum Refine : int { kRefineNone = 0, kRefineQuarter = 1, kRefineDarkUdp = 2 };
enum Matching : int { kMatchHungarian = 0, kMatchGreedy = 1 };

// Largest K * topk: the groups of an image and the side of its assignment matrix.
constexpr int64_t kMaxCandidates = 8192;

// ---------------------------------------------------------------------------------------
// numpy reductions

// numpy's pairwise summation (loops_utils.h pairwise_sum), the order of np.add.reduce over
// a contiguous axis: plain loop below 8 values, 8 accumulators up to 128, halves above.
template <typename T>
PYHPE_HD T pairwise_block(const T* a, int64_t n, int64_t stride) {
  if (n < 8) {
    T res = T(0);
    for (int64_t i = 0; i < n; ++i) res = add_rn(res, a[i * stride]);
    return res;
  }
  T r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[j * stride];
  int64_t i = 8;
  for (; i < n - (n % 8); i += 8)
    for (int j = 0; j < 8; ++j) r[j] = add_rn(r[j], a[(i + j) * stride]);
  T res = add_rn(add_rn(add_rn(r[0], r[1]), add_rn(r[2], r[3])),
                 add_rn(add_rn(r[4], r[5]), add_rn(r[6], r[7])));
  for (; i < n; ++i) res = add_rn(res, a[i * stride]);
  return res;
}

// The halving above 128 values runs on an explicit stack (no recursion in device code):
// sum(a, n) = sum(a, n2) + sum(a + n2, n - n2), n2 = n / 2 rounded down to a multiple of 8.
template <typename T>
PYHPE_HD T np_pairwise_sum(const T* a, int64_t n, int64_t stride) {
  if (n <= 128) return pairwise_block(a, n, stride);
  int64_t off[40], len[40];
  T left[40];
  int state[40];
  int sp = 0;
  off[0] = 0;
  len[0] = n;
  state[0] = 0;
  T result = T(0);
  while (sp >= 0) {
    if (len[sp] <= 128) {
      result = pairwise_block(a + off[sp] * stride, len[sp], stride);
      --sp;
      continue;
    }
    int64_t n2 = len[sp] / 2;
    n2 -= n2 % 8;
    if (state[sp] == 0) {  // sum the left half
      state[sp] = 1;
      off[sp + 1] = off[sp];
      len[sp + 1] = n2;
      state[sp + 1] = 0;
      ++sp;
    } else if (state[sp] == 1) {  // keep it, sum the right half
      left[sp] = result;
      state[sp] = 2;
      off[sp + 1] = off[sp] + n2;
      len[sp + 1] = len[sp] - n2;
      state[sp + 1] = 0;
      ++sp;
    } else {
      result = add_rn(left[sp], result);
      --sp;
    }
  }
  return result;
}

// np.mean(rows, axis=0) of n float32 rows of length L (row-major): with L == 1 the reduction
// is contiguous (pairwise), otherwise numpy adds row after row.
PYHPE_HD_INLINE void np_rows_mean(const float* rows, int n, int L, float* out) {
  if (L == 1) {
    out[0] = np_pairwise_sum(rows, n, 1) / static_cast<float>(n);
    return;
  }
  for (int l = 0; l < L; ++l) {
    float s = rows[l];
    for (int i = 1; i < n; ++i) s = add_rn(s, rows[static_cast<int64_t>(i) * L + l]);
    out[l] = s / static_cast<float>(n);
  }
}

// ---------------------------------------------------------------------------------------
// Heatmap NMS and top-k

// batch_heatmap_nms at (x, y): the value if it equals the max of its (2r+1)^2 window
// (max_pool2d, -inf padding), else value * 0.
PYHPE_HD_INLINE float nms_value(const float* hm, int H, int W, int x, int y, int r) {
  const float h = hm[static_cast<int64_t>(y) * W + x];
  const int y0 = y - r < 0 ? 0 : y - r, y1 = y + r > H - 1 ? H - 1 : y + r;
  const int x0 = x - r < 0 ? 0 : x - r, x1 = x + r > W - 1 ? W - 1 : x + r;
  for (int yy = y0; yy <= y1; ++yy) {
    const float* row = hm + static_cast<int64_t>(yy) * W;
    for (int xx = x0; xx <= x1; ++xx)
      if (row[xx] > h) return h * 0.0f;
  }
  return h;
}

// The candidate value of pixel p after NMS, or -inf when it cannot pass `thr` (values
// <= thr are dropped by the grouping's mask, so they never matter).
PYHPE_HD_INLINE float candidate_value(const float* hm, int H, int W, int64_t p, int r, double thr) {
  const float h = hm[p];
  // A pixel at or below thr becomes h (<= thr) or +-0, which passes only when thr < 0.
  if (!(static_cast<double>(h) > thr) && !(thr < 0.0)) return -INFINITY;
  const float v = nms_value(hm, H, W, static_cast<int>(p % W), static_cast<int>(p / W), r);
  return static_cast<double>(v) > thr ? v : -INFINITY;
}

// Top-k order: larger value first, equal values in pixel order.
PYHPE_HD_INLINE bool ranks_before(float v1, int64_t i1, float v2, int64_t i2) {
  return v1 > v2 || (v1 == v2 && i1 < i2);
}

// Insert (v, idx) into the sorted top list (count <= T entries), keeping the T first.
PYHPE_HD_INLINE void topk_insert(float* vals, int64_t* idxs, int* count, int T, float v,
                                 int64_t idx) {
  int c = *count;
  if (c == T && !ranks_before(v, idx, vals[c - 1], idxs[c - 1])) return;
  int pos = c < T ? c : T - 1;
  while (pos > 0 && ranks_before(v, idx, vals[pos - 1], idxs[pos - 1])) {
    vals[pos] = vals[pos - 1];
    idxs[pos] = idxs[pos - 1];
    --pos;
  }
  vals[pos] = v;
  idxs[pos] = idx;
  if (c < T) *count = c + 1;
}

// ---------------------------------------------------------------------------------------
// Munkres: the munkres package's Munkres.compute (1.1.x), step for step.
//
// C is n x n (row-major), already padded; on return assign[i] is the column starred in row
// i for i < rows. marked: 0 / 1 (star) / 2 (prime); path holds (2n + 2) x 2 ints.

struct MunkresWork {
  double* C;
  int8_t* marked;
  uint8_t* row_cov;
  uint8_t* col_cov;
  int32_t* path;
};

PYHPE_HD_INLINE void munkres_clear_covers(const MunkresWork& w, int n) {
  for (int i = 0; i < n; ++i) w.row_cov[i] = w.col_cov[i] = 0;
}

// The first row (cyclic from i0) holding an uncovered zero and, in it, the LAST such column
// in cyclic order from j0 (munkres keeps scanning the row after a hit).
PYHPE_HD_INLINE void munkres_find_a_zero(const MunkresWork& w, int n, int i0, int j0, int* row,
                                         int* col) {
  int i = i0;
  do {
    if (!w.row_cov[i]) {
      const double* Ci = w.C + static_cast<int64_t>(i) * n;
      int found = -1;
      int j = j0;
      do {
        if (Ci[j] == 0.0 && !w.col_cov[j]) found = j;
        j = j + 1 == n ? 0 : j + 1;
      } while (j != j0);
      if (found >= 0) {
        *row = i;
        *col = found;
        return;
      }
    }
    i = i + 1 == n ? 0 : i + 1;
  } while (i != i0);
  *row = -1;
  *col = -1;
}

PYHPE_HD_INLINE void munkres_solve(const MunkresWork& w, int n) {
  double* C = w.C;
  int8_t* M = w.marked;
  const int64_t nn = static_cast<int64_t>(n) * n;
  for (int64_t i = 0; i < nn; ++i) M[i] = 0;
  munkres_clear_covers(w, n);
  // step 1: subtract each row's minimum
  for (int i = 0; i < n; ++i) {
    double* Ci = C + static_cast<int64_t>(i) * n;
    double m = Ci[0];
    for (int j = 1; j < n; ++j) m = Ci[j] < m ? Ci[j] : m;
    for (int j = 0; j < n; ++j) Ci[j] = add_rn(Ci[j], -m);
  }
  // step 2: star the first free zero of each row
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      if (C[static_cast<int64_t>(i) * n + j] == 0.0 && !w.col_cov[j] && !w.row_cov[i]) {
        M[static_cast<int64_t>(i) * n + j] = 1;
        w.col_cov[j] = w.row_cov[i] = 1;
        break;
      }
  munkres_clear_covers(w, n);
  int step = 3;
  int z0r = 0, z0c = 0;
  while (true) {
    if (step == 3) {
      int count = 0;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          if (M[static_cast<int64_t>(i) * n + j] == 1 && !w.col_cov[j]) {
            w.col_cov[j] = 1;
            ++count;
          }
      if (count >= n) return;
      step = 4;
    } else if (step == 4) {
      int row = 0, col = 0;
      while (true) {
        munkres_find_a_zero(w, n, row, col, &row, &col);
        if (row < 0) {
          step = 6;
          break;
        }
        M[static_cast<int64_t>(row) * n + col] = 2;
        int star = -1;
        for (int j = 0; j < n; ++j)
          if (M[static_cast<int64_t>(row) * n + j] == 1) {
            star = j;
            break;
          }
        if (star >= 0) {
          col = star;
          w.row_cov[row] = 1;
          w.col_cov[col] = 0;
        } else {
          z0r = row;
          z0c = col;
          step = 5;
          break;
        }
      }
    } else if (step == 5) {
      int32_t* path = w.path;
      int count = 0;
      path[0] = z0r;
      path[1] = z0c;
      while (true) {
        const int c = path[2 * count + 1];
        int r = -1;
        for (int i = 0; i < n; ++i)
          if (M[static_cast<int64_t>(i) * n + c] == 1) {
            r = i;
            break;
          }
        if (r < 0) break;
        ++count;
        path[2 * count] = r;
        path[2 * count + 1] = c;
        int pc = -1;
        for (int j = 0; j < n; ++j)
          if (M[static_cast<int64_t>(r) * n + j] == 2) {
            pc = j;
            break;
          }
        ++count;
        path[2 * count] = r;
        path[2 * count + 1] = pc;
      }
      for (int i = 0; i <= count; ++i) {
        int8_t& m = M[static_cast<int64_t>(path[2 * i]) * n + path[2 * i + 1]];
        m = m == 1 ? 0 : 1;
      }
      munkres_clear_covers(w, n);
      for (int64_t i = 0; i < nn; ++i)
        if (M[i] == 2) M[i] = 0;
      step = 3;
    } else {  // step 6
      double minval = 9223372036854775808.0;  // munkres starts at sys.maxsize
      for (int i = 0; i < n; ++i) {
        if (w.row_cov[i]) continue;
        const double* Ci = C + static_cast<int64_t>(i) * n;
        for (int j = 0; j < n; ++j)
          if (!w.col_cov[j] && Ci[j] < minval) minval = Ci[j];
      }
      for (int i = 0; i < n; ++i) {
        double* Ci = C + static_cast<int64_t>(i) * n;
        const bool rc = w.row_cov[i] != 0;
        for (int j = 0; j < n; ++j) {
          if (rc) Ci[j] = add_rn(Ci[j], minval);
          if (!w.col_cov[j]) Ci[j] = add_rn(Ci[j], -minval);
        }
      }
      step = 4;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Grouping of one image (_group_keypoints_by_tags)

struct GroupArgs {
  const float* cand_val;      // K x T, candidates of keypoint k sorted (top-k order)
  const int64_t* cand_idx;    // K x T pixel indices
  const int32_t* cand_count;  // K
  const float* tags;          // (K * L) x HW tag maps of the image
  const int32_t* order;       // K, the grouping order
  int K, T, L, W;
  int64_t HW;
  double val_thr, tag_thr;
  int matching;
};

// Workspace of one image; S = its number of candidates (sum of cand_count) bounds the groups
// and the side of the assignment matrix.
struct GroupWork {
  float* key;        // S      first tag value of the group's first candidate (mmpose's dict key)
  float* joints;     // S x K x 3  (x, y, val), zeros where missing
  int32_t* ntags;    // S      tags in the group's list
  float* tag_list;   // S x K x L
  float* mean;       // S x L
  float* row_tag;    // T x L
  double* dist;      // T x S  unrounded tag distances
  int32_t* assign;   // T      column of each candidate row (>= groups: a new group)
  MunkresWork mk;    // C: S x S doubles, marked: S x S, covers: S, path: (2S + 2) x 2
};

PYHPE_HD_INLINE int64_t align8(int64_t b) { return (b + 7) & ~int64_t(7); }

// Bytes of a GroupWork for S candidates (0 when S == 0), laid out by group_work_at.
PYHPE_HD_INLINE int64_t group_work_bytes(int64_t S, int K, int L, int T) {
  if (S == 0) return 0;
  int64_t b = 0;
  b += align8(S * 4);                      // key
  b += align8(S * K * 3 * 4);              // joints
  b += align8(S * 4);                      // ntags
  b += align8(S * K * L * 4);              // tag_list
  b += align8(S * L * 4);                  // mean
  b += align8(static_cast<int64_t>(T) * L * 4);  // row_tag
  b += align8(static_cast<int64_t>(T) * S * 8);  // dist
  b += align8(static_cast<int64_t>(T) * 4);      // assign
  b += align8(S * S * 8);                  // C
  b += align8(S * S);                      // marked
  b += align8(S) * 2;                      // covers
  b += align8((2 * S + 2) * 2 * 4);        // path
  return b;
}

PYHPE_HD_INLINE GroupWork group_work_at(void* base, int64_t S, int K, int L, int T) {
  char* p = static_cast<char*>(base);
  GroupWork w;
  w.key = reinterpret_cast<float*>(p);
  p += align8(S * 4);
  w.joints = reinterpret_cast<float*>(p);
  p += align8(S * K * 3 * 4);
  w.ntags = reinterpret_cast<int32_t*>(p);
  p += align8(S * 4);
  w.tag_list = reinterpret_cast<float*>(p);
  p += align8(S * K * L * 4);
  w.mean = reinterpret_cast<float*>(p);
  p += align8(S * L * 4);
  w.row_tag = reinterpret_cast<float*>(p);
  p += align8(static_cast<int64_t>(T) * L * 4);
  w.dist = reinterpret_cast<double*>(p);
  p += align8(static_cast<int64_t>(T) * S * 8);
  w.assign = reinterpret_cast<int32_t*>(p);
  p += align8(static_cast<int64_t>(T) * 4);
  w.mk.C = reinterpret_cast<double*>(p);
  p += align8(S * S * 8);
  w.mk.marked = reinterpret_cast<int8_t*>(p);
  p += align8(S * S);
  w.mk.row_cov = reinterpret_cast<uint8_t*>(p);
  p += align8(S);
  w.mk.col_cov = reinterpret_cast<uint8_t*>(p);
  p += align8(S);
  w.mk.path = reinterpret_cast<int32_t*>(p);
  return w;
}

// Put candidate row r (tag in w.row_tag) of keypoint k into a new group, or, when a group
// already has the same key (mmpose's dict.setdefault), overwrite that group's keypoint k and
// restart its tag list.
PYHPE_HD_INLINE void open_group(const GroupArgs& a, const GroupWork& w, int* G, int k, int r,
                                float x, float y, float v) {
  const int K = a.K, L = a.L;
  const float* tag = w.row_tag + static_cast<int64_t>(r) * L;
  const float key = tag[0];
  int g = -1;
  for (int i = 0; i < *G; ++i)
    if (w.key[i] == key) {
      g = i;
      break;
    }
  if (g < 0) {
    g = (*G)++;
    w.key[g] = key;
    float* j = w.joints + static_cast<int64_t>(g) * K * 3;
    for (int i = 0; i < K * 3; ++i) j[i] = 0.0f;
  }
  float* j = w.joints + (static_cast<int64_t>(g) * K + k) * 3;
  j[0] = x;
  j[1] = y;
  j[2] = v;
  w.ntags[g] = 1;
  float* t = w.tag_list + static_cast<int64_t>(g) * K * L;
  for (int l = 0; l < L; ++l) t[l] = tag[l];
}

// Greedy matching: repeatedly the cheapest (row, group) pair with dist < tag_thr among the
// unused rows and groups (ties: lower row, then lower group); unmatched rows get col = G.
PYHPE_HD_INLINE void greedy_assign(const GroupArgs& a, const GroupWork& w, int rows, int G) {
  uint8_t* row_used = w.mk.row_cov;
  uint8_t* col_used = w.mk.col_cov;
  for (int r = 0; r < rows; ++r) {
    row_used[r] = 0;
    w.assign[r] = G;
  }
  for (int g = 0; g < G; ++g) col_used[g] = 0;
  const double* cost = w.mk.C;  // rows x G costs, row stride G
  while (true) {
    int br = -1, bg = -1;
    double bc = 0.0;
    for (int r = 0; r < rows; ++r) {
      if (row_used[r]) continue;
      for (int g = 0; g < G; ++g) {
        if (col_used[g] || !(w.dist[static_cast<int64_t>(r) * G + g] < a.tag_thr)) continue;
        const double c = cost[static_cast<int64_t>(r) * G + g];
        if (br < 0 || c < bc) {
          br = r;
          bg = g;
          bc = c;
        }
      }
    }
    if (br < 0) return;
    row_used[br] = 1;
    col_used[bg] = 1;
    w.assign[br] = bg;
  }
}

// Groups the candidates of one image; returns the number of groups (creation order).
PYHPE_HD_INLINE int group_image(const GroupArgs& a, const GroupWork& w) {
  const int K = a.K, T = a.T, L = a.L;
  int G = 0;
  for (int i = 0; i < K; ++i) {
    const int k = a.order[i];
    const int count = a.cand_count[k];
    const float* vals = a.cand_val + static_cast<int64_t>(k) * T;
    const int64_t* idxs = a.cand_idx + static_cast<int64_t>(k) * T;
    // candidates above the threshold, in top-k order (the caller only keeps those)
    const int rows = count;
    if (rows == 0) continue;
    for (int r = 0; r < rows; ++r)
      for (int l = 0; l < L; ++l)
        w.row_tag[static_cast<int64_t>(r) * L + l] =
            a.tags[(static_cast<int64_t>(l) * K + k) * a.HW + idxs[r]];
    if (G == 0) {
      for (int r = 0; r < rows; ++r)
        open_group(a, w, &G, k, r, static_cast<float>(idxs[r] % a.W),
                   static_cast<float>(idxs[r] / a.W), vals[r]);
      continue;
    }
    const int G0 = G;
    for (int g = 0; g < G0; ++g)
      np_rows_mean(w.tag_list + static_cast<int64_t>(g) * K * L, w.ntags[g], L,
                   w.mean + static_cast<int64_t>(g) * L);
    // distances (float64, numpy's norm: sqrt of the pairwise sum of squares)
    double sq[64];
    for (int r = 0; r < rows; ++r)
      for (int g = 0; g < G0; ++g) {
        double d;
        if (L <= 64) {
          for (int l = 0; l < L; ++l) {
            const double diff = static_cast<double>(w.row_tag[static_cast<int64_t>(r) * L + l]) -
                                static_cast<double>(w.mean[static_cast<int64_t>(g) * L + l]);
            sq[l] = mul_rn(diff, diff);
          }
          d = sqrt_of(np_pairwise_sum(sq, L, 1));
        } else {
          double s = 0.0;  // (L > 64 is refused by the op)
          for (int l = 0; l < L; ++l) {
            const double diff = static_cast<double>(w.row_tag[static_cast<int64_t>(r) * L + l]) -
                                static_cast<double>(w.mean[static_cast<int64_t>(g) * L + l]);
            s = add_rn(s, mul_rn(diff, diff));
          }
          d = sqrt_of(s);
        }
        w.dist[static_cast<int64_t>(r) * G0 + g] = d;
      }
    if (a.matching == kMatchGreedy) {
      for (int r = 0; r < rows; ++r)
        for (int g = 0; g < G0; ++g)
          w.mk.C[static_cast<int64_t>(r) * G0 + g] =
              add_rn(rint_of(w.dist[static_cast<int64_t>(r) * G0 + g]) * 100.0,
                     -static_cast<double>(vals[r]));
      greedy_assign(a, w, rows, G0);
    } else {
      const int n = rows > G0 ? rows : G0;
      for (int r = 0; r < n; ++r) {
        double* Cr = w.mk.C + static_cast<int64_t>(r) * n;
        for (int g = 0; g < n; ++g) {
          if (r >= rows) Cr[g] = 0.0;  // munkres pads missing rows with zeros
          else if (g >= G0) Cr[g] = 1e10;  // mmpose pads missing columns with 1e10
          else
            Cr[g] = add_rn(rint_of(w.dist[static_cast<int64_t>(r) * G0 + g]) * 100.0,
                           -static_cast<double>(vals[r]));
        }
      }
      munkres_solve(w.mk, n);
      for (int r = 0; r < rows; ++r) {
        const int8_t* Mr = w.mk.marked + static_cast<int64_t>(r) * n;
        int c = n;
        for (int g = 0; g < n; ++g)
          if (Mr[g] == 1) {
            c = g;
            break;
          }
        w.assign[r] = c;
      }
    }
    for (int r = 0; r < rows; ++r) {
      const int c = w.assign[r];
      const float x = static_cast<float>(idxs[r] % a.W), y = static_cast<float>(idxs[r] / a.W);
      if (c < G0 && w.dist[static_cast<int64_t>(r) * G0 + c] < a.tag_thr) {
        float* j = w.joints + (static_cast<int64_t>(c) * K + k) * 3;
        j[0] = x;
        j[1] = y;
        j[2] = vals[r];
        float* t = w.tag_list + (static_cast<int64_t>(c) * K + w.ntags[c]) * L;
        for (int l = 0; l < L; ++l) t[l] = w.row_tag[static_cast<int64_t>(r) * L + l];
        ++w.ntags[c];
      } else {
        open_group(a, w, &G, k, r, x, y, vals[r]);
      }
    }
  }
  return G;
}

// ---------------------------------------------------------------------------------------
// Refinement, instance scores and fill-missing

// mmpose refine_keypoints at integer (x, y): +-0.25 per axis towards the higher neighbour.
PYHPE_HD_INLINE void refine_quarter(const float* hm, int H, int W, float* px, float* py) {
  const int x = static_cast<int>(*px), y = static_cast<int>(*py);
  float dx = 0.0f, dy = 0.0f;
  const int64_t o = static_cast<int64_t>(y) * W + x;
  if (1 < x && x < W - 1 && 0 < y && y < H) dx = add_rn(hm[o + 1], -hm[o - 1]);
  if (1 < y && y < H - 1 && 0 < x && x < W) dy = add_rn(hm[o + W], -hm[o - W]);
  *px = add_rn(*px, decode::numpy_sign(dx) * 0.25f);
  *py = add_rn(*py, decode::numpy_sign(dy) * 0.25f);
}

// refine_keypoints_dark_udp's step at integer (x, y) on the modulated map (blurred, clipped
// to [1e-3, 50], log): edge-padded finite differences, (H + eps I)^-1 in float64.
PYHPE_HD_INLINE void refine_dark_udp(const float* mod, int H, int W, float* px, float* py) {
  const int x = static_cast<int>(*px), y = static_cast<int>(*py);
  const int xm = decode::clamp_index(x - 1, W), xp = decode::clamp_index(x + 1, W);
  const int ym = decode::clamp_index(y - 1, H), yp = decode::clamp_index(y + 1, H);
  const int xc = decode::clamp_index(x, W), yc = decode::clamp_index(y, H);
  auto at = [&](int xx, int yy) { return mod[static_cast<int64_t>(yy) * W + xx]; };
  const float i_ = at(xc, yc), ix1 = at(xp, yc), ix1_ = at(xm, yc), iy1 = at(xc, yp),
              iy1_ = at(xc, ym), ix1y1 = at(xp, yp), ix1_y1_ = at(xm, ym);
  const float dx = mul_rn(0.5f, add_rn(ix1, -ix1_));
  const float dy = mul_rn(0.5f, add_rn(iy1, -iy1_));
  const float dxx = add_rn(add_rn(ix1, -mul_rn(2.0f, i_)), ix1_);
  const float dyy = add_rn(add_rn(iy1, -mul_rn(2.0f, i_)), iy1_);
  float s = add_rn(ix1y1, -ix1);
  s = add_rn(s, -iy1);
  s = add_rn(s, i_);
  s = add_rn(s, i_);
  s = add_rn(s, -ix1_);
  s = add_rn(s, -iy1_);
  s = add_rn(s, ix1_y1_);
  const float dxy = mul_rn(0.5f, s);
  const double eps = 1.1920928955078125e-07;  // np.finfo(np.float32).eps, added in float64
  const double h00 = static_cast<double>(dxx) + eps, h11 = static_cast<double>(dyy) + eps;
  const double h01 = static_cast<double>(dxy);
  const double det = add_rn(mul_rn(h00, h11), -mul_rn(h01, h01));
  const double gx = static_cast<double>(dx), gy = static_cast<double>(dy);
  *px = static_cast<float>(static_cast<double>(*px) - add_rn(mul_rn(h11, gx), -mul_rn(h01, gy)) / det);
  *py = static_cast<float>(static_cast<double>(*py) - add_rn(mul_rn(h00, gy), -mul_rn(h01, gx)) / det);
}

// Modulation of one blurred value: log(clip(b * s, 1e-3, 50)) in float32.
PYHPE_HD_INLINE float modulate(float b, float s) {
  return log_of(decode::numpy_clip(mul_rn(b, s), 1e-3f, 50.0f));
}

struct FinishArgs {
  const float* heatmaps;  // K x HW of the image (original maps)
  const float* modulated; // K x HW modulated maps (dark_udp), else nullptr
  const float* tags;      // (K * L) x HW
  int K, L, H, W;
  int refine;
  float center_shift;
  bool fill_missing;
  int64_t N;              // output rows
  float* keypoints;       // N x K x 2
  float* scores;          // N x K
  float* instance_scores; // N
  float* fill_tag;        // N x L (instance tags for fill-missing)
  float* scratch;         // K x L
};

// Writes the first `count` groups: instance scores, refined and shifted keypoints, scores
// and the instance tags that fill-missing searches with (NaN when nothing was detected).
PYHPE_HD_INLINE void finish_instances(const FinishArgs& f, const float* joints, int count) {
  const int K = f.K, L = f.L, H = f.H, W = f.W;
  const int64_t HW = static_cast<int64_t>(H) * W;
  for (int n = 0; n < count; ++n) {
    const float* j = joints + static_cast<int64_t>(n) * K * 3;
    f.instance_scores[n] = np_pairwise_sum(j + 2, K, 3) / static_cast<float>(K);
    float* kp = f.keypoints + static_cast<int64_t>(n) * K * 2;
    float* sc = f.scores + static_cast<int64_t>(n) * K;
    int found = 0;
    for (int k = 0; k < K; ++k) {
      float x = j[k * 3], y = j[k * 3 + 1];
      const float v = j[k * 3 + 2];
      sc[k] = v;
      if (v > 0.0f) {
        if (f.refine == kRefineQuarter) refine_quarter(f.heatmaps + k * HW, H, W, &x, &y);
        else if (f.refine == kRefineDarkUdp) refine_dark_udp(f.modulated + k * HW, H, W, &x, &y);
        x = add_rn(x, f.center_shift);
        y = add_rn(y, f.center_shift);
        int64_t xi = static_cast<int64_t>(x), yi = static_cast<int64_t>(y);
        xi = xi < 0 ? 0 : (xi > W - 1 ? W - 1 : xi);
        yi = yi < 0 ? 0 : (yi > H - 1 ? H - 1 : yi);
        for (int l = 0; l < L; ++l)
          f.scratch[found * L + l] = f.tags[(static_cast<int64_t>(l) * K + k) * HW + yi * W + xi];
        ++found;
      } else {
        x = 0.0f;
        y = 0.0f;
      }
      kp[2 * k] = x;
      kp[2 * k + 1] = y;
    }
    float* tag = f.fill_tag + static_cast<int64_t>(n) * L;
    if (found > 0) np_rows_mean(f.scratch, found, L, tag);
    else
      for (int l = 0; l < L; ++l) tag[l] = NAN;
  }
}

// rintf for x >= 0 (or NaN) without a library call (x86-64 has no SSE4.1 round by default):
// below 2^23, adding 2^23 rounds to the nearest even integer and subtracting it is exact.
PYHPE_HD_INLINE float rint_nonneg(float x) {
  return x < 8388608.0f ? add_rn(add_rn(x, 8388608.0f), -8388608.0f) : x;
}

// Fill-missing cost of pixel p for keypoint k: round(||tag map - tag||) * 100 - map, float32.
PYHPE_HD_INLINE float fill_cost(const float* tags, const float* map, int K, int L, int64_t HW,
                                int k, int64_t p, const float* tag) {
  float s = 0.0f;
  for (int l = 0; l < L; ++l) {
    const float d = add_rn(tags[(static_cast<int64_t>(l) * K + k) * HW + p], -tag[l]);
    const float q = mul_rn(d, d);
    s = l == 0 ? q : add_rn(s, q);
  }
  return add_rn(mul_rn(rint_nonneg(sqrt_of(s)), 100.0f), -map[p]);
}

// np.argmin order: the first NaN, else the first minimum.
PYHPE_HD_INLINE bool argmin_before(float c1, int64_t p1, float c2, int64_t p2) {
  const bool n1 = c1 != c1, n2 = c2 != c2;
  if (n1 != n2) return n1;
  if (n1) return p1 < p2;
  return c1 < c2 || (c1 == c2 && p1 < p2);
}

// Sequential fill of keypoint k of instance n (the CPU; the GPU reduces in parallel).
PYHPE_HD_INLINE void fill_missing_keypoint(const FinishArgs& f, int n, int k) {
  const int64_t HW = static_cast<int64_t>(f.H) * f.W;
  const float* map = (f.refine == kRefineDarkUdp ? f.modulated : f.heatmaps) + k * HW;
  const float* tag = f.fill_tag + static_cast<int64_t>(n) * f.L;
  float best = fill_cost(f.tags, map, f.K, f.L, HW, k, 0, tag);
  int64_t bp = 0;
  for (int64_t p = 1; p < HW; ++p) {
    const float c = fill_cost(f.tags, map, f.K, f.L, HW, k, p, tag);
    if (argmin_before(c, p, best, bp)) {
      best = c;
      bp = p;
    }
  }
  float* kp = f.keypoints + (static_cast<int64_t>(n) * f.K + k) * 2;
  kp[0] = static_cast<float>(bp % f.W);
  kp[1] = static_cast<float>(bp / f.W);
  f.scores[static_cast<int64_t>(n) * f.K + k] = map[bp];
}

}  // namespace ae
}  // namespace pyhpe
