// numpy's float64 exp, bit for bit, on the host and the device (torch-free).
//
// np.exp on a float64 array does not run one function everywhere: numpy dispatches by CPU.
// On x86-64 processors with the AVX-512 "Skylake-X" group (F, CD, BW, DQ, VL: numpy's
// AVX512_SKX / X86_V4 target; Intel since Skylake-SP, AMD since Zen 4) numpy's Linux wheels
// call Intel SVML's high-accuracy exp (__svml_exp8_ha); elsewhere they call the C library's
// exp. The two differ in the last bit for a few percent of arguments, so a result that copies
// a numpy reference (pycocotools' OKS) must take the path numpy takes on the running machine.
//
// svml_exp_ha() restates SVML's algorithm as scalar IEEE operations (every fma is one rounded
// fused multiply-add, every product and sum one rounded operation), so it gives SVML's bits on
// any CPU and on the GPU:
//   N = x log2(e) rounded toward zero to a multiple of 1/16 (one fused operation in SVML),
//   r = (x - N ln2_hi) - N ln2_lo,  exp(x) = 2^floor(N) Th[j] (1 + p(r) + Tlr[j]),
// with j the 4 fraction bits of N, Th/Tlr the 16-entry table of 2^(j/16) (head, relative
// tail) and p a degree-6 polynomial. Arguments with |x| >= 707.70 (and infinities) take
// SVML's scalar "rare" branch: a 64-entry table, non-fused operations, and its own rounding
// of subnormal results.
//
// NumpyExpPath selects the path; numpy_exp() dispatches. The path numpy takes on the running
// machine is decided once at run time (pyhpe.cpu::numpy_exp_path()).
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/fp.h"
#include "common/hd.h"

namespace pyhpe {

enum NumpyExpPath : int {
  kNumpyExpLibm = 0,  // the C library's exp (numpy's scalar loop)
  kNumpyExpSvml = 1,  // SVML's __svml_exp8_ha (numpy on AVX512_SKX machines)
};

namespace npexp {

PYHPE_HD_INLINE double from_bits(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
#endif
}

PYHPE_HD_INLINE uint64_t to_bits(double d) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(d));
#else
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
#endif
}

PYHPE_HD_INLINE double fma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return fma(a, b, c);
#endif
}

// The tables, once for the host and once in the device's constant memory.
#define PYHPE_SVML_EXP_TH16 {                                            \
    0x3ff0000000000000ULL, 0x3ff0b5586cf9890fULL, 0x3ff172b83c7d517bULL, \
    0x3ff2387a6e756238ULL, 0x3ff306fe0a31b715ULL, 0x3ff3dea64c123422ULL, \
    0x3ff4bfdad5362a27ULL, 0x3ff5ab07dd485429ULL, 0x3ff6a09e667f3bcdULL, \
    0x3ff7a11473eb0187ULL, 0x3ff8ace5422aa0dbULL, 0x3ff9c49182a3f090ULL, \
    0x3ffae89f995ad3adULL, 0x3ffc199bdd85529cULL, 0x3ffd5818dcfba487ULL, \
    0x3ffea4afa2a490daULL, }
#define PYHPE_SVML_EXP_TLR16 {                                           \
    0x0000000000000000ULL, 0x3c979aa65d837b6dULL, 0xbc801b15eaa59348ULL, \
    0x3c968efde3a8a894ULL, 0x3c834d754db0abb6ULL, 0x3c859f48a72a4c6dULL, \
    0x3c7690cebb7aafb0ULL, 0x3c9063e1e21c5409ULL, 0xbc93b3efbf5e2228ULL, \
    0xbc7b32dcb94da51dULL, 0x3c8db72fc1f0eab4ULL, 0x3c71affc2b91ce27ULL, \
    0x3c8c1a7792cb3387ULL, 0x3c736eae30af0cb3ULL, 0x3c74a385a63d07a7ULL, \
    0xbc8ff7128fd391f0ULL, }
