#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "nms/nms.h"

namespace pyhpe {
namespace nms {

// A mask word costs up to 64 screened OKS pairs; images are independent sequential passes.
constexpr int64_t kWordGrain = 16;
constexpr int64_t kImageGrain = 1;

template <typename T>
void row_mean_cpu(const RowMeanArgs<T>& args) {
  at::parallel_for(0, args.N, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) row_mean_element(args, i);
  });
}

template <typename T>
void oks_nms_mask_cpu(const OksNmsMaskArgs<T>& args, int64_t total_words) {
  at::parallel_for(0, total_words, kWordGrain, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) oks_nms_mask_element(args, idx);
  });
}

void oks_nms_reduce_cpu(const OksNmsReduceArgs& args) {
  at::parallel_for(0, args.M, kImageGrain, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) oks_nms_reduce_image(args, m);
  });
}

// Images with at least this many poses compute each pick's row in parallel; smaller ones run
// whole, one image per task. A row is tens of microseconds below this, where one parallel
// region per pick costs more than it saves on a busy machine.
constexpr int64_t kParallelRowPoses = int64_t(1) << 15;
constexpr int64_t kRowGrain = int64_t(1) << 13;

int64_t image_size(const int64_t* offsets, int64_t m) { return offsets[m + 1] - offsets[m]; }

// Uniform grid over one image's keypoint boxes, each pose filed once, under the cell of its
// box's (x0, y0) corner. A box meets a rectangle only if its corner lies within the
// rectangle grown by the widest (tallest) box to the left (top), so a query scans that.
template <typename T>
class BoxGrid {
 public:
  // False (no grid) for non-finite boxes.
  bool build(const T* boxes, int64_t start, int64_t n) {
    double lo_x = INFINITY, lo_y = INFINITY, hi_x = -INFINITY, hi_y = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      const T* b = boxes + (start + i) * 4;
      for (int c = 0; c < 4; ++c)
        if (!std::isfinite(double(b[c]))) return false;
      lo_x = std::min(lo_x, double(b[0]));
      lo_y = std::min(lo_y, double(b[1]));
      hi_x = std::max(hi_x, double(b[0]));
      hi_y = std::max(hi_y, double(b[1]));
      max_w_ = std::max(max_w_, double(b[2]) - double(b[0]));
      max_h_ = std::max(max_h_, double(b[3]) - double(b[1]));
    }
    // About one pose per cell.
    cell_ = std::max({hi_x - lo_x, hi_y - lo_y, 1e-6}) / std::sqrt(double(n));
    x0_ = lo_x;
    y0_ = lo_y;
    nx_ = std::min<int64_t>(static_cast<int64_t>((hi_x - lo_x) / cell_) + 1, kMaxCellsPerSide);
    ny_ = std::min<int64_t>(static_cast<int64_t>((hi_y - lo_y) / cell_) + 1, kMaxCellsPerSide);
    starts_.assign(nx_ * ny_ + 1, 0);
    std::vector<int64_t> cell(n);
    for (int64_t i = 0; i < n; ++i) {
      const T* b = boxes + (start + i) * 4;
      cell[i] = cy(b[1]) * nx_ + cx(b[0]);
      ++starts_[cell[i] + 1];
    }
    for (int64_t c = 0; c < nx_ * ny_; ++c) starts_[c + 1] += starts_[c];
    std::vector<int64_t> fill(starts_.begin(), starts_.end() - 1);
    items_.resize(n);
    for (int64_t i = 0; i < n; ++i) items_[fill[cell[i]]++] = i;
    return true;
  }

  // Calls f(local index) once for each pose (a superset of those) whose box meets the
  // rectangle.
  template <class F>
  void query(double qx0, double qy0, double qx1, double qy1, F&& f) const {
    const int64_t cx0 = cx(qx0 - max_w_), cx1 = cx(qx1), cy0 = cy(qy0 - max_h_), cy1 = cy(qy1);
    for (int64_t y = cy0; y <= cy1; ++y)
      for (int64_t k = starts_[y * nx_ + cx0]; k < starts_[y * nx_ + cx1 + 1]; ++k) f(items_[k]);
  }

 private:
  static constexpr int64_t kMaxCellsPerSide = 4096;
  int64_t index(double v, double origin, int64_t cells) const {
    const double c = std::floor((v - origin) / cell_);
    if (!(c > 0.0)) return 0;
    return c >= double(cells - 1) ? cells - 1 : static_cast<int64_t>(c);
  }
  int64_t cx(double v) const { return index(v, x0_, nx_); }
  int64_t cy(double v) const { return index(v, y0_, ny_); }
  double x0_ = 0, y0_ = 0, cell_ = 1, max_w_ = 0, max_h_ = 0;
  int64_t nx_ = 0, ny_ = 0;
  std::vector<int64_t> starts_, items_;
};

// Images with at least this many poses run soft-NMS on an ordered set and a box grid.
constexpr int64_t kIndexedPoses = 48;
// A pick's candidates are rescored across threads from this many on (each costs up to one
// OKS; fewer do not pay for waking the pool).
constexpr int64_t kParallelCandidates = 256;

