// CPU loops of the Associative Embedding grouping family: images in parallel, everything of
// one image (top-k, grouping, refinement, fill-missing) in one task, over ae_math.h.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "ae/ae.h"

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
      if (!(f.scores[static_cast<int64_t>(n) * K + k] > 0.0f)) fill_missing_keypoint(f, n, k);
}

}  // namespace

void ae_group_cpu(const AEArgs& a) {
  at::parallel_for(0, a.B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) group_one_image(a, b);
  });
}

}  // namespace ae
}  // namespace pyhpe
