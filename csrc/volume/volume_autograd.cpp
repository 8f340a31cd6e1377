// Autograd kernels (C++) of the volume family, as the decode family's: soft_argmax_3d and
// debiased_soft_argmax_3d run their private _<op>_forward (coords and per-map statistics),
// save (volumes, stats), return the coords and call _<op>_backward, which is first order
// only (a gradient taken through it raises). gaussian_volumes and the private ops refuse
// inputs that require grad (common/not_differentiable.h).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/library.h>

#include <memory>
#include <string>
#include <tuple>

#include "common/not_differentiable.h"

namespace pyhpe {
namespace volume {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Pair = std::tuple<at::Tensor, at::Tensor>;
using ForwardSig = Pair(const at::Tensor&, double, c10::string_view);
using BackwardSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                               c10::string_view);

template <typename Sig>
c10::TypedOperatorHandle<Sig> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

struct Call {
  const char* name;
  const char* forward_op;
  const char* backward_op;
  double beta;
  std::string mode;
};

struct SoftArgmax3dFunction : public torch::autograd::Function<SoftArgmax3dFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& volumes, const Call& c) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [coords, stats] = find_op<ForwardSig>(c.forward_op).call(volumes, c.beta, c.mode);
    ctx->save_for_backward({volumes, stats});
    ctx->saved_data["name"] = std::string(c.name);
    ctx->saved_data["backward_op"] = std::string(c.backward_op);
    ctx->saved_data["beta"] = c.beta;
    ctx->saved_data["mode"] = c.mode;
    ctx->set_materialize_grads(false);
    return {coords};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    const std::string op = ctx->saved_data["backward_op"].toStringRef();
    at::Tensor grad;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      grad = find_op<BackwardSig>(op.c_str())
                 .call(grads[0].contiguous(), saved[0], saved[1],
                       ctx->saved_data["beta"].toDouble(), ctx->saved_data["mode"].toStringRef());
    }
    if (c10::GradMode::is_enabled() && (grads[0].requires_grad() || saved[0].requires_grad())) {
      const std::string name = ctx->saved_data["name"].toStringRef();
      auto error = std::make_shared<torch::autograd::DelayedError>(
          name + ": double backward is not supported (the backward is first order only); "
                 "the gradient of its gradient cannot be computed",
          1);
      grad = error->apply({grad.detach().requires_grad_(true)})[0];
    }
    return {grad, at::Tensor()};
  }
};

at::Tensor soft_argmax_3d_autograd(const at::Tensor& v, double beta, c10::string_view normalize) {
  return SoftArgmax3dFunction::apply(
      v, Call{"pyhpe.soft_argmax_3d", "pyhpe::_soft_argmax_3d_forward",
              "pyhpe::_soft_argmax_3d_backward", beta, std::string(normalize)})[0];
}

at::Tensor debiased_autograd(const at::Tensor& v, double beta, c10::string_view form) {
  return SoftArgmax3dFunction::apply(
      v, Call{"pyhpe.debiased_soft_argmax_3d", "pyhpe::_debiased_soft_argmax_3d_forward",
              "pyhpe::_debiased_soft_argmax_3d_backward", beta, std::string(form)})[0];
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
