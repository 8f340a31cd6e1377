#include "common/cpu_features.h"

#include <atomic>
#include <stdexcept>
#include <string>

#include "common/numpy_exp.h"

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

bool has_avx512_skx() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl");
  return has;
#else
  return false;
#endif
}

namespace {
std::atomic<int>& exp_path_switch() {
  static std::atomic<int> path{has_avx512_skx() ? kNumpyExpSvml : kNumpyExpLibm};
  return path;
}
}  // namespace

int numpy_exp_path() { return exp_path_switch().load(std::memory_order_relaxed); }

void check_numpy_exp_path(const char* fn, int path) {
  if (path != kNumpyExpLibm && path != kNumpyExpSvml && path != kNumpyExpAvx512f) {
    throw std::invalid_argument(std::string(fn) +
                                ": 'path' must be 0 (libm), 1 (svml) or 2 (avx512f), got " +
                                std::to_string(path));
  }
}

int set_numpy_exp_path(int path) {
  check_numpy_exp_path("pyhpe._set_numpy_exp_path", path);
  return exp_path_switch().exchange(path);
}

}  // namespace cpu
}  // namespace pyhpe
