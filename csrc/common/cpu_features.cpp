#include "common/cpu_features.h"

#include <atomic>

namespace pyhpe {
namespace cpu {

bool has_avx2_fma() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

namespace {
std::atomic<bool>& avx2_switch() {
  static std::atomic<bool> on{has_avx2_fma()};
  return on;
}
}  // namespace

bool avx2_enabled() { return avx2_switch().load(std::memory_order_relaxed); }

bool set_avx2_enabled(bool on) { return avx2_switch().exchange(on && has_avx2_fma()); }

}  // namespace cpu
}  // namespace pyhpe
