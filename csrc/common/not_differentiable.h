// Autograd-key kernel for the ops that have no backward (targets, decoders, OKS, NMS, PAF
// grouping, the *_backward ops). Without it the dispatcher's autograd
// fallback hands back outputs with requires_grad=True through which no gradient ever flows.
// Under grad mode a tensor argument that requires grad is refused, naming it; otherwise the
// op runs below autograd. Boxed, so one function serves every schema; registered with
//   m.impl("op", torch::CppFunction::makeFromBoxedFunction<&not_differentiable_kernel>());
// Only family .cpp files include this (not .cu files). Without an argument that requires grad
// the call goes on to the backend kernel of the same dispatch (no second dispatch from the top).
#pragma once

#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <string>
#include <vector>

namespace pyhpe {
namespace autograd_guard {

// "pyhpe::argmax_decode" -> "pyhpe.argmax_decode", the prefix of the ops' error messages.
inline std::string dotted_name(const c10::OperatorHandle& op) {
  std::string name = op.schema().name();
  const auto pos = name.find("::");
  if (pos != std::string::npos) name.replace(pos, 2, ".");
  return name;
}

inline void not_differentiable_kernel(const c10::OperatorHandle& op, c10::DispatchKeySet keys,
                                      torch::jit::Stack* stack) {
  const auto& args = op.schema().arguments();
  const size_t first = stack->size() - args.size();
  const bool grad_mode = c10::GradMode::is_enabled();
  std::vector<at::Tensor> written;  // mutated arguments: their version counters are bumped
  for (size_t i = 0; i < args.size(); ++i) {
    const c10::IValue& v = (*stack)[first + i];
    if (!v.isTensor()) continue;
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) continue;
    const bool is_written = args[i].alias_info() != nullptr && args[i].alias_info()->isWrite();
    if (is_written) written.push_back(t);
    if (!grad_mode || !t.requires_grad()) continue;
    if (is_written) {
      TORCH_CHECK(false, dotted_name(op), ": '", args[i].name(),
                  "' requires grad, but this op is not differentiable and cannot write into "
                  "a tensor that requires grad; pass a tensor without requires_grad (or call "
                  "under torch.no_grad())");
    }
    TORCH_CHECK(false, dotted_name(op), ": is not differentiable, but '", args[i].name(),
                "' requires grad (no gradient would flow back to it); pass '", args[i].name(),
                "'.detach() or call under torch.no_grad()");
  }
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.redispatchBoxed(keys & c10::after_ADInplaceOrView_keyset, stack);
  }
  for (const at::Tensor& t : written) t.unsafeGetTensorImpl()->bump_version();
}

}  // namespace autograd_guard
}  // namespace pyhpe