#define PYHPE_SVML_EXP_HI64 {                                            \
    0x3ff0000000000000ULL, 0x3ff02c9a3e778061ULL, 0x3ff059b0d3158574ULL, \
    0x3ff0874518759bc8ULL, 0x3ff0b5586cf9890fULL, 0x3ff0e3ec32d3d1a2ULL, \
    0x3ff11301d0125b51ULL, 0x3ff1429aaea92de0ULL, 0x3ff172b83c7d517bULL, \
    0x3ff1a35beb6fcb75ULL, 0x3ff1d4873168b9aaULL, 0x3ff2063b88628cd6ULL, \
    0x3ff2387a6e756238ULL, 0x3ff26b4565e27cddULL, 0x3ff29e9df51fdee1ULL, \
    0x3ff2d285a6e4030bULL, 0x3ff306fe0a31b715ULL, 0x3ff33c08b26416ffULL, \
    0x3ff371a7373aa9cbULL, 0x3ff3a7db34e59ff7ULL, 0x3ff3dea64c123422ULL, \
    0x3ff4160a21f72e2aULL, 0x3ff44e086061892dULL, 0x3ff486a2b5c13cd0ULL, \
    0x3ff4bfdad5362a27ULL, 0x3ff4f9b2769d2ca7ULL, 0x3ff5342b569d4f82ULL, \
    0x3ff56f4736b527daULL, 0x3ff5ab07dd485429ULL, 0x3ff5e76f15ad2148ULL, \
    0x3ff6247eb03a5585ULL, 0x3ff6623882552225ULL, 0x3ff6a09e667f3bcdULL, \
    0x3ff6dfb23c651a2fULL, 0x3ff71f75e8ec5f74ULL, 0x3ff75feb564267c9ULL, \
    0x3ff7a11473eb0187ULL, 0x3ff7e2f336cf4e62ULL, 0x3ff82589994cce13ULL, \
    0x3ff868d99b4492edULL, 0x3ff8ace5422aa0dbULL, 0x3ff8f1ae99157736ULL, \
    0x3ff93737b0cdc5e5ULL, 0x3ff97d829fde4e50ULL, 0x3ff9c49182a3f090ULL, \
    0x3ffa0c667b5de565ULL, 0x3ffa5503b23e255dULL, 0x3ffa9e6b5579fdbfULL, \
    0x3ffae89f995ad3adULL, 0x3ffb33a2b84f15fbULL, 0x3ffb7f76f2fb5e47ULL, \
    0x3ffbcc1e904bc1d2ULL, 0x3ffc199bdd85529cULL, 0x3ffc67f12e57d14bULL, \
    0x3ffcb720dcef9069ULL, 0x3ffd072d4a07897cULL, 0x3ffd5818dcfba487ULL, \
    0x3ffda9e603db3285ULL, 0x3ffdfc97337b9b5fULL, 0x3ffe502ee78b3ff6ULL, \
    0x3ffea4afa2a490daULL, 0x3ffefa1bee615a27ULL, 0x3fff50765b6e4540ULL, \
    0x3fffa7c1819e90d8ULL, }
#define PYHPE_SVML_EXP_LO64 {                                            \
    0x0000000000000000ULL, 0xbc7160139cd8dc5dULL, 0x3c8cd2523567f613ULL, \
    0x3c60f74e61e6c861ULL, 0x3c979aa65d837b6dULL, 0x3c3ebe3d702f9cd1ULL, \
    0xbc9556522a2fbd0eULL, 0xbc91c923b9d5f416ULL, 0xbc801b15eaa59348ULL, \
    0x3c8b898c3f1353bfULL, 0x3c9aecf73e3a2f60ULL, 0x3c8a6f4144a6c38dULL, \
    0x3c968efde3a8a894ULL, 0x3c80472b981fe7f2ULL, 0x3c82f7e16d09ab31ULL, \
    0x3c8b3782720c0ab4ULL, 0x3c834d754db0abb6ULL, 0x3c8fdd395dd3f84aULL, \
    0xbc924aedcc4b5068ULL, 0xbc71d1e83e9436d2ULL, 0x3c859f48a72a4c6dULL, \
    0xbc58a78f4817895bULL, 0x3c4363ed60c2ac11ULL, 0x3c6ecce1daa10379ULL, \
    0x3c7690cebb7aafb0ULL, 0xbc8f94340071a38eULL, 0xbc78dec6bd0f385fULL, \
    0x3c93350518fdd78eULL, 0x3c9063e1e21c5409ULL, 0x3c9432e62b64c035ULL, \
    0xbc8c33c53bef4da8ULL, 0xbc93cedd78565858ULL, 0xbc93b3efbf5e2228ULL, \
    0xbc6367efb86da9eeULL, 0xbc781f647e5a3ecfULL, 0xbc8619321e55e68aULL, \
    0xbc7b32dcb94da51dULL, 0x3c65ebe1abd66c55ULL, 0xbc9369b6f13b3734ULL, \
    0xbc94d450d872576eULL, 0x3c8db72fc1f0eab4ULL, 0x3c7bf68359f35f44ULL, \
    0xbc5da9b88b6c1e29ULL, 0xbc92434322f4f9aaULL, 0x3c71affc2b91ce27ULL, \
    0xbc87c50422622263ULL, 0xbc91bbd1d3bcbb15ULL, 0x3c8469846e735ab3ULL, \
    0x3c8c1a7792cb3387ULL, 0xbc55c3d956dcaebaULL, 0xbc68d6f438ad9334ULL, \
    0x3c74ffd70a5fddcdULL, 0x3c736eae30af0cb3ULL, 0x3c84e08fd10959acULL, \
    0x3c676b2c6c921968ULL, 0xbc8fad5d3ffffa6fULL, 0x3c74a385a63d07a7ULL, \
    0x3c8e5a50d5c192acULL, 0xbc82d52107b43e1fULL, 0x3c74b604603a88d3ULL, \
    0xbc8ff7128fd391f0ULL, 0x3c8ec3bc41aa2008ULL, 0x3c8a64a931d185eeULL, \
    0x3c77893b4d91cd9dULL, }

