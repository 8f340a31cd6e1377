// CPU loops of the Associative Embedding grouping family: images in parallel, everything of
// one image (top-k, grouping, refinement, fill-missing) in one task, over ae_math.h.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ae/ae.h"

// Host-only SSE2 twin of fill_missing_keypoint (4 pixels per step, the same float32 costs
// bit for bit: sqrtps is correctly rounded like sqrtss, no FMA in SSE2).
#if defined(__SSE2__)
#include <emmintrin.h>
#define PYHPE_AE_SSE2 1
#endif

namespace pyhpe {
namespace ae {

namespace {

// mmpose gaussian_blur + clip + log of the K maps of one image (refine_keypoints_dark_udp).
void modulate_image(const AEArgs& a, const float* hm, float* mod) {
  const int H = a.H, W = a.W;
  const int64_t HW = static_cast<int64_t>(H) * W;
  for (int k = 0; k < a.K; ++k) {
    const float* m = hm + k * HW;
    float* o = mod + k * HW;
    float hmax = m[0], bmax = 0.0f;
    for (int64_t p = 1; p < HW; ++p) hmax = m[p] > hmax ? m[p] : hmax;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const float b = decode::blur2d_at(m, H, W, x, y, a.blur_w, a.blur_r);
        o[static_cast<int64_t>(y) * W + x] = b;
        bmax = (x == 0 && y == 0) || b > bmax ? b : bmax;
      }
    const float s = hmax / bmax;
    for (int64_t p = 0; p < HW; ++p) o[p] = modulate(o[p], s);
  }
}

#ifdef PYHPE_AE_SSE2
void fill_missing_sse2(const FinishArgs& f, int n, int k) {
  const int K = f.K, L = f.L;
  const int64_t HW = static_cast<int64_t>(f.H) * f.W;
  const float* tag = f.fill_tag + static_cast<int64_t>(n) * L;
  bool finite = HW >= 8 && HW < (int64_t(1) << 30);
  for (int l = 0; l < L && finite; ++l) finite = std::isfinite(tag[l]);
  if (!finite) {  // NaN instance tag (nothing detected) or tiny / huge maps: the scalar form
    fill_missing_keypoint(f, n, k);
    return;
  }
  const float* map = (f.refine == kRefineDarkUdp ? f.modulated : f.heatmaps) + k * HW;
  const __m128 two23 = _mm_set1_ps(8388608.0f), hundred = _mm_set1_ps(100.0f);
  auto cost4 = [&](int64_t p) {
    __m128 s = _mm_setzero_ps();
    for (int l = 0; l < L; ++l) {
      const __m128 d = _mm_sub_ps(_mm_loadu_ps(f.tags + (static_cast<int64_t>(l) * K + k) * HW + p),
                                  _mm_set1_ps(tag[l]));
      const __m128 q = _mm_mul_ps(d, d);
      s = l == 0 ? q : _mm_add_ps(s, q);
    }
    const __m128 r = _mm_sqrt_ps(s);
    const __m128 small = _mm_cmplt_ps(r, two23);
    const __m128 rr = _mm_sub_ps(_mm_add_ps(r, two23), two23);
    const __m128 rint = _mm_or_ps(_mm_and_ps(small, rr), _mm_andnot_ps(small, r));
    return _mm_sub_ps(_mm_mul_ps(rint, hundred), _mm_loadu_ps(map + p));
  };
  __m128 best = cost4(0);
  __m128i bidx = _mm_set_epi32(3, 2, 1, 0);
  __m128i idx = bidx;
  const __m128i four = _mm_set1_epi32(4);
  int64_t p = 4;
  for (; p + 4 <= HW; p += 4) {
    idx = _mm_add_epi32(idx, four);
    const __m128 c = cost4(p);
    const __m128 lt = _mm_cmplt_ps(c, best);  // strict: each lane keeps its first minimum
    best = _mm_or_ps(_mm_and_ps(lt, c), _mm_andnot_ps(lt, best));
    const __m128i m = _mm_castps_si128(lt);
    bidx = _mm_or_si128(_mm_and_si128(m, idx), _mm_andnot_si128(m, bidx));
  }
  float bv[4];
  int32_t bi[4];
  _mm_storeu_ps(bv, best);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(bi), bidx);
  float bestv = bv[0];
  int64_t bp = bi[0];
  for (int i = 1; i < 4; ++i)
    if (bv[i] < bestv || (bv[i] == bestv && bi[i] < bp)) {
      bestv = bv[i];
      bp = bi[i];
    }
  for (; p < HW; ++p) {
    const float c = fill_cost(f.tags, map, K, L, HW, k, p, tag);
    if (c < bestv) {
      bestv = c;
      bp = p;
    }
  }
  float* kp = f.keypoints + (static_cast<int64_t>(n) * K + k) * 2;
  kp[0] = static_cast<float>(bp % f.W);
  kp[1] = static_cast<float>(bp / f.W);
  f.scores[static_cast<int64_t>(n) * K + k] = map[bp];
}
#endif

void group_one_image(const AEArgs& a, int64_t b) {
  const int K = a.K, T = a.T, L = a.L, H = a.H, W = a.W;
  const int64_t HW = static_cast<int64_t>(H) * W;
  const float* hm = a.heatmaps + b * K * HW;
  const float* tags = a.tags + b * K * L * HW;
  std::vector<float> cval(static_cast<size_t>(K) * T);
  std::vector<int64_t> cidx(static_cast<size_t>(K) * T);
  std::vector<int32_t> ccount(K, 0);
  int64_t S = 0;
  for (int k = 0; k < K; ++k) {
    const float* m = hm + k * HW;
    int count = 0;
    for (int64_t p = 0; p < HW; ++p) {
      const float v = candidate_value(m, H, W, p, a.nms_radius, a.val_thr);
      if (v != -INFINITY) topk_insert(cval.data() + k * T, cidx.data() + k * T, &count, T, v, p);
    }
    ccount[k] = count;
    S += count;
  }
  a.num[b] = 0;
  if (S == 0) return;
  std::vector<uint64_t> work(static_cast<size_t>(group_work_bytes(S, K, L, T) / 8 + 1));
  const GroupWork w = group_work_at(work.data(), S, K, L, T);
  GroupArgs g;
  g.cand_val = cval.data();
  g.cand_idx = cidx.data();
  g.cand_count = ccount.data();
  g.tags = tags;
  g.order = a.order;
  g.K = K;
  g.T = T;
  g.L = L;
  g.W = W;
  g.HW = HW;
  g.val_thr = a.val_thr;
  g.tag_thr = a.tag_thr;
  g.matching = a.matching;
  const int G = group_image(g, w);
  const int count = static_cast<int>(std::min<int64_t>(G, a.N));
  a.num[b] = count;
  if (count == 0) return;
  std::vector<float> mod;
  if (a.refine == kRefineDarkUdp) {
    mod.resize(static_cast<size_t>(K * HW));
    modulate_image(a, hm, mod.data());
  }
  std::vector<float> fill_tag(static_cast<size_t>(count) * L), scratch(static_cast<size_t>(K) * L);
  FinishArgs f;
  f.heatmaps = hm;
  f.modulated = mod.empty() ? nullptr : mod.data();
  f.tags = tags;
  f.K = K;
  f.L = L;
  f.H = H;
  f.W = W;
  f.refine = a.refine;
  f.center_shift = a.center_shift;
  f.fill_missing = a.fill_missing;
  f.N = a.N;
  f.keypoints = a.keypoints + b * a.N * K * 2;
  f.scores = a.scores + b * a.N * K;
  f.instance_scores = a.instance_scores + b * a.N;
  f.fill_tag = fill_tag.data();
  f.scratch = scratch.data();
  finish_instances(f, w.joints, count);
  if (!a.fill_missing) return;
  for (int n = 0; n < count; ++n)
    for (int k = 0; k < K; ++k)
      if (!(f.scores[static_cast<int64_t>(n) * K + k] > 0.0f)) {
#ifdef PYHPE_AE_SSE2
        fill_missing_sse2(f, n, k);
#else
        fill_missing_keypoint(f, n, k);
#endif
      }
}

}  // namespace

void ae_group_cpu(const AEArgs& a) {
  at::parallel_for(0, a.B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) group_one_image(a, b);
  });
}

}  // namespace ae
}  // namespace pyhpe
