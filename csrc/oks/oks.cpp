// Schemas and CPU/CUDA registration of the OKS family (torch.ops.pyhpe.oks_*).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <string>

#include "common/checks.h"
#include "common/cpu_features.h"
#include "common/not_differentiable.h"
#include "common/torch_utils.h"
#include "oks/oks.h"

namespace pyhpe {
namespace oks {
namespace {

int parse_mode(const char* op, c10::string_view mode) {
  if (mode == "coco") return kModeCoco;
  if (mode == "mmpose") return kModeMMPose;
  TORCH_CHECK_VALUE(false, op, ": 'mode' must be 'coco' or 'mmpose', got '", std::string(mode),
                    "'");
}

// Checks shared by the padded and ragged forms. `lead` is the number of leading dims before
// (K, C): 2 for padded (N, D), 1 for ragged (sum D_n).
void check_common(const char* op, const at::Tensor& dt, const at::Tensor& gt,
                  const at::Tensor& gt_areas, const at::Tensor& sigmas,
                  const std::optional<at::Tensor>& gt_boxes,
                  const std::optional<at::Tensor>& dt_areas, int lead, int mode,
                  const std::optional<double>& vis_thr) {
  const char* dt_shape = lead == 2 ? "(N, D, K, 2|3)" : "(sum D, K, 2|3)";
  const char* gt_shape = lead == 2 ? "(N, G, K, 3)" : "(sum G, K, 3)";
  checks::floating(op, dt, "dt");
  checks::dim(op, dt, "dt", lead + 2, dt_shape);
  TORCH_CHECK_VALUE(dt.size(-1) == 2 || dt.size(-1) == 3, op,
                    ": 'dt' last dim must be 2 (x, y) or 3 (x, y, score), got ",
                    checks::describe(dt));
  checks::dim(op, gt, "gt", lead + 2, gt_shape);
  checks::same_dtype(op, gt, "gt", dt, "dt");
  checks::same_device(op, gt, "gt", dt, "dt");
  checks::size(op, gt, "gt", lead + 1, 3, gt_shape);
  const int64_t K = dt.size(lead);
  checks::size(op, gt, "gt", lead, K, gt_shape);
  if (lead == 2) checks::size(op, gt, "gt", 0, dt.size(0), gt_shape);
  checks::dim(op, sigmas, "sigmas", 1, "(K,)");
  checks::same_dtype(op, sigmas, "sigmas", dt, "dt");
  checks::same_device(op, sigmas, "sigmas", dt, "dt");
  TORCH_CHECK_VALUE(sigmas.size(0) == K, op, ": 'sigmas' must have one entry per keypoint (K=",
                    K, " from 'dt'), got ", checks::describe(sigmas));
  const char* area_shape = lead == 2 ? "(N, G)" : "(sum G,)";
  checks::dim(op, gt_areas, "gt_areas", lead, area_shape);
  checks::same_dtype(op, gt_areas, "gt_areas", dt, "dt");
  checks::same_device(op, gt_areas, "gt_areas", dt, "dt");
  for (int d = 0; d < lead; ++d) checks::size(op, gt_areas, "gt_areas", d, gt.size(d), area_shape);
  if (gt_boxes.has_value()) {
    const char* box_shape = lead == 2 ? "(N, G, 4)" : "(sum G, 4)";
    checks::dim(op, *gt_boxes, "gt_boxes", lead + 1, box_shape);
    checks::same_dtype(op, *gt_boxes, "gt_boxes", dt, "dt");
    checks::same_device(op, *gt_boxes, "gt_boxes", dt, "dt");
    for (int d = 0; d < lead; ++d) checks::size(op, *gt_boxes, "gt_boxes", d, gt.size(d), box_shape);
    checks::size(op, *gt_boxes, "gt_boxes", lead, 4, box_shape);
  }
  if (mode == kModeMMPose) {
    const char* dta_shape = lead == 2 ? "(N, D)" : "(sum D,)";
    TORCH_CHECK_VALUE(dt_areas.has_value(), op, ": mode='mmpose' needs 'dt_areas' ", dta_shape);
    checks::dim(op, *dt_areas, "dt_areas", lead, dta_shape);
    checks::same_dtype(op, *dt_areas, "dt_areas", dt, "dt");
    checks::same_device(op, *dt_areas, "dt_areas", dt, "dt");
    for (int d = 0; d < lead; ++d) checks::size(op, *dt_areas, "dt_areas", d, dt.size(d), dta_shape);
    TORCH_CHECK_VALUE(!vis_thr.has_value() || dt.size(-1) == 3, op,
                      ": 'vis_thr' needs detection scores, so 'dt' must be (..., K, 3), got ",
                      checks::describe(dt));
  } else {
    TORCH_CHECK_VALUE(!vis_thr.has_value(), op,
                      ": 'vis_thr' applies to mode='mmpose' only (pycocotools uses GT v > 0)");
  }
}

at::Tensor check_counts(const char* op, const std::optional<at::Tensor>& counts, const char* name,
                        const at::Tensor& dt, int64_t N, int64_t rows, const char* rows_name) {
  checks::integral(op, *counts, name);
  checks::same_device(op, *counts, name, dt, "dt");
  checks::dim(op, *counts, name, 1, "(N,)");
  checks::size(op, *counts, name, 0, N, "(N,)");
  at::Tensor out = counts->to(at::kLong).contiguous();
  // A count outside [0, rows] would silently mean "all rows" or "none"; counts are tiny,
  // so checking them on the host costs one small copy.
  if (N > 0) {
    const auto minmax = at::aminmax(out);
    const int64_t lo = std::get<0>(minmax).item<int64_t>();
    const int64_t hi = std::get<1>(minmax).item<int64_t>();
    TORCH_CHECK_VALUE(lo >= 0 && hi <= rows, op, ": '", name, "' must lie in [0, ", rows,
                      "] (", rows_name, " per padded image), got values in [", lo, ", ", hi,
                      "]");
  }
  return out;
}

at::Tensor oks_matrix(const at::Tensor& dt_in, const at::Tensor& gt_in, const at::Tensor& gt_areas_in,
                      const at::Tensor& sigmas_in, const std::optional<at::Tensor>& gt_boxes_in,
                      const std::optional<at::Tensor>& dt_areas_in,
                      const std::optional<at::Tensor>& dt_counts_in,
                      const std::optional<at::Tensor>& gt_counts_in,
                      std::optional<double> vis_thr, c10::string_view mode_str) {
  const char* op = "pyhpe.oks_matrix";
  const int mode = parse_mode(op, mode_str);
  check_common(op, dt_in, gt_in, gt_areas_in, sigmas_in, gt_boxes_in, dt_areas_in, 2, mode, vis_thr);
  require_cuda_build(op, dt_in);
  const int64_t N = dt_in.size(0), D = dt_in.size(1), G = gt_in.size(1);
  std::optional<at::Tensor> dt_counts, gt_counts;
  if (dt_counts_in.has_value()) {
    dt_counts = check_counts(op, dt_counts_in, "dt_counts", dt_in, N, D, "D rows of 'dt'");
  }
  if (gt_counts_in.has_value()) {
    gt_counts = check_counts(op, gt_counts_in, "gt_counts", dt_in, N, G, "G rows of 'gt'");
  }
  at::Tensor dt = dt_in.contiguous(), gt = gt_in.contiguous(), gt_areas = gt_areas_in.contiguous(),
             sigmas = sigmas_in.contiguous();
  auto gt_boxes = opt_contiguous(gt_boxes_in);
  auto dt_areas = opt_contiguous(dt_areas_in);
  at::Tensor out = at::empty({N, D, G}, dt.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(dt.scalar_type(), "oks_matrix", [&] {
    OksMatrixArgs<scalar_t> a;
    a.dt = dt.data_ptr<scalar_t>();
    a.gt = gt.data_ptr<scalar_t>();
    a.gt_areas = gt_areas.data_ptr<scalar_t>();
    a.sigmas = sigmas.data_ptr<scalar_t>();
    a.gt_boxes = opt_ptr<scalar_t>(gt_boxes);
    a.dt_areas = mode == kModeMMPose ? opt_ptr<scalar_t>(dt_areas) : nullptr;
    a.dt_counts = opt_ptr<int64_t>(dt_counts);
    a.gt_counts = opt_ptr<int64_t>(gt_counts);
    a.N = N;
    a.D = D;
    a.G = G;
    a.K = static_cast<int>(dt.size(2));
    a.C = static_cast<int>(dt.size(3));
    a.mode = mode;
    a.has_vis_thr = vis_thr.has_value();
    a.vis_thr = static_cast<scalar_t>(vis_thr.value_or(0.0));
    a.exp_path = cpu::numpy_exp_path();
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(dt, oks_matrix, a);
  });
  return out;
}

at::Tensor oks_matrix_ragged(const at::Tensor& dt_in, const at::Tensor& gt_in,
                             const at::Tensor& gt_areas_in, const at::Tensor& sigmas_in,
                             const at::Tensor& dt_offsets_in, const at::Tensor& gt_offsets_in,
                             int64_t total, const std::optional<at::Tensor>& gt_boxes_in,
                             const std::optional<at::Tensor>& dt_areas_in,
                             std::optional<double> vis_thr, c10::string_view mode_str) {
  const char* op = "pyhpe.oks_matrix_ragged";
  const int mode = parse_mode(op, mode_str);
  check_common(op, dt_in, gt_in, gt_areas_in, sigmas_in, gt_boxes_in, dt_areas_in, 1, mode, vis_thr);
  require_cuda_build(op, dt_in);
  checks::integral(op, dt_offsets_in, "dt_offsets");
  checks::integral(op, gt_offsets_in, "gt_offsets");
  checks::dim(op, dt_offsets_in, "dt_offsets", 1, "(N + 1,)");
  checks::dim(op, gt_offsets_in, "gt_offsets", 1, "(N + 1,)");
  checks::same_device(op, dt_offsets_in, "dt_offsets", dt_in, "dt");
  checks::same_device(op, gt_offsets_in, "gt_offsets", dt_in, "dt");
  TORCH_CHECK_VALUE(dt_offsets_in.size(0) >= 1 && dt_offsets_in.size(0) == gt_offsets_in.size(0),
                    op, ": 'dt_offsets' and 'gt_offsets' must both have N + 1 >= 1 entries, got ",
                    checks::describe(dt_offsets_in), " and ", checks::describe(gt_offsets_in));
  const int64_t N = dt_offsets_in.size(0) - 1;
  at::Tensor dt_offsets = dt_offsets_in.to(at::kLong).contiguous();
  at::Tensor gt_offsets = gt_offsets_in.to(at::kLong).contiguous();
  // Offsets are tiny; validating them on the host keeps every index in bounds.
  at::Tensor dto = dt_offsets.cpu(), gto = gt_offsets.cpu();
  const int64_t* dp = dto.data_ptr<int64_t>();
  const int64_t* gp = gto.data_ptr<int64_t>();
  std::vector<int64_t> out_off(N + 1, 0);
  TORCH_CHECK_VALUE(dp[0] == 0, op, ": 'dt_offsets' must start at 0, got ", dp[0]);
  TORCH_CHECK_VALUE(gp[0] == 0, op, ": 'gt_offsets' must start at 0, got ", gp[0]);
  for (int64_t n = 0; n < N; ++n) {
    TORCH_CHECK_VALUE(dp[n + 1] >= dp[n], op, ": 'dt_offsets' must be non-decreasing, got ",
                      dp[n], " then ", dp[n + 1], " (image ", n, ")");
    TORCH_CHECK_VALUE(gp[n + 1] >= gp[n], op, ": 'gt_offsets' must be non-decreasing, got ",
                      gp[n], " then ", gp[n + 1], " (image ", n, ")");
    out_off[n + 1] = out_off[n] + (dp[n + 1] - dp[n]) * (gp[n + 1] - gp[n]);
  }
  TORCH_CHECK_VALUE(dp[N] == dt_in.size(0), op, ": dt_offsets[-1] must equal dt.size(0)=",
                    dt_in.size(0), ", got ", dp[N]);
  TORCH_CHECK_VALUE(gp[N] == gt_in.size(0), op, ": gt_offsets[-1] must equal gt.size(0)=",
                    gt_in.size(0), ", got ", gp[N]);
  TORCH_CHECK_VALUE(out_off[N] == total, op, ": 'total' must equal sum(D_n * G_n)=", out_off[N],
                    ", got ", total);
  at::Tensor dt = dt_in.contiguous(), gt = gt_in.contiguous(), gt_areas = gt_areas_in.contiguous(),
             sigmas = sigmas_in.contiguous();
  auto gt_boxes = opt_contiguous(gt_boxes_in);
  auto dt_areas = opt_contiguous(dt_areas_in);
  at::Tensor out = at::empty({total}, dt.options());
  if (total == 0) return out;
  at::Tensor out_offsets =
      at::tensor(out_off, at::TensorOptions().dtype(at::kLong)).to(dt.device());
  AT_DISPATCH_FLOATING_TYPES(dt.scalar_type(), "oks_matrix_ragged", [&] {
    OksRaggedArgs<scalar_t> a;
    a.dt = dt.data_ptr<scalar_t>();
    a.gt = gt.data_ptr<scalar_t>();
    a.gt_areas = gt_areas.data_ptr<scalar_t>();
    a.sigmas = sigmas.data_ptr<scalar_t>();
    a.gt_boxes = opt_ptr<scalar_t>(gt_boxes);
    a.dt_areas = mode == kModeMMPose ? opt_ptr<scalar_t>(dt_areas) : nullptr;
    a.dt_offsets = dt_offsets.data_ptr<int64_t>();
    a.gt_offsets = gt_offsets.data_ptr<int64_t>();
    a.out_offsets = out_offsets.data_ptr<int64_t>();
    a.N = N;
    a.K = static_cast<int>(dt.size(1));
    a.C = static_cast<int>(dt.size(2));
    a.mode = mode;
    a.has_vis_thr = vis_thr.has_value();
    a.vis_thr = static_cast<scalar_t>(vis_thr.value_or(0.0));
    a.exp_path = cpu::numpy_exp_path();
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(dt, oks_ragged, a, total);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pyhpe, m) {
  m.def(
      "oks_matrix(Tensor dt, Tensor gt, Tensor gt_areas, Tensor sigmas, Tensor? gt_boxes=None, "
      "Tensor? dt_areas=None, Tensor? dt_counts=None, Tensor? gt_counts=None, "
      "float? vis_thr=None, str mode='coco') -> Tensor");
  m.def(
      "oks_matrix_ragged(Tensor dt, Tensor gt, Tensor gt_areas, Tensor sigmas, Tensor dt_offsets, "
      "Tensor gt_offsets, SymInt total, Tensor? gt_boxes=None, Tensor? dt_areas=None, "
      "float? vis_thr=None, str mode='coco') -> Tensor");
}

TORCH_LIBRARY_IMPL(pyhpe, CPU, m) {
  m.impl("oks_matrix", &oks_matrix);
  m.impl("oks_matrix_ragged", &oks_matrix_ragged);
}

// OKS matrices are matching scores with no backward: an input that requires grad is refused.
TORCH_LIBRARY_IMPL(pyhpe, Autograd, m) {
  for (const char* op : {"oks_matrix", "oks_matrix_ragged"}) {
    m.impl(op, torch::CppFunction::makeFromBoxedFunction<
                   &autograd_guard::not_differentiable_kernel>());
  }
}

#ifdef PYHPE_WITH_CUDA
TORCH_LIBRARY_IMPL(pyhpe, CUDA, m) {
  m.impl("oks_matrix", &oks_matrix);
  m.impl("oks_matrix_ragged", &oks_matrix_ragged);
}
#endif

}  // namespace oks
}  // namespace pyhpe
