// Input checks shared by every op family. Each failure names the argument, what was
// expected and what was received; TORCH_CHECK_VALUE/TYPE surface as ValueError/TypeError.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <sstream>
#include <string>

namespace pyhpe {
namespace checks {

inline std::string describe(const at::Tensor& t) {
  std::ostringstream os;
  os << "shape " << t.sizes() << ", dtype " << t.scalar_type() << ", device " << t.device();
  return os.str();
}

inline void floating(const char* op, const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": '",
                   name, "' must be float32 or float64, got ", describe(t));
}

inline void same_dtype(const char* op, const at::Tensor& t, const char* name,
                       const at::Tensor& ref, const char* ref_name) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": '", name,
                   "' must have the dtype of '", ref_name, "' (", ref.scalar_type(), "), got ",
                   describe(t));
}

inline void integral(const char* op, const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong || t.scalar_type() == at::kInt, op, ": '", name,
                   "' must be int64 or int32, got ", describe(t));
}

inline void same_device(const char* op, const at::Tensor& t, const char* name,
                        const at::Tensor& ref, const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), op, ": '", name, "' must be on the device of '",
              ref_name, "' (", ref.device(), "), got ", describe(t));
}

inline void dim(const char* op, const at::Tensor& t, const char* name, int64_t ndim,
                const char* expected_shape) {
  TORCH_CHECK_VALUE(t.dim() == ndim, op, ": '", name, "' must have shape ", expected_shape,
                    ", got ", describe(t));
}

inline void size(const char* op, const at::Tensor& t, const char* name, int64_t d,
                 int64_t expected, const char* expected_shape) {
  TORCH_CHECK_VALUE(t.size(d) == expected, op, ": '", name, "' must have shape ",
                    expected_shape, " (size ", expected, " at dim ", d, "), got ", describe(t));
}

}  // namespace checks
}  // namespace pyhpe
