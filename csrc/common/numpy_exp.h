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
  kNumpyExpSvml = 1,  // SVML's __svml_exp8_ha (numpy's Linux wheels on AVX512_SKX machines)
  kNumpyExpAvx512f = 2,  // numpy's own AVX-512F kernel (numpy built without SVML)
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

// glibc's exp table: 128 pairs (tail, bits of 2^(i/128) less i << 45).
#define PYHPE_GLIBC_EXP_TAB256 {                                         \
    0x0000000000000000ULL, 0x3ff0000000000000ULL, 0x3c9b3b4f1a88bf6eULL, \
    0x3feff63da9fb3335ULL, 0xbc7160139cd8dc5dULL, 0x3fefec9a3e778061ULL, \
    0xbc905e7a108766d1ULL, 0x3fefe315e86e7f85ULL, 0x3c8cd2523567f613ULL, \
    0x3fefd9b0d3158574ULL, 0xbc8bce8023f98efaULL, 0x3fefd06b29ddf6deULL, \
    0x3c60f74e61e6c861ULL, 0x3fefc74518759bc8ULL, 0x3c90a3e45b33d399ULL, \
    0x3fefbe3ecac6f383ULL, 0x3c979aa65d837b6dULL, 0x3fefb5586cf9890fULL, \
    0x3c8eb51a92fdeffcULL, 0x3fefac922b7247f7ULL, 0x3c3ebe3d702f9cd1ULL, \
    0x3fefa3ec32d3d1a2ULL, 0xbc6a033489906e0bULL, 0x3fef9b66affed31bULL, \
    0xbc9556522a2fbd0eULL, 0x3fef9301d0125b51ULL, 0xbc5080ef8c4eea55ULL, \
    0x3fef8abdc06c31ccULL, 0xbc91c923b9d5f416ULL, 0x3fef829aaea92de0ULL, \
    0x3c80d3e3e95c55afULL, 0x3fef7a98c8a58e51ULL, 0xbc801b15eaa59348ULL, \
    0x3fef72b83c7d517bULL, 0xbc8f1ff055de323dULL, 0x3fef6af9388c8deaULL, \
    0x3c8b898c3f1353bfULL, 0x3fef635beb6fcb75ULL, 0xbc96d99c7611eb26ULL, \
    0x3fef5be084045cd4ULL, 0x3c9aecf73e3a2f60ULL, 0x3fef54873168b9aaULL, \
    0xbc8fe782cb86389dULL, 0x3fef4d5022fcd91dULL, 0x3c8a6f4144a6c38dULL, \
    0x3fef463b88628cd6ULL, 0x3c807a05b0e4047dULL, 0x3fef3f49917ddc96ULL, \
    0x3c968efde3a8a894ULL, 0x3fef387a6e756238ULL, 0x3c875e18f274487dULL, \
    0x3fef31ce4fb2a63fULL, 0x3c80472b981fe7f2ULL, 0x3fef2b4565e27cddULL, \
    0xbc96b87b3f71085eULL, 0x3fef24dfe1f56381ULL, 0x3c82f7e16d09ab31ULL, \
    0x3fef1e9df51fdee1ULL, 0xbc3d219b1a6fbffaULL, 0x3fef187fd0dad990ULL, \
    0x3c8b3782720c0ab4ULL, 0x3fef1285a6e4030bULL, 0x3c6e149289cecb8fULL, \
    0x3fef0cafa93e2f56ULL, 0x3c834d754db0abb6ULL, 0x3fef06fe0a31b715ULL, \
    0x3c864201e2ac744cULL, 0x3fef0170fc4cd831ULL, 0x3c8fdd395dd3f84aULL, \
    0x3feefc08b26416ffULL, 0xbc86a3803b8e5b04ULL, 0x3feef6c55f929ff1ULL, \
    0xbc924aedcc4b5068ULL, 0x3feef1a7373aa9cbULL, 0xbc9907f81b512d8eULL, \
    0x3feeecae6d05d866ULL, 0xbc71d1e83e9436d2ULL, 0x3feee7db34e59ff7ULL, \
    0xbc991919b3ce1b15ULL, 0x3feee32dc313a8e5ULL, 0x3c859f48a72a4c6dULL, \
    0x3feedea64c123422ULL, 0xbc9312607a28698aULL, 0x3feeda4504ac801cULL, \
    0xbc58a78f4817895bULL, 0x3feed60a21f72e2aULL, 0xbc7c2c9b67499a1bULL, \
    0x3feed1f5d950a897ULL, 0x3c4363ed60c2ac11ULL, 0x3feece086061892dULL, \
    0x3c9666093b0664efULL, 0x3feeca41ed1d0057ULL, 0x3c6ecce1daa10379ULL, \
    0x3feec6a2b5c13cd0ULL, 0x3c93ff8e3f0f1230ULL, 0x3feec32af0d7d3deULL, \
    0x3c7690cebb7aafb0ULL, 0x3feebfdad5362a27ULL, 0x3c931dbdeb54e077ULL, \
    0x3feebcb299fddd0dULL, 0xbc8f94340071a38eULL, 0x3feeb9b2769d2ca7ULL, \
    0xbc87deccdc93a349ULL, 0x3feeb6daa2cf6642ULL, 0xbc78dec6bd0f385fULL, \
    0x3feeb42b569d4f82ULL, 0xbc861246ec7b5cf6ULL, 0x3feeb1a4ca5d920fULL, \
    0x3c93350518fdd78eULL, 0x3feeaf4736b527daULL, 0x3c7b98b72f8a9b05ULL, \
    0x3feead12d497c7fdULL, 0x3c9063e1e21c5409ULL, 0x3feeab07dd485429ULL, \
    0x3c34c7855019c6eaULL, 0x3feea9268a5946b7ULL, 0x3c9432e62b64c035ULL, \
    0x3feea76f15ad2148ULL, 0xbc8ce44a6199769fULL, 0x3feea5e1b976dc09ULL, \
    0xbc8c33c53bef4da8ULL, 0x3feea47eb03a5585ULL, 0xbc845378892be9aeULL, \
    0x3feea34634ccc320ULL, 0xbc93cedd78565858ULL, 0x3feea23882552225ULL, \
    0x3c5710aa807e1964ULL, 0x3feea155d44ca973ULL, 0xbc93b3efbf5e2228ULL, \
    0x3feea09e667f3bcdULL, 0xbc6a12ad8734b982ULL, 0x3feea012750bdabfULL, \
    0xbc6367efb86da9eeULL, 0x3fee9fb23c651a2fULL, 0xbc80dc3d54e08851ULL, \
    0x3fee9f7df9519484ULL, 0xbc781f647e5a3ecfULL, 0x3fee9f75e8ec5f74ULL, \
    0xbc86ee4ac08b7db0ULL, 0x3fee9f9a48a58174ULL, 0xbc8619321e55e68aULL, \
    0x3fee9feb564267c9ULL, 0x3c909ccb5e09d4d3ULL, 0x3feea0694fde5d3fULL, \
    0xbc7b32dcb94da51dULL, 0x3feea11473eb0187ULL, 0x3c94ecfd5467c06bULL, \
    0x3feea1ed0130c132ULL, 0x3c65ebe1abd66c55ULL, 0x3feea2f336cf4e62ULL, \
    0xbc88a1c52fb3cf42ULL, 0x3feea427543e1a12ULL, 0xbc9369b6f13b3734ULL, \
    0x3feea589994cce13ULL, 0xbc805e843a19ff1eULL, 0x3feea71a4623c7adULL, \
    0xbc94d450d872576eULL, 0x3feea8d99b4492edULL, 0x3c90ad675b0e8a00ULL, \
    0x3feeaac7d98a6699ULL, 0x3c8db72fc1f0eab4ULL, 0x3feeace5422aa0dbULL, \
    0xbc65b6609cc5e7ffULL, 0x3feeaf3216b5448cULL, 0x3c7bf68359f35f44ULL, \
    0x3feeb1ae99157736ULL, 0xbc93091fa71e3d83ULL, 0x3feeb45b0b91ffc6ULL, \
    0xbc5da9b88b6c1e29ULL, 0x3feeb737b0cdc5e5ULL, 0xbc6c23f97c90b959ULL, \
    0x3feeba44cbc8520fULL, 0xbc92434322f4f9aaULL, 0x3feebd829fde4e50ULL, \
    0xbc85ca6cd7668e4bULL, 0x3feec0f170ca07baULL, 0x3c71affc2b91ce27ULL, \
    0x3feec49182a3f090ULL, 0x3c6dd235e10a73bbULL, 0x3feec86319e32323ULL, \
    0xbc87c50422622263ULL, 0x3feecc667b5de565ULL, 0x3c8b1c86e3e231d5ULL, \
    0x3feed09bec4a2d33ULL, 0xbc91bbd1d3bcbb15ULL, 0x3feed503b23e255dULL, \
    0x3c90cc319cee31d2ULL, 0x3feed99e1330b358ULL, 0x3c8469846e735ab3ULL, \
    0x3feede6b5579fdbfULL, 0xbc82dfcd978e9db4ULL, 0x3feee36bbfd3f37aULL, \
    0x3c8c1a7792cb3387ULL, 0x3feee89f995ad3adULL, 0xbc907b8f4ad1d9faULL, \
    0x3feeee07298db666ULL, 0xbc55c3d956dcaebaULL, 0x3feef3a2b84f15fbULL, \
    0xbc90a40e3da6f640ULL, 0x3feef9728de5593aULL, 0xbc68d6f438ad9334ULL, \
    0x3feeff76f2fb5e47ULL, 0xbc91eee26b588a35ULL, 0x3fef05b030a1064aULL, \
    0x3c74ffd70a5fddcdULL, 0x3fef0c1e904bc1d2ULL, 0xbc91bdfbfa9298acULL, \
    0x3fef12c25bd71e09ULL, 0x3c736eae30af0cb3ULL, 0x3fef199bdd85529cULL, \
    0x3c8ee3325c9ffd94ULL, 0x3fef20ab5fffd07aULL, 0x3c84e08fd10959acULL, \
    0x3fef27f12e57d14bULL, 0x3c63cdaf384e1a67ULL, 0x3fef2f6d9406e7b5ULL, \
    0x3c676b2c6c921968ULL, 0x3fef3720dcef9069ULL, 0xbc808a1883ccb5d2ULL, \
    0x3fef3f0b555dc3faULL, 0xbc8fad5d3ffffa6fULL, 0x3fef472d4a07897cULL, \
    0xbc900dae3875a949ULL, 0x3fef4f87080d89f2ULL, 0x3c74a385a63d07a7ULL, \
    0x3fef5818dcfba487ULL, 0xbc82919e2040220fULL, 0x3fef60e316c98398ULL, \
    0x3c8e5a50d5c192acULL, 0x3fef69e603db3285ULL, 0x3c843a59ac016b4bULL, \
    0x3fef7321f301b460ULL, 0xbc82d52107b43e1fULL, 0x3fef7c97337b9b5fULL, \
    0xbc892ab93b470dc9ULL, 0x3fef864614f5a129ULL, 0x3c74b604603a88d3ULL, \
    0x3fef902ee78b3ff6ULL, 0x3c83c5ec519d7271ULL, 0x3fef9a51fbc74c83ULL, \
    0xbc8ff7128fd391f0ULL, 0x3fefa4afa2a490daULL, 0xbc8dae98e223747dULL, \
    0x3fefaf482d8e67f1ULL, 0x3c8ec3bc41aa2008ULL, 0x3fefba1bee615a27ULL, \
    0x3c842b94c3a9eb32ULL, 0x3fefc52b376bba97ULL, 0x3c8a64a931d185eeULL, \
    0x3fefd0765b6e4540ULL, 0xbc8e37bae43be3edULL, 0x3fefdbfdad9cbe14ULL, \
    0x3c77893b4d91cd9dULL, 0x3fefe7c1819e90d8ULL, 0x3c5305c14160cc89ULL, \
    0x3feff3c22b8f71f1ULL }

