// Schemas and CPU/CUDA registration of the pose NMS family:
//   torch.ops.pyhpe.oks_nms, soft_oks_nms, pose_nms_alphapose.
// Image batching is ragged: image m owns rows image_offsets[m]..image_offsets[m+1].
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/amin.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/flip.h>
#include <ATen/ops/full.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/logical_or.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/mean.h>
#include <ATen/ops/nonzero.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "common/checks.h"
#include "common/cpu_features.h"
#include "common/not_differentiable.h"
#include "common/torch_utils.h"
#include "nms/nms.h"

namespace pyhpe {
namespace nms {
namespace {

void check_finite_option(const char* op, const char* name, double v) {
  TORCH_CHECK_VALUE(std::isfinite(v), op, ": '", name, "' must be finite, got ", v);
}

void check_thresholds(const char* op, double thr, const std::optional<double>& vis_thr) {
  check_finite_option(op, "thr", thr);
  if (vis_thr.has_value()) check_finite_option(op, "vis_thr", *vis_thr);
}

// Pairwise matrices per image (n^2 / 64 mask words for OKS-NMS and AlphaPose on the device,
// n^2 float32 OKS for soft-NMS on the device); beyond this many bytes the request is
// reported, naming the largest image, instead of reaching the allocator.
constexpr int64_t kMaxPairwiseBytes = int64_t(1) << 34;

void check_pairwise_bytes(const char* op, const char* what, int64_t bytes,
                          const std::vector<int64_t>& offsets) {
  if (bytes <= kMaxPairwiseBytes) return;
  int64_t largest = 0;
  for (size_t m = 1; m < offsets.size(); ++m)
    largest = std::max(largest, offsets[m] - offsets[m - 1]);
  TORCH_CHECK_VALUE(false, op, ": ", what, " needs ", bytes, " bytes (more than ",
                    kMaxPairwiseBytes, "; the largest image has ", largest,
                    " poses); split 'image_offsets' into smaller images");
}

at::TensorOptions long_on(const at::Tensor& like) {
  return at::TensorOptions().dtype(at::kLong).device(like.device());
}

at::Tensor to_device(const std::vector<int64_t>& v, const at::Tensor& like) {
  return at::tensor(v, at::TensorOptions().dtype(at::kLong)).to(like.device());
}

// Image segmentation of N rows: host copy (validated) and a device copy.
struct Segments {
  std::vector<int64_t> host;  // M + 1
  at::Tensor dev;             // M + 1, int64, on the data's device
  int64_t M() const { return static_cast<int64_t>(host.size()) - 1; }
};

Segments make_segments(const char* op, const std::optional<at::Tensor>& offsets_in, int64_t N,
                       const at::Tensor& like) {
  Segments s;
  if (!offsets_in.has_value()) {
    s.host = {0, N};
    s.dev = to_device(s.host, like);
    return s;
  }
  const at::Tensor& o = *offsets_in;
  checks::integral(op, o, "image_offsets");
  checks::same_device(op, o, "image_offsets", like, "keypoints");
  checks::dim(op, o, "image_offsets", 1, "(M + 1,)");
  TORCH_CHECK_VALUE(o.size(0) >= 1, op, ": 'image_offsets' must have M + 1 >= 1 entries, got ",
                    checks::describe(o));
  at::Tensor host = o.to(at::kLong).cpu().contiguous();
  const int64_t* p = host.data_ptr<int64_t>();
  s.host.assign(p, p + host.numel());
  TORCH_CHECK_VALUE(s.host[0] == 0, op, ": 'image_offsets' must start at 0, got ", s.host[0]);
  for (size_t m = 1; m < s.host.size(); ++m) {
    TORCH_CHECK_VALUE(s.host[m] >= s.host[m - 1], op,
                      ": 'image_offsets' must be non-decreasing (image ", m - 1, ")");
  }
  TORCH_CHECK_VALUE(s.host.back() == N, op, ": 'image_offsets[-1]' must equal the number of "
                    "poses N=", N, ", got ", s.host.back());
  s.dev = o.to(at::kLong).contiguous();
  return s;
}

// Image id of every row, on the data's device.
at::Tensor segment_ids(const Segments& s, int64_t N, const at::Tensor& like) {
  std::vector<int64_t> ids(N);
  for (int64_t m = 0; m < s.M(); ++m)
    for (int64_t r = s.host[m]; r < s.host[m + 1]; ++r) ids[r] = m;
  return to_device(ids, like);
}

// Per-image order by descending key. high_index_first: ties in descending row order, which is
// numpy's `argsort()[::-1]` over a stable sort (mmpose); otherwise ascending row order, the
// first-maximum rule of torch.argmax (AlphaPose).
at::Tensor segmented_order(const at::Tensor& key, const Segments& s, bool high_index_first) {
  const int64_t N = key.size(0);
  at::Tensor rows;
  if (high_index_first) {
    at::Tensor pos = std::get<1>(at::sort(at::flip(key, {0}), /*stable=*/true, 0, true));
    rows = pos.mul(-1).add(N - 1);
  } else {
    rows = std::get<1>(at::sort(key, /*stable=*/true, 0, true));
  }
  if (s.M() <= 1) return rows.contiguous();
  at::Tensor img = at::index_select(segment_ids(s, N, key), 0, rows);
  at::Tensor by_image = std::get<1>(at::sort(img, /*stable=*/true, 0, false));
  return at::index_select(rows, 0, by_image).contiguous();
}

// A caller-supplied order must be a permutation of each image's own rows.
at::Tensor check_order(const char* op, const at::Tensor& order, const Segments& s, int64_t N,
                       const at::Tensor& like) {
  TORCH_CHECK_TYPE(order.scalar_type() == at::kLong, op, ": 'order' must be int64, got ",
                   checks::describe(order));
  checks::same_device(op, order, "order", like, "keypoints");
  checks::dim(op, order, "order", 1, "(N,)");
  checks::size(op, order, "order", 0, N, "(N,)");
  at::Tensor host = order.cpu().contiguous();
  const int64_t* p = host.data_ptr<int64_t>();
  std::vector<char> seen(N, 0);
  for (int64_t m = 0; m < s.M(); ++m) {
    for (int64_t r = s.host[m]; r < s.host[m + 1]; ++r) {
      TORCH_CHECK_VALUE(p[r] >= s.host[m] && p[r] < s.host[m + 1] && !seen[p[r]], op,
                        ": 'order' must list each image's rows exactly once within the image "
                        "(position ", r, " holds ", p[r], ")");
      seen[p[r]] = 1;
    }
  }
  return order.contiguous();
}

void check_poses(const char* op, const at::Tensor& kpts, const at::Tensor& scores,
                 const at::Tensor& areas, const at::Tensor& sigmas) {
  checks::floating(op, kpts, "keypoints");
  checks::dim(op, kpts, "keypoints", 3, "(N, K, 3)");
  checks::size(op, kpts, "keypoints", 2, 3, "(N, K, 3)");
  const int64_t N = kpts.size(0), K = kpts.size(1);
  checks::same_dtype(op, scores, "scores", kpts, "keypoints");
  checks::same_device(op, scores, "scores", kpts, "keypoints");
  TORCH_CHECK_VALUE(scores.dim() == 1 || scores.dim() == 2, op,
                    ": 'scores' must have shape (N,) or, per joint, (N, K), got ",
                    checks::describe(scores));
  checks::size(op, scores, "scores", 0, N, "(N,) or (N, K)");
  if (scores.dim() == 2) checks::size(op, scores, "scores", 1, K, "(N, K)");
  checks::same_dtype(op, areas, "areas", kpts, "keypoints");
  checks::same_device(op, areas, "areas", kpts, "keypoints");
  checks::dim(op, areas, "areas", 1, "(N,)");
  checks::size(op, areas, "areas", 0, N, "(N,)");
  checks::floating(op, sigmas, "sigmas");
  checks::same_device(op, sigmas, "sigmas", kpts, "keypoints");
  checks::dim(op, sigmas, "sigmas", 1, "(K,)");
  checks::size(op, sigmas, "sigmas", 0, K, "(K,)");
}

// Per-pose score: the given one, or mmpose's per-joint mean (numpy summation order).
at::Tensor pose_scores(const at::Tensor& scores_in) {
  at::Tensor scores = scores_in.contiguous();
  if (scores.dim() == 1) return scores;
  at::Tensor out = at::empty({scores.size(0)}, scores.options());
  if (scores.size(0) == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "nms_row_mean", [&] {
    RowMeanArgs<scalar_t> a;
    a.values = scores.data_ptr<scalar_t>();
    a.N = scores.size(0);
    a.K = static_cast<int>(scores.size(1));
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(scores, row_mean, a);
  });
  return out;
}

// Entries whose flag is set, and how many per image.
std::tuple<at::Tensor, at::Tensor> compact(const at::Tensor& flags, const at::Tensor& values,
                                           const Segments& s) {
  const int64_t M = s.M();
  if (!flags.is_cuda()) {  // host: one pass, no tensor ops (small inputs are all overhead)
    const bool* f = flags.data_ptr<bool>();
    const at::Tensor v = values.contiguous();
    const int64_t* src = v.data_ptr<int64_t>();
    int64_t total = 0;
    for (int64_t i = 0; i < flags.numel(); ++i) total += f[i] ? 1 : 0;
    at::Tensor kept = at::empty({total}, long_on(flags));
    at::Tensor counts = at::empty({M}, long_on(flags));
    int64_t* out = kept.data_ptr<int64_t>();
    int64_t* cnt = counts.data_ptr<int64_t>();
    int64_t n = 0;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t start = n;
      for (int64_t i = s.host[m]; i < s.host[m + 1]; ++i)
        if (f[i]) out[n++] = src[i];
      cnt[m] = n - start;
    }
    return {kept, counts};
  }
  at::Tensor pos = at::nonzero(flags).squeeze(1);
  at::Tensor kept = at::index_select(values, 0, pos);
  at::Tensor csum = at::cat({at::zeros({1}, long_on(flags)), at::cumsum(flags, 0, at::kLong)});
  at::Tensor ends = at::index_select(csum, 0, s.dev.slice(0, 1, M + 1));
  at::Tensor begins = at::index_select(csum, 0, s.dev.slice(0, 0, M));
  return {kept, ends.sub(begins)};
}

// Word offsets of the per-image suppression masks (n_m rows of words_for(n_m) words).
std::vector<int64_t> mask_offsets_of(const Segments& s) {
  std::vector<int64_t> off(s.M() + 1, 0);
  for (int64_t m = 0; m < s.M(); ++m) {
    const int64_t n = s.host[m + 1] - s.host[m];
    off[m + 1] = off[m] + n * words_for(n);
  }
  return off;
}

// Keypoint boxes (x0, y0, x1, y1) over all K keypoints and max_k (2 sigma_k)^2, for the
// O(1) pair pre-checks.
at::Tensor keypoint_boxes(const at::Tensor& kpts) {
  if (!kpts.is_cuda()) {  // host: one pass over the (contiguous) keypoints
    const int64_t N = kpts.size(0), K = kpts.size(1);
    at::Tensor out = at::empty({N, 4}, kpts.options());
    AT_DISPATCH_FLOATING_TYPES(kpts.scalar_type(), "keypoint_boxes", [&] {
      const scalar_t* p = kpts.data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      for (int64_t i = 0; i < N; ++i, p += 3 * K, o += 4) {
        scalar_t x0 = p[0], y0 = p[1], x1 = p[0], y1 = p[1];
        for (int64_t k = 1; k < K; ++k) {  // a NaN sticks, as in amin / amax
          const scalar_t x = p[3 * k], y = p[3 * k + 1];
          x0 = (x < x0 || x != x) ? x : x0;
          x1 = (x > x1 || x != x) ? x : x1;
          y0 = (y < y0 || y != y) ? y : y0;
          y1 = (y > y1 || y != y) ? y : y1;
        }
        o[0] = x0, o[1] = y0, o[2] = x1, o[3] = y1;
      }
    });
    return out;
  }
  at::Tensor xy = kpts.slice(2, 0, 2);
  return at::cat({at::amin(xy, {1}), at::amax(xy, {1})}, 1).contiguous();
}

double max_variance(const at::Tensor& sigmas) {
  at::Tensor sig = sigmas.to(at::kDouble).cpu().contiguous();
  double max_var = 0.0;
  for (int64_t k = 0; k < sig.numel(); ++k) {
    const double v = 4.0 * sig.data_ptr<double>()[k] * sig.data_ptr<double>()[k];
    max_var = v > max_var ? v : max_var;
  }
  return max_var;
}

// Validated, contiguous inputs shared by oks_nms and soft_oks_nms: per-image segments and
// the score order (given, or highest score first within each image; `scores` is only
// filled in that case).
struct PoseInputs {
  int64_t N = 0;
  Segments seg;
  at::Tensor kpts, areas, sigmas, scores, order;