template <typename T>
struct ScoreKey {
  T s;
  int64_t id;
  bool operator<(const ScoreKey& o) const {
    if (ranks_before(s, o.s)) return true;
    if (ranks_before(o.s, s)) return false;
    return id < o.id;
  }
};

// soft_nms_image with the same result, for large images. After the first pick (a full sort),
// while no two remaining scores are equal the order is just the score order: the poses live
// in an ordered set, each pick rescores only the poses whose keypoint box lies within the
// reach of soft_identity_box (found on a grid; every other pose keeps its score exactly) and
// moves only the rescored ones. A pick that would create equal scores hands the list over
// to the array form (whose tie order it then follows) for the rest of the image.
template <typename T>
void soft_nms_image_indexed(const SoftNmsArgs<T>& a, int64_t m) {
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
  SoftNmsImage<T> st = soft_nms_begin(a, m);
  int64_t kept = 0;
  auto array_pick = [&] {
    soft_nms_keep(a, m, st, kept++);
    soft_nms_rescore(a, m, st, 0, st.len - 1);
    soft_nms_reorder(st);
  };
  auto finish_array = [&] {
    while (st.len > 0 && kept < a.max_dets) array_pick();
  };
  if (st.len > 0 && kept < a.max_dets) array_pick();
  bool indexable = a.boxes != nullptr && a.identity_box > 0.0;
  double max_area = 0.0;
  for (int64_t i = 0; i < n && indexable; ++i) {
    const double area = double(a.areas[start + i]);
    indexable = area >= 0.0 && std::isfinite(area);  // denom > 0 for the reach below
    max_area = std::max(max_area, area);
  }
  for (int64_t p = 1; p < st.len && indexable; ++p)
    indexable = !same_rank(st.cur_s[p - 1], st.cur_s[p]);
  BoxGrid<T> grid;
  if (!indexable || !grid.build(a.boxes, start, n)) return finish_array();

  std::set<ScoreKey<T>> order;
  std::vector<T> score(n), key_score(n);
  std::vector<char> alive(n, 0);
  std::vector<int64_t> moved(n, -1);
  for (int64_t p = 0; p < st.len; ++p) {
    const int64_t i = st.cur[p] - start;
    score[i] = key_score[i] = st.cur_s[p];
    alive[i] = 1;
    order.insert(order.end(), ScoreKey<T>{st.cur_s[p], st.cur[p]});
  }
  std::vector<int64_t> changed, candidates;
  std::vector<T> changed_s, rescored;
  for (int64_t pick = 0; !order.empty() && kept < a.max_dets; ++pick) {
    const int64_t gi = order.begin()->id;
    a.keep[start + kept] = gi;
    a.keep_flags[start + kept] = true;
    ++kept;
    order.erase(order.begin());
    alive[gi - start] = 0;
    if (kept == a.max_dets || order.empty()) break;
    // Beyond `reach` of the pick's box, box_rules_out(identity_box) holds for every pose.
    const double denom = (double(a.areas[gi]) + max_area) / 2.0 + oks::kAreaEps;
    const double reach = std::sqrt(a.identity_box * denom) * (1.0 + 1e-6) + 1e-9;
    const T* bg = a.boxes + gi * 4;
    changed.clear();
    changed_s.clear();
    candidates.clear();
    grid.query(double(bg[0]) - reach, double(bg[1]) - reach, double(bg[2]) + reach,
               double(bg[3]) + reach, [&](int64_t i) {
                 if (alive[i]) candidates.push_back(i);
               });
    // Each candidate's rescored score depends on the pick and itself only.
    const int64_t nc = static_cast<int64_t>(candidates.size());
    rescored.resize(nc);
    auto rescore = [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const int64_t i = candidates[c];
        rescored[c] = soft_rescored(a, m, gi, start + i, score[i]);
      }
    };
    if (nc >= kParallelCandidates) {
      at::parallel_for(0, nc, kParallelCandidates / 2, rescore);
    } else {
      rescore(0, nc);
    }
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t i = candidates[c];
      const T s = rescored[c];
      if (same_rank(s, score[i])) {
        score[i] = s;
        continue;
      }
      moved[i] = pick;
      changed.push_back(i);
      changed_s.push_back(s);
    }
    // Would any two remaining scores become equal?
    bool tie = false;
    for (size_t c = 0; c < changed.size() && !tie; ++c) {
      for (auto it = order.lower_bound(ScoreKey<T>{changed_s[c], INT64_MIN});
           it != order.end() && same_rank(it->s, changed_s[c]); ++it) {
        if (moved[it->id - start] != pick) {
          tie = true;
          break;
        }
      }
    }
    if (!tie && changed.size() > 1) {
      std::vector<T> sorted(changed_s);
      std::sort(sorted.begin(), sorted.end(), [](T x, T y) { return ranks_before(x, y); });
      for (size_t c = 1; c < sorted.size() && !tie; ++c) tie = same_rank(sorted[c - 1], sorted[c]);
    }
    if (tie) {
      // Hand over: the array form's reorder of this pick, from the order before it.
      st.len = 1 + static_cast<int64_t>(order.size());
      st.cur[0] = gi;
      int64_t p = 0;
      for (const auto& key : order) {
        const int64_t i = key.id - start;
        st.cur[1 + p] = key.id;
        st.cur_s[1 + p] = key.s;
        st.out_s[p] = score[i];
        ++p;
      }
      for (size_t c = 0; c < changed.size(); ++c) score[changed[c]] = changed_s[c];
      p = 0;
      for (const auto& key : order) st.out_s[p++] = score[key.id - start];
      st.sorted = true;
      soft_nms_reorder(st);
      return finish_array();
    }
    for (size_t c = 0; c < changed.size(); ++c) {
      const int64_t i = changed[c];
      order.erase(order.find(ScoreKey<T>{key_score[i], start + i}));
      order.insert(ScoreKey<T>{changed_s[c], start + i});
      score[i] = key_score[i] = changed_s[c];
    }
  }
}

