// Torch-free tests of the soft-argmax family's GPU forms in csrc/decode/decode_math.h, run
// on the CPU: the per-element backward (with and without the per-map coefficient pass) must
// equal the CPU's per-map backward, and the warp forward's order of work (lanes striding
// over the flat map, then a tree over the lanes) must give the CPU's statistics, also on
// the degenerate maps that get a defined answer.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "decode/decode_math.h"
#include "tests/expect.h"

using namespace pyhpe::decode;

namespace {

constexpr int kLanes = 32;

struct Case {
  int normalize, debias;
  double beta;
};

ExpectationArgs<double> make_args(const std::vector<double>& h, int M, int H, int W,
                                  const Case& c) {
  ExpectationArgs<double> a{};
  a.heatmaps = h.data();
  a.num_maps = M;
  a.H = H;
  a.W = W;
  a.normalize = c.normalize;
  a.beta = c.beta;
  a.ax = 2.0 / W;  // dsntnn grid, so that the affine terms are exercised
  a.bx = -(W - 1.0) / W;
  a.ay = 2.0 / H;
  a.by = -(H - 1.0) / H;
  a.debias = c.debias;
  a.gamma = c.debias == kDebiasPaper ? c.beta : 1.0;
  a.count_factor = c.debias == kDebiasPaper ? static_cast<double>(H) * W : 1.0;
  a.cx = c.debias == kDebiasPaper ? (W - 1.0) * 0.5 : W * 0.5;
  a.cy = c.debias == kDebiasPaper ? (H - 1.0) * 0.5 : H * 0.5;
  return a;
}

// The warp kernel's forward (decode_cuda.cu) with lanes as a loop.
MapSums warp_order_sums(const ExpectationArgs<double>& a, int64_t m) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  const double* h = a.heatmaps + m * HW;
  MapSums s{0.0, 0.0, 0.0, 0.0};
  // The lanes' max / min scan (its order does not matter).
  double mx = -INFINITY, mn = INFINITY;
  bool nan_seen = false;
  for (int64_t j = 0; j < HW; ++j) {
    nan_seen |= h[j] != h[j];
    mx = h[j] > mx ? h[j] : mx;
    mn = h[j] < mn ? h[j] : mn;
  }
  if (a.normalize == kNormSoftmax) s.mmax = scaled_extreme(a.beta, mx, mn, nan_seen);
  double S[kLanes] = {}, Sc[kLanes] = {}, Sr[kLanes] = {};
  for (int lane = 0; lane < kLanes; ++lane) {
    for (int64_t j = lane; j < HW; j += kLanes) {
      const int row = static_cast<int>(j / a.W), col = static_cast<int>(j - row * a.W);
      const double f = expectation_weight(a, h[j], a.beta, s.mmax);
      S[lane] += f;
      Sc[lane] += f * col;
      Sr[lane] += f * row;
    }
  }
  for (int o = kLanes / 2; o > 0; o >>= 1)
    for (int lane = 0; lane < o; ++lane) {
      S[lane] += S[lane + o];
      Sc[lane] += Sc[lane + o];
      Sr[lane] += Sr[lane + o];
    }
  s.S = S[0];
  s.Sc = Sc[0];
  s.Sr = Sr[0];
  if (a.debias != kDebiasNone && a.gamma != a.beta) {  // the lanes' gamma pass
    s.mg = scaled_extreme(a.gamma, mx, mn, nan_seen);
    double Sg[kLanes] = {};
    for (int lane = 0; lane < kLanes; ++lane)
      for (int64_t j = lane; j < HW; j += kLanes) Sg[lane] += gamma_weight(a.gamma, h[j], s.mg);
    for (int o = kLanes / 2; o > 0; o >>= 1)
      for (int lane = 0; lane < o; ++lane) Sg[lane] += Sg[lane + o];
    s.Sg = Sg[0];
    s.gamma_done = true;
  }
  return s;
}

bool close(double a, double b, double tol) {
  return std::fabs(a - b) <= tol * (1.0 + std::fabs(b));
}

void run_case(const Case& c, int H, int W, std::mt19937* rng) {
  const int M = 5;
  std::uniform_real_distribution<double> u(0.05, 2.0);
  std::vector<double> h(static_cast<size_t>(M) * H * W), g(2 * M);
  for (double& v : h) v = u(*rng);
  for (double& v : g) v = u(*rng) - 1.0;
  std::vector<double> st(M * kNumStats), st_warp(M * kNumStats), coords(2 * M);
  auto a = make_args(h, M, H, W, c);
  a.grad = g.data();
  a.out = coords.data();
  auto w = a;
  a.stats = st.data();
  w.stats = st_warp.data();
  for (int m = 0; m < M; ++m) {
    expectation_finish(a, m, expectation_sums(a, m));
    expectation_finish(w, m, warp_order_sums(w, m));
  }
  for (size_t i = 0; i < st.size(); ++i) EXPECT(close(st_warp[i], st[i], 1e-12));

  std::vector<double> by_map(h.size()), by_element(h.size()), with_coeffs(h.size());
  std::vector<double> coeffs(M * kNumCoeffs);
  auto b = a;
  b.out = by_map.data();
  for (int m = 0; m < M; ++m) expectation_backward_map(b, m);
  b.out = by_element.data();
  for (size_t i = 0; i < h.size(); ++i) expectation_backward_element(b, static_cast<int64_t>(i));
  b.coeffs = coeffs.data();
  for (int m = 0; m < M; ++m) expectation_coeffs_element(b, m);
  b.out = with_coeffs.data();
  for (size_t i = 0; i < h.size(); ++i) expectation_backward_element(b, static_cast<int64_t>(i));
  double scale = 0.0;
  for (double v : by_map) scale = std::fmax(scale, std::fabs(v));
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT(std::fabs(by_element[i] - by_map[i]) <= 1e-13 * scale);
    EXPECT(with_coeffs[i] == by_element[i]);
  }
}

