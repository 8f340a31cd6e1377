// Schemas and CPU/CUDA registration of the heatmap (target generation) family:
// torch.ops.pyhpe.{msra,udp,unbiased}_heatmaps, simcc_labels and paf_targets, each with an
// `.out` overload. The three Gaussian encodings share one implementation. The `.out`
// overloads write the main target into a caller's tensor (declared mutated) and return only
// the freshly allocated weights, so no op returns an alias of an input (torch.compile
// functionalizes them).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/safe_numerics.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "common/checks.h"
#include "common/cpu_cache.h"
#include "common/torch_utils.h"
#include "common/not_differentiable.h"
#include "heatmap/heatmap.h"

namespace pyhpe {
namespace heatmap {
namespace {

int parse_paf_mode(const char* op, c10::string_view s) {
  if (s == "hard") return kPafHard;
  if (s == "soft") return kPafSoft;
  TORCH_CHECK_VALUE(false, op, ": 'mode' must be 'hard' or 'soft', got '", std::string(s), "'");
}

// Largest heatmap side: far above any pose heatmap, low enough that a mistyped size (an
// image size, 100000) fails here with its name rather than in the allocator.
constexpr int64_t kMaxMapSide = int64_t(1) << 16;
// Largest SimCC label length, round(size * ratio).
constexpr int64_t kMaxSimccBins = int64_t(1) << 24;

void check_size(const char* op, int64_t width, int64_t height, const char* what,
                int64_t max_side = kMaxMapSide) {
  TORCH_CHECK_VALUE(width >= 0 && height >= 0 && width <= max_side && height <= max_side, op,
                    ": '", what, "' (W, H) must be in [0, ", max_side, "] each, got (", width,
                    ", ", height, ")");
}

// The element count of an output, refused (naming the output and its shape) when the
// product overflows int64 before anything is allocated.
void check_numel(const char* op, const char* what, c10::IntArrayRef shape) {
  int64_t n = 1;
  bool overflow = false;
  for (const int64_t d : shape) overflow |= c10::mul_overflows(n, d, &n);
  TORCH_CHECK_VALUE(!overflow, op, ": the requested '", what, "' of shape ", shape,
                    " has more elements than int64 can count");
}

// keypoints (B, N, K, C>=2) and visibility (B, N, K) of one floating dtype and device.
void check_instances(const char* op, const at::Tensor& kp, const at::Tensor& vis) {
  checks::floating(op, kp, "keypoints");
  checks::dim(op, kp, "keypoints", 4, "(B, N, K, 2)");
  TORCH_CHECK_VALUE(kp.size(3) >= 2, op, ": 'keypoints' must have shape (B, N, K, 2) "
                    "(x, y first), got ", checks::describe(kp));
  checks::same_dtype(op, vis, "visibility", kp, "keypoints");
  checks::same_device(op, vis, "visibility", kp, "keypoints");
  checks::dim(op, vis, "visibility", 3, "(B, N, K)");
  for (int d = 0; d < 3; ++d) checks::size(op, vis, "visibility", d, kp.size(d), "(B, N, K)");
}

// Writes into `out` directly when it is contiguous, else through a temporary.
template <typename F>
void write_into(at::Tensor& out, F&& fill) {
  if (out.is_contiguous()) {
    fill(out);
    return;
  }
  at::Tensor tmp = at::empty(out.sizes(), out.options());
  fill(tmp);
  out.copy_(tmp);
}

void check_out(const char* op, const at::Tensor& out, const char* name, const at::Tensor& kp,
               c10::IntArrayRef expected, const char* expected_shape) {
  checks::same_dtype(op, out, name, kp, "keypoints");
  checks::same_device(op, out, name, kp, "keypoints");
  TORCH_CHECK_VALUE(out.sizes() == expected, op, ": '", name, "' must have shape ",
                    expected_shape, " = ", expected, ", got ", checks::describe(out));
}

// ----------------------------------------------------------------------------------------
// Gaussian heatmaps
// ----------------------------------------------------------------------------------------

at::Tensor gaussian_impl(const char* op, const at::Tensor& kp_in, const at::Tensor& vis_in,
                         const at::Tensor& sigma_in, int encoding, at::Tensor& heatmaps) {
  const int64_t B = kp_in.size(0), N = kp_in.size(1), K = kp_in.size(2);
  checks::floating(op, sigma_in, "sigma");
  checks::same_device(op, sigma_in, "sigma", kp_in, "keypoints");
  checks::dim(op, sigma_in, "sigma", 3, "(B|1, N|1, K|1)");
  const int64_t full[3] = {B, N, K};
  for (int d = 0; d < 3; ++d) {
    TORCH_CHECK_VALUE(sigma_in.size(d) == 1 || sigma_in.size(d) == full[d], op,
                      ": 'sigma' must broadcast to (B, N, K) = (", B, ", ", N, ", ", K,
                      "), got ", checks::describe(sigma_in));
  }
  at::Tensor weights = at::empty({B, N, K}, kp_in.options());
  if (heatmaps.numel() == 0 && weights.numel() == 0) return weights;
  at::Tensor kp = kp_in.contiguous(), vis = vis_in.contiguous();
  at::Tensor sigma = sigma_in.to(at::kDouble).expand({B, N, K}).contiguous();
  write_into(heatmaps, [&](at::Tensor& hm) {
    AT_DISPATCH_FLOATING_TYPES(kp.scalar_type(), "gaussian heatmaps", [&] {
      GaussianArgs<scalar_t> a;
      a.keypoints = kp.data_ptr<scalar_t>();
      a.visibility = vis.data_ptr<scalar_t>();
      a.sigma = sigma.data_ptr<double>();
      a.B = B;
      a.N = N;
      a.K = K;
      a.C = kp.size(3);
      a.H = hm.size(2);
      a.W = hm.size(3);
      a.encoding = encoding;
      a.heatmaps = hm.data_ptr<scalar_t>();
      a.weights = weights.data_ptr<scalar_t>();
      PYHPE_LAUNCH(kp, gaussian_heatmaps, a);
    });
  });
  return weights;
}

std::tuple<at::Tensor, at::Tensor> gaussian_heatmaps(const char* op, int encoding,
                                                     const at::Tensor& keypoints,
                                                     const at::Tensor& visibility,
                                                     const at::Tensor& sigma, int64_t width,
                                                     int64_t height) {
  check_instances(op, keypoints, visibility);
  check_size(op, width, height, "heatmap_size");
  require_cuda_build(op, keypoints);
  check_numel(op, "heatmaps", {keypoints.size(0), keypoints.size(2), height, width});
  at::Tensor heatmaps = cpu::empty_cached(
      {keypoints.size(0), keypoints.size(2), height, width}, keypoints.options());
  at::Tensor weights = gaussian_impl(op, keypoints, visibility, sigma, encoding, heatmaps);
  return {heatmaps, weights};
}

at::Tensor gaussian_heatmaps_out(const char* op, int encoding, const at::Tensor& keypoints,
                                 const at::Tensor& visibility, const at::Tensor& sigma,
                                 at::Tensor& out) {
  check_instances(op, keypoints, visibility);
  require_cuda_build(op, keypoints);
  checks::dim(op, out, "out", 4, "(B, K, H, W)");
  check_out(op, out, "out", keypoints,
            {keypoints.size(0), keypoints.size(2), out.size(2), out.size(3)}, "(B, K, H, W)");
  return gaussian_impl(op, keypoints, visibility, sigma, encoding, out);
}

// One registered op per encoding (the op name is the wrapper's), over one implementation.
template <int Encoding>
struct Gaussian;
template <>
struct Gaussian<kMSRA> {
  static constexpr const char* op = "pyhpe.msra_heatmaps";
};
template <>
struct Gaussian<kUDP> {
  static constexpr const char* op = "pyhpe.udp_heatmaps";
};
template <>
struct Gaussian<kUnbiased> {
  static constexpr const char* op = "pyhpe.unbiased_heatmaps";
};

template <int Encoding>
std::tuple<at::Tensor, at::Tensor> encoding_heatmaps(const at::Tensor& keypoints,
                                                     const at::Tensor& visibility,
                                                     const at::Tensor& sigma, int64_t width,
                                                     int64_t height) {
  return gaussian_heatmaps(Gaussian<Encoding>::op, Encoding, keypoints, visibility, sigma, width,
                           height);
}

template <int Encoding>
at::Tensor encoding_heatmaps_out(const at::Tensor& keypoints, const at::Tensor& visibility,
                                 const at::Tensor& sigma, at::Tensor& out) {
  return gaussian_heatmaps_out(Gaussian<Encoding>::op, Encoding, keypoints, visibility, sigma,
                               out);
}

// ----------------------------------------------------------------------------------------
// SimCC labels
// ----------------------------------------------------------------------------------------

void check_simcc(const char* op, const at::Tensor& kp, const at::Tensor& vis, double sigma_x,
                 double sigma_y, double split_ratio) {
  checks::floating(op, kp, "keypoints");
  checks::dim(op, kp, "keypoints", 3, "(B, K, 2)");
  TORCH_CHECK_VALUE(kp.size(2) >= 2, op, ": 'keypoints' must have shape (B, K, 2), got ",
                    checks::describe(kp));
  checks::same_dtype(op, vis, "visibility", kp, "keypoints");
  checks::same_device(op, vis, "visibility", kp, "keypoints");
  checks::dim(op, vis, "visibility", 2, "(B, K)");
  for (int d = 0; d < 2; ++d) checks::size(op, vis, "visibility", d, kp.size(d), "(B, K)");
  TORCH_CHECK_VALUE(sigma_x > 0 && sigma_y > 0 && std::isfinite(sigma_x) &&
                        std::isfinite(sigma_y),
                    op, ": 'sigma' must be positive and finite, got (", sigma_x, ", ", sigma_y,
                    ")");
  TORCH_CHECK_VALUE(split_ratio > 0 && std::isfinite(split_ratio), op,
                    ": 'split_ratio' must be positive and finite, got ", split_ratio);
}

// normalize divides by sigma * sqrt(2 pi): a sigma so small that the peak overflows the
// dtype is refused (unnormalized labels take the sigma -> 0 limit instead, heatmap_math.h).
void check_simcc_peak(const char* op, const at::Tensor& kp, double sigma_x, double sigma_y,
                      bool normalize) {
  if (!normalize) return;
  const double max_value = kp.scalar_type() == at::kFloat
                               ? static_cast<double>(std::numeric_limits<float>::max())
                               : std::numeric_limits<double>::max();
  for (const double sigma : {sigma_x, sigma_y}) {
    TORCH_CHECK_VALUE(sigma * 2.5066282746310002 >= 1.0 / max_value, op,
                      ": 'sigma' is too small for normalize=True: the peak 1 / (sigma * "
                      "sqrt(2 pi)) overflows ", kp.scalar_type(), ", got (", sigma_x, ", ",
                      sigma_y, ")");
  }
}

at::Tensor simcc_impl(const at::Tensor& kp_in, const at::Tensor& vis_in, double sigma_x,
                      double sigma_y, double split_ratio, bool normalize, at::Tensor& x_labels,
                      at::Tensor& y_labels) {
  const int64_t B = kp_in.size(0), K = kp_in.size(1);
  at::Tensor weights = at::empty({B, K}, kp_in.options());
  if (weights.numel() == 0) return weights;
  at::Tensor kp = kp_in.contiguous(), vis = vis_in.contiguous();
  write_into(x_labels, [&](at::Tensor& xl) {
    write_into(y_labels, [&](at::Tensor& yl) {
      AT_DISPATCH_FLOATING_TYPES(kp.scalar_type(), "simcc_labels", [&] {
        SimCCArgs<scalar_t> a;
        a.keypoints = kp.data_ptr<scalar_t>();
        a.visibility = vis.data_ptr<scalar_t>();
        a.B = B;
        a.K = K;
        a.C = kp.size(2);
        a.Wx = xl.size(2);
        a.Wy = yl.size(2);
        a.sigma_x = sigma_x;
        a.sigma_y = sigma_y;
        a.split_ratio = split_ratio;
        a.normalize = normalize;
        a.x_labels = xl.data_ptr<scalar_t>();
        a.y_labels = yl.data_ptr<scalar_t>();
        a.weights = weights.data_ptr<scalar_t>();
        PYHPE_LAUNCH(kp, simcc_labels, a);
      });
    });
  });
  return weights;
}

// mmpose: W = np.around(w * simcc_split_ratio), half to even; range-checked before the
// cast.
int64_t simcc_length(const char* op, int64_t size, double ratio, const char* axis) {
  const double bins = std::nearbyint(static_cast<double>(size) * ratio);
  TORCH_CHECK_VALUE(bins <= static_cast<double>(kMaxSimccBins), op, ": 'input_size' ", axis,
                    " = ", size, " with split_ratio ", ratio, " asks for ", bins,
                    " label bins, more than ", kMaxSimccBins);
  return static_cast<int64_t>(bins);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> simcc_labels(
    const at::Tensor& keypoints, const at::Tensor& visibility, int64_t width, int64_t height,
    double sigma_x, double sigma_y, double split_ratio, bool normalize) {
  const char* op = "pyhpe.simcc_labels";
  check_simcc(op, keypoints, visibility, sigma_x, sigma_y, split_ratio);
  check_simcc_peak(op, keypoints, sigma_x, sigma_y, normalize);
  check_size(op, width, height, "input_size", kMaxSimccBins);
  require_cuda_build(op, keypoints);
  const int64_t B = keypoints.size(0), K = keypoints.size(1);
  const int64_t Wx = simcc_length(op, width, split_ratio, "w");
  const int64_t Wy = simcc_length(op, height, split_ratio, "h");
  check_numel(op, "x_labels", {B, K, Wx});
  check_numel(op, "y_labels", {B, K, Wy});
  at::Tensor x_labels = cpu::empty_cached({B, K, Wx}, keypoints.options());
  at::Tensor y_labels = cpu::empty_cached({B, K, Wy}, keypoints.options());
  at::Tensor weights = simcc_impl(keypoints, visibility, sigma_x, sigma_y, split_ratio,
                                  normalize, x_labels, y_labels);
  return {x_labels, y_labels, weights};
}

at::Tensor simcc_labels_out(const at::Tensor& keypoints, const at::Tensor& visibility,
                            double sigma_x, double sigma_y, double split_ratio, bool normalize,
                            at::Tensor& x_out, at::Tensor& y_out) {
  const char* op = "pyhpe.simcc_labels";
  check_simcc(op, keypoints, visibility, sigma_x, sigma_y, split_ratio);
  check_simcc_peak(op, keypoints, sigma_x, sigma_y, normalize);
  require_cuda_build(op, keypoints);
  checks::dim(op, x_out, "x_out", 3, "(B, K, Wx)");
  checks::dim(op, y_out, "y_out", 3, "(B, K, Wy)");
  const int64_t B = keypoints.size(0), K = keypoints.size(1);
  check_out(op, x_out, "x_out", keypoints, {B, K, x_out.size(2)}, "(B, K, Wx)");
  check_out(op, y_out, "y_out", keypoints, {B, K, y_out.size(2)}, "(B, K, Wy)");
  return simcc_impl(keypoints, visibility, sigma_x, sigma_y, split_ratio, normalize, x_out,
                    y_out);
}

// ----------------------------------------------------------------------------------------
// Part affinity fields
// ----------------------------------------------------------------------------------------

// Validated (L, 2) int64 limb list on the keypoints' device. Limbs are checked on the host:
// limbs on the CPU (what the Python wrapper and the codecs pass) need no copy back from the
// device, and reach a CUDA device by an asynchronous copy from pinned memory, so a training
// step that makes PAF targets on the GPU never waits for it; limbs already on the device are
// copied to the host for the check (a synchronisation).
at::Tensor checked_limbs(const char* op, const at::Tensor& limbs, const at::Tensor& kp) {
  checks::integral(op, limbs, "limbs");
  if (!limbs.is_cpu()) checks::same_device(op, limbs, "limbs", kp, "keypoints");
  checks::dim(op, limbs, "limbs", 2, "(L, 2)");
  checks::size(op, limbs, "limbs", 1, 2, "(L, 2)");
  const at::Tensor lim = limbs.to(at::kLong);
  at::Tensor host = lim.to(at::kCPU).contiguous();
  const int64_t* p = host.data_ptr<int64_t>();
  const int64_t K = kp.size(2);
  for (int64_t i = 0; i < host.numel(); ++i) {
    TORCH_CHECK_VALUE(p[i] >= 0 && p[i] < K, op, ": 'limbs' entries must be keypoint indices in "
                      "[0, K=", K, "), got limbs[", i / 2, "] = (", p[i - i % 2], ", ",
                      p[i - i % 2 + 1], ")");
  }
  if (kp.is_cpu()) return host;
  if (!limbs.is_cpu()) return lim.contiguous();
  return host.pin_memory().to(kp.device(), /*non_blocking=*/true);
}

at::Tensor paf_impl(const char* op, const at::Tensor& kp_in, const at::Tensor& vis_in,
                    const at::Tensor& limbs_in, double limb_width, int mode, at::Tensor& pafs) {
  TORCH_CHECK_VALUE(limb_width > 0 && std::isfinite(limb_width), op,
                    ": 'limb_width' must be positive and finite, got ", limb_width);
  at::Tensor limbs = checked_limbs(op, limbs_in, kp_in);
  const int64_t B = kp_in.size(0), L = limbs.size(0), H = pafs.size(2), W = pafs.size(3);
  at::Tensor counts = cpu::empty_cached({B, L, H, W}, kp_in.options());
  if (counts.numel() == 0) return counts;
  at::Tensor kp = kp_in.contiguous(), vis = vis_in.contiguous();
  write_into(pafs, [&](at::Tensor& out) {
    AT_DISPATCH_FLOATING_TYPES(kp.scalar_type(), "paf_targets", [&] {
      PafArgs<scalar_t> a;
      a.keypoints = kp.data_ptr<scalar_t>();
      a.visibility = vis.data_ptr<scalar_t>();
      a.limbs = limbs.data_ptr<int64_t>();
      a.B = B;
      a.N = kp.size(1);
      a.K = kp.size(2);
      a.C = kp.size(3);
      a.L = L;
      a.H = H;
      a.W = W;
      a.limb_width = limb_width;
      a.mode = mode;
      a.pafs = out.data_ptr<scalar_t>();
      a.counts = counts.data_ptr<scalar_t>();
      PYHPE_LAUNCH(kp, paf_targets, a);
    });
  });
  return counts;
}

std::tuple<at::Tensor, at::Tensor> paf_targets(const at::Tensor& keypoints,
                                               const at::Tensor& visibility,
                                               const at::Tensor& limbs, int64_t width,
                                               int64_t height, double limb_width,
                                               c10::string_view mode_str) {
  const char* op = "pyhpe.paf_targets";
  const int mode = parse_paf_mode(op, mode_str);
  check_instances(op, keypoints, visibility);
  check_size(op, width, height, "heatmap_size");
  require_cuda_build(op, keypoints);
  checks::dim(op, limbs, "limbs", 2, "(L, 2)");
  check_numel(op, "pafs", {keypoints.size(0), 2, limbs.size(0), height, width});
  at::Tensor pafs = cpu::empty_cached(
      {keypoints.size(0), 2 * limbs.size(0), height, width}, keypoints.options());
  at::Tensor counts = paf_impl(op, keypoints, visibility, limbs, limb_width, mode, pafs);
  return {pafs, counts};
}

at::Tensor paf_targets_out(const at::Tensor& keypoints, const at::Tensor& visibility,
                           const at::Tensor& limbs, double limb_width,
                           c10::string_view mode_str, at::Tensor& out) {
  const char* op = "pyhpe.paf_targets";
  const int mode = parse_paf_mode(op, mode_str);
  check_instances(op, keypoints, visibility);
  require_cuda_build(op, keypoints);
  checks::dim(op, limbs, "limbs", 2, "(L, 2)");
  checks::dim(op, out, "out", 4, "(B, 2L, H, W)");
  check_out(op, out, "out", keypoints,
            {keypoints.size(0), 2 * limbs.size(0), out.size(2), out.size(3)}, "(B, 2L, H, W)");
  return paf_impl(op, keypoints, visibility, limbs, limb_width, mode, out);
}

}  // namespace

// The PAF mode argument is called paf_mode: an argument named `mode` on a mutating op
// collides with a keyword of torch's functionalization redirect (torch 2.14).
TORCH_LIBRARY_FRAGMENT(pyhpe, m) {
  for (const char* name : {"msra_heatmaps", "udp_heatmaps", "unbiased_heatmaps"}) {
    const std::string functional =
        std::string(name) +
        "(Tensor keypoints, Tensor visibility, Tensor sigma, int width, int height) -> "
        "(Tensor, Tensor)";
    const std::string out =
        std::string(name) +
        ".out(Tensor keypoints, Tensor visibility, Tensor sigma, *, Tensor(a!) out) -> Tensor";
    m.def(functional.c_str());
    m.def(out.c_str());
  }
  m.def(
      "simcc_labels(Tensor keypoints, Tensor visibility, int width, int height, float sigma_x, "
      "float sigma_y, float split_ratio=2.0, bool normalize=False) -> "
      "(Tensor, Tensor, Tensor)");
  m.def(
      "simcc_labels.out(Tensor keypoints, Tensor visibility, float sigma_x, float sigma_y, "
      "float split_ratio, bool normalize, *, Tensor(a!) x_out, Tensor(b!) y_out) -> Tensor");
  m.def(
      "paf_targets(Tensor keypoints, Tensor visibility, Tensor limbs, int width, int height, "
      "float limb_width=1.0, str paf_mode='hard') -> (Tensor, Tensor)");
  m.def(
      "paf_targets.out(Tensor keypoints, Tensor visibility, Tensor limbs, float limb_width, "
      "str paf_mode, *, Tensor(a!) out) -> Tensor");
}

#define PYHPE_HEATMAP_IMPLS(m)                                              \
  m.impl("msra_heatmaps", &encoding_heatmaps<kMSRA>);                       \
  m.impl("msra_heatmaps.out", &encoding_heatmaps_out<kMSRA>);               \
  m.impl("udp_heatmaps", &encoding_heatmaps<kUDP>);                         \
  m.impl("udp_heatmaps.out", &encoding_heatmaps_out<kUDP>);                 \
  m.impl("unbiased_heatmaps", &encoding_heatmaps<kUnbiased>);               \
  m.impl("unbiased_heatmaps.out", &encoding_heatmaps_out<kUnbiased>);       \
  m.impl("simcc_labels", &simcc_labels);                                    \
  m.impl("simcc_labels.out", &simcc_labels_out);                            \
  m.impl("paf_targets", &paf_targets);                                      \
  m.impl("paf_targets.out", &paf_targets_out);

TORCH_LIBRARY_IMPL(pyhpe, CPU, m) { PYHPE_HEATMAP_IMPLS(m) }

#ifdef PYHPE_WITH_CUDA
TORCH_LIBRARY_IMPL(pyhpe, CUDA, m) { PYHPE_HEATMAP_IMPLS(m) }
#endif

// Targets are not differentiable: inputs (or an out tensor) that require grad are refused.
TORCH_LIBRARY_IMPL(pyhpe, Autograd, m) {
  for (const char* name :
       {"msra_heatmaps", "msra_heatmaps.out", "udp_heatmaps", "udp_heatmaps.out",
        "unbiased_heatmaps", "unbiased_heatmaps.out", "simcc_labels", "simcc_labels.out",
        "paf_targets", "paf_targets.out"}) {
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<
                     &autograd_guard::not_differentiable_kernel>());
  }
}

}  // namespace heatmap
}  // namespace pyhpe
