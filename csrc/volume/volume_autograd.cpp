// Autograd kernels (C++) of the volume family: soft_argmax_3d and debiased_soft_argmax_3d go
// through the decode family's first-order Function (common/expectation_autograd.h).
// gaussian_volumes and the private ops refuse inputs that require grad
// (common/not_differentiable.h).
#include <torch/library.h>

#include <string>

#include "common/expectation_autograd.h"
#include "common/not_differentiable.h"

namespace pyhpe {
namespace volume {
namespace {

using expectation_autograd::apply;
using expectation_autograd::Call;

at::Tensor soft_argmax_3d_autograd(const at::Tensor& v, double beta, c10::string_view normalize) {
  return apply(v, Call{"pyhpe.soft_argmax_3d", "pyhpe::_soft_argmax_3d_forward",
                       "pyhpe::_soft_argmax_3d_backward", beta, std::string(normalize)});
}

at::Tensor debiased_autograd(const at::Tensor& v, double beta, c10::string_view form) {
  return apply(v, Call{"pyhpe.debiased_soft_argmax_3d",
                       "pyhpe::_debiased_soft_argmax_3d_forward",
                       "pyhpe::_debiased_soft_argmax_3d_backward", beta, std::string(form)});
}

}  // namespace

TORCH_LIBRARY_IMPL(pyhpe, Autograd, m) {
  m.impl("soft_argmax_3d", &soft_argmax_3d_autograd);
  m.impl("debiased_soft_argmax_3d", &debiased_autograd);
  for (const char* name :
       {"gaussian_volumes", "_soft_argmax_3d_forward", "_soft_argmax_3d_backward",
        "_debiased_soft_argmax_3d_forward", "_debiased_soft_argmax_3d_backward"}) {
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<
                     &autograd_guard::not_differentiable_kernel>());
  }
}

}  // namespace volume
}  // namespace pyhpe
