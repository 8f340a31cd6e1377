// Torch-free tests of csrc/volume/volume_math.h, run on the CPU: the CUDA forward's order of
// work (threads striding over the flat volume, then a tree over the block) gives the host's
// row-wise statistics; the per-element backward (with and without the per-map coefficient
// pass) equals the host's per-map backward and the finite differences of the forward; the
// maps without a usable distribution get their defined answers and zero gradients; the
// Gaussian volumes follow the MSRA window and weight rules.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "tests/expect.h"
#include "volume/volume_avx2.h"
#include "volume/volume_math.h"

using namespace pyhpe::volume;

namespace {

constexpr int kThreads = 256;  // kBlock in volume_cuda.cu

template <typename T>
SoftArgmax3dArgs<T> make_args(const std::vector<T>& v, int M, int D, int H, int W, int normalize,
                              double beta, bool debias) {
  SoftArgmax3dArgs<T> a{};
  a.volumes = v.data();
  a.num_maps = M;
  a.D = D;
  a.H = H;
  a.W = W;
  a.normalize = normalize;
  a.beta = beta;
  a.debias = debias;
  return a;
}

// The CUDA block's forward with its threads as a loop.
template <typename T>
VolumeSums block_order_sums(const SoftArgmax3dArgs<T>& a, int64_t m) {
  const int64_t n = voxels(a);
  VolumeSums s{0.0, 0.0, 0.0, 0.0, 0.0, 0};
  if (a.normalize == kNormSoftmax) {
    Extremes<T> e[kThreads];
    for (int t = 0; t < kThreads; ++t) e[t] = extremes_partial(a.volumes + m * n, n, t, kThreads);
    for (int o = kThreads / 2; o > 0; o >>= 1)
      for (int t = 0; t < o; ++t) extremes_merge(&e[t], e[t + o]);
    s = shift_of(a, e[0]);
  }
  double S[kThreads], X[kThreads], Y[kThreads], Z[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    VolumeSums p{s.m, 0.0, 0.0, 0.0, 0.0, s.state};
    if (s.state == 0) sums_partial(a, m, t, kThreads, &p);
    S[t] = p.S, X[t] = p.Sx, Y[t] = p.Sy, Z[t] = p.Sz;
  }
  for (int o = kThreads / 2; o > 0; o >>= 1)
    for (int t = 0; t < o; ++t) S[t] += S[t + o], X[t] += X[t + o], Y[t] += Y[t + o], Z[t] += Z[t + o];
  return VolumeSums{s.m, S[0], X[0], Y[0], Z[0], s.state};
}

bool close(double a, double b, double tol) { return std::fabs(a - b) <= tol * (1.0 + std::fabs(b)); }

// Direct double expectation (no shift tricks beyond the max), for comparison.
void direct(const std::vector<double>& v, int64_t off, int D, int H, int W, int normalize,
            double beta, bool debias, double out[3]) {
  const int64_t n = static_cast<int64_t>(D) * H * W;
  double mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::fmax(mx, beta * v[off + j]);
  double S = 0, X = 0, Y = 0, Z = 0;
  for (int z = 0; z < D; ++z)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const double h = v[off + (static_cast<int64_t>(z) * H + y) * W + x];
        const double f = normalize == kNormSoftmax ? std::exp(beta * h - mx) : h;
        S += f, X += f * x, Y += f * y, Z += f * z;
      }
  if (normalize == kNormNone) S = 1.0;
  out[0] = X / S, out[1] = Y / S, out[2] = Z / S;
  if (debias) {
    const double C = S * std::exp(mx) / n, c[3] = {(W - 1) * 0.5, (H - 1) * 0.5, (D - 1) * 0.5};
    for (int i = 0; i < 3; ++i) out[i] = C / (C - 1) * (out[i] - c[i] / C);
  }
}

