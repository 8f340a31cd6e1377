// The soft-argmax family's string options, parsed once for the 2-D (decode) and 3-D (volume)
// ops, which share the Normalize enum of decode_math.h.
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string>

#include "decode/decode_math.h"

namespace pyhpe {
namespace decode {

// 'softmax' | 'sum' | 'none' -> Normalize; a ValueError naming `op` otherwise.
inline int parse_normalize(const char* op, c10::string_view s) {
  if (s == "softmax") return kNormSoftmax;
  if (s == "sum") return kNormSum;
  if (s == "none") return kNormNone;
  TORCH_CHECK_VALUE(false, op, ": 'normalize' must be 'softmax', 'sum' or 'none', got '",
                    std::string(s), "'");
}

}  // namespace decode
}  // namespace pyhpe