// numpy's own AVX-512F kernel: 2^(j/32) as a head with 7 zero bits and a tail.
#define PYHPE_NUMPY_EXP_TOP32 { \
    0x3ff0000000000000ULL, 0x3ff059b0d3158540ULL, 0x3ff0b5586cf98900ULL, \
    0x3ff11301d0125b40ULL, 0x3ff172b83c7d5140ULL, 0x3ff1d4873168b980ULL, \
    0x3ff2387a6e756200ULL, 0x3ff29e9df51fdec0ULL, 0x3ff306fe0a31b700ULL, \
    0x3ff371a7373aa9c0ULL, 0x3ff3dea64c123400ULL, 0x3ff44e0860618900ULL, \
    0x3ff4bfdad5362a00ULL, 0x3ff5342b569d4f80ULL, 0x3ff5ab07dd485400ULL, \
    0x3ff6247eb03a5580ULL, 0x3ff6a09e667f3bc0ULL, 0x3ff71f75e8ec5f40ULL, \
    0x3ff7a11473eb0180ULL, 0x3ff82589994cce00ULL, 0x3ff8ace5422aa0c0ULL, \
    0x3ff93737b0cdc5c0ULL, 0x3ff9c49182a3f080ULL, 0x3ffa5503b23e2540ULL, \
    0x3ffae89f995ad380ULL, 0x3ffb7f76f2fb5e40ULL, 0x3ffc199bdd855280ULL, \
    0x3ffcb720dcef9040ULL, 0x3ffd5818dcfba480ULL, 0x3ffdfc97337b9b40ULL, \
    0x3ffea4afa2a490c0ULL, 0x3fff50765b6e4540ULL, }
