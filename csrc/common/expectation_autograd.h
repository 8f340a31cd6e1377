// The autograd Function shared by the expectation decoders of the decode and volume families
// (soft_argmax, debiased_soft_argmax, dsnt, soft_argmax_3d, debiased_soft_argmax_3d): it runs
// the op's private _<op>_forward (coords and per-map statistics), saves (maps, stats), returns
// the coords and calls _<op>_backward, which is first order only: a gradient taken through
// that backward raises (as torch's once_differentiable). Written in C++ rather than with
// torch.library.register_autograd because the Python route costs ~0.1 ms per forward +
// backward, as much as the kernels themselves on typical batches. Included only by the
// families' *_autograd.cpp, so that only they pay for the autograd headers.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/functions/basic_ops.h>

#include <memory>
#include <string>
#include <tuple>

namespace pyhpe {
namespace expectation_autograd {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Pair = std::tuple<at::Tensor, at::Tensor>;

template <typename Sig>
inline c10::TypedOperatorHandle<Sig> find_op(const char* name) {  // a hash lookup, once per call
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// The non-tensor arguments the ops share: beta and a mode string (normalize or form);
// private schemas (maps, beta, mode) -> (coords, stats) and (grad, maps, stats, beta, mode)
// -> grad_maps. `name` is the public op's.
struct Call {
  const char* name;
  const char* forward_op;
  const char* backward_op;
  double beta;
  std::string mode;
};

using ForwardSig = Pair(const at::Tensor&, double, c10::string_view);
using BackwardSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                               c10::string_view);

struct ExpectationFunction : public torch::autograd::Function<ExpectationFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& heatmaps,
                               const Call& c) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [coords, stats] = find_op<ForwardSig>(c.forward_op).call(heatmaps, c.beta, c.mode);
    ctx->save_for_backward({heatmaps, stats});
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
    // create_graph=True: the gradient gets a node that raises if it is differentiated.
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

inline at::Tensor apply(const at::Tensor& maps, const Call& c) {
  return ExpectationFunction::apply(maps, c)[0];
}

}  // namespace expectation_autograd
}  // namespace pyhpe