void run_case(int normalize, double beta, bool debias, int D, int H, int W, std::mt19937* rng) {
  const int M = 3;
  const int64_t n = static_cast<int64_t>(D) * H * W;
  std::uniform_real_distribution<double> u(0.05, 2.0);
  std::vector<double> v(M * n), g(3 * M);
  for (double& x : v) x = u(*rng);
  for (double& x : g) x = u(*rng) - 1.0;
  std::vector<double> st(M * kNumStats), st_b(M * kNumStats), c(3 * M), c_b(3 * M);
  auto a = make_args(v, M, D, H, W, normalize, beta, debias);
  auto b = a;
  a.stats = st.data(), a.out = c.data();
  b.stats = st_b.data(), b.out = c_b.data();
  for (int m = 0; m < M; ++m) {
    volume_finish(a, m, sums_host(a, m));
    volume_finish(b, m, block_order_sums(b, m));
    double ref[3];
    direct(v, m * n, D, H, W, normalize, beta, debias, ref);
    for (int i = 0; i < 3; ++i) EXPECT(close(c[3 * m + i], ref[i], 1e-11));
  }
  for (size_t i = 0; i < st.size(); ++i) EXPECT(close(st_b[i], st[i], 1e-12));
  for (size_t i = 0; i < c.size(); ++i) EXPECT(close(c_b[i], c[i], 1e-12));

  // Backward: per map, per element, per element with the coefficient pass, and against
  // central differences of the forward.
  std::vector<double> by_map(v.size()), by_el(v.size()), with_coeffs(v.size()),
      coeffs(M * kNumCoeffs);
  a.grad = g.data();
  a.out = by_map.data();
  for (int m = 0; m < M; ++m) backward_map_host(a, m);
  a.out = by_el.data();
  for (size_t i = 0; i < v.size(); ++i) backward_element(a, static_cast<int64_t>(i));
  a.coeffs = coeffs.data();
  for (int m = 0; m < M; ++m) coeffs_element(a, m);
  a.out = with_coeffs.data();
  for (size_t i = 0; i < v.size(); ++i) backward_element(a, static_cast<int64_t>(i));
  double scale = 0.0;
  for (double x : by_map) scale = std::fmax(scale, std::fabs(x));
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT(std::fabs(by_el[i] - by_map[i]) <= 1e-13 * scale);
    EXPECT(with_coeffs[i] == by_el[i]);
  }
  const double eps = 1e-6;
  for (int64_t j = 0; j < n; j += (n / 7 > 0 ? n / 7 : 1)) {  // a few voxels of map 1
    std::vector<double> p = v, q = v;
    p[n + j] += eps, q[n + j] -= eps;
    double cp[3], cq[3];
    direct(p, n, D, H, W, normalize, beta, debias, cp);
    direct(q, n, D, H, W, normalize, beta, debias, cq);
    double fd = 0.0;
    for (int i = 0; i < 3; ++i) fd += g[3 + i] * (cp[i] - cq[i]) / (2 * eps);
    EXPECT(close(by_map[n + j], fd, 1e-6));
  }
}

// float volumes: the host's 8-lane rows and the block order agree to float rounding.
void run_float(std::mt19937* rng) {
  const int M = 2, D = 9, H = 11, W = 21;
  const int64_t n = static_cast<int64_t>(D) * H * W;
  std::normal_distribution<float> u(0.f, 3.f);
  std::vector<float> v(M * n);
  for (float& x : v) x = u(*rng);
  std::vector<double> st(M * kNumStats), st_b(M * kNumStats);
  std::vector<float> c(3 * M), c_b(3 * M);
  auto a = make_args(v, M, D, H, W, kNormSoftmax, 1.3, false);
  auto b = a;
  a.stats = st.data(), a.out = c.data();
  b.stats = st_b.data(), b.out = c_b.data();
  for (int m = 0; m < M; ++m) {
    volume_finish(a, m, sums_host(a, m));
    volume_finish(b, m, block_order_sums(b, m));
  }
  for (size_t i = 0; i < c.size(); ++i) EXPECT(close(c_b[i], c[i], 1e-5));
}