#define PYHPE_NUMPY_EXP_TAIL32 { \
    0x0000000000000000ULL, 0x3d0a1d73e2a475b4ULL, 0x3ceec5317256e308ULL, \
    0x3cf0a4ebbf1aed93ULL, 0x3d0d6e6fbe462876ULL, 0x3d053c02dc0144c8ULL, \
    0x3d0c3360fd6d8e0bULL, 0x3d009612e8afad12ULL, 0x3cf52de8d5a46306ULL, \
    0x3ce54e28aa05e8a9ULL, 0x3d011ada0911f09fULL, 0x3d068189b7a04ef8ULL, \
    0x3d038ea1cbd7f621ULL, 0x3cbdf0a83c49d86aULL, 0x3d04ac64980a8c8fULL, \
    0x3cd2c7c3e81bf4b7ULL, 0x3ce921165f626cddULL, 0x3d09ee91b8797785ULL, \
    0x3cdb5f54408fdb37ULL, 0x3cf28acf88afab35ULL, 0x3cfb5ba7c55a192dULL, \
    0x3d027a280e1f92a0ULL, 0x3cf01c7c46b071f3ULL, 0x3cfc8b424491caf8ULL, \
    0x3d06af439a68bb99ULL, 0x3cdbaa9ec206ad4fULL, 0x3cfc2220cb12a092ULL, \
    0x3d048a81e5e8f4a5ULL, 0x3cdc976816bad9b8ULL, 0x3cfeb968cac39ed3ULL, \
    0x3cf9858f73a18f5eULL, 0x3c99d3e12dd8a18bULL, }