// Maps without a usable distribution (expectation_finish): a saturated softmax gives the
// mean position of its maxima, a zero-sum map under 'sum' the grid centre, the debiasing at
// u == 1 its centre c; the CPU and warp forms agree and every backward form is exactly 0.
void run_degenerate(const Case& c, std::vector<double> h, int H, int W, double x, double y) {
  std::vector<double> st(kNumStats), st_warp(kNumStats), coords(2), coords_warp(2), g = {0.7, -0.4};
  auto a = make_args(h, 1, H, W, c);
  a.grad = g.data();
  auto w = a;
  a.stats = st.data();
  a.out = coords.data();
  w.stats = st_warp.data();
  w.out = coords_warp.data();
  expectation_finish(a, 0, expectation_sums(a, 0));
  expectation_coords(a, 0);
  expectation_finish(w, 0, warp_order_sums(w, 0));
  expectation_coords(w, 0);
  EXPECT(st[7] == 1.0 && st_warp[7] == 1.0);
  EXPECT(close(coords[0], x, 1e-15) && close(coords[1], y, 1e-15));
  EXPECT(coords_warp[0] == coords[0] && coords_warp[1] == coords[1]);
  std::vector<double> by_map(h.size(), 1.0), by_element(h.size(), 1.0), coeffs(kNumCoeffs);
  auto b = a;
  b.out = by_map.data();
  expectation_backward_map(b, 0);
  b.out = by_element.data();
  for (size_t i = 0; i < h.size(); ++i) expectation_backward_element(b, static_cast<int64_t>(i));
  for (size_t i = 0; i < h.size(); ++i) EXPECT(by_map[i] == 0.0 && by_element[i] == 0.0);
  b.coeffs = coeffs.data();
  expectation_coeffs_element(b, 0);
  for (size_t i = 0; i < h.size(); ++i) {
    by_element[i] = 1.0;
    expectation_backward_element(b, static_cast<int64_t>(i));
    EXPECT(by_element[i] == 0.0);
  }
}

void run_degenerate_cases(std::mt19937* rng) {
  const int H = 3, W = 7;
  std::uniform_real_distribution<double> u(0.05, 2.0);
  std::vector<double> peaks(H * W);
  for (double& v : peaks) v = u(*rng);
  peaks[1 * W + 2] = peaks[2 * W + 6] = 5.0;  // tied maxima at (2, 1) and (6, 2)
  for (double beta : {1e30, 1e300})
    run_degenerate({kNormSoftmax, kDebiasNone, beta}, peaks, H, W, 2.0 / W * 4.0 - (W - 1.0) / W,
                   2.0 / H * 1.5 - (H - 1.0) / H);
  std::vector<double> zero_sum(H * W, 0.0);
  zero_sum[0] = 1.0;
  zero_sum[5] = -1.0;
  run_degenerate({kNormSum, kDebiasNone, 1.0}, zero_sum, H, W, 0.0, 0.0);  // dsnt grid centre
  run_degenerate({kNormSoftmax, kDebiasPaper, 2.0}, std::vector<double>(H * W, 0.0), H, W,
                 (W - 1.0) * 0.5, (H - 1.0) * 0.5);
  run_degenerate({kNormSoftmax, kDebiasMMPose, 1.0}, std::vector<double>(1, 0.0), 1, 1, 0.5, 0.5);
}

}  // namespace

int main() {
  std::mt19937 rng(5);
  const Case cases[] = {{kNormSoftmax, kDebiasNone, 1.0},  {kNormSoftmax, kDebiasNone, -1.5},
                        {kNormSum, kDebiasNone, 1.0},      {kNormNone, kDebiasNone, 1.0},
                        {kNormSoftmax, kDebiasPaper, 2.0}, {kNormSoftmax, kDebiasMMPose, 1.0},
                        {kNormSoftmax, kDebiasMMPose, 1.7}};
  const int sizes[][2] = {{1, 1}, {3, 7}, {9, 33}, {64, 48}};
  for (const Case& c : cases)
    for (const auto& hw : sizes) run_case(c, hw[0], hw[1], &rng);
  run_degenerate_cases(&rng);
  std::printf("test_decode_math: %d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