// Degenerate maps: defined coordinates, zero gradient on every backward form.
void run_degenerate(std::vector<double> v, int D, int H, int W, int normalize, double beta,
                    bool debias, double x, double y, double z) {
  const int64_t n = static_cast<int64_t>(D) * H * W;
  std::vector<double> st(kNumStats), st_b(kNumStats), c(3), c_b(3), g = {0.7, -0.4, 0.2};
  auto a = make_args(v, 1, D, H, W, normalize, beta, debias);
  auto b = a;
  a.stats = st.data(), a.out = c.data();
  b.stats = st_b.data(), b.out = c_b.data();
  volume_finish(a, 0, sums_host(a, 0));
  volume_finish(b, 0, block_order_sums(b, 0));
  EXPECT(c[0] == x && c[1] == y && c[2] == z);
  EXPECT(c_b[0] == x && c_b[1] == y && c_b[2] == z);
  EXPECT(st[6] == 1.0);
  std::vector<double> gm(n, 1.0), ge(n, 1.0);
  a.grad = g.data();
  a.out = gm.data();
  backward_map_host(a, 0);
  a.out = ge.data();
  for (int64_t j = 0; j < n; ++j) backward_element(a, j);
  for (int64_t j = 0; j < n; ++j) EXPECT(gm[j] == 0.0 && ge[j] == 0.0);
}

void run_gaussian() {
  // Two keypoints in a (W, H, D) = (9, 8, 7) volume, sigma 1: one inside (peak 1 at its
  // rounded voxel), one beyond the depth (weight 0, empty volume).
  const int64_t W = 9, H = 8, D = 7, n = W * H * D;
  std::vector<float> kp = {4.4f, 3.6f, 2.2f, 4.f, 4.f, 11.f}, vis = {1.f, 1.f};
  std::vector<double> sigma = {1.0, 1.0};
  std::vector<float> vol(2 * n, -1.f), w(2, -1.f);
  GaussianVolumeArgs<float> a{kp.data(), vis.data(), sigma.data(), 1, 2, 3, D, H, W,
                              vol.data(), w.data()};
  for (int64_t i = 0; i < 2 * n; ++i) gaussian_volume_element(a, i);
  for (int64_t bk = 0; bk < 2; ++bk) gaussian_volume_weight_element(a, bk);
  EXPECT(w[0] == 1.f && w[1] == 0.f);
  EXPECT(vol[(2 * H + 4) * W + 4] == 1.f);
  // exp(-(1 + 4 + 0) / 2) at (x, y, z) = (5, 2, 2)
  EXPECT(std::fabs(vol[(2 * H + 2) * W + 5] - std::exp(-2.5f)) < 1e-7f);
  // outside the 3-sigma window: (x, y, z) = (8, 4, 2) is 4 voxels away
  EXPECT(vol[(2 * H + 4) * W + 8] == 0.f);
  for (int64_t j = 0; j < n; ++j) EXPECT(vol[n + j] == 0.f);
  // NaN coordinate of a visible keypoint: weight 0; invisible: skipped, weight kept.
  kp[1] = NAN;
  vis[1] = 0.3f;
  for (int64_t bk = 0; bk < 2; ++bk) gaussian_volume_weight_element(a, bk);
  EXPECT(w[0] == 0.f && w[1] == 0.3f);
}

