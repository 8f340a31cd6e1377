// Torch-free tests of csrc/ae/ae_math.h: numpy's pairwise summation order, the top-k order,
// heatmap NMS, the munkres port against brute force (optimal cost, one column per row) and
// on ties against assignments of the munkres package, and the grouping of a small scene.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "ae/ae_math.h"
#include "tests/expect.h"

using namespace pyhpe::ae;

namespace {

std::vector<int> solve(const std::vector<double>& cost, int rows, int cols) {
  const int n = std::max(rows, cols);
  std::vector<double> C(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) C[i * n + j] = cost[i * cols + j];
  std::vector<int8_t> marked(n * n);
  std::vector<uint8_t> rc(n), cc(n);
  std::vector<int32_t> path((2 * n + 2) * 2);
  MunkresWork w{C.data(), marked.data(), rc.data(), cc.data(), path.data()};
  munkres_solve(w, n);
  std::vector<int> assign(rows, -1);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < n; ++j)
      if (marked[i * n + j] == 1) assign[i] = j;
  return assign;
}

// numpy's recursive form, to check the explicit-stack halving of np_pairwise_sum.
float recursive_sum(const float* a, int64_t n) {
  if (n <= 128) return pairwise_block(a, n, int64_t(1));
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return recursive_sum(a, n2) + recursive_sum(a + n2, n - n2);
}

void test_pairwise_sum() {
  // below 8 values: a plain loop; 8..128: eight accumulators, pairwise combination
  std::vector<float> a(20);
  for (int i = 0; i < 20; ++i) a[i] = i % 3 == 0 ? 1e8f : 1.0f;
  float seq = 0.0f;
  for (int i = 0; i < 5; ++i) seq += a[i];
  EXPECT(np_pairwise_sum(a.data(), 5, 1) == seq);
  float r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[j] + a[8 + j];
  float want = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (int i = 16; i < 20; ++i) want += a[i];
  EXPECT(np_pairwise_sum(a.data(), 20, 1) == want);
  // strided (every third value) and the halving above 128 values
  std::vector<double> big(600, 0.1);
  const double s = np_pairwise_sum(big.data(), 600, 1);
  EXPECT(std::fabs(s - 60.0) < 1e-9);
  EXPECT(np_pairwise_sum(big.data(), 200, 3) == np_pairwise_sum(big.data(), 200, 1));
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> r1(9000);
  for (auto& x : r1) x = normal(rng) * std::exp(normal(rng) * 4.0f);
  for (int64_t n : {129, 200, 257, 1000, 4097, 9000})
    EXPECT(np_pairwise_sum(r1.data(), n, 1) == recursive_sum(r1.data(), n));
  float rows[6] = {1, 2, 3, 4, 5, 6};  // 3 rows of L = 2
  float mean[2];
  np_rows_mean(rows, 3, 2, mean);
  EXPECT(mean[0] == 3.0f && mean[1] == 4.0f);
}

void test_topk_and_nms() {
  float vals[3];
  int64_t idx[3];
  int count = 0;
  const float v[6] = {0.5f, 0.7f, 0.5f, 0.9f, 0.7f, 0.1f};
  for (int p = 0; p < 6; ++p) topk_insert(vals, idx, &count, 3, v[p], p);
  EXPECT(count == 3 && idx[0] == 3 && idx[1] == 1 && idx[2] == 4);  // ties in pixel order
  // a plateau keeps every pixel; a smaller neighbour is suppressed to 0
  const float hm[9] = {0.2f, 0.5f, 0.5f, 0.1f, 0.3f, 0.0f, 0.0f, 0.0f, 0.0f};
  EXPECT(nms_value(hm, 3, 3, 1, 0, 1) == 0.5f && nms_value(hm, 3, 3, 2, 0, 1) == 0.5f);
  EXPECT(nms_value(hm, 3, 3, 0, 0, 1) == 0.0f);
  EXPECT(candidate_value(hm, 3, 3, 4, 1, 0.1) == -INFINITY);
  EXPECT(candidate_value(hm, 3, 3, 1, 1, 0.1) == 0.5f);
  EXPECT(candidate_value(hm, 3, 3, 4, 1, -0.5) == 0.0f);  // suppressed, but above thr
}

