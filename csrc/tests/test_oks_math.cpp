// Torch-free unit tests of csrc/oks/oks_math.h (built by `make test-cpp` and CMake/ctest).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "oks/oks_math.h"
#include "tests/expect.h"

using pyhpe::oks::compute_oks;
using pyhpe::oks::kModeCoco;
using pyhpe::oks::kModeMMPose;

namespace {

// numpy's pairwise_sum as numpy writes it, recursively, over the terms in order.
double pairwise_reference(const double* a, int n) {
  if (n < 8) {
    double res = 0.0;
    for (int i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int i = 0; i < 8; ++i) r[i] = a[i];
    int i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int half = n / 2;
  half -= half % 8;
  return pairwise_reference(a, half) + pairwise_reference(a + half, n - half);
}

// The unrolled pairwise sum adds in numpy's order at every size, deep splits included.
void check_pairwise_order() {
  for (int n : {1, 7, 8, 9, 127, 128, 129, 136, 255, 256, 257, 1000, 4099, 20000}) {
    std::vector<double> g(n * 3), d(n * 3), s(n), terms(n);
    pyhpe::oks::OksPair<double> p{};
    for (int k = 0; k < n; ++k) {
      g[3 * k] = g[3 * k + 1] = 0.0;
      g[3 * k + 2] = 2;
      d[3 * k] = 0.37 * (k % 11) + 1e-3 * k;
      d[3 * k + 1] = 0.0;
      d[3 * k + 2] = 1;
      s[k] = 0.05 + 1e-4 * (k % 13);
    }
    p.dt = d.data();
    p.dt_channels = 3;
    p.gt = g.data();
    p.sigmas = s.data();
    p.num_keypoints = n;
    p.mode = kModeCoco;
    p.gt_area = 400.0;
    p.denom = 400.0 + pyhpe::oks::kAreaEps;
    p.exp_path = pyhpe::kNumpyExpLibm;
    for (int k = 0; k < n; ++k) terms[k] = p.term(k);
    const double got = pyhpe::oks::numpy_pairwise_sum(p, 0, n);
    const double want = pairwise_reference(terms.data(), n);
    EXPECT(std::memcmp(&got, &want, sizeof got) == 0);
  }
}

}  // namespace

int main() {
  check_pairwise_order();
  const int K = 4;
  const double sigmas[K] = {0.025, 0.035, 0.079, 0.107};
  double gt[K * 3] = {10, 10, 2, 20, 20, 1, 30, 30, 0, 40, 40, 2};
  double dt[K * 3] = {10, 10, 1, 20, 20, 1, 99, 99, 1, 40, 40, 1};
  // Identical labelled keypoints: OKS 1 (the unlabelled one is ignored).
  EXPECT(compute_oks<double>(dt, 3, gt, sigmas, K, 100.0, nullptr, 0.0, kModeCoco, false, 0.0) == 1.0);
  // Same with (x, y) detections.
  double dt2[K * 2] = {10, 10, 20, 20, 0, 0, 40, 40};
  EXPECT(compute_oks<double>(dt2, 2, gt, sigmas, K, 100.0, nullptr, 0.0, kModeCoco, false, 0.0) == 1.0);
  // One keypoint off by d: mean of exp(-d^2/(2s)^2/(area+eps)/2) and two ones.
  dt[0] = 13;
  const double var = (0.025 * 2) * (0.025 * 2);
  const double expected = (std::exp(-(9.0 / var) / (100.0 + 2.220446049250313e-16) / 2) + 1 + 1) / 3;
  EXPECT(std::fabs(compute_oks<double>(dt, 3, gt, sigmas, K, 100.0, nullptr, 0.0, kModeCoco, false, 0.0) -
                   expected) < 1e-15);
  // No labelled GT keypoint: box fallback; inside the expanded box every term is 1.
  double gt0[K * 3] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const double box[4] = {0, 0, 10, 10};
  double inside[K * 3] = {-5, -5, 1, 15, 15, 1, 0, 19, 1, 19, 0, 1};  // box spans [-10, 20]^2
  EXPECT(compute_oks<double>(inside, 3, gt0, sigmas, K, 50.0, box, 0.0, kModeCoco, false, 0.0) == 1.0);
  EXPECT(compute_oks<double>(inside, 3, gt0, sigmas, K, 50.0, nullptr, 0.0, kModeCoco, false, 0.0) == 0.0);
  // MMPose: vis_thr excluding everything gives 0; the area is the mean of both.
  EXPECT(compute_oks<double>(dt, 3, gt, sigmas, K, 100.0, nullptr, 50.0, kModeMMPose, true, 5.0) == 0.0);
  EXPECT(compute_oks<double>(dt, 3, gt, sigmas, K, 100.0, nullptr, 100.0, kModeMMPose, false, 0.0) < 1.0);
  // Pairwise summation over many keypoints stays within rounding of a long-double sum.
  const int big = 300;
  std::vector<double> g(big * 3), d(big * 3), s(big, 0.05);
  long double naive = 0;
  for (int k = 0; k < big; ++k) {
    g[3 * k] = k; g[3 * k + 1] = k; g[3 * k + 2] = 2;
    d[3 * k] = k + 0.1 * (k % 7); d[3 * k + 1] = k; d[3 * k + 2] = 1;
    const double dx = 0.1 * (k % 7), v = (0.05 * 2) * (0.05 * 2);
    naive += std::exp(-((dx * dx) / v) / (400.0 + 2.220446049250313e-16) / 2);
  }
  const double o = compute_oks<double>(d.data(), 3, g.data(), s.data(), big, 400.0, nullptr, 0.0,
                               kModeCoco, false, 0.0);
  EXPECT(std::fabs(o - static_cast<double>(naive / big)) < 1e-14);
  // Ragged segment lookup skips empty blocks.
  const int64_t offsets[4] = {0, 4, 4, 7};
  EXPECT(pyhpe::oks::find_segment(offsets, 4, 3) == 0);
  EXPECT(pyhpe::oks::find_segment(offsets, 4, 4) == 2);
  EXPECT(pyhpe::oks::find_segment(offsets, 4, 8) == 3);
  std::printf("test_oks_math: %d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
