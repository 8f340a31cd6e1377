// Schemas and CPU/CUDA registration of the PAF grouping family
// (torch.ops.pyhpe.find_peaks / paf_scores / group_poses).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <climits>
#include <cmath>
#include <string>
#include <tuple>

#include "common/checks.h"
#include "common/not_differentiable.h"
#include "common/torch_utils.h"
#include "paf/paf.h"

namespace pyhpe {
namespace paf {
namespace {

// Largest output (elements) an op of this family allocates; more is a caller's mistake (a
// huge max_peaks or M), reported before the allocator sees it.
constexpr int64_t kMaxOutputElements = (int64_t(1) << 31) - 1;
// Pair scoring walks num_samples points per pair; OpenPose uses 5 to 25.
constexpr int64_t kMaxSamples = int64_t(1) << 16;

void check_int_range(const char* op, const char* name, int64_t v, int64_t lo, int64_t hi) {
  TORCH_CHECK_VALUE(lo <= v && v <= hi, op, ": '", name, "' must lie in [", lo, ", ", hi,
                    "], got ", v);
}

void check_finite_option(const char* op, const char* name, double v) {
  TORCH_CHECK_VALUE(std::isfinite(v), op, ": '", name, "' must be finite, got ", v);
}

// numel of `sizes` without overflow, rejected above kMaxOutputElements (`cause` names the
// argument that sets the size).
void check_output_size(const char* op, const char* what, std::initializer_list<int64_t> sizes,
                       const char* cause) {
  int64_t numel = 1;
  bool too_big = false;
  for (int64_t d : sizes) {
    if (d == 0) return;
    if (numel > kMaxOutputElements / d) too_big = true;
    else numel *= d;
  }
  TORCH_CHECK_VALUE(!too_big, op, ": the output ", what, " ", c10::IntArrayRef(sizes),
                    " would exceed ", kMaxOutputElements, " elements; lower '", cause, "'");
}

std::tuple<at::Tensor, at::Tensor> find_peaks_op(const at::Tensor& heatmaps_in, double threshold,
                                                 int64_t max_peaks, int64_t refine_radius,
                                                 c10::string_view border, bool two_pass) {
  const char* op = "pyhpe.find_peaks";
  checks::floating(op, heatmaps_in, "heatmaps");
  checks::dim(op, heatmaps_in, "heatmaps", 4, "(B, K, H, W)");
  check_int_range(op, "max_peaks", max_peaks, 0, INT_MAX);
  // -1: no refinement; a window larger than the map is clipped to it.
  check_int_range(op, "refine_radius", refine_radius, -1, INT_MAX);
  check_finite_option(op, "threshold", threshold);
  int mode;
  if (border == "cpu") {
    mode = kNmsCpu;
  } else if (border == "gpu") {
    mode = kNmsGpu;
  } else {
    TORCH_CHECK_VALUE(false, op, ": 'border' must be 'cpu' or 'gpu' (OpenPose nmsCpu or nmsGpu rules), got '",
                      std::string(border), "'");
  }
  require_cuda_build(op, heatmaps_in);
  const int64_t B = heatmaps_in.size(0), K = heatmaps_in.size(1), H = heatmaps_in.size(2),
                W = heatmaps_in.size(3);
  TORCH_CHECK_VALUE(H <= INT_MAX && W <= INT_MAX, op, ": 'heatmaps' maps must be smaller than ",
                    INT_MAX, " pixels a side, got ", checks::describe(heatmaps_in));
  check_output_size(op, "peaks (B, K, max_peaks, 3)", {B, K, max_peaks, 3}, "max_peaks");
  at::Tensor heatmaps = heatmaps_in.contiguous();
  at::Tensor peaks = at::zeros({B, K, max_peaks, 3}, heatmaps.options());
  at::Tensor counts = at::zeros({B, K}, heatmaps.options().dtype(at::kLong));
  if (B * K == 0 || H * W == 0 || max_peaks == 0) return {peaks, counts};
  AT_DISPATCH_FLOATING_TYPES(heatmaps.scalar_type(), "find_peaks", [&] {
    PeakArgs<scalar_t> a;
    a.heatmaps = heatmaps.data_ptr<scalar_t>();
    a.channels = B * K;
    a.H = static_cast<int>(H);
    a.W = static_cast<int>(W);
    a.threshold = static_cast<scalar_t>(threshold);
    a.mode = mode;
    a.radius = static_cast<int>(refine_radius);  // range-checked above
    a.max_peaks = static_cast<int>(max_peaks);
    a.peaks = peaks.data_ptr<scalar_t>();
    a.counts = counts.data_ptr<int64_t>();
    a.flags = nullptr;
    a.ranks = nullptr;
#ifdef PYHPE_WITH_CUDA
    if (heatmaps.is_cuda()) {
      c10::cuda::CUDAGuard guard(heatmaps.device());
      at::Tensor flags = at::empty({B * K, H * W}, heatmaps.options().dtype(at::kInt));
      a.flags = flags.data_ptr<int32_t>();
      peak_flags_cuda<scalar_t>(a, cuda_stream_of(heatmaps));
      at::Tensor ranks = at::cumsum(flags, 1, at::kLong);
      a.ranks = ranks.data_ptr<int64_t>();
      peak_write_cuda<scalar_t>(a, cuda_stream_of(heatmaps));
      return;
    }
#endif
    if (two_pass) {
      // The GPU's flag + compaction form on the CPU, so that CPU tests cover its math.
      at::Tensor flags = at::empty({B * K, H * W}, heatmaps.options().dtype(at::kInt));
      a.flags = flags.data_ptr<int32_t>();
      peak_flags_cpu<scalar_t>(a);
      at::Tensor ranks = at::cumsum(flags, 1, at::kLong);
      a.ranks = ranks.data_ptr<int64_t>();
      peak_write_cpu<scalar_t>(a);
      return;
    }
    find_peaks_cpu<scalar_t>(a);
  });
  return {peaks, counts};
}

// Shared checks of peaks (B, K, M, 3) and counts (B, K).
void check_peaks(const char* op, const at::Tensor& peaks, const at::Tensor& counts) {
  checks::floating(op, peaks, "peaks");
  checks::dim(op, peaks, "peaks", 4, "(B, K, M, 3)");
  checks::size(op, peaks, "peaks", 3, 3, "(B, K, M, 3)");
  checks::integral(op, counts, "counts");
  checks::same_device(op, counts, "counts", peaks, "peaks");
  checks::dim(op, counts, "counts", 2, "(B, K)");
  checks::size(op, counts, "counts", 0, peaks.size(0), "(B, K)");
  checks::size(op, counts, "counts", 1, peaks.size(1), "(B, K)");
}

// counts (B, K) must lie in [0, M].
void check_counts(const char* op, const at::Tensor& counts, int64_t M) {
  if (counts.numel() == 0) return;
  at::Tensor host = counts.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t* c = host.data_ptr<int64_t>();
  for (int64_t i = 0; i < host.numel(); ++i)
    TORCH_CHECK_VALUE(0 <= c[i] && c[i] <= M, op, ": 'counts' must lie in [0, M=", M,
                      "], got ", c[i], " at flat index ", i);
}

at::Tensor check_index_pairs(const char* op, const at::Tensor& t, const char* name, int64_t L,
                             int64_t upper, const char* what) {
  checks::integral(op, t, name);
  checks::dim(op, t, name, 2, "(L, 2)");
  checks::size(op, t, name, 0, L, "(L, 2)");
  checks::size(op, t, name, 1, 2, "(L, 2)");
  at::Tensor host = t.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t* p = host.data_ptr<int64_t>();
  for (int64_t i = 0; i < 2 * L; ++i)
    TORCH_CHECK_VALUE(0 <= p[i] && p[i] < upper, op, ": '", name, "' entries must be ", what,
                      " in [0, ", upper, "), got ", p[i], " at limb ", i / 2);
  return host;
}

at::Tensor paf_scores_op(const at::Tensor& pafs_in, const at::Tensor& peaks_in,
                         const at::Tensor& counts_in, const at::Tensor& limbs_in,
                         const at::Tensor& channels_in, int64_t num_samples,
                         double inter_threshold, double min_fraction, bool distance_prior,
                         double prior_score) {
  const char* op = "pyhpe.paf_scores";
  checks::floating(op, pafs_in, "pafs");
  checks::dim(op, pafs_in, "pafs", 4, "(B, C, H, W)");
  check_peaks(op, peaks_in, counts_in);
  checks::same_dtype(op, peaks_in, "peaks", pafs_in, "pafs");
  checks::same_device(op, peaks_in, "peaks", pafs_in, "pafs");
  checks::size(op, peaks_in, "peaks", 0, pafs_in.size(0), "(B, K, M, 3)");
  check_finite_option(op, "inter_threshold", inter_threshold);
  check_finite_option(op, "prior_score", prior_score);
  // count / n > min_fraction < 0 would accept a pair with no sample above the threshold and
  // score it 0 / 0.
  TORCH_CHECK_VALUE(0.0 <= min_fraction && min_fraction <= 1.0, op,
                    ": 'min_fraction' must lie in [0, 1], got ", min_fraction);
  // 0: OpenPose's adaptive count.
  check_int_range(op, "num_samples", num_samples, 0, kMaxSamples);
  require_cuda_build(op, pafs_in);
  const int64_t B = pafs_in.size(0), C = pafs_in.size(1), H = pafs_in.size(2),
                W = pafs_in.size(3), K = peaks_in.size(1), M = peaks_in.size(2),
                L = limbs_in.dim() == 2 ? limbs_in.size(0) : -1;
  checks::dim(op, limbs_in, "limbs", 2, "(L, 2)");
  at::Tensor limbs = check_index_pairs(op, limbs_in, "limbs", L, K, "part indices")
                         .to(pafs_in.device());
  at::Tensor channels = check_index_pairs(op, channels_in, "paf_channels", L, C,
                                          "channels of 'pafs'")
                            .to(pafs_in.device());
  at::Tensor pafs = pafs_in.contiguous(), peaks = peaks_in.contiguous();
  check_counts(op, counts_in, M);
  at::Tensor counts = counts_in.to(at::kLong).contiguous();
  check_output_size(op, "scores (B, L, M, M)", {B, L, M, M}, "peaks");
  at::Tensor out = at::empty({B, L, M, M}, pafs.options());
  if (out.numel() == 0) return out;
  TORCH_CHECK_VALUE(H > 0 && W > 0, op, ": 'pafs' must have a non-empty map, got ",
                    checks::describe(pafs_in));
  TORCH_CHECK_VALUE(H <= INT_MAX && W <= INT_MAX && K <= INT_MAX && M <= INT_MAX &&
                        C <= INT_MAX, op, ": 'pafs' and 'peaks' sizes must stay below ",
                    INT_MAX, ", got ", checks::describe(pafs_in), " and ",
                    checks::describe(peaks_in));
  AT_DISPATCH_FLOATING_TYPES(pafs.scalar_type(), "paf_scores", [&] {
    ScoreArgs<scalar_t> a;
    a.pafs = pafs.data_ptr<scalar_t>();
    a.peaks = peaks.data_ptr<scalar_t>();
    a.counts = counts.data_ptr<int64_t>();
    a.limbs = limbs.data_ptr<int64_t>();
    a.channels = channels.data_ptr<int64_t>();
    a.B = B;
    a.L = L;
    a.K = static_cast<int>(K);
    a.M = static_cast<int>(M);
    a.C = static_cast<int>(C);
    a.H = static_cast<int>(H);
    a.W = static_cast<int>(W);
    a.num_samples = static_cast<int>(num_samples);
    a.inter_threshold = static_cast<scalar_t>(inter_threshold);
    a.min_fraction = static_cast<scalar_t>(min_fraction);
    a.distance_prior = distance_prior;
    a.prior_score = static_cast<scalar_t>(prior_score);
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(pafs, paf_scores, a);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> group_poses_op(
    const at::Tensor& peaks_in, const at::Tensor& counts_in, const at::Tensor& scores_in,
    const at::Tensor& limbs_in, const at::Tensor& redundant_in, int64_t min_parts,
    double min_mean_score, c10::string_view method_str, int64_t max_persons,
    bool dedupe_singletons, c10::string_view assembly_str) {
  const char* op = "pyhpe.group_poses";
  check_peaks(op, peaks_in, counts_in);
  const int64_t B = peaks_in.size(0), K = peaks_in.size(1), M = peaks_in.size(2);
  checks::dim(op, limbs_in, "limbs", 2, "(L, 2)");
  const int64_t L = limbs_in.size(0);
  check_int_range(op, "min_parts", min_parts, 0, INT_MAX);
  check_int_range(op, "max_persons", max_persons, -1, INT64_MAX);
  check_finite_option(op, "min_mean_score", min_mean_score);
  TORCH_CHECK_VALUE(K <= INT_MAX && M <= INT_MAX && L <= INT_MAX, op,
                    ": 'peaks' and 'limbs' sizes must stay below ", INT_MAX, ", got ",
                    checks::describe(peaks_in), " and ", checks::describe(limbs_in));
  at::Tensor limbs = check_index_pairs(op, limbs_in, "limbs", L, K, "part indices");
  checks::same_dtype(op, scores_in, "scores", peaks_in, "peaks");
  checks::same_device(op, scores_in, "scores", peaks_in, "peaks");
  checks::dim(op, scores_in, "scores", 4, "(B, L, M, M)");
  checks::size(op, scores_in, "scores", 0, B, "(B, L, M, M)");
  checks::size(op, scores_in, "scores", 1, L, "(B, L, M, M)");
  checks::size(op, scores_in, "scores", 2, M, "(B, L, M, M)");
  checks::size(op, scores_in, "scores", 3, M, "(B, L, M, M)");
  checks::dim(op, redundant_in, "redundant", 1, "(L,)");
  checks::size(op, redundant_in, "redundant", 0, L, "(L,)");
  int method;
  if (method_str == "greedy") {
    method = kGreedy;
  } else if (method_str == "hungarian") {
    method = kHungarian;
  } else {
    TORCH_CHECK_VALUE(false, op, ": 'method' must be 'greedy' or 'hungarian', got '",
                      std::string(method_str), "'");
  }
  int assembly;
  if (assembly_str == "cpu") {
    assembly = kAssemblyCpu;
  } else if (assembly_str == "gpu") {
    assembly = kAssemblyGpu;
  } else {
    TORCH_CHECK_VALUE(false, op, ": 'assembly' must be 'cpu' or 'gpu' (OpenPose's "
                      "connectBodyPartsCpu or connectBodyPartsGpu), got '", std::string(assembly_str), "'");
  }
  TORCH_CHECK_VALUE(assembly == kAssemblyCpu || method == kGreedy, op,
                    ": assembly='gpu' sorts all limbs' connections globally; it has no "
                    "per-limb matching, so 'method' must be 'greedy', got '",
                    std::string(method_str), "'");
  // Grouping is sequential per image: it runs on the host for every device.
  at::Tensor peaks = peaks_in.to(at::kCPU).contiguous();
  at::Tensor counts = counts_in.to(at::kCPU).to(at::kLong).contiguous();
  at::Tensor scores = scores_in.to(at::kCPU).contiguous();
  at::Tensor redundant = redundant_in.to(at::kCPU).to(at::kByte).contiguous();
  check_counts(op, counts, M);
  at::Tensor persons, person_scores, person_counts, indices;
  AT_DISPATCH_FLOATING_TYPES(peaks.scalar_type(), "group_poses", [&] {
    GroupArgs<scalar_t> a;
    a.peaks = peaks.data_ptr<scalar_t>();
    a.counts = counts.data_ptr<int64_t>();
    a.scores = scores.data_ptr<scalar_t>();
    a.limbs = limbs.data_ptr<int64_t>();
    a.redundant = redundant.data_ptr<uint8_t>();
    a.B = B;
    a.K = static_cast<int>(K);
    a.M = static_cast<int>(M);
    a.L = static_cast<int>(L);
    a.min_parts = static_cast<int>(min_parts);
    a.min_mean_score = static_cast<scalar_t>(min_mean_score);
    a.method = method;
    a.max_persons = max_persons;
    a.dedupe_singletons = dedupe_singletons;
    a.assembly = assembly;
    std::vector<GroupedImage<scalar_t>> grouped;
    if (B > 0 && K > 0) group_poses_cpu<scalar_t>(a, grouped);
    else grouped.assign(B, GroupedImage<scalar_t>{});
    int64_t P = 0;
    for (const auto& g : grouped) P = std::max<int64_t>(P, g.scores.size());
    persons = at::zeros({B, P, K, 3}, peaks.options());
    person_scores = at::zeros({B, P}, peaks.options());
    person_counts = at::zeros({B}, peaks.options().dtype(at::kLong));
    indices = at::full({B, P, K}, -1, peaks.options().dtype(at::kLong));
    scalar_t* pp = persons.data_ptr<scalar_t>();
    scalar_t* ps = person_scores.data_ptr<scalar_t>();
    int64_t* pc = person_counts.data_ptr<int64_t>();
    int64_t* pi = indices.data_ptr<int64_t>();
    const scalar_t* pk = peaks.data_ptr<scalar_t>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& g = grouped[b];
      const int64_t n = static_cast<int64_t>(g.scores.size());
      pc[b] = n;
      for (int64_t p = 0; p < n; ++p) {
        ps[b * P + p] = g.scores[p];
        for (int64_t k = 0; k < K; ++k) {
          const int64_t idx = g.parts[p * K + k];
          pi[(b * P + p) * K + k] = idx;
          if (idx < 0) continue;
          const scalar_t* src = pk + ((b * K + k) * M + idx) * 3;
          scalar_t* dst = pp + ((b * P + p) * K + k) * 3;
          dst[0] = src[0];
          dst[1] = src[1];
          dst[2] = src[2];
        }
      }
    }
  });
  const auto device = peaks_in.device();
  return {persons.to(device), person_scores.to(device), person_counts.to(device),
          indices.to(device)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pyhpe, m) {
  m.def(
      "find_peaks(Tensor heatmaps, float threshold=0.05, int max_peaks=64, "
      "int refine_radius=3, str border='cpu', bool two_pass=False) -> (Tensor, Tensor)");
  m.def(
      "paf_scores(Tensor pafs, Tensor peaks, Tensor counts, Tensor limbs, Tensor paf_channels, "
      "int num_samples=10, float inter_threshold=0.05, float min_fraction=0.95, "
      "bool distance_prior=True, float prior_score=0.05) -> Tensor");
  m.def(
      "group_poses(Tensor peaks, Tensor counts, Tensor scores, Tensor limbs, "
      "Tensor redundant, int min_parts=3, float min_mean_score=0.2, str method='greedy', "
      "int max_persons=-1, bool dedupe_singletons=True, str assembly='cpu') "
      "-> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pyhpe, CPU, m) {
  m.impl("find_peaks", &find_peaks_op);
  m.impl("paf_scores", &paf_scores_op);
  m.impl("group_poses", &group_poses_op);
}

#ifdef PYHPE_WITH_CUDA
TORCH_LIBRARY_IMPL(pyhpe, CUDA, m) {
  m.impl("find_peaks", &find_peaks_op);
  m.impl("paf_scores", &paf_scores_op);
  m.impl("group_poses", &group_poses_op);
}
#endif

// None of these ops is differentiable: an input that requires grad is refused.
TORCH_LIBRARY_IMPL(pyhpe, Autograd, m) {
  for (const char* name : {"find_peaks", "paf_scores", "group_poses"})
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<
                   &autograd_guard::not_differentiable_kernel>());
}

}  // namespace paf
}  // namespace pyhpe