void test_munkres_brute_force() {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> small(0, 3);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int t = 0; t < 400; ++t) {
    const int rows = 1 + t % 5, cols = rows + (t / 5) % 3;
    std::vector<double> cost(rows * cols);
    for (auto& c : cost) c = t % 2 ? small(rng) * 100.0 - 0.5 : unit(rng);
    const std::vector<int> a = solve(cost, rows, cols);
    std::vector<bool> used(cols, false);
    double got = 0.0;
    bool valid = true;
    for (int i = 0; i < rows; ++i) {
      valid = valid && a[i] >= 0 && a[i] < cols && !used[a[i]];
      if (!valid) break;
      used[a[i]] = true;
      got += cost[i * cols + a[i]];
    }
    EXPECT(valid);
    std::vector<int> perm(cols);
    std::iota(perm.begin(), perm.end(), 0);
    double best = 1e300;
    do {
      double c = 0.0;
      for (int i = 0; i < rows; ++i) c += cost[i * cols + perm[i]];
      best = std::min(best, c);
    } while (std::next_permutation(perm.begin(), perm.end()));
    EXPECT(std::fabs(got - best) < 1e-9);
  }
  // Ties, with the munkres package's (1.1.4) answers: all-equal costs keep the diagonal
  // after starring; the cyclic last-zero search of step 4 picks the later column.
  EXPECT((solve({0, 0, 0, 0}, 2, 2) == std::vector<int>{0, 1}));
  EXPECT((solve({0.3, 1e10, 1e10, 0.1, 1e10, 1e10, 0.2, 1e10, 1e10}, 3, 3) ==
          std::vector<int>{1, 0, 2}));
  EXPECT((solve({-0.5, -0.5, 99.5, -0.5}, 2, 2) == std::vector<int>{0, 1}));
}

void test_group_small_scene() {
  // K = 2 keypoints, 1 tag dim, a 1 x 6 map: keypoint 0 at x = 0 (tag 0) and x = 3 (tag 5),
  // keypoint 1 at x = 1 (tag 5.2) and x = 4 (tag 0.1): two people, crossing.
  const int K = 2, T = 2, L = 1, W = 6;
  const float cval[4] = {0.9f, 0.8f, 0.7f, 0.6f};
  const int64_t cidx[4] = {0, 3, 1, 4};
  const int32_t ccount[2] = {2, 2};
  const float tags[12] = {0, 0, 0, 5, 0, 0, 0, 5.2f, 0, 0, 0.1f, 0};
  const int32_t order[2] = {0, 1};
  GroupArgs a{cval, cidx, ccount, tags, order, K, T, L, W, 6, 0.1, 1.0, kMatchHungarian};
  std::vector<uint64_t> buf(group_work_bytes(4, K, L, T) / 8 + 1);
  const GroupWork w = group_work_at(buf.data(), 4, K, L, T);
  EXPECT(group_image(a, w) == 2);
  EXPECT(w.joints[0 * 6 + 3] == 4.0f && w.joints[1 * 6 + 3] == 1.0f);  // crossing solved
  a.tag_thr = 0.05;  // nothing close enough: every keypoint 1 opens its own group
  EXPECT(group_image(a, w) == 4);
  a.matching = kMatchGreedy;
  a.tag_thr = 1.0;
  EXPECT(group_image(a, w) == 2);
  EXPECT(w.joints[0 * 6 + 3] == 4.0f && w.joints[1 * 6 + 3] == 1.0f);
}

}  // namespace

int main() {
  test_pairwise_sum();
  test_topk_and_nms();
  test_munkres_brute_force();
  test_group_small_scene();
  std::printf("test_ae_math: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