static const uint64_t kTh16Host[16] = PYHPE_SVML_EXP_TH16;
static const uint64_t kTlr16Host[16] = PYHPE_SVML_EXP_TLR16;
static const uint64_t kHi64Host[64] = PYHPE_SVML_EXP_HI64;
static const uint64_t kLo64Host[64] = PYHPE_SVML_EXP_LO64;
static const uint64_t kGlibcTabHost[256] = PYHPE_GLIBC_EXP_TAB256;
static const uint64_t kTop32Host[32] = PYHPE_NUMPY_EXP_TOP32;
static const uint64_t kTail32Host[32] = PYHPE_NUMPY_EXP_TAIL32;
#if defined(__CUDACC__)
static __device__ __constant__ uint64_t kTh16Dev[16] = PYHPE_SVML_EXP_TH16;
static __device__ __constant__ uint64_t kTlr16Dev[16] = PYHPE_SVML_EXP_TLR16;
static __device__ __constant__ uint64_t kHi64Dev[64] = PYHPE_SVML_EXP_HI64;
static __device__ __constant__ uint64_t kLo64Dev[64] = PYHPE_SVML_EXP_LO64;
static __device__ __constant__ uint64_t kGlibcTabDev[256] = PYHPE_GLIBC_EXP_TAB256;
static __device__ __constant__ uint64_t kTop32Dev[32] = PYHPE_NUMPY_EXP_TOP32;
static __device__ __constant__ uint64_t kTail32Dev[32] = PYHPE_NUMPY_EXP_TAIL32;
#endif

