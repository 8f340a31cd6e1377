// numpy's float64 exp paths (common/numpy_exp.h) against np.exp outputs recorded on an
// AVX-512 machine (SVML) and with numpy's AVX-512 dispatch disabled (the C library's exp).
// The SVML emulation must give the recorded bits on any CPU; the cases cover arguments where
// the two paths differ, SVML's rare branch (|x| >= 707.7), subnormal results and specials.
#include <math.h>
#include <string.h>

#include <cstdio>

#include "common/numpy_exp.h"
#include "tests/expect.h"

namespace {

struct Case {
  double x, svml, libm;
};

const Case kCases[] = {
    {-0x1.48488f403034ap+5, 0x1.bd397d32ce64ep-60, 0x1.bd397d32ce64fp-60},
    {-0x1.d27bb0dd67264p+4, 0x1.ea714df5dcdeap-43, 0x1.ea714df5dcdebp-43},
    {-0x1.d9856f09b97a4p+4, 0x1.3be6b736f1c5cp-43, 0x1.3be6b736f1c5dp-43},
    {-0x1.9c20de1beb260p+2, 0x1.a2b1f7905b7f0p-10, 0x1.a2b1f7905b7f1p-10},
    {-0x1.70e0c31796060p+1, 0x1.cb00769b8094cp-5, 0x1.cb00769b8094dp-5},
    {-0x1.6bc9a0b852ef8p+5, 0x1.50c8933e93bcep-66, 0x1.50c8933e93bcfp-66},
    {-0x1.fabf3d160edf4p+3, 0x1.1cc7c25ec1985p-23, 0x1.1cc7c25ec1986p-23},
    {-0x1.fbe4afc067548p+2, 0x1.7711bacc9bbf4p-12, 0x1.7711bacc9bbf5p-12},
    {-0x1.2e3f7900e1ab7p+5, 0x1.686c6d9c30840p-55, 0x1.686c6d9c30841p-55},
    {-0x1.ff0bd32b96310p+3, 0x1.f1f5523ccbf76p-24, 0x1.f1f5523ccbf77p-24},
    {-0x1.fe50f7965e3b8p+3, 0x1.fd72779e5520cp-24, 0x1.fd72779e5520dp-24},
    {-0x1.9c34c3c68901bp+4, 0x1.c7b973a97fd12p-38, 0x1.c7b973a97fd13p-38},
    {-0x1.f7a728f5be700p-3, 0x1.905fde4ee6e51p-1, 0x1.905fde4ee6e52p-1},
    {-0x1.e4f8c7823494bp+4, 0x1.34de62b9d8069p-44, 0x1.34de62b9d806ap-44},
    {-0x1.2d366c2adfba8p+4, 0x1.ca4b5d1f58204p-28, 0x1.ca4b5d1f58205p-28},
    {-0x1.a8278a1ce530fp+4, 0x1.afee29afc6324p-39, 0x1.afee29afc6325p-39},
    {-0x1.175879be37a9ap+5, 0x1.8a7238a1f92bap-51, 0x1.8a7238a1f92b9p-51},
    {-0x1.791b7188cf1aep+5, 0x1.fdc19c95efcd2p-69, 0x1.fdc19c95efcd3p-69},
    {-0x1.588b0650e6288p+2, 0x1.2ced7318161f7p-8, 0x1.2ced7318161f8p-8},
    {-0x1.8a1a5a6136ce5p+5, 0x1.e7502495b6362p-72, 0x1.e7502495b6363p-72},
    {-0x1.0f1e5cbc19470p+5, 0x1.13c4e4bdb6d66p-49, 0x1.13c4e4bdb6d67p-49},
    {-0x1.a5d309b6ee445p+4, 0x1.f3a4b2c837501p-39, 0x1.f3a4b2c837502p-39},
    {-0x1.455b09ac0c9edp+4, 0x1.9565a1f70524ap-30, 0x1.9565a1f705249p-30},
    {-0x1.223b898e35aa0p+2, 0x1.5f8a452c018e9p-7, 0x1.5f8a452c018eap-7},
    {-0x1.73ea2c095fe29p+9, 0x0.0000000000002p-1022, 0x0.0000000000002p-1022},
    {-0x1.6d9fff5421492p+9, 0x0.00000000829fep-1022, 0x0.00000000829fep-1022},
    {-0x1.70074f824c569p+9, 0x0.0000000001114p-1022, 0x0.0000000001114p-1022},
    {-0x1.6ea91996d01b7p+9, 0x0.000000001076fp-1022, 0x0.000000001076fp-1022},
    {-0x1.61f043fb1e2fbp+9, 0x1.ae5110d4da13ap-1022, 0x1.ae5110d4da13ap-1022},
    {-0x1.6224c0bbe39b8p+9, 0x1.1d903d76e6143p-1022, 0x1.1d903d76e6143p-1022},
    {-0x1.61ed07704c1f9p+9, 0x1.b956036c119b8p-1022, 0x1.b956036c119b8p-1022},
    {-0x1.620cf37053265p+9, 0x1.57ec33a3a5936p-1022, 0x1.57ec33a3a5936p-1022},
    {0x1.61e312d4da53cp+9, 0x1.12c3fcc9ee155p+1021, 0x1.12c3fcc9ee155p+1021},
    {0x1.62d71c4489274p+9, 0x1.ce46a13ac931cp+1023, 0x1.ce46a13ac931cp+1023},
    {0x1.61dae147ae148p+9, 0x1.01ba74a181e06p+1021, 0x1.01ba74a181e06p+1021},
    {-0x1.7c73d421fee9cp-12, 0x1.ffd073bad2514p-1, 0x1.ffd073bad2514p-1},
    {-0x1.fd0d160a31c73p-11, 0x1.ff80cc8a22397p-1, 0x1.ff80cc8a22397p-1},
    {-0x1.826d8a1fdc164p-12, 0x1.ffcfb495f8306p-1, 0x1.ffcfb495f8306p-1},
    {0x1.e77c4c51776f0p-11, 0x1.003cf6cab1d3cp+0, 0x1.003cf6cab1d3dp+0},
    {0x0.0p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+0},
    {-0x0.0p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+0},
    {INFINITY, INFINITY, INFINITY},
    {-INFINITY, 0x0.0p+0, 0x0.0p+0},
    {0x0.0000000000001p-1022, 0x1.0000000000000p+0, 0x1.0000000000000p+0},
    {-0x0.0000000000001p-1022, 0x1.0000000000000p+0, 0x1.0000000000000p+0},
    {0x1.62e3d70a3d70ap+9, 0x1.fe9ce5c4c52b4p+1023, 0x1.fe9ce5c4c52b4p+1023},
    {0x1.62e51eb851eb8p+9, INFINITY, INFINITY},
    {-0x1.7490a3d70a3d7p+9, 0x0.0000000000001p-1022, 0x0.0000000000001p-1022},
    {-0x1.7491eb851eb85p+9, 0x0.0p+0, 0x0.0p+0},
    {-0x1.6231eb851eb85p+9, 0x1.01a5ff6ed496bp-1022, 0x1.01a5ff6ed496bp-1022},
    {-0x1.6233333333333p+9, 0x0.ff15b469edf89p-1022, 0x0.ff15b469edf89p-1022},
    {-0x1.61d9f8a0902dep+9, 0x1.001857679a947p-1021, 0x1.001857679a947p-1021},
    {-0x1.61dae147ae148p+9, 0x1.fc9105e93b6a2p-1022, 0x1.fc9105e93b6a2p-1022},
    {0x1.61dae147ae148p+9, 0x1.01ba74a181e06p+1021, 0x1.01ba74a181e06p+1021},
    {0x1.0000000000000p-60, 0x1.0000000000000p+0, 0x1.0000000000000p+0},
    {-0x1.0000000000000p-60, 0x1.0000000000000p+0, 0x1.0000000000000p+0},
};

bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

int main() {
  int differ = 0;
  for (const Case& c : kCases) {
    const double got = pyhpe::numpy_exp(c.x, pyhpe::kNumpyExpSvml);
    if (!same_bits(got, c.svml)) std::printf("svml x=%a want=%a got=%a\n", c.x, c.svml, got);
    EXPECT(same_bits(got, c.svml));
    if (fabs(c.x) < pyhpe::npexp::from_bits(pyhpe::npexp::kRareBound)) {
      // The portable form (the C library's fma; the GPU's form) gives the same bits.
      EXPECT(same_bits(pyhpe::npexp::svml_exp_main(c.x, pyhpe::npexp::FmaRn()), c.svml));
    }
    EXPECT(same_bits(pyhpe::numpy_exp(c.x, pyhpe::kNumpyExpLibm), c.libm));
    differ += !same_bits(c.svml, c.libm);
  }
  EXPECT(differ >= 20);  // the cases do tell the two paths apart
  EXPECT(isnan(pyhpe::svml_exp_ha(NAN)));
  EXPECT(pyhpe::svml_exp_ha(-INFINITY) == 0.0 && pyhpe::svml_exp_ha(INFINITY) == INFINITY);
  // Monotone and within an ulp of the C library over a dense sweep of OKS's range.
  double prev = 0.0;
  int far = 0, decreasing = 0;
  for (int i = -400000; i <= 0; ++i) {
    const double x = i * 1e-4, y = pyhpe::svml_exp_ha(x), l = exp(x);
    decreasing += y < prev;
    prev = y;
    far += fabs(y - l) > nextafter(l, INFINITY) - l;
  }
  EXPECT(far == 0);
  EXPECT(decreasing == 0);
  // glibc_exp (the GPU's float64 exp) equals this machine's C library exp: a sweep of the
  // ranges OKS and Gaussians use, the subnormal and overflow ranges, and random bit patterns.
  int glibc_mismatch = 0;
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < 400000; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    double bits_x;
    memcpy(&bits_x, &state, sizeof bits_x);
    const double xs[3] = {-60.0 + 1.5e-4 * i, -1100.0 + 5.5e-3 * i, bits_x};
    for (double x : xs) {
      const double a = pyhpe::glibc_exp(x), b = exp(x);
      glibc_mismatch += !same_bits(a, b) && !(isnan(a) && isnan(b));
    }
  }
#if defined(__x86_64__) && defined(__GNUC__)
  // glibc picks its FMA build on processors with FMA (every x86-64 CPU since 2013).
  if (__builtin_cpu_supports("fma")) EXPECT(glibc_mismatch == 0);
#endif
  EXPECT(pyhpe::exp_of(-3.25) == exp(-3.25));
  std::printf("test_numpy_exp: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
