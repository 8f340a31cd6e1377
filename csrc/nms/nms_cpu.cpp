#include <ATen/Parallel.h>

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

template <typename T>
void soft_nms_cpu(const SoftNmsArgs<T>& args) {
  at::parallel_for(0, args.M, kImageGrain, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m)
      if (image_size(args.offsets, m) < kParallelRowPoses) soft_nms_image(args, m);
  });
  for (int64_t m = 0; m < args.M; ++m) {
    if (image_size(args.offsets, m) < kParallelRowPoses) continue;
    SoftNmsImage<T> st = soft_nms_begin(args, m);
    for (int64_t kept = 0; st.len > 0 && kept < args.max_dets; ++kept) {
      soft_nms_keep(args, m, st, kept);
      at::parallel_for(0, st.len - 1, kRowGrain, [&](int64_t begin, int64_t end) {
        soft_nms_rescore(args, m, st, begin, end);
      });
      soft_nms_reorder(st);
    }
  }
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
      for (int64_t q = begin; q < end; ++q) deleted[q] = alpha_pair_deletes(a, gi, alive[q], q == 0);
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