template <typename T>
void soft_nms_cpu(const SoftNmsArgs<T>& args) {
  at::parallel_for(0, args.M, kImageGrain, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      if (image_size(args.offsets, m) >= kIndexedPoses) soft_nms_image_indexed(args, m);
      else soft_nms_image(args, m);
    }
  });
}

// The greedy pass of one image without the pairwise mask: each pick's deletions are
// computed only against the poses still remaining (what AlphaPose's loop evaluates), in
// parallel when `parallel`. Same picks, slots and owners as alpha_reduce_image over the
// full mask.
template <typename T>
void alpha_greedy_image(const AlphaMaskArgs<T>& a, const AlphaReduceArgs& r, int64_t m,
                        bool parallel) {
  const int64_t start = a.offsets[m], n = a.offsets[m + 1] - start;
  std::vector<int64_t> alive(n);
  for (int64_t p = 0; p < n; ++p) alive[p] = a.order[start + p];
  std::vector<char> deleted(n);
  int64_t count = 0;
  while (!alive.empty()) {
    const int64_t gi = alive[0];
    const int64_t len = static_cast<int64_t>(alive.size());
    auto rows = [&](int64_t begin, int64_t end) {
      for (int64_t q = begin; q < end; ++q)
        deleted[q] = alpha_pair_deletes(a, gi, alive[q], q == 0);
    };
    if (parallel) at::parallel_for(0, len, kRowGrain, rows);
    else rows(0, len);
    const int64_t slot = start + count++;
    r.picks[slot] = gi;
    int64_t kept = 0;
    for (int64_t q = 0; q < len; ++q) {
      if (deleted[q]) r.owner[alive[q]] = slot;
      else alive[kept++] = alive[q];
    }
    if (kept == len) {
      // An empty group: AlphaPose deletes the pick alone.
      r.owner[gi] = slot;
      alive.erase(alive.begin());
    } else if (!deleted[0]) {
      // The pick survived its own row: AlphaPose picks it again, and that row deletes nothing
      // new, so it becomes a second slot holding itself alone.
      const int64_t again = start + count++;
      r.picks[again] = gi;
      r.owner[gi] = again;
      alive.resize(kept);
      alive.erase(alive.begin());
    } else {
      alive.resize(kept);
    }
  }
  r.pick_counts[m] = count;
}

template <typename T>
void alpha_greedy_cpu(const AlphaMaskArgs<T>& a, const AlphaReduceArgs& r) {
  at::parallel_for(0, a.M, kImageGrain, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m)
      if (image_size(a.offsets, m) < kParallelRowPoses) alpha_greedy_image(a, r, m, false);
  });
  for (int64_t m = 0; m < a.M; ++m)
    if (image_size(a.offsets, m) >= kParallelRowPoses) alpha_greedy_image(a, r, m, true);
}

template <typename T>
void alpha_merge_cpu(const AlphaMergeArgs<T>& args, int64_t slots) {
  at::parallel_for(0, slots, 16, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) alpha_merge_element(args, s);
  });
}

#define PYHPE_NMS_INSTANTIATE(T)                                                 \
  template void row_mean_cpu<T>(const RowMeanArgs<T>&);                          \
  template void oks_nms_mask_cpu<T>(const OksNmsMaskArgs<T>&, int64_t);          \
  template void soft_nms_cpu<T>(const SoftNmsArgs<T>&);                          \
  template void alpha_greedy_cpu<T>(const AlphaMaskArgs<T>&, const AlphaReduceArgs&); \
  template void alpha_merge_cpu<T>(const AlphaMergeArgs<T>&, int64_t);
PYHPE_NMS_INSTANTIATE(float)
PYHPE_NMS_INSTANTIATE(double)
#undef PYHPE_NMS_INSTANTIATE

}  // namespace nms
}  // namespace pyhpe
