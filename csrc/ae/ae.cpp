// Schema and CPU/CUDA registration of the Associative Embedding grouping family
// (torch.ops.pyhpe.ae_group).
#include <ATen/core/Tensor.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <climits>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "ae/ae.h"
#include "common/checks.h"
#include "common/not_differentiable.h"
#include "common/torch_utils.h"

namespace pyhpe {
namespace ae {
namespace {

constexpr int64_t kMaxOutputElements = (int64_t(1) << 31) - 1;
constexpr int64_t kMaxTagDims = 64;
constexpr int64_t kMaxNmsKernel = 255;

// OpenCV getGaussianKernel(ksize, 0, CV_32F) as cv2.GaussianBlur builds it for float32 maps:
// fixed tables up to 7, else sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8, normalized in double.
void opencv_gaussian_kernel(int ksize, float* out) {
  static const float kSmall[4][7] = {
      {1.f},
      {0.25f, 0.5f, 0.25f},
      {0.0625f, 0.25f, 0.375f, 0.25f, 0.0625f},
      {0.03125f, 0.109375f, 0.21875f, 0.28125f, 0.21875f, 0.109375f, 0.03125f}};
  const float* fixed = ksize <= 7 ? kSmall[ksize >> 1] : nullptr;
  const double sigma = ((ksize - 1) * 0.5 - 1) * 0.3 + 0.8;
  const double scale2 = -0.5 / (sigma * sigma);
  double sum = 0.0;
  for (int i = 0; i < ksize; ++i) {
    const double x = i - (ksize - 1) * 0.5;
    out[i] = static_cast<float>(fixed ? static_cast<double>(fixed[i]) : std::exp(scale2 * x * x));
    sum += static_cast<double>(out[i]);
  }
  sum = 1.0 / sum;
  for (int i = 0; i < ksize; ++i) out[i] = static_cast<float>(static_cast<double>(out[i]) * sum);
}

void check_finite_option(const char* op, const char* name, double v) {
  TORCH_CHECK_VALUE(std::isfinite(v), op, ": '", name, "' must be finite, got ", v);
}

void check_finite_tensor(const char* op, const at::Tensor& t, const char* name) {
  if (t.numel() == 0) return;
  TORCH_CHECK_VALUE(at::isfinite(t).all().item<bool>(), op, ": '", name,
                    "' contains NaN or infinite values");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ae_group_op(
    const at::Tensor& heatmaps_in, const at::Tensor& tags_in, at::IntArrayRef keypoint_order,
    int64_t topk, int64_t nms_kernel, double keypoint_threshold, double tag_threshold,
    std::optional<int64_t> max_instances, c10::string_view matching, c10::string_view refine,
    int64_t blur_kernel, double center_shift, bool fill_missing) {
  const char* op = "pyhpe.ae_group";
  checks::floating(op, heatmaps_in, "heatmaps");
  checks::floating(op, tags_in, "tags");
  checks::dim(op, heatmaps_in, "heatmaps", 4, "(B, K, H, W)");
  checks::dim(op, tags_in, "tags", 4, "(B, K*L, H, W)");
  checks::same_device(op, tags_in, "tags", heatmaps_in, "heatmaps");
  require_cuda_build(op, heatmaps_in);
  const int64_t B = heatmaps_in.size(0), K = heatmaps_in.size(1), H = heatmaps_in.size(2),
                W = heatmaps_in.size(3);
  TORCH_CHECK_VALUE(tags_in.size(0) == B && tags_in.size(2) == H && tags_in.size(3) == W &&
                        (K > 0 ? tags_in.size(1) % K == 0 && tags_in.size(1) > 0
                               : tags_in.size(1) == 0),
                    op, ": 'tags' must have shape (B, K*L, H, W) with L >= 1 for 'heatmaps' ",
                    checks::describe(heatmaps_in), ", got ", checks::describe(tags_in));
  const int64_t L = K > 0 ? tags_in.size(1) / K : 1;
  TORCH_CHECK_VALUE(L <= kMaxTagDims, op, ": 'tags' has L = ", L,
                    " tag dimensions per keypoint; at most ", kMaxTagDims, " are supported");
  TORCH_CHECK_VALUE(H <= INT_MAX && W <= INT_MAX && K <= INT_MAX, op,
                    ": 'heatmaps' is too large: ", checks::describe(heatmaps_in));
  TORCH_CHECK_VALUE(topk >= 1 && topk <= H * W, op, ": 'topk' must lie in [1, H*W = ", H * W,
                    "], got ", topk);
  TORCH_CHECK_VALUE(K * topk <= kMaxCandidates, op, ": K * topk = ", K, " * ", topk, " = ",
                    K * topk, " exceeds ", kMaxCandidates, " candidates per image; lower 'topk'");
  TORCH_CHECK_VALUE(nms_kernel >= 1 && nms_kernel % 2 == 1 && nms_kernel <= kMaxNmsKernel, op,
                    ": 'nms_kernel' must be an odd integer in [1, ", kMaxNmsKernel, "], got ",
                    nms_kernel);
  TORCH_CHECK_VALUE(blur_kernel >= 3 && blur_kernel % 2 == 1 && blur_kernel <= decode::kMaxKernel,
                    op, ": 'blur_kernel' must be an odd integer in [3, ", decode::kMaxKernel,
                    "], got ", blur_kernel);
  check_finite_option(op, "keypoint_threshold", keypoint_threshold);
  check_finite_option(op, "tag_threshold", tag_threshold);
  check_finite_option(op, "center_shift", center_shift);
  int match_mode;
  if (matching == "hungarian") match_mode = kMatchHungarian;
  else if (matching == "greedy") match_mode = kMatchGreedy;
  else
    TORCH_CHECK_VALUE(false, op, ": 'matching' must be 'hungarian' or 'greedy', got '",
                      std::string(matching), "'");
  int refine_mode;
  if (refine == "none") refine_mode = kRefineNone;
  else if (refine == "quarter") refine_mode = kRefineQuarter;
  else if (refine == "dark_udp") refine_mode = kRefineDarkUdp;
  else
    TORCH_CHECK_VALUE(false, op, ": 'refine' must be 'none', 'quarter' or 'dark_udp', got '",
                      std::string(refine), "'");
  std::vector<int32_t> order(static_cast<size_t>(K));
  if (keypoint_order.empty()) {
    for (int64_t k = 0; k < K; ++k) order[k] = static_cast<int32_t>(k);
  } else {
    TORCH_CHECK_VALUE(static_cast<int64_t>(keypoint_order.size()) == K, op,
                      ": 'keypoint_order' must be a permutation of range(K=", K, "), got ",
                      keypoint_order);
    std::vector<bool> seen(static_cast<size_t>(K), false);
    for (int64_t i = 0; i < K; ++i) {
      const int64_t v = keypoint_order[i];
      TORCH_CHECK_VALUE(0 <= v && v < K && !seen[v], op,
                        ": 'keypoint_order' must be a permutation of range(K=", K, "), got ",
                        keypoint_order);
      seen[v] = true;
      order[i] = static_cast<int32_t>(v);
    }
  }
  int64_t N = K * topk;
  if (max_instances.has_value()) {
    TORCH_CHECK_VALUE(*max_instances >= 0, op, ": 'max_instances' must be >= 0 or None, got ",
                      *max_instances);
    N = *max_instances;
  }
  TORCH_CHECK_VALUE(N <= INT_MAX && (B == 0 || K == 0 || N <= kMaxOutputElements / (B * K * 2)),
                    op, ": the output (B, N, K, 2) = (", B, ", ", N, ", ", K,
                    ", 2) is too large; lower 'max_instances'");
  check_finite_tensor(op, heatmaps_in, "heatmaps");
  check_finite_tensor(op, tags_in, "tags");

  const at::Tensor heatmaps = heatmaps_in.to(at::kFloat).contiguous();
  const at::Tensor tags = tags_in.to(at::kFloat).contiguous();
  const auto fopt = heatmaps.options().dtype(at::kFloat);
  at::Tensor keypoints = at::zeros({B, N, K, 2}, fopt);
  at::Tensor scores = at::zeros({B, N, K}, fopt);
  at::Tensor instance_scores = at::zeros({B, N}, fopt);
  at::Tensor num = at::zeros({B}, heatmaps.options().dtype(at::kLong));
  if (B == 0 || K == 0 || H * W == 0) return {keypoints, scores, instance_scores, num};

  AEArgs a;
  a.heatmaps = heatmaps.data_ptr<float>();
  a.tags = tags.data_ptr<float>();
  a.order = order.data();
  a.B = B;
  a.K = static_cast<int>(K);
  a.L = static_cast<int>(L);
  a.H = static_cast<int>(H);
  a.W = static_cast<int>(W);
  a.T = static_cast<int>(topk);
  a.nms_radius = static_cast<int>((nms_kernel - 1) / 2);
  a.val_thr = keypoint_threshold;
  a.tag_thr = tag_threshold;
  a.N = N;
  a.matching = match_mode;
  a.refine = refine_mode;
  for (int i = 0; i < decode::kMaxKernel; ++i) a.blur_w[i] = 0.0f;
  opencv_gaussian_kernel(static_cast<int>(blur_kernel), a.blur_w);
  a.blur_r = static_cast<int>((blur_kernel - 1) / 2);
  a.center_shift = static_cast<float>(center_shift);
  a.fill_missing = fill_missing;
  a.keypoints = keypoints.data_ptr<float>();
  a.scores = scores.data_ptr<float>();
  a.instance_scores = instance_scores.data_ptr<float>();
  a.num = num.data_ptr<int64_t>();
#ifdef PYHPE_WITH_CUDA
  if (heatmaps.is_cuda()) {
    c10::cuda::CUDAGuard guard(heatmaps.device());
    void* stream = cuda_stream_of(heatmaps);
    const auto dev = heatmaps.options();
    at::Tensor order_d = at::tensor(c10::ArrayRef<int32_t>(order), dev.dtype(at::kInt));
    a.order = order_d.data_ptr<int32_t>();
    const int64_t HW = H * W;
    at::Tensor cand_buf = at::empty({B, K, HW}, fopt);
    at::Tensor cand_val = at::empty({B, K, topk}, fopt);
    at::Tensor cand_idx = at::empty({B, K, topk}, dev.dtype(at::kLong));
    at::Tensor cand_count = at::empty({B, K}, dev.dtype(at::kInt));
    AECudaBuffers buf{};
    buf.cand_buf = cand_buf.data_ptr<float>();
    buf.cand_val = cand_val.data_ptr<float>();
    buf.cand_idx = cand_idx.data_ptr<int64_t>();
    buf.cand_count = cand_count.data_ptr<int32_t>();
    ae_candidates_cuda(a, buf, stream);
    // Workspace sizes depend on the candidate counts: one small copy to the host.
    at::Tensor counts_h = cand_count.sum(1, false, at::kLong).cpu();
    std::vector<int64_t> offsets(static_cast<size_t>(B));
    int64_t total = 0;
    for (int64_t b = 0; b < B; ++b) {
      offsets[b] = total;
      total += group_work_bytes(counts_h.data_ptr<int64_t>()[b], a.K, a.L, a.T);
    }
    at::Tensor work = at::empty({total > 0 ? total : 1}, dev.dtype(at::kByte));
    at::Tensor offsets_d = at::tensor(c10::ArrayRef<int64_t>(offsets), dev.dtype(at::kLong));
    at::Tensor fill_tag = at::empty({B, N > 0 ? N : 1, L}, fopt);
    at::Tensor scratch = at::empty({B, K, L}, fopt);
    buf.work = reinterpret_cast<char*>(work.data_ptr<uint8_t>());
    buf.work_offsets = offsets_d.data_ptr<int64_t>();
    buf.fill_tag = fill_tag.data_ptr<float>();
    buf.scratch = scratch.data_ptr<float>();
    at::Tensor modulated, hm_max, bl_max;
    if (refine_mode == kRefineDarkUdp) {
      modulated = at::empty({B * K, HW}, fopt);
      buf.modulated = modulated.data_ptr<float>();
      ae_blur_cuda(a, buf, stream);
      hm_max = at::amax(heatmaps.view({B * K, HW}), {1});
      bl_max = at::amax(modulated, {1});
      buf.hm_max = hm_max.data_ptr<float>();
      buf.bl_max = bl_max.data_ptr<float>();
      ae_modulate_cuda(a, buf, stream);
    }
    ae_group_finish_cuda(a, buf, stream);
    return {keypoints, scores, instance_scores, num};
  }
#endif
  ae_group_cpu(a);
  return {keypoints, scores, instance_scores, num};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pyhpe, m) {
  m.def(
      "ae_group(Tensor heatmaps, Tensor tags, int[] keypoint_order, int topk=30, "
      "int nms_kernel=5, float keypoint_threshold=0.1, float tag_threshold=1.0, "
      "int? max_instances=None, str matching='hungarian', str refine='quarter', "
      "int blur_kernel=3, float center_shift=0.0, bool fill_missing=True) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pyhpe, CPU, m) { m.impl("ae_group", &ae_group_op); }

#ifdef PYHPE_WITH_CUDA
TORCH_LIBRARY_IMPL(pyhpe, CUDA, m) { m.impl("ae_group", &ae_group_op); }
#endif

// Not differentiable: an input that requires grad is refused.
TORCH_LIBRARY_IMPL(pyhpe, Autograd, m) {
  m.impl("ae_group",
         torch::CppFunction::makeFromBoxedFunction<&autograd_guard::not_differentiable_kernel>());
}

}  // namespace ae
}  // namespace pyhpe
