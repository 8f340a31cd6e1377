// Autograd kernels (C++) of the decode family. soft_argmax, debiased_soft_argmax and dsnt go
// through the shared first-order Function of common/expectation_autograd.h. The ops without a
// backward (argmax_decode, dark_decode, simcc_decode and the private ops) refuse inputs that
// require grad (common/not_differentiable.h). Kept apart from decode.cpp so that only this
// file pays for the autograd headers.
#include <torch/library.h>

#include <string>

#include "common/expectation_autograd.h"
#include "common/not_differentiable.h"

namespace pyhpe {
namespace decode {
namespace {

using expectation_autograd::apply;
using expectation_autograd::Call;

at::Tensor soft_argmax_autograd(const at::Tensor& h, double beta, c10::string_view normalize) {
  return apply(h, Call{"pyhpe.soft_argmax", "pyhpe::_soft_argmax_forward",
                       "pyhpe::_soft_argmax_backward", beta, std::string(normalize)});
}

at::Tensor debiased_autograd(const at::Tensor& h, double beta, c10::string_view form) {
  return apply(h, Call{"pyhpe.debiased_soft_argmax", "pyhpe::_debiased_soft_argmax_forward",
                       "pyhpe::_debiased_soft_argmax_backward", beta, std::string(form)});
}

at::Tensor dsnt_autograd(const at::Tensor& h, double beta, c10::string_view normalize) {
  return apply(h, Call{"pyhpe.dsnt", "pyhpe::_dsnt_forward", "pyhpe::_dsnt_backward", beta,
                       std::string(normalize)});
}

}  // namespace

TORCH_LIBRARY_IMPL(pyhpe, Autograd, m) {
  m.impl("soft_argmax", &soft_argmax_autograd);
  m.impl("debiased_soft_argmax", &debiased_autograd);
  m.impl("dsnt", &dsnt_autograd);
  for (const char* name :
       {"argmax_decode", "dark_decode", "simcc_decode", "_soft_argmax_forward",
        "_soft_argmax_backward", "_debiased_soft_argmax_forward",
        "_debiased_soft_argmax_backward", "_dsnt_forward", "_dsnt_backward", "topdown_rescore"}) {
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<
                     &autograd_guard::not_differentiable_kernel>());
  }
}

}  // namespace decode
}  // namespace pyhpe
