// Schemas and CPU/CUDA registration of the decode family (torch.ops.pyhpe.*):
// argmax_decode, dark_decode, simcc_decode, soft_argmax, debiased_soft_argmax, dsnt (each with
// private _<op>_forward / _<op>_backward ops carrying the per-map statistics), transform_preds,
// affine_transform_points.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "common/checks.h"
#include "common/cpu_cache.h"
#include "common/torch_utils.h"
#include "decode/expectation_options.h"
#include "decode/decode.h"

namespace pyhpe {
namespace decode {
namespace {

// OpenCV getGaussianKernel(ksize, sigma <= 0, CV_32F / CV_64F), as cv2.GaussianBlur builds
// it for float32 / float64 images: fixed tables for ksize <= 7, else
// sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8, normalized to sum 1 in double.
template <typename T>
void opencv_gaussian_kernel(int ksize, T* out) {
  static const float kSmall[4][7] = {
      {1.f},
      {0.25f, 0.5f, 0.25f},
      {0.0625f, 0.25f, 0.375f, 0.25f, 0.0625f},
      {0.03125f, 0.109375f, 0.21875f, 0.28125f, 0.21875f, 0.109375f, 0.03125f}};
  const float* fixed = (ksize % 2 == 1 && ksize <= 7) ? kSmall[ksize >> 1] : nullptr;
  const double sigma = ((ksize - 1) * 0.5 - 1) * 0.3 + 0.8;
  const double scale2 = -0.5 / (sigma * sigma);
  double sum = 0.0;
  for (int i = 0; i < ksize; ++i) {
    const double x = i - (ksize - 1) * 0.5;
    const double t = fixed ? static_cast<double>(fixed[i]) : std::exp(scale2 * x * x);
    out[i] = static_cast<T>(t);
    sum += static_cast<double>(out[i]);
  }
  sum = 1.0 / sum;
  for (int i = 0; i < ksize; ++i) out[i] = static_cast<T>(static_cast<double>(out[i]) * sum);
}

void check_kernel_size(const char* op, const char* name, int64_t kernel) {
  TORCH_CHECK_VALUE(kernel >= 3 && kernel <= kMaxKernel && kernel % 2 == 1, op, ": '", name,
                    "' must be an odd integer in [3, ", kMaxKernel,
                    "] (mmpose crops a border of (k - 1) / 2), got ", kernel);
}

// The kernels index a map's rows and columns with int.
void check_int_extent(const char* op, const at::Tensor& t, const char* name, int64_t d) {
  TORCH_CHECK_VALUE(t.size(d) <= std::numeric_limits<int>::max(), op, ": '", name,
                    "' is too large: size ", t.size(d), " at dim ", d, " exceeds ",
                    std::numeric_limits<int>::max(), ", got ", checks::describe(t));
}

void check_maps(const char* op, const at::Tensor& t, const char* name) {
  checks::floating(op, t, name);
  checks::dim(op, t, name, 4, "(B, K, H, W)");
  check_int_extent(op, t, name, 2);
  check_int_extent(op, t, name, 3);
  require_cuda_build(op, t);
}

std::tuple<at::Tensor, at::Tensor> run_heatmap_decode(const char* op, const at::Tensor& hm_in,
                                                      int method, int64_t kernel) {
  check_maps(op, hm_in, "heatmaps");
  const int64_t B = hm_in.size(0), K = hm_in.size(1), H = hm_in.size(2), W = hm_in.size(3);
  at::Tensor coords = at::empty({B, K, 2}, hm_in.options());
  at::Tensor scores = at::empty({B, K}, hm_in.options());
  if (B * K == 0) return {coords, scores};
  TORCH_CHECK_VALUE(H > 0 && W > 0, op, ": 'heatmaps' must have H, W > 0, got ",
                    checks::describe(hm_in));
  at::Tensor hm = hm_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(hm.scalar_type(), "heatmap_decode", [&] {
    HeatmapDecodeArgs<scalar_t> a;
    a.heatmaps = hm.data_ptr<scalar_t>();
    a.num_maps = B * K;
    a.H = static_cast<int>(H);
    a.W = static_cast<int>(W);
    a.method = method;
    a.radius = 0;
    for (int i = 0; i < kMaxKernel; ++i) a.weights[i] = scalar_t(0);
    if (method == kMethodDark || method == kMethodDarkUdp) {
      opencv_gaussian_kernel<scalar_t>(static_cast<int>(kernel), a.weights);
      a.radius = static_cast<int>((kernel - 1) / 2);
    }
    a.coords = coords.data_ptr<scalar_t>();
    a.scores = scores.data_ptr<scalar_t>();
    PYHPE_LAUNCH(hm, heatmap_decode, a);
  });
  return {coords, scores};
}

std::tuple<at::Tensor, at::Tensor> argmax_decode(const at::Tensor& heatmaps, bool quarter_offset,
                                                 c10::string_view offset_rule) {
  const char* op = "pyhpe.argmax_decode";
  int method = kMethodArgmax;
  if (offset_rule == "hrnet") {
    method = quarter_offset ? kMethodQuarterHRNet : kMethodArgmax;
  } else if (offset_rule == "mmpose1") {
    method = quarter_offset ? kMethodQuarterMMPose1 : kMethodArgmax;
  } else {
    TORCH_CHECK_VALUE(false, op, ": 'offset_rule' must be 'hrnet' or 'mmpose1', got '",
                      std::string(offset_rule), "'");
  }
  return run_heatmap_decode(op, heatmaps, method, 0);
}

std::tuple<at::Tensor, at::Tensor> dark_decode(const at::Tensor& heatmaps, int64_t kernel,
                                               bool udp) {
  const char* op = "pyhpe.dark_decode";
  check_kernel_size(op, "kernel", kernel);
  return run_heatmap_decode(op, heatmaps, udp ? kMethodDarkUdp : kMethodDark, kernel);
}

std::tuple<at::Tensor, at::Tensor> simcc_decode(const at::Tensor& x_in, const at::Tensor& y_in,
                                                double split_ratio, int64_t kernel_x,
                                                int64_t kernel_y) {
  const char* op = "pyhpe.simcc_decode";
  checks::floating(op, x_in, "x_labels");
  checks::dim(op, x_in, "x_labels", 3, "(B, K, Wx)");
  checks::dim(op, y_in, "y_labels", 3, "(B, K, Wy)");
  checks::same_dtype(op, y_in, "y_labels", x_in, "x_labels");
  checks::same_device(op, y_in, "y_labels", x_in, "x_labels");
  checks::size(op, y_in, "y_labels", 0, x_in.size(0), "(B, K, Wy)");
  checks::size(op, y_in, "y_labels", 1, x_in.size(1), "(B, K, Wy)");
  check_int_extent(op, x_in, "x_labels", 2);
  check_int_extent(op, y_in, "y_labels", 2);
  require_cuda_build(op, x_in);
  TORCH_CHECK_VALUE(split_ratio > 0 && std::isfinite(split_ratio), op,
                    ": 'split_ratio' must be positive and finite, got ", split_ratio);
  if (kernel_x != 0) check_kernel_size(op, "kernel_x", kernel_x);
  if (kernel_y != 0) check_kernel_size(op, "kernel_y", kernel_y);
  const int64_t B = x_in.size(0), K = x_in.size(1);
  at::Tensor coords = at::empty({B, K, 2}, x_in.options());
  at::Tensor scores = at::empty({B, K}, x_in.options());
  if (B * K == 0) return {coords, scores};
  TORCH_CHECK_VALUE(x_in.size(2) > 0 && y_in.size(2) > 0, op,
                    ": 'x_labels' and 'y_labels' need at least one bin, got ",
                    checks::describe(x_in), " and ", checks::describe(y_in));
  at::Tensor xl = x_in.contiguous(), yl = y_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(xl.scalar_type(), "simcc_decode", [&] {
    SimccDecodeArgs<scalar_t> a;
    a.x_labels = xl.data_ptr<scalar_t>();
    a.y_labels = yl.data_ptr<scalar_t>();
    a.num_maps = B * K;
    a.Wx = static_cast<int>(xl.size(2));
    a.Wy = static_cast<int>(yl.size(2));
    a.split_ratio = static_cast<scalar_t>(split_ratio);
    for (int i = 0; i < kMaxKernel; ++i) a.weights_x[i] = a.weights_y[i] = scalar_t(0);
    a.radius_x = static_cast<int>(kernel_x > 0 ? (kernel_x - 1) / 2 : 0);
    a.radius_y = static_cast<int>(kernel_y > 0 ? (kernel_y - 1) / 2 : 0);
    if (kernel_x > 0) opencv_gaussian_kernel<scalar_t>(static_cast<int>(kernel_x), a.weights_x);
    if (kernel_y > 0) opencv_gaussian_kernel<scalar_t>(static_cast<int>(kernel_y), a.weights_y);
    a.coords = coords.data_ptr<scalar_t>();
    a.scores = scores.data_ptr<scalar_t>();
    PYHPE_LAUNCH(xl, simcc_decode, a);
  });
  return {coords, scores};
}

// ---- soft-argmax family -----------------------------------------------------------------

struct ExpectationParams {
  int normalize = kNormSoftmax;
  double beta = 1.0;
  bool dsnt_grid = false;
  int debias = kDebiasNone;
};

int parse_form(const char* op, c10::string_view s) {
  if (s == "paper") return kDebiasPaper;
  if (s == "mmpose") return kDebiasMMPose;
  TORCH_CHECK_VALUE(false, op, ": 'form' must be 'paper' or 'mmpose', got '", std::string(s),
                    "'");
}

template <typename T>
ExpectationArgs<T> make_expectation_args(const ExpectationParams& p, int64_t M, int64_t H,
                                         int64_t W) {
  ExpectationArgs<T> a;
  a.num_maps = M;
  a.H = static_cast<int>(H);
  a.W = static_cast<int>(W);
  a.normalize = p.normalize;
  a.beta = p.beta;
  if (p.dsnt_grid) {  // dsntnn normalized_linspace: (2 i + 1) / n - 1
    a.ax = 2.0 / static_cast<double>(W);
    a.bx = -(static_cast<double>(W) - 1.0) / static_cast<double>(W);
    a.ay = 2.0 / static_cast<double>(H);
    a.by = -(static_cast<double>(H) - 1.0) / static_cast<double>(H);
  } else {
    a.ax = a.ay = 1.0;
    a.bx = a.by = 0.0;
  }
  a.debias = p.debias;
  if (p.debias == kDebiasPaper) {
    a.gamma = p.beta;
    a.count_factor = static_cast<double>(H) * static_cast<double>(W);
    a.cx = (static_cast<double>(W) - 1.0) * 0.5;
    a.cy = (static_cast<double>(H) - 1.0) * 0.5;
  } else {
    a.gamma = 1.0;
    a.count_factor = 1.0;
    a.cx = static_cast<double>(W) * 0.5;
    a.cy = static_cast<double>(H) * 0.5;
  }
  a.stats = nullptr;
  a.grad = nullptr;
  a.coeffs = nullptr;
  a.out = nullptr;
  return a;
}

// Returns (coords (B, K, 2), stats (B, K, kNumStats) float64); the backward takes the stats.
std::tuple<at::Tensor, at::Tensor> expectation_forward(const char* op, const at::Tensor& hm_in,
                                                       const ExpectationParams& p) {
  check_maps(op, hm_in, "heatmaps");
  TORCH_CHECK_VALUE(std::isfinite(p.beta), op, ": 'beta' must be finite, got ", p.beta);
  const int64_t B = hm_in.size(0), K = hm_in.size(1), H = hm_in.size(2), W = hm_in.size(3);
  at::Tensor out = at::empty({B, K, 2}, hm_in.options());
  at::Tensor stats = at::empty({B, K, kNumStats}, hm_in.options().dtype(at::kDouble));
  if (B * K == 0) return {out, stats};
  TORCH_CHECK_VALUE(H > 0 && W > 0, op, ": 'heatmaps' must have H, W > 0, got ",
                    checks::describe(hm_in));
  at::Tensor hm = hm_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(hm.scalar_type(), "expectation_forward", [&] {
    auto a = make_expectation_args<scalar_t>(p, B * K, H, W);
    a.heatmaps = hm.data_ptr<scalar_t>();
    a.stats = stats.data_ptr<double>();
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(hm, expectation_forward, a);
  });
  return {out, stats};
}

at::Tensor expectation_backward(const char* op, const at::Tensor& grad_in,
                                const at::Tensor& hm_in, const at::Tensor& stats_in,
                                const ExpectationParams& p) {
  check_maps(op, hm_in, "heatmaps");
  const int64_t B = hm_in.size(0), K = hm_in.size(1), H = hm_in.size(2), W = hm_in.size(3);
  checks::dim(op, grad_in, "grad", 3, "(B, K, 2)");
  checks::same_dtype(op, grad_in, "grad", hm_in, "heatmaps");
  checks::same_device(op, grad_in, "grad", hm_in, "heatmaps");
  checks::size(op, grad_in, "grad", 0, B, "(B, K, 2)");
  checks::size(op, grad_in, "grad", 1, K, "(B, K, 2)");
  checks::size(op, grad_in, "grad", 2, 2, "(B, K, 2)");
  TORCH_CHECK_TYPE(stats_in.scalar_type() == at::kDouble, op,
                   ": 'stats' must be the float64 statistics returned by the forward, got ",
                   checks::describe(stats_in));
  checks::same_device(op, stats_in, "stats", hm_in, "heatmaps");
  checks::dim(op, stats_in, "stats", 3, "(B, K, 8)");
  checks::size(op, stats_in, "stats", 0, B, "(B, K, 8)");
  checks::size(op, stats_in, "stats", 1, K, "(B, K, 8)");
  checks::size(op, stats_in, "stats", 2, kNumStats, "(B, K, 8)");
  at::Tensor out = cpu::empty_cached({B, K, H, W}, hm_in.options());
  if (out.numel() == 0) return out;
  at::Tensor hm = hm_in.contiguous(), grad = grad_in.contiguous(), stats = stats_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(hm.scalar_type(), "expectation_backward", [&] {
    auto a = make_expectation_args<scalar_t>(p, B * K, H, W);
    a.heatmaps = hm.data_ptr<scalar_t>();
    a.stats = stats.data_ptr<double>();
    a.grad = grad.data_ptr<scalar_t>();
    a.out = out.data_ptr<scalar_t>();
    at::Tensor coeffs;  // the CUDA backward's per-map coefficient pass
    if (hm.is_cuda()) {
      coeffs = at::empty({B * K, kNumCoeffs}, stats.options());
      a.coeffs = coeffs.data_ptr<double>();
    }
    PYHPE_LAUNCH(hm, expectation_backward, a);
  });
  return out;
}

ExpectationParams soft_params(const char* op, double beta, c10::string_view normalize) {
  ExpectationParams p;
  p.beta = beta;
  p.normalize = parse_normalize(op, normalize);
  return p;
}

ExpectationParams debias_params(const char* op, double beta, c10::string_view form) {
  // beta <= 0 makes C <= 1 for every map: the debiasing is undefined (beta = 0: 0 / 0) or
  // removes the wrong part.
  TORCH_CHECK_VALUE(beta > 0 && std::isfinite(beta), op,
                    ": 'beta' must be positive and finite, got ", beta);
  ExpectationParams p;
  p.beta = beta;
  p.debias = parse_form(op, form);
  return p;
}

ExpectationParams dsnt_params(const char* op, double beta, c10::string_view normalize) {
  ExpectationParams p = soft_params(op, beta, normalize);
  p.dsnt_grid = true;
  return p;
}

std::tuple<at::Tensor, at::Tensor> soft_argmax_forward(const at::Tensor& heatmaps, double beta,
                                                       c10::string_view normalize) {
  const char* op = "pyhpe.soft_argmax";
  return expectation_forward(op, heatmaps, soft_params(op, beta, normalize));
}

at::Tensor soft_argmax(const at::Tensor& heatmaps, double beta, c10::string_view normalize) {
  return std::get<0>(soft_argmax_forward(heatmaps, beta, normalize));
}

at::Tensor soft_argmax_backward(const at::Tensor& grad, const at::Tensor& heatmaps,
                                const at::Tensor& stats, double beta, c10::string_view normalize) {
  const char* op = "pyhpe._soft_argmax_backward";
  return expectation_backward(op, grad, heatmaps, stats, soft_params(op, beta, normalize));
}

std::tuple<at::Tensor, at::Tensor> debiased_soft_argmax_forward(const at::Tensor& heatmaps,
                                                                double beta,
                                                                c10::string_view form) {
  const char* op = "pyhpe.debiased_soft_argmax";
  return expectation_forward(op, heatmaps, debias_params(op, beta, form));
}

at::Tensor debiased_soft_argmax(const at::Tensor& heatmaps, double beta, c10::string_view form) {
  return std::get<0>(debiased_soft_argmax_forward(heatmaps, beta, form));
}

at::Tensor debiased_soft_argmax_backward(const at::Tensor& grad, const at::Tensor& heatmaps,
                                         const at::Tensor& stats, double beta,
                                         c10::string_view form) {
  const char* op = "pyhpe._debiased_soft_argmax_backward";
  return expectation_backward(op, grad, heatmaps, stats, debias_params(op, beta, form));
}

std::tuple<at::Tensor, at::Tensor> dsnt_forward(const at::Tensor& heatmaps, double beta,
                                                c10::string_view normalize) {
  const char* op = "pyhpe.dsnt";
  return expectation_forward(op, heatmaps, dsnt_params(op, beta, normalize));
}

at::Tensor dsnt(const at::Tensor& heatmaps, double beta, c10::string_view normalize) {
  return std::get<0>(dsnt_forward(heatmaps, beta, normalize));
}

at::Tensor dsnt_backward(const at::Tensor& grad, const at::Tensor& heatmaps,
                         const at::Tensor& stats, double beta, c10::string_view normalize) {
  const char* op = "pyhpe._dsnt_backward";
  return expectation_backward(op, grad, heatmaps, stats, dsnt_params(op, beta, normalize));
}

// ---- back-transforms --------------------------------------------------------------------

void check_points(const char* op, const at::Tensor& coords) {
  checks::floating(op, coords, "coords");
  checks::dim(op, coords, "coords", 3, "(B, K, 2)");
  checks::size(op, coords, "coords", 2, 2, "(B, K, 2)");
  require_cuda_build(op, coords);
}

// One (x, y) pair per row of coords: (B, 2) of coords' dtype and device.
void check_pairs(const char* op, const at::Tensor& t, const char* name, const at::Tensor& coords,
                 const char* shape) {
  checks::dim(op, t, name, 2, shape);
  checks::same_dtype(op, t, name, coords, "coords");
  checks::same_device(op, t, name, coords, "coords");
  checks::size(op, t, name, 0, coords.size(0), shape);
  checks::size(op, t, name, 1, 2, shape);
}

// The (W, H) a back-transform divides by: >= 1, or >= 2 for UDP's W - 1 and H - 1.
void check_crop_size(const char* op, const char* name, int64_t width, int64_t height,
                     bool use_udp) {
  const int64_t min_size = use_udp ? 2 : 1;
  TORCH_CHECK_VALUE(width >= min_size && height >= min_size, op, ": '", name,
                    "' (W, H) must be >= ", min_size, use_udp ? " with use_udp" : "", ", got (",
                    width, ", ", height, ")");
}

at::Tensor transform_preds(const at::Tensor& coords_in, const at::Tensor& center_in,
                           const at::Tensor& scale_in, int64_t width, int64_t height,
                           bool use_udp) {
  const char* op = "pyhpe.transform_preds";
  check_points(op, coords_in);
  const int64_t B = coords_in.size(0), K = coords_in.size(1);
  check_pairs(op, center_in, "center", coords_in, "(B, 2)");
  check_pairs(op, scale_in, "scale", coords_in, "(B, 2)");
  check_crop_size(op, "heatmap_size", width, height, use_udp);
  at::Tensor out = at::empty({B, K, 2}, coords_in.options());
  if (out.numel() == 0) return out;
  at::Tensor coords = coords_in.contiguous(), center = center_in.contiguous(),
             scale = scale_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(coords.scalar_type(), "transform_preds", [&] {
    TransformPredsArgs<scalar_t> a;
    a.coords = coords.data_ptr<scalar_t>();
    a.center = center.data_ptr<scalar_t>();
    a.scale = scale.data_ptr<scalar_t>();
    a.B = B;
    a.K = K;
    a.size_x = static_cast<scalar_t>(use_udp ? width - 1 : width);
    a.size_y = static_cast<scalar_t>(use_udp ? height - 1 : height);
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(coords, transform_preds, a);
  });
  return out;
}

at::Tensor affine_transform_points(const at::Tensor& coords_in, const at::Tensor& matrix_in) {
  const char* op = "pyhpe.affine_transform_points";
  check_points(op, coords_in);
  const int64_t B = coords_in.size(0), K = coords_in.size(1);
  checks::dim(op, matrix_in, "matrix", 3, "(B, 2, 3)");
  checks::same_dtype(op, matrix_in, "matrix", coords_in, "coords");
  checks::same_device(op, matrix_in, "matrix", coords_in, "coords");
  checks::size(op, matrix_in, "matrix", 0, B, "(B, 2, 3)");
  checks::size(op, matrix_in, "matrix", 1, 2, "(B, 2, 3)");
  checks::size(op, matrix_in, "matrix", 2, 3, "(B, 2, 3)");
  at::Tensor out = at::empty({B, K, 2}, coords_in.options());
  if (out.numel() == 0) return out;
  at::Tensor coords = coords_in.contiguous(), matrix = matrix_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(coords.scalar_type(), "affine_transform_points", [&] {
    AffinePointsArgs<scalar_t> a;
    a.coords = coords.data_ptr<scalar_t>();
    a.matrix = matrix.data_ptr<scalar_t>();
    a.B = B;
    a.K = K;
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(coords, affine_points, a);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> topdown_rescore(
    const at::Tensor& coords_in, const at::Tensor& scores_in, const at::Tensor& center_in,
    const at::Tensor& scale_in, const at::Tensor& box_scores_in, int64_t width, int64_t height,
    bool use_udp, double score_thr) {
  const char* op = "pyhpe.topdown_rescore";
  check_points(op, coords_in);
  const int64_t N = coords_in.size(0), K = coords_in.size(1);
  checks::dim(op, scores_in, "scores", 2, "(N, K)");
  checks::same_dtype(op, scores_in, "scores", coords_in, "coords");
  checks::same_device(op, scores_in, "scores", coords_in, "coords");
  checks::size(op, scores_in, "scores", 0, N, "(N, K)");
  checks::size(op, scores_in, "scores", 1, K, "(N, K)");
  check_pairs(op, center_in, "center", coords_in, "(N, 2)");
  check_pairs(op, scale_in, "scale", coords_in, "(N, 2)");
  TORCH_CHECK_TYPE(box_scores_in.scalar_type() == at::kDouble, op,
                   ": 'box_scores' must be float64, got ", checks::describe(box_scores_in));
  checks::same_device(op, box_scores_in, "box_scores", coords_in, "coords");
  checks::dim(op, box_scores_in, "box_scores", 1, "(N,)");
  checks::size(op, box_scores_in, "box_scores", 0, N, "(N,)");
  check_crop_size(op, "input_size", width, height, use_udp);
  TORCH_CHECK_VALUE(std::isfinite(score_thr), op, ": 'score_thr' must be finite, got ",
                    score_thr);
  const auto f64 = coords_in.options().dtype(at::kDouble);
  at::Tensor keypoints = at::empty({N, K, 3}, f64);
  at::Tensor final_scores = at::empty({N}, f64);
  if (N == 0) return {keypoints, final_scores};
  at::Tensor coords = coords_in.contiguous(), scores = scores_in.contiguous(),
             center = center_in.contiguous(), scale = scale_in.contiguous(),
             box_scores = box_scores_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(coords.scalar_type(), "topdown_rescore", [&] {
    TopdownRescoreArgs<scalar_t> a;
    a.coords = coords.data_ptr<scalar_t>();
    a.scores = scores.data_ptr<scalar_t>();
    a.center = center.data_ptr<scalar_t>();
    a.scale = scale.data_ptr<scalar_t>();
    a.box_scores = box_scores.data_ptr<double>();
    a.N = N;
    a.K = K;
    a.size_x = static_cast<scalar_t>(use_udp ? width - 1 : width);
    a.size_y = static_cast<scalar_t>(use_udp ? height - 1 : height);
    a.score_thr = static_cast<scalar_t>(score_thr);
    a.keypoints = keypoints.data_ptr<double>();
    a.final_scores = final_scores.data_ptr<double>();
    PYHPE_LAUNCH(coords, topdown_rescore, a);
  });
  return {keypoints, final_scores};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pyhpe, m) {
  m.def("argmax_decode(Tensor heatmaps, bool quarter_offset=True, str offset_rule='hrnet') "
        "-> (Tensor, Tensor)");
  m.def("dark_decode(Tensor heatmaps, int kernel=11, bool udp=False) -> (Tensor, Tensor)");
  m.def("simcc_decode(Tensor x_labels, Tensor y_labels, float split_ratio=2.0, int kernel_x=0, "
        "int kernel_y=0) -> (Tensor, Tensor)");
  // The soft-argmax family returns coords; its private _<op>_forward also returns per-map
  // float64 statistics (max, sums, expectations, 1/C) that _<op>_backward reuses instead of
  // re-reading the maps (the autograd kernels in decode_autograd.cpp pair them).
  m.def("soft_argmax(Tensor heatmaps, float beta=1.0, str normalize='softmax') -> Tensor");
  m.def("_soft_argmax_forward(Tensor heatmaps, float beta, str normalize) -> (Tensor, Tensor)");
  m.def("_soft_argmax_backward(Tensor grad, Tensor heatmaps, Tensor stats, float beta, "
        "str normalize) -> Tensor");
  m.def("debiased_soft_argmax(Tensor heatmaps, float beta=1.0, str form='paper') -> Tensor");
  m.def("_debiased_soft_argmax_forward(Tensor heatmaps, float beta, str form) "
        "-> (Tensor, Tensor)");
  m.def("_debiased_soft_argmax_backward(Tensor grad, Tensor heatmaps, Tensor stats, float beta, "
        "str form) -> Tensor");
  m.def("dsnt(Tensor heatmaps, float beta=1.0, str normalize='none') -> Tensor");
  m.def("_dsnt_forward(Tensor heatmaps, float beta, str normalize) -> (Tensor, Tensor)");
  m.def("_dsnt_backward(Tensor grad, Tensor heatmaps, Tensor stats, float beta=1.0, "
        "str normalize='none') -> Tensor");
  m.def("transform_preds(Tensor coords, Tensor center, Tensor scale, int width, int height, "
        "bool use_udp=False) -> Tensor");
  m.def("affine_transform_points(Tensor coords, Tensor matrix) -> Tensor");
  m.def("topdown_rescore(Tensor coords, Tensor scores, Tensor center, Tensor scale, "
        "Tensor box_scores, int width, int height, bool use_udp=False, float score_thr=0.2) "
        "-> (Tensor, Tensor)");
}

#define PYHPE_DECODE_IMPLS(m)                                              \
  m.impl("argmax_decode", &argmax_decode);                                 \
  m.impl("dark_decode", &dark_decode);                                     \
  m.impl("simcc_decode", &simcc_decode);                                   \
  m.impl("soft_argmax", &soft_argmax);                                     \
  m.impl("_soft_argmax_forward", &soft_argmax_forward);                     \
  m.impl("_soft_argmax_backward", &soft_argmax_backward);                   \
  m.impl("debiased_soft_argmax", &debiased_soft_argmax);                   \
  m.impl("_debiased_soft_argmax_forward", &debiased_soft_argmax_forward);   \
  m.impl("_debiased_soft_argmax_backward", &debiased_soft_argmax_backward); \
  m.impl("dsnt", &dsnt);                                                   \
  m.impl("_dsnt_forward", &dsnt_forward);                                   \
  m.impl("_dsnt_backward", &dsnt_backward);                                 \
  m.impl("transform_preds", &transform_preds);                             \
  m.impl("affine_transform_points", &affine_transform_points);             \
  m.impl("topdown_rescore", &topdown_rescore);

TORCH_LIBRARY_IMPL(pyhpe, CPU, m) { PYHPE_DECODE_IMPLS(m) }

#ifdef PYHPE_WITH_CUDA
TORCH_LIBRARY_IMPL(pyhpe, CUDA, m) { PYHPE_DECODE_IMPLS(m) }
#endif

#undef PYHPE_DECODE_IMPLS

}  // namespace decode
}  // namespace pyhpe
