// Schemas and CPU/CUDA registration of the volume family (torch.ops.pyhpe.*):
// soft_argmax_3d and debiased_soft_argmax_3d (each with private _<op>_forward /
// _<op>_backward ops carrying the per-map statistics; autograd in volume_autograd.cpp) and
// gaussian_volumes.
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
#include "decode/expectation_options.h"
#include "volume/volume.h"

namespace pyhpe {
namespace volume {
namespace {

// Largest volume side: far above any pose volume (64, 88, 128), low enough that a mistyped
// size fails here with its name rather than in the allocator.
constexpr int64_t kMaxVolumeSide = 4096;

void check_volumes(const char* op, const at::Tensor& t, const char* name) {
  checks::floating(op, t, name);
  checks::dim(op, t, name, 5, "(B, K, D, H, W)");
  for (int d = 2; d < 5; ++d) {
    TORCH_CHECK_VALUE(t.size(d) <= std::numeric_limits<int>::max(), op, ": '", name,
                      "' is too large: size ", t.size(d), " at dim ", d, " exceeds ",
                      std::numeric_limits<int>::max(), ", got ", checks::describe(t));
  }
  require_cuda_build(op, t);
}

// The 3-D family keeps its own Normalize enum (volume_math.h); the option strings are parsed
// by the 2-D family's parser, whose values are these.
static_assert(kNormSoftmax == decode::kNormSoftmax && kNormSum == decode::kNormSum &&
                  kNormNone == decode::kNormNone,
              "volume and decode Normalize enums must agree");

struct Params {
  int normalize = kNormSoftmax;
  double beta = 1.0;
  bool debias = false;
};

Params soft_params(const char* op, double beta, c10::string_view normalize) {
  TORCH_CHECK_VALUE(std::isfinite(beta), op, ": 'beta' must be finite, got ", beta);
  Params p;
  p.beta = beta;
  p.normalize = decode::parse_normalize(op, normalize);
  return p;
}

Params debias_params(const char* op, double beta, c10::string_view form) {
  // beta <= 0 makes C <= 1 for every map: the debiasing is undefined or removes the wrong part.
  TORCH_CHECK_VALUE(beta > 0 && std::isfinite(beta), op,
                    ": 'beta' must be positive and finite, got ", beta);
  TORCH_CHECK_VALUE(form == "paper", op, ": 'form' must be 'paper' (C = mean(exp(beta h)) "
                    "over the voxels, centre ((W-1)/2, (H-1)/2, (D-1)/2)), got '",
                    std::string(form), "'");
  Params p;
  p.beta = beta;
  p.debias = true;
  return p;
}

template <typename T>
SoftArgmax3dArgs<T> make_args(const Params& p, int64_t M, int64_t D, int64_t H, int64_t W) {
  SoftArgmax3dArgs<T> a;
  a.volumes = nullptr;
  a.num_maps = M;
  a.D = static_cast<int>(D);
  a.H = static_cast<int>(H);
  a.W = static_cast<int>(W);
  a.normalize = p.normalize;
  a.beta = p.beta;
  a.debias = p.debias;
  a.stats = nullptr;
  a.grad = nullptr;
  a.coeffs = nullptr;
  a.out = nullptr;
  return a;
}

// (coords (B, K, 3), stats (B, K, kNumStats) float64); the backward takes the stats.
std::tuple<at::Tensor, at::Tensor> forward_impl(const char* op, const at::Tensor& v_in,
                                                const Params& p) {
  check_volumes(op, v_in, "volumes");
  const int64_t B = v_in.size(0), K = v_in.size(1), D = v_in.size(2), H = v_in.size(3),
                W = v_in.size(4);
  at::Tensor out = at::empty({B, K, 3}, v_in.options());
  at::Tensor stats = at::empty({B, K, kNumStats}, v_in.options().dtype(at::kDouble));
  if (B * K == 0) return {out, stats};
  TORCH_CHECK_VALUE(D > 0 && H > 0 && W > 0, op, ": 'volumes' must have D, H, W > 0, got ",
                    checks::describe(v_in));
  at::Tensor v = v_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "soft_argmax_3d_forward", [&] {
    auto a = make_args<scalar_t>(p, B * K, D, H, W);
    a.volumes = v.data_ptr<scalar_t>();
    a.stats = stats.data_ptr<double>();
    a.out = out.data_ptr<scalar_t>();
    PYHPE_LAUNCH(v, soft_argmax_3d_forward, a);
  });
  return {out, stats};
}

at::Tensor backward_impl(const char* op, const at::Tensor& grad_in, const at::Tensor& v_in,
                         const at::Tensor& stats_in, const Params& p) {
  check_volumes(op, v_in, "volumes");
  const int64_t B = v_in.size(0), K = v_in.size(1), D = v_in.size(2), H = v_in.size(3),
                W = v_in.size(4);
  checks::dim(op, grad_in, "grad", 3, "(B, K, 3)");
  checks::same_dtype(op, grad_in, "grad", v_in, "volumes");
  checks::same_device(op, grad_in, "grad", v_in, "volumes");
  checks::size(op, grad_in, "grad", 0, B, "(B, K, 3)");
  checks::size(op, grad_in, "grad", 1, K, "(B, K, 3)");
  checks::size(op, grad_in, "grad", 2, 3, "(B, K, 3)");
  TORCH_CHECK_TYPE(stats_in.scalar_type() == at::kDouble, op,
                   ": 'stats' must be the float64 statistics returned by the forward, got ",
                   checks::describe(stats_in));
  checks::same_device(op, stats_in, "stats", v_in, "volumes");
  checks::dim(op, stats_in, "stats", 3, "(B, K, 8)");
  checks::size(op, stats_in, "stats", 0, B, "(B, K, 8)");
  checks::size(op, stats_in, "stats", 1, K, "(B, K, 8)");
  checks::size(op, stats_in, "stats", 2, kNumStats, "(B, K, 8)");
  at::Tensor out = cpu::empty_cached({B, K, D, H, W}, v_in.options());
  if (out.numel() == 0) return out;
  at::Tensor v = v_in.contiguous(), grad = grad_in.contiguous(), stats = stats_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "soft_argmax_3d_backward", [&] {
    auto a = make_args<scalar_t>(p, B * K, D, H, W);
    a.volumes = v.data_ptr<scalar_t>();
    a.stats = stats.data_ptr<double>();
    a.grad = grad.data_ptr<scalar_t>();
    a.out = out.data_ptr<scalar_t>();
    at::Tensor coeffs;  // the CUDA backward's per-map coefficient pass
    if (v.is_cuda()) {
      coeffs = at::empty({B * K, kNumCoeffs}, stats.options());
      a.coeffs = coeffs.data_ptr<double>();
    }
    PYHPE_LAUNCH(v, soft_argmax_3d_backward, a);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> soft_argmax_3d_forward(const at::Tensor& volumes, double beta,
                                                          c10::string_view normalize) {
  const char* op = "pyhpe.soft_argmax_3d";
  return forward_impl(op, volumes, soft_params(op, beta, normalize));
}

at::Tensor soft_argmax_3d(const at::Tensor& volumes, double beta, c10::string_view normalize) {
  return std::get<0>(soft_argmax_3d_forward(volumes, beta, normalize));
}

at::Tensor soft_argmax_3d_backward(const at::Tensor& grad, const at::Tensor& volumes,
                                   const at::Tensor& stats, double beta,
                                   c10::string_view normalize) {
  const char* op = "pyhpe._soft_argmax_3d_backward";
  return backward_impl(op, grad, volumes, stats, soft_params(op, beta, normalize));
}

std::tuple<at::Tensor, at::Tensor> debiased_forward(const at::Tensor& volumes, double beta,
                                                    c10::string_view form) {
  const char* op = "pyhpe.debiased_soft_argmax_3d";
  return forward_impl(op, volumes, debias_params(op, beta, form));
}

at::Tensor debiased_soft_argmax_3d(const at::Tensor& volumes, double beta, c10::string_view form) {
  return std::get<0>(debiased_forward(volumes, beta, form));
}

at::Tensor debiased_backward(const at::Tensor& grad, const at::Tensor& volumes,
                             const at::Tensor& stats, double beta, c10::string_view form) {
  const char* op = "pyhpe._debiased_soft_argmax_3d_backward";
  return backward_impl(op, grad, volumes, stats, debias_params(op, beta, form));
}

// ---- Gaussian targets -------------------------------------------------------------------

std::tuple<at::Tensor, at::Tensor> gaussian_volumes(const at::Tensor& kp_in,
                                                    const at::Tensor& vis_in,
                                                    const at::Tensor& sigma_in, int64_t width,
                                                    int64_t height, int64_t depth) {
  const char* op = "pyhpe.gaussian_volumes";
  checks::floating(op, kp_in, "keypoints");
  checks::dim(op, kp_in, "keypoints", 3, "(B, K, 3)");
  TORCH_CHECK_VALUE(kp_in.size(2) >= 3, op, ": 'keypoints' must have shape (B, K, 3) "
                    "(x, y, z first), got ", checks::describe(kp_in));
  checks::same_dtype(op, vis_in, "visibility", kp_in, "keypoints");
  checks::same_device(op, vis_in, "visibility", kp_in, "keypoints");
  checks::dim(op, vis_in, "visibility", 2, "(B, K)");
  for (int d = 0; d < 2; ++d) checks::size(op, vis_in, "visibility", d, kp_in.size(d), "(B, K)");
  checks::floating(op, sigma_in, "sigma");
  checks::same_device(op, sigma_in, "sigma", kp_in, "keypoints");
  checks::dim(op, sigma_in, "sigma", 2, "(B|1, K|1)");
  const int64_t B = kp_in.size(0), K = kp_in.size(1);
  for (int d = 0; d < 2; ++d) {
    const int64_t full = d == 0 ? B : K;
    TORCH_CHECK_VALUE(sigma_in.size(d) == 1 || sigma_in.size(d) == full, op,
                      ": 'sigma' must broadcast to (B, K) = (", B, ", ", K, "), got ",
                      checks::describe(sigma_in));
  }
  TORCH_CHECK_VALUE(width >= 0 && height >= 0 && depth >= 0 && width <= kMaxVolumeSide &&
                        height <= kMaxVolumeSide && depth <= kMaxVolumeSide,
                    op, ": 'volume_size' (W, H, D) must be in [0, ", kMaxVolumeSide,
                    "] each, got (", width, ", ", height, ", ", depth, ")");
  require_cuda_build(op, kp_in);
  int64_t numel = 1;
  bool overflow = false;
  for (const int64_t d : {B, K, depth, height, width}) overflow |= c10::mul_overflows(numel, d, &numel);
  TORCH_CHECK_VALUE(!overflow, op, ": the requested volumes (", B, ", ", K, ", ", depth, ", ",
                    height, ", ", width, ") have more elements than int64 can count");
  at::Tensor volumes = cpu::empty_cached({B, K, depth, height, width}, kp_in.options());
  at::Tensor weights = at::empty({B, K}, kp_in.options());
  if (weights.numel() == 0) return {volumes, weights};
  at::Tensor kp = kp_in.contiguous(), vis = vis_in.contiguous();
  at::Tensor sigma = sigma_in.to(at::kDouble).expand({B, K}).contiguous();
  AT_DISPATCH_FLOATING_TYPES(kp.scalar_type(), "gaussian_volumes", [&] {
    GaussianVolumeArgs<scalar_t> a;
    a.keypoints = kp.data_ptr<scalar_t>();
    a.visibility = vis.data_ptr<scalar_t>();
    a.sigma = sigma.data_ptr<double>();
    a.B = B;
    a.K = K;
    a.C = kp.size(2);
    a.D = depth;
    a.H = height;
    a.W = width;
    a.volumes = volumes.data_ptr<scalar_t>();
    a.weights = weights.data_ptr<scalar_t>();
    PYHPE_LAUNCH(kp, gaussian_volumes, a);
  });
  return {volumes, weights};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pyhpe, m) {
  // As the 2-D soft-argmax family: the public op returns coords; its private _<op>_forward
  // also returns per-map float64 statistics that _<op>_backward reuses.
  m.def("soft_argmax_3d(Tensor volumes, float beta=1.0, str normalize='softmax') -> Tensor");
  m.def("_soft_argmax_3d_forward(Tensor volumes, float beta, str normalize) "
        "-> (Tensor, Tensor)");
  m.def("_soft_argmax_3d_backward(Tensor grad, Tensor volumes, Tensor stats, float beta, "
        "str normalize) -> Tensor");
  m.def("debiased_soft_argmax_3d(Tensor volumes, float beta=1.0, str form='paper') -> Tensor");
  m.def("_debiased_soft_argmax_3d_forward(Tensor volumes, float beta, str form) "
        "-> (Tensor, Tensor)");
  m.def("_debiased_soft_argmax_3d_backward(Tensor grad, Tensor volumes, Tensor stats, "
        "float beta, str form) -> Tensor");
  m.def("gaussian_volumes(Tensor keypoints, Tensor visibility, Tensor sigma, int width, "
        "int height, int depth) -> (Tensor, Tensor)");
}

#define PYHPE_VOLUME_IMPLS(m)                                                  \
  m.impl("soft_argmax_3d", &soft_argmax_3d);                                   \
  m.impl("_soft_argmax_3d_forward", &soft_argmax_3d_forward);                  \
  m.impl("_soft_argmax_3d_backward", &soft_argmax_3d_backward);                \
  m.impl("debiased_soft_argmax_3d", &debiased_soft_argmax_3d);                 \
  m.impl("_debiased_soft_argmax_3d_forward", &debiased_forward);               \
  m.impl("_debiased_soft_argmax_3d_backward", &debiased_backward);             \
  m.impl("gaussian_volumes", &gaussian_volumes);

TORCH_LIBRARY_IMPL(pyhpe, CPU, m) { PYHPE_VOLUME_IMPLS(m) }

#ifdef PYHPE_WITH_CUDA
TORCH_LIBRARY_IMPL(pyhpe, CUDA, m) { PYHPE_VOLUME_IMPLS(m) }
#endif

#undef PYHPE_VOLUME_IMPLS

}  // namespace volume
}  // namespace pyhpe
