// Torch-free unit tests of csrc/oks/oks_math.h (built by `make test-cpp` and CMake/ctest).
#include <cmath>
#include <cstdio>
#include <vector>

#include "oks/oks_math.h"
#include "tests/expect.h"

using pyhpe::oks::compute_oks;
using pyhpe::oks::kModeCoco;
using pyhpe::oks::kModeMMPose;

int main() {
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