static const uint64_t kTh16Host[16] = PYHPE_SVML_EXP_TH16;
static const uint64_t kTlr16Host[16] = PYHPE_SVML_EXP_TLR16;
static const uint64_t kHi64Host[64] = PYHPE_SVML_EXP_HI64;
static const uint64_t kLo64Host[64] = PYHPE_SVML_EXP_LO64;
#if defined(__CUDACC__)
static __device__ __constant__ uint64_t kTh16Dev[16] = PYHPE_SVML_EXP_TH16;
static __device__ __constant__ uint64_t kTlr16Dev[16] = PYHPE_SVML_EXP_TLR16;
static __device__ __constant__ uint64_t kHi64Dev[64] = PYHPE_SVML_EXP_HI64;
static __device__ __constant__ uint64_t kLo64Dev[64] = PYHPE_SVML_EXP_LO64;
#endif

PYHPE_HD_INLINE double svml_table(int which, int i) {
#if defined(__CUDA_ARCH__)
  switch (which) {
    case 0: return from_bits(kTh16Dev[i]);
    case 1: return from_bits(kTlr16Dev[i]);
    case 2: return from_bits(kHi64Dev[i]);
    default: return from_bits(kLo64Dev[i]);
  }
#else
  switch (which) {
    case 0: return from_bits(kTh16Host[i]);
    case 1: return from_bits(kTlr16Host[i]);
    case 2: return from_bits(kHi64Host[i]);
    default: return from_bits(kLo64Host[i]);
  }
#endif
}

// 2^e for an 11-bit biased exponent field e in [1, 2046].
PYHPE_HD_INLINE double pow2_field(uint32_t e) { return from_bits(static_cast<uint64_t>(e) << 52); }

// SVML's scalar branch for |x| >= 707.70, infinities included (NaN never reaches it).
PYHPE_HD_INLINE double svml_exp_rare(double x) {
  const uint64_t bits = to_bits(x);
  const uint32_t biased = static_cast<uint32_t>(bits >> 52) & 0x7ffu;
  if (biased == 0x7ffu) {
    if (x < 0 && (bits & 0x000fffffffffffffULL) == 0) return 0.0;  // -inf
    return mul_rn(x, x);                                             // +inf, NaN
  }
  if (biased <= 970u) return add_rn(1.0, x);
  if (x > from_bits(0x40862e42fefa39efULL)) return INFINITY;  // overflow
  if (x < from_bits(0xc0874910d52d3051ULL)) return 0.0;       // underflow
  const double shifter = from_bits(0x4338000000000000ULL);    // 1.5 * 2^52
  const double shifted = add_rn(mul_rn(x, from_bits(0x40571547652b82feULL)), shifter);
  const uint32_t low = static_cast<uint32_t>(to_bits(shifted));
  const int j = static_cast<int>(low & 63u);
  const double kd = add_rn(shifted, -shifter);
  double r = add_rn(x, -mul_rn(kd, from_bits(0x3f862e42fefa0000ULL)));
  r = add_rn(r, -mul_rn(kd, from_bits(0x3d1cf79abc9e3b3aULL)));
  double p = mul_rn(from_bits(0x3f56c16a1c2a3ffdULL), r);
  p = mul_rn(add_rn(p, from_bits(0x3f8111123aaf20d3ULL)), r);
  p = mul_rn(add_rn(p, from_bits(0x3fa5555555558fccULL)), r);
  p = mul_rn(add_rn(p, from_bits(0x3fc55555555548f8ULL)), r);
  p = mul_rn(mul_rn(add_rn(p, 0.5), r), r);
  p = add_rn(p, r);
  const double hi = svml_table(2, j);
  p = mul_rn(add_rn(p, svml_table(3, j)), hi);
  const uint32_t m_low = low >> 6;  // floor(kd / 64) modulo 2^26
  if (x < from_bits(0xc086232bdd7abcd2ULL)) {
    // Subnormal result: scale by 2^60 first, sum, then scale back in one or two roundings.
    const uint32_t e = (m_low + 1083u) & 2047u;
    const double scale = pow2_field(e);
    const double tail = mul_rn(p, scale);
    const double head = mul_rn(scale, hi);
    const double a = add_rn(head, tail);
    const double two_m60 = from_bits(0x3c30000000000000ULL);
    if (e <= 50u) return mul_rn(a, two_m60);
    const double err = add_rn(add_rn(head, -a), tail);
    const double big = mul_rn(a, from_bits(0x41f8000000000000ULL));
    const double a_hi = add_rn(add_rn(a, big), -big);
    const double a_lo = add_rn(err, add_rn(a, -a_hi));
    return add_rn(mul_rn(a_hi, two_m60), mul_rn(a_lo, two_m60));
  }
  const uint32_t e = (m_low + 1023u) & 2047u;
  const double v = add_rn(p, hi);
  if (e > 2046u) return mul_rn(mul_rn(v, pow2_field(2046u)), 2.0);
  return mul_rn(v, pow2_field(e));
}

