// Torch-free tests of csrc/decode/decode_avx2.h against the generic math of decode_math.h
// (float64 as the reference). Built by `make test-cpp` and CMake/ctest without -mavx2: the
// functions carry their own target attribute; skipped on CPUs without AVX2 + FMA.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "decode/decode_avx2.h"
#include "tests/expect.h"

#ifdef PYHPE_DECODE_AVX2
using namespace pyhpe::decode;

__attribute__((target("avx2,fma"))) static float expf8_lane(float x) {
  float out[8];
  _mm256_storeu_ps(out, avx2::expf8(_mm256_set1_ps(x)));
  return out[3];
}

static double ulps(float got, float want) {
  return std::fabs(static_cast<double>(got) - want) /
         (std::nextafter(want, 1e30f) - static_cast<double>(want));
}

static void test_expf8() {
  double worst = 0.0;
  for (float x = 0.0f; x > -87.0f; x -= 0.000731f) {
    const float want = static_cast<float>(std::exp(static_cast<double>(x)));
    worst = std::fmax(worst, ulps(expf8_lane(x), want));
    EXPECT(ulps(expf8_lane(x), expf_vectorizable(x)) <= 3.5);
  }
  std::printf("test_decode_avx2: expf8 within %.2f ulp of exp\n", worst);
  EXPECT(worst <= 2.5);
  EXPECT(expf8_lane(0.0f) == 1.0f);
  EXPECT(expf8_lane(-88.5f) == 0.0f);  // below FLT_MIN: flushed, as expf_vectorizable
  EXPECT(expf8_lane(-1000.0f) == 0.0f);
  EXPECT(expf8_lane(-INFINITY) == 0.0f);
}

static ExpectationArgs<double> args64(const std::vector<double>& h, int H, int W, int norm,
                                      double beta, double* stats, const double* grad,
                                      double* out) {
  ExpectationArgs<double> a{};
  a.heatmaps = h.data();
  a.num_maps = 1;
  a.H = H;
  a.W = W;
  a.normalize = norm;
  a.beta = beta;
  a.ax = a.ay = 1.0;
  a.debias = kDebiasNone;
  a.stats = stats;
  a.grad = grad;
  a.out = out;
  return a;
}

static void test_map(int H, int W, int norm, double beta, std::mt19937* rng) {
  std::uniform_real_distribution<float> u(-2.0f, 3.0f);
  std::vector<float> h(static_cast<size_t>(H) * W);
  for (float& v : h) v = norm == kNormSoftmax ? u(*rng) : std::fabs(u(*rng));
  std::vector<double> hd(h.begin(), h.end());
  double st[kNumStats], coords[2];
  const double grad[2] = {0.7, -1.3};
  const auto a = args64(hd, H, W, norm, beta, st, grad, coords);
  const MapSums ref = expectation_sums(a, 0);
  MapSums got;
  EXPECT(avx2::map_sums(h.data(), H, W, norm == kNormSoftmax, beta, &got));
  EXPECT(got.mmax == ref.mmax);
  EXPECT(std::fabs(got.S / ref.S - 1.0) < 1e-6);
  EXPECT(std::fabs(got.Sc / got.S - ref.Sc / ref.S) < 2e-6 * W);
  EXPECT(std::fabs(got.Sr / got.S - ref.Sr / ref.S) < 2e-6 * H);

  expectation_finish(a, 0, ref);
  std::vector<double> gref(h.size());
  auto b = a;
  b.out = gref.data();
  expectation_backward_map(b, 0);
  std::vector<float> g(h.size());
  avx2::grad_map(h.data(), g.data(), H, W, norm == kNormSoftmax, static_cast<float>(beta),
                 static_cast<float>(st[0]), expectation_grad_coeffs_of_map(b, 0));
  double gmax = 0.0, err = 0.0;
  for (size_t j = 0; j < h.size(); ++j) {
    gmax = std::fmax(gmax, std::fabs(gref[j]));
    err = std::fmax(err, std::fabs(g[j] - gref[j]));
  }
  EXPECT(err <= 1e-5 * gmax);
}

__attribute__((target("avx2,fma"))) static void test_nan_map() {
  std::vector<float> h(5 * 19, 0.5f);
  h[77] = NAN;
  MapSums s;
  EXPECT(!avx2::map_sums(h.data(), 5, 19, true, 1.0, &s));  // the caller falls back
  double m = 0.0;
  EXPECT(!avx2::scaled_max(h.data(), 95, 1.0, &m));
  EXPECT(avx2::scaled_max(h.data(), 77, -2.0, &m) && m == -1.0);
}
#endif

int main() {
#ifdef PYHPE_DECODE_AVX2
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    std::printf("test_decode_avx2: skipped (no AVX2 + FMA)\n");
    return 0;
  }
  test_expf8();
  std::mt19937 rng(3);
  const int sizes[][2] = {{1, 1}, {1, 7}, {2, 8}, {3, 9}, {17, 16}, {16, 17},
                          {64, 48}, {33, 100}, {5, 129}, {4, 300}};
  for (const auto& hw : sizes)
    for (int norm : {kNormSoftmax, kNormNone, kNormSum})
      for (double beta : {1.0, 2.5, -0.5}) test_map(hw[0], hw[1], norm, beta, &rng);
  test_nan_map();
#endif
  std::printf("test_decode_avx2: %d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