  std::tuple<at::Tensor, at::Tensor> empty_result() const {
    return {at::empty({0}, long_on(kpts)), at::zeros({seg.M()}, long_on(kpts))};
  }
};

PoseInputs prepare_poses(const char* op, const at::Tensor& kpts_in, const at::Tensor& scores_in,
                         const at::Tensor& areas_in, const at::Tensor& sigmas_in,
                         const std::optional<at::Tensor>& image_offsets,
                         const std::optional<at::Tensor>& order_in) {
  check_poses(op, kpts_in, scores_in, areas_in, sigmas_in);
  require_cuda_build(op, kpts_in);
  PoseInputs in;
  in.N = kpts_in.size(0);
  in.seg = make_segments(op, image_offsets, in.N, kpts_in);
  if (order_in.has_value()) in.order = check_order(op, *order_in, in.seg, in.N, kpts_in);
  if (in.N == 0) {
    in.kpts = kpts_in;
    return in;
  }
  // mmpose's sigmas are float64 whatever the pose dtype.
  in.kpts = kpts_in.contiguous();
  in.areas = areas_in.contiguous();
  in.sigmas = sigmas_in.to(at::kDouble).contiguous();
  if (!in.order.defined()) {
    in.scores = pose_scores(scores_in);
    in.order = segmented_order(in.scores, in.seg, true);
  }
  return in;
}

std::tuple<at::Tensor, at::Tensor> oks_nms(const at::Tensor& kpts_in, const at::Tensor& scores_in,
                                           const at::Tensor& areas_in, const at::Tensor& sigmas_in,
                                           double thr, std::optional<double> vis_thr,
                                           const std::optional<at::Tensor>& image_offsets,
                                           const std::optional<at::Tensor>& order_in) {
  const char* op = "pyhpe.oks_nms";
  check_thresholds(op, thr, vis_thr);
  PoseInputs in = prepare_poses(op, kpts_in, scores_in, areas_in, sigmas_in, image_offsets,
                                order_in);
  const int64_t N = in.N;
  const Segments& seg = in.seg;
  if (N == 0) return in.empty_result();
  at::Tensor kpts = in.kpts, areas = in.areas, sigmas = in.sigmas, order = in.order;
  const std::vector<int64_t> mask_off = mask_offsets_of(seg);
  const int64_t total_words = mask_off.back();
  check_pairwise_bytes(op, "the suppression mask", total_words * int64_t(sizeof(uint64_t)),
                       seg.host);
  at::Tensor mask_offsets = to_device(mask_off, kpts);
  at::Tensor mask = at::empty({total_words}, at::TensorOptions().dtype(at::kUInt64).device(kpts.device()));
  at::Tensor flags = at::zeros({N}, at::TensorOptions().dtype(at::kBool).device(kpts.device()));
  // Keypoint boxes for the O(1) pre-check (only sound for thr above its 1e-3 margin).
  const double r = 1.0 - thr + 1e-3;
  double box_skip = 0.0;
  at::Tensor boxes;
  if (r > 0.0 && r < 1.0 && kpts.size(1) > 0) {
    boxes = keypoint_boxes(kpts);
    box_skip = r / (1.0 - r) * max_variance(sigmas) * 2.0;
  }
  AT_DISPATCH_FLOATING_TYPES(kpts.scalar_type(), "oks_nms", [&] {
    OksNmsMaskArgs<scalar_t> a;
    a.kpts = kpts.data_ptr<scalar_t>();
    a.areas = areas.data_ptr<scalar_t>();
    a.sigmas = sigmas.data_ptr<double>();
    a.order = order.data_ptr<int64_t>();
    a.offsets = seg.dev.data_ptr<int64_t>();
    a.mask_offsets = mask_offsets.data_ptr<int64_t>();
    a.boxes = boxes.defined() ? boxes.data_ptr<scalar_t>() : nullptr;
    a.box_skip = box_skip;
    a.M = seg.M();
    a.K = static_cast<int>(kpts.size(1));
    a.has_vis_thr = vis_thr.has_value();
    a.vis_thr = static_cast<scalar_t>(vis_thr.value_or(0.0));
    a.thr = static_cast<float>(thr);
    a.exp_path = cpu::numpy_exp_path();
    a.mask = mask.data_ptr<uint64_t>();
    OksNmsReduceArgs r;
    r.mask = a.mask;
    r.offsets = a.offsets;
    r.mask_offsets = a.mask_offsets;
    r.M = a.M;
    r.keep_flags = flags.data_ptr<bool>();
#ifdef PYHPE_WITH_CUDA
    if (kpts.is_cuda()) {
      c10::cuda::CUDAGuard guard(kpts.device());
      oks_nms_mask_cuda<scalar_t>(a, total_words, cuda_stream_of(kpts));
      oks_nms_reduce_cuda(r, cuda_stream_of(kpts));
      return;
    }
#endif
    oks_nms_mask_cpu<scalar_t>(a, total_words);
    oks_nms_reduce_cpu(r);
  });
  return compact(flags, order, seg);
}

int parse_soft_method(const char* op, c10::string_view method) {
  if (method == "gaussian") return kSoftGaussian;
  if (method == "linear") return kSoftLinear;
  TORCH_CHECK_VALUE(false, op, ": 'method' must be 'gaussian' or 'linear', got '",
                    std::string(method), "'");
}

std::tuple<at::Tensor, at::Tensor> soft_oks_nms(
    const at::Tensor& kpts_in, const at::Tensor& scores_in, const at::Tensor& areas_in,
    const at::Tensor& sigmas_in, double thr, int64_t max_dets, c10::string_view method_str,
    std::optional<double> vis_thr, const std::optional<at::Tensor>& image_offsets,
    const std::optional<at::Tensor>& order_in) {
  const char* op = "pyhpe.soft_oks_nms";
  const int method = parse_soft_method(op, method_str);
  TORCH_CHECK_VALUE(max_dets >= 0, op, ": 'max_dets' must be >= 0, got ", max_dets);
  check_thresholds(op, thr, vis_thr);
  TORCH_CHECK_VALUE(method != kSoftGaussian || thr > 0.0, op,
                    ": 'thr' must be > 0 for method='gaussian' (exp(-o^2 / thr)), got ", thr);
  PoseInputs in = prepare_poses(op, kpts_in, scores_in, areas_in, sigmas_in, image_offsets,
                                order_in);
  const int64_t N = in.N;
  const Segments& seg = in.seg;
  if (N == 0) return in.empty_result();
  at::Tensor kpts = in.kpts, areas = in.areas, sigmas = in.sigmas, order = in.order;
  at::Tensor scores = in.scores.defined() ? in.scores : pose_scores(scores_in);
  at::Tensor work = at::empty({kSoftScratch * N}, long_on(kpts));
  at::Tensor work_scores = at::empty({kSoftScratch * N}, kpts.options());
  at::Tensor keep = at::zeros({N}, long_on(kpts));
  at::Tensor flags = at::zeros({N}, at::TensorOptions().dtype(at::kBool).device(kpts.device()));
  at::Tensor boxes = kpts.size(1) > 0 ? keypoint_boxes(kpts) : at::Tensor();
  const double max_var = max_variance(sigmas);
  AT_DISPATCH_FLOATING_TYPES(kpts.scalar_type(), "soft_oks_nms", [&] {
    SoftNmsArgs<scalar_t> a;
    a.kpts = kpts.data_ptr<scalar_t>();
    a.scores = scores.data_ptr<scalar_t>();
    a.areas = areas.data_ptr<scalar_t>();
    a.sigmas = sigmas.data_ptr<double>();
    a.order = order.data_ptr<int64_t>();
    a.offsets = seg.dev.data_ptr<int64_t>();
    a.boxes = boxes.defined() ? boxes.data_ptr<scalar_t>() : nullptr;
    a.max_var = max_var;
    a.identity_box =
        a.boxes != nullptr ? soft_identity_box(static_cast<float>(thr), method, max_var) : 0.0;
    a.identity_limit = soft_identity_limit(static_cast<float>(thr), method);
    a.M = seg.M();
    a.K = static_cast<int>(kpts.size(1));
    a.has_vis_thr = vis_thr.has_value();
    a.vis_thr = static_cast<scalar_t>(vis_thr.value_or(0.0));
    a.thr = static_cast<float>(thr);
    a.method = method;
    a.exp_path = cpu::numpy_exp_path();
    a.max_dets = max_dets;
    a.work = work.data_ptr<int64_t>();
    a.work_scores = work_scores.data_ptr<scalar_t>();
    a.keep = keep.data_ptr<int64_t>();
    a.keep_flags = flags.data_ptr<bool>();
#ifdef PYHPE_WITH_CUDA
    if (kpts.is_cuda()) {
      c10::cuda::CUDAGuard guard(kpts.device());
      // One block per image: its threads compute the pick's OKS row on the fly (no pairwise
      // matrix), so memory stays O(N) whatever the image's size.
      soft_nms_cuda<scalar_t>(a, cuda_stream_of(kpts));
      return;
    }
#endif
    soft_nms_cpu<scalar_t>(a);
  });
  return compact(flags, keep, seg);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pose_nms_alphapose(
    const at::Tensor& bboxes_in, const at::Tensor& preds_in, const at::Tensor& scores_in,
    const std::optional<at::Tensor>& image_offsets, double delta1, double mu, double delta2,
    double gamma, double score_thr, double match_thr, double alpha, double area_thr) {
  const char* op = "pyhpe.pose_nms_alphapose";
  checks::floating(op, preds_in, "pose_preds");
  checks::dim(op, preds_in, "pose_preds", 3, "(N, K, 2)");
  checks::size(op, preds_in, "pose_preds", 2, 2, "(N, K, 2)");
  const int64_t N = preds_in.size(0), K = preds_in.size(1);
  checks::same_dtype(op, scores_in, "pose_scores", preds_in, "pose_preds");
  checks::same_device(op, scores_in, "pose_scores", preds_in, "pose_preds");
  checks::dim(op, scores_in, "pose_scores", 2, "(N, K)");
  checks::size(op, scores_in, "pose_scores", 0, N, "(N, K)");
  checks::size(op, scores_in, "pose_scores", 1, K, "(N, K)");
  checks::same_dtype(op, bboxes_in, "bboxes", preds_in, "pose_preds");
  checks::same_device(op, bboxes_in, "bboxes", preds_in, "pose_preds");
  checks::dim(op, bboxes_in, "bboxes", 2, "(N, 4)");
  checks::size(op, bboxes_in, "bboxes", 0, N, "(N, 4)");
  checks::size(op, bboxes_in, "bboxes", 1, 4, "(N, 4)");
  TORCH_CHECK_VALUE(K >= 1 || N == 0, op, ": 'pose_preds' needs at least one keypoint, got ",
                    checks::describe(preds_in));
  for (const auto& [name, value] : {std::pair<const char*, double>{"delta1", delta1},
                                    {"mu", mu}, {"delta2", delta2}, {"gamma", gamma},
                                    {"score_thr", score_thr}, {"match_thr", match_thr},
                                    {"alpha", alpha}, {"area_thr", area_thr}})
    check_finite_option(op, name, value);
  TORCH_CHECK_VALUE(delta1 > 0.0, op, ": 'delta1' must be > 0, got ", delta1);
  TORCH_CHECK_VALUE(delta2 > 0.0, op, ": 'delta2' must be > 0, got ", delta2);
  // A negative reference distance would make every keypoint a PCK match and every merge
  // weight 0 / 0.
  TORCH_CHECK_VALUE(alpha >= 0.0, op, ": 'alpha' must be >= 0 (ref_dist = alpha * max(w, h)), got ",
                    alpha);
  require_cuda_build(op, preds_in);
  if (N > 0) {
    const bool inverted = at::logical_or(bboxes_in.select(1, 2).lt(bboxes_in.select(1, 0)),
                                         bboxes_in.select(1, 3).lt(bboxes_in.select(1, 1)))
                              .any()
                              .item<bool>();
    TORCH_CHECK_VALUE(!inverted, op, ": 'bboxes' must be (x0, y0, x1, y1) with x1 >= x0 and "
                      "y1 >= y0, got an inverted box");
  }
  Segments seg = make_segments(op, image_offsets, N, preds_in);
  const auto long_opts = long_on(preds_in);
  if (N == 0) {
    return {preds_in.new_empty({0, K, 2}), scores_in.new_empty({0, K}), at::empty({0}, long_opts),
            at::zeros({seg.M()}, long_opts)};
  }
  at::Tensor preds = preds_in.contiguous();
  // AlphaPose: pose_scores[pose_scores == 0] = 1e-5 before anything else.
  at::Tensor scores = at::where(scores_in.eq(0), 1e-5, scores_in).contiguous();
  // AlphaPose's pose_scores.mean(dim=1), always with the CPU's reduction order, so that near
  // ties order the picks the same on either device.
  at::Tensor human = at::mean(scores.cpu(), {1}).to(scores.device());
  at::Tensor order = segmented_order(human, seg, false);
  at::Tensor widths = bboxes_in.select(1, 2).sub(bboxes_in.select(1, 0));
  at::Tensor heights = bboxes_in.select(1, 3).sub(bboxes_in.select(1, 1));
  at::Tensor ref_dists = at::maximum(widths, heights).mul(alpha).contiguous();
  at::Tensor boxes = at::cat({at::amin(preds, {1}), at::amax(preds, {1})}, 1).contiguous();
  const std::vector<int64_t> mask_off = mask_offsets_of(seg);
  const int64_t total_words = mask_off.back();
  if (preds.is_cuda())
    check_pairwise_bytes(op, "the device's suppression mask (use the CPU)",
                         total_words * int64_t(sizeof(uint64_t)), seg.host);
  std::vector<int64_t> removed_off(seg.M() + 1, 0);
  for (int64_t m = 0; m < seg.M(); ++m)
    removed_off[m + 1] = removed_off[m] + words_for(seg.host[m + 1] - seg.host[m]);
  at::Tensor mask_offsets = to_device(mask_off, preds);
  at::Tensor removed_offsets = to_device(removed_off, preds);
  const auto u64 = at::TensorOptions().dtype(at::kUInt64).device(preds.device());
  // The pairwise mask is the device's form; the CPU computes only the rows of its picks.
  at::Tensor mask = at::empty({preds.is_cuda() ? total_words : 0}, u64);
  at::Tensor removed = at::empty({preds.is_cuda() ? removed_off.back() : 0}, u64);
  at::Tensor picks = at::zeros({N}, long_opts);
  at::Tensor owner = at::full({N}, -1, long_opts);
  at::Tensor pick_counts = at::zeros({seg.M()}, long_opts);
  at::Tensor out_preds = at::zeros({N, K, 2}, preds.options());
  at::Tensor out_scores = at::zeros({N, K}, preds.options());
  at::Tensor valid = at::zeros({N}, at::TensorOptions().dtype(at::kBool).device(preds.device()));
  AlphaPoseParams prm{delta1, mu, delta2, gamma, score_thr, match_thr, area_thr};
  prm.spare_gap = alphapose_spare_gap(prm, static_cast<int>(K));
  AT_DISPATCH_FLOATING_TYPES(preds.scalar_type(), "pose_nms_alphapose", [&] {
    AlphaMaskArgs<scalar_t> a;
    a.preds = preds.data_ptr<scalar_t>();
    a.scores = scores.data_ptr<scalar_t>();
    a.ref_dists = ref_dists.data_ptr<scalar_t>();
    a.order = order.data_ptr<int64_t>();
    a.offsets = seg.dev.data_ptr<int64_t>();
    a.mask_offsets = mask_offsets.data_ptr<int64_t>();
    a.boxes = boxes.data_ptr<scalar_t>();
    a.M = seg.M();
    a.K = static_cast<int>(K);
    a.prm = prm;
    a.mask = mask.data_ptr<uint64_t>();
    AlphaReduceArgs r;
    r.mask = a.mask;
    r.order = a.order;
    r.offsets = a.offsets;
    r.mask_offsets = a.mask_offsets;
    r.M = a.M;
    r.removed = removed.data_ptr<uint64_t>();
    r.removed_offsets = removed_offsets.data_ptr<int64_t>();
    r.picks = picks.data_ptr<int64_t>();
    r.owner = owner.data_ptr<int64_t>();
    r.pick_counts = pick_counts.data_ptr<int64_t>();
#ifdef PYHPE_WITH_CUDA
    if (preds.is_cuda()) {
      c10::cuda::CUDAGuard guard(preds.device());
      void* stream = cuda_stream_of(preds);
      alpha_mask_cuda<scalar_t>(a, total_words, stream);
      alpha_reduce_cuda(r, stream);
      return;
    }
#endif
    alpha_greedy_cpu<scalar_t>(a, r);
  });
  // Every row ends in the group of exactly one pick slot: group the rows by slot (ascending
  // rows within a slot, the merge's summation order) so that each merge reads its own rows.
  at::Tensor members = std::get<1>(at::sort(owner, /*stable=*/true, 0, false)).contiguous();
  // member_offsets[s] = rows whose owner is < s.
  at::Tensor member_offsets = at::cumsum(at::bincount(owner.add(1), {}, N + 1), 0).contiguous();
  AT_DISPATCH_FLOATING_TYPES(preds.scalar_type(), "pose_nms_alphapose_merge", [&] {
    AlphaMergeArgs<scalar_t> g;
    g.preds = preds.data_ptr<scalar_t>();
    g.scores = scores.data_ptr<scalar_t>();
    g.ref_dists = ref_dists.data_ptr<scalar_t>();
    g.offsets = seg.dev.data_ptr<int64_t>();
    g.picks = picks.data_ptr<int64_t>();
    g.pick_counts = pick_counts.data_ptr<int64_t>();
    g.members = members.data_ptr<int64_t>();
    g.member_offsets = member_offsets.data_ptr<int64_t>();
    g.M = seg.M();
    g.K = static_cast<int>(K);
    g.prm = prm;
    g.out_preds = out_preds.data_ptr<scalar_t>();
    g.out_scores = out_scores.data_ptr<scalar_t>();
    g.valid = valid.data_ptr<bool>();
    PYHPE_LAUNCH(preds, alpha_merge, g, N);
  });
  at::Tensor pos = at::nonzero(valid).squeeze(1);
  auto [indices, counts] = compact(valid, picks, seg);
  return {at::index_select(out_preds, 0, pos), at::index_select(out_scores, 0, pos), indices,
          counts};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pyhpe, m) {
  m.def(
      "oks_nms(Tensor keypoints, Tensor scores, Tensor areas, Tensor sigmas, float thr=0.9, "
      "float? vis_thr=None, Tensor? image_offsets=None, Tensor? order=None) -> (Tensor, Tensor)");
  m.def(
      "soft_oks_nms(Tensor keypoints, Tensor scores, Tensor areas, Tensor sigmas, float thr=0.3, "
      "int max_dets=20, str method='gaussian', float? vis_thr=None, Tensor? image_offsets=None, "
      "Tensor? order=None) -> (Tensor, Tensor)");
  m.def(
      "pose_nms_alphapose(Tensor bboxes, Tensor pose_preds, Tensor pose_scores, "
      "Tensor? image_offsets=None, float delta1=1.0, float mu=1.7, float delta2=2.65, "
      "float gamma=22.48, float score_thr=0.3, float match_thr=5.0, float alpha=0.1, "
      "float area_thr=0.0) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pyhpe, CPU, m) {
  m.impl("oks_nms", &oks_nms);
  m.impl("soft_oks_nms", &soft_oks_nms);
  m.impl("pose_nms_alphapose", &pose_nms_alphapose);
}

#ifdef PYHPE_WITH_CUDA
TORCH_LIBRARY_IMPL(pyhpe, CUDA, m) {
  m.impl("oks_nms", &oks_nms);
  m.impl("soft_oks_nms", &soft_oks_nms);
  m.impl("pose_nms_alphapose", &pose_nms_alphapose);
}
#endif

// None of these ops is differentiable: an input that requires grad is refused.
TORCH_LIBRARY_IMPL(pyhpe, Autograd, m) {
  for (const char* name : {"oks_nms", "soft_oks_nms", "pose_nms_alphapose"})
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<
                   &autograd_guard::not_differentiable_kernel>());
}

}  // namespace nms
}  // namespace pyhpe
