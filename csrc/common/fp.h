// Floating-point helpers shared by every *_math.h header (torch-free).
//
// *_rn: round-to-nearest products and sums that nvcc may not contract into FMAs, so that
// the GPU computes the same bits as the CPU loops and the numpy references (host compilers
// here never contract: torch builds in ISO C++ mode without -mfma).
// *_of: float/double overloads of libm functions usable from host and device code; float64
// exp_of is glibc's exp on both.
#pragma once

#include <math.h>

#include "common/hd.h"

namespace pyhpe {

PYHPE_HD_INLINE double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
PYHPE_HD_INLINE float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
PYHPE_HD_INLINE double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
PYHPE_HD_INLINE float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
// x rounded to the precision of the second argument's type, as a double: to float and back
// for float, x itself for double. On the host the float goes through a volatile: GCC 12's
// SLP vectorizer drops a (double)(float) round trip when it pairs two of them into one
// vector (wrong code at -O2 / -O3).
PYHPE_HD_INLINE double round_as(double x, float) {
#if defined(__CUDA_ARCH__)
  return static_cast<double>(__double2float_rn(x));
#else
  volatile float f = static_cast<float>(x);
  return static_cast<double>(f);
#endif
}
PYHPE_HD_INLINE double round_as(double x, double) { return x; }

// One fused multiply-add, one rounding (the C library's fma on the host).
PYHPE_HD_INLINE double fma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return fma(a, b, c);
#endif
}
PYHPE_HD_INLINE float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return fmaf(a, b, c);
#endif
}

// The C library's exp as glibc computes it (common/numpy_exp.h): on the GPU, float64 exp gives
// the host's bits rather than CUDA's own exp, which differs in the last bit.
PYHPE_HD_INLINE double glibc_exp(double x);
PYHPE_HD_INLINE double exp_of(double x) {
#if defined(__CUDA_ARCH__)
  return glibc_exp(x);
#else
  return exp(x);
#endif
}
PYHPE_HD_INLINE float exp_of(float x) { return expf(x); }
PYHPE_HD_INLINE double log_of(double x) { return log(x); }
PYHPE_HD_INLINE float log_of(float x) { return logf(x); }
PYHPE_HD_INLINE double sqrt_of(double x) { return sqrt(x); }
PYHPE_HD_INLINE float sqrt_of(float x) { return sqrtf(x); }
PYHPE_HD_INLINE double floor_of(double x) { return floor(x); }
PYHPE_HD_INLINE float floor_of(float x) { return floorf(x); }
PYHPE_HD_INLINE double ceil_of(double x) { return ceil(x); }
PYHPE_HD_INLINE float ceil_of(float x) { return ceilf(x); }
PYHPE_HD_INLINE double rint_of(double x) { return rint(x); }
PYHPE_HD_INLINE float rint_of(float x) { return rintf(x); }

}  // namespace pyhpe

#include "common/numpy_exp.h"  // defines glibc_exp