// Fused multiply-add: one rounding (the C library's fma on the host, an instruction on the GPU).
struct FmaRn {
  PYHPE_HD_INLINE double operator()(double a, double b, double c) const { return fma_rn(a, b, c); }
};

// SVML's main branch, |x| < 707.70 and x not NaN.
template <typename Fma>
PYHPE_HD_INLINE double svml_exp_main(double x, Fma fused) {
  // N = x log2(e) rounded toward zero (down: the shifter keeps the sum positive) to 1/16.
  // The exact product is p + pe; it lies on the other side of a grid point than p only when
  // p is that grid point.
  const double log2e = from_bits(0x3ff71547652b82feULL);
  const double p = mul_rn(x, log2e);
  const double pe = fused(x, log2e, -p);
  const double p16 = mul_rn(p, 16.0);
  double n16 = floor(p16);
  if (n16 == p16 && pe < 0) n16 = add_rn(n16, -1.0);
  const double n = mul_rn(n16, 0.0625);
  const double m = floor(n);
  const int j = static_cast<int>(add_rn(n16, -mul_rn(m, 16.0)));
  double r = fused(-n, from_bits(0x3fe62e42fefa39efULL), x);
  r = fused(-n, from_bits(0x3c7abc9e3b39803fULL), r);
  const double r2 = mul_rn(r, r);
  const double c56 = fused(r, from_bits(0x3f57411836940c04ULL), from_bits(0x3f81101cbbc265c0ULL));
  const double c34 = fused(r, from_bits(0x3fa55557242d68feULL), from_bits(0x3fc5555553939732ULL));
  const double c12 = fused(r, from_bits(0x3fe000000000d008ULL), from_bits(0x3fefffffffffff70ULL));
  const double c36 = fused(c56, r2, c34);
  const double c16 = fused(c36, r2, c12);
  const double th = svml_table(0, j);
  const double poly = fused(c16, r, svml_table(1, j));
  const double v = fused(poly, th, th);
  // 2^m is exact: for |x| < 707.70, m lies in [-1021, 1021] and v in [1, 2).
  return mul_rn(v, pow2_field(static_cast<uint32_t>(static_cast<int>(m) + 1023)));
}

constexpr uint64_t kRareBound = 0x40861da04cbafe44ULL;  // 707.70...: SVML's rare branch from here

#if !defined(__CUDA_ARCH__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PYHPE_NUMPY_EXP_FMA_INSN 1
// The same branch with the FMA instruction inlined (the C library's fma is a call), for
// processors that have it; the operations and so the bits are the same.
struct FmaInsn {
  __attribute__((target("fma"))) inline double operator()(double a, double b, double c) const {
    return __builtin_fma(a, b, c);
  }
};
__attribute__((target("fma"))) inline double svml_exp_fma_insn(double x) {
  if (fabs(x) >= from_bits(kRareBound)) return svml_exp_rare(x);
  if (x != x) return x;
  return svml_exp_main(x, FmaInsn());
}
#endif

}  // namespace npexp

// SVML's __svml_exp8_ha for one argument (see the top of this file).
PYHPE_HD_INLINE double svml_exp_ha(double x) {
#if defined(PYHPE_NUMPY_EXP_FMA_INSN)
  if (__builtin_cpu_supports("fma")) return npexp::svml_exp_fma_insn(x);
#endif
  if (fabs(x) >= npexp::from_bits(npexp::kRareBound)) return npexp::svml_exp_rare(x);
  if (x != x) return x;
  return npexp::svml_exp_main(x, npexp::FmaRn());
}

// np.exp(x) for a float64 x as numpy computes it on a machine whose path is `path`.
PYHPE_HD_INLINE double numpy_exp(double x, int path) {
  return path == kNumpyExpSvml ? svml_exp_ha(x) : exp(x);
}

}  // namespace pyhpe