#ifdef PYHPE_VOLUME_AVX2
// The AVX2 + FMA float paths against the generic float math: the same statistics and
// coordinates to float rounding, the same gradients (tails of 1..7 columns included).
void run_avx2(std::mt19937* rng) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("test_volume_math: no AVX2 + FMA here, AVX2 path not run\n");
    return;
  }
  for (int normalize : {kNormSoftmax, kNormSum, kNormNone})
    for (int W : {3, 8, 13, 64}) {
      const int M = 2, D = 5, H = 7;
      const int64_t n = static_cast<int64_t>(D) * H * W;
      std::normal_distribution<float> u(0.f, 2.f);
      std::vector<float> v(M * n), g(3 * M), c1(3 * M), c2(3 * M), g1(M * n), g2(M * n);
      for (float& x : v) x = normalize == kNormSoftmax ? u(*rng) : std::fabs(u(*rng)) + 0.1f;
      for (float& x : g) x = u(*rng);
      std::vector<double> st1(M * kNumStats), st2(M * kNumStats);
      auto a = make_args(v, M, D, H, W, normalize, 1.7, false);
      auto b = a;
      a.stats = st1.data(), a.out = c1.data();
      b.stats = st2.data(), b.out = c2.data();
      for (int m = 0; m < M; ++m) {
        volume_finish(a, m, sums_host(a, m));
        VolumeSums s;
        EXPECT(avx2::sums(b, m, &s));
        volume_finish(b, m, s);
      }
      for (size_t i = 0; i < c1.size(); ++i) EXPECT(close(c2[i], c1[i], 2e-5));
      a.grad = b.grad = g.data();
      a.out = g1.data();
      b.out = g2.data();
      b.stats = st1.data();
      float scale = 0.f;
      for (int m = 0; m < M; ++m) backward_map_host(a, m), avx2::grad_map(b, m);
      for (float x : g1) scale = std::fmax(scale, std::fabs(x));
      for (size_t i = 0; i < g1.size(); ++i) EXPECT(std::fabs(g1[i] - g2[i]) <= 2e-6f * scale);
    }
  // NaN volume: the AVX2 path declines (state 1), the generic path gives NaN.
  std::vector<float> v(2 * 3 * 9, 1.f), st(kNumStats);
  v[7] = NAN;
  auto a = make_args(v, 1, 2, 3, 9, kNormSoftmax, 1.0, false);
  VolumeSums s;
  EXPECT(!avx2::sums(a, 0, &s));
}
#endif

}  // namespace

int main() {
  std::mt19937 rng(7);
  for (int normalize : {kNormSoftmax, kNormSum, kNormNone})
    for (double beta : {1.0, 3.5, -0.7}) {
      if (normalize != kNormSoftmax && beta != 1.0) continue;
      run_case(normalize, beta, false, 4, 5, 6, &rng);
      run_case(normalize, beta, false, 3, 1, 19, &rng);  // W not a multiple of the 8 lanes
    }
  run_case(kNormSoftmax, 2.0, true, 4, 5, 6, &rng);
  run_case(kNormSoftmax, 0.5, true, 5, 3, 17, &rng);
  run_float(&rng);

  const int D = 2, H = 3, W = 4;
  std::vector<double> v(D * H * W, 0.0);
  v[0 * 12 + 1 * 4 + 2] = 5.0;  // maxima at (x, y, z) = (2, 1, 0) and (0, 2, 1)
  v[1 * 12 + 2 * 4 + 0] = 5.0;
  run_degenerate(v, D, H, W, kNormSoftmax, 1e30, false, 1.0, 1.5, 0.5);
  run_degenerate(std::vector<double>(D * H * W, 0.0), D, H, W, kNormSum, 1.0, false, 1.5, 1.0,
                 0.5);
  run_degenerate(std::vector<double>(D * H * W, 0.0), D, H, W, kNormSoftmax, 1.0, true, 1.5, 1.0,
                 0.5);
  // NaN: NaN coordinates.
  std::vector<double> nan_v(D * H * W, 1.0), st(kNumStats), c(3);
  nan_v[5] = NAN;
  auto a = make_args(nan_v, 1, D, H, W, kNormSoftmax, 1.0, false);
  a.stats = st.data(), a.out = c.data();
  volume_finish(a, 0, sums_host(a, 0));
  EXPECT(c[0] != c[0] && c[1] != c[1] && c[2] != c[2]);
  run_gaussian();
#ifdef PYHPE_VOLUME_AVX2
  run_avx2(&rng);
#endif

  std::printf("test_volume_math: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