PYHPE_HD_INLINE double exp_table(int which, int i) {
#if defined(__CUDA_ARCH__)
  switch (which) {
    case 0: return from_bits(kTh16Dev[i]);
    case 1: return from_bits(kTlr16Dev[i]);
    case 2: return from_bits(kHi64Dev[i]);
    case 3: return from_bits(kLo64Dev[i]);
    case 4: return from_bits(kGlibcTabDev[i]);
    case 5: return from_bits(kTop32Dev[i]);
    default: return from_bits(kTail32Dev[i]);
  }
#else
  switch (which) {
    case 0: return from_bits(kTh16Host[i]);
    case 1: return from_bits(kTlr16Host[i]);
    case 2: return from_bits(kHi64Host[i]);
    case 3: return from_bits(kLo64Host[i]);
    case 4: return from_bits(kGlibcTabHost[i]);
    case 5: return from_bits(kTop32Host[i]);
    default: return from_bits(kTail32Host[i]);
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
  const double hi = exp_table(2, j);
  p = mul_rn(add_rn(p, exp_table(3, j)), hi);
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

#if !defined(__CUDACC__) && (defined(__GNUC__) || defined(__clang__))
// Forced, so that in svml_exp_fma_insn the FMA instructions inline too.
#define PYHPE_NPEXP_INLINE inline __attribute__((always_inline))
#else
#define PYHPE_NPEXP_INLINE PYHPE_HD_INLINE
#endif

// SVML's main branch, |x| < 707.70 and x not NaN.
template <typename Fma>
PYHPE_NPEXP_INLINE double svml_exp_main(double x, Fma fused) {
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
  const double th = exp_table(0, j);
  const double poly = fused(c16, r, exp_table(1, j));
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

namespace npexp {

// glibc's scaling of results whose exponent left the normal range (|x| in [512, 1024)).
PYHPE_HD_INLINE double glibc_exp_special(double tmp, uint64_t sbits, uint64_t ki) {
  if ((ki & 0x80000000ULL) == 0) {
    const double scale = from_bits(sbits - (1009ULL << 52));
    return mul_rn(fma_rn(scale, tmp, scale), from_bits(0x7f00000000000000ULL));  // * 2^1009
  }
  const double scale = from_bits(sbits + (1022ULL << 52));
  const double st = mul_rn(scale, tmp);
  double y = add_rn(scale, st);
  if (y < 1.0) {
    // Rounded once to the subnormal precision, as glibc does, before the final scaling.
    const double hi = add_rn(y, 1.0);
    const double lo = add_rn(add_rn(scale, -y), st);
    const double t = add_rn(add_rn(add_rn(1.0, -hi), y), lo);
    y = add_rn(add_rn(t, hi), -1.0);
    if (y == 0.0) y = 0.0;
  }
  return mul_rn(y, from_bits(0x0010000000000000ULL));  // * 2^-1022
}

}  // namespace npexp

// The C library's exp as glibc (2.28 and later) computes it on x86-64 processors with FMA:
// its __exp_fma build, whose compiler-contracted fused operations are part of the result.
// N = 128 table entries, r = x - k ln2/128 in two fused steps, a degree-5 polynomial. The
// host calls the C library itself (what numpy calls); this form gives the GPU the same bits,
// and a test checks it against the host's exp.
PYHPE_HD_INLINE double glibc_exp(double x) {
  using namespace npexp;
  const uint64_t bits = to_bits(x);
  uint32_t abstop = static_cast<uint32_t>(bits >> 52) & 0x7ffu;
  if (abstop - 0x3c9u >= 0x3fu) {
    if (abstop < 0x3c9u) return add_rn(x, 1.0);  // |x| < 2^-54
    if (abstop > 0x408u) {                      // |x| >= 1024, inf, NaN
      if (bits == 0xfff0000000000000ULL) return 0.0;
      if (abstop == 0x7ffu) return add_rn(x, 1.0);
      return (bits >> 63) ? 0.0 : INFINITY;
    }
    abstop = 0;  // |x| in [512, 1024): the result may leave the normal range
  }
  const double shift = from_bits(0x4338000000000000ULL);
  double kd = fma_rn(x, from_bits(0x40671547652b82feULL), shift);
  const uint64_t ki = to_bits(kd);
  kd = add_rn(kd, -shift);
  double r = fma_rn(kd, from_bits(0xbf762e42fefa0000ULL), x);
  r = fma_rn(kd, from_bits(0xbd0cf79abc9e3b3aULL), r);
  const int idx = 2 * static_cast<int>(ki % 128u);
  const uint64_t top = ki << 45;
  const double tail = exp_table(4, idx);
  const uint64_t sbits = to_bits(exp_table(4, idx + 1)) + top;
  const double r2 = mul_rn(r, r);
  const double c23 = fma_rn(r, from_bits(0x3fc555555555543cULL), from_bits(0x3fdffffffffffdbdULL));
  const double c45 = fma_rn(r, from_bits(0x3f81111167a4d017ULL), from_bits(0x3fa55555cf172b91ULL));
  const double low = fma_rn(c23, r2, add_rn(r, tail));
  const double tmp = fma_rn(mul_rn(r2, r2), c45, low);
  if (abstop == 0) return glibc_exp_special(tmp, sbits, ki);
  const double scale = from_bits(sbits);
  return fma_rn(scale, tmp, scale);
}

// numpy's own AVX-512F float64 exp (Tang's table-driven method, 32 entries), which numpy
// builds without SVML run on AVX-512F processors: k = rint(32 x / ln2), r = x - k ln2/32 in
// two parts, a degree-5 polynomial for exp(r) - 1, and 2^(k/32) from the table; |x| < 2^-54
// gives 1 and the result is scaled once by 2^floor(k/32) (one rounding for subnormals).
PYHPE_HD_INLINE double numpy_avx512f_exp(double x) {
  using namespace npexp;
  if (x != x) return x;
  if (x > from_bits(0x40862e42fefa39efULL)) return INFINITY;
  if (x < from_bits(0xc0874910d52d3053ULL)) return 0.0;
  if (fabs(x) < from_bits(0x3c90000000000000ULL)) return 1.0;
  const double shift = from_bits(0x4338000000000000ULL);
  double kd = add_rn(mul_rn(x, from_bits(0x40471547652b82feULL)), shift);
  const uint64_t ki = to_bits(kd);
  kd = add_rn(kd, -shift);
  const double r1 = fma_rn(kd, from_bits(0xbf962e42fef00000ULL), x);
  const double r2 = mul_rn(kd, from_bits(0xbd8473de6af278edULL));
  const double r = add_rn(r1, r2);
  double q = fma_rn(from_bits(0x3f56c1728d739765ULL), r, from_bits(0x3f811115b7aa905eULL));
  q = fma_rn(q, r, from_bits(0x3fa5555555545d4eULL));
  q = fma_rn(q, r, from_bits(0x3fc5555555548f7cULL));
  q = fma_rn(q, r, 0.5);
  q = mul_rn(q, r);
  const double p = add_rn(r1, fma_rn(r, q, r2));
  const int j = static_cast<int>(ki & 31u);
  const double top = exp_table(5, j), tail = exp_table(6, j);
  const double res = add_rn(fma_rn(add_rn(top, tail), p, tail), top);
  return scalbn(res, static_cast<int>(floor(kd * 0.03125)));
}

// np.exp(x) for a float64 x as numpy computes it on a machine whose path is `path`. On the
// GPU the C library's path is glibc_exp().
PYHPE_HD_INLINE double numpy_exp(double x, int path) {
  if (path == kNumpyExpSvml) return svml_exp_ha(x);
  if (path == kNumpyExpAvx512f) return numpy_avx512f_exp(x);
#if defined(__CUDA_ARCH__)
  return glibc_exp(x);
#else
  return exp(x);
#endif
}

}  // namespace pyhpe
