// Torch-free tests of csrc/nms/nms_math.h, the GPU's forms run on the CPU: the greedy passes
// with each row's words split over a warp's 32 lanes (lanes run in turn) against the
// one-worker form, on random suppression masks of images up to a few hundred poses (several
// mask words per row), and soft-NMS's block-per-image form.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "nms/nms_math.h"
#include "tests/expect.h"

using namespace pyhpe::nms;

namespace {

struct Images {
  std::vector<int64_t> offsets, mask_offsets, order;
  std::vector<uint64_t> mask;
};

// Random masks: row a's bits over positions b > a (b >= a with `self`), dense or sparse.
Images random_images(std::mt19937_64* rng, bool self) {
  Images im;
  const int sizes[] = {0, 1, 5, 63, 64, 65, 200, 331};
  im.offsets.push_back(0);
  im.mask_offsets.push_back(0);
  for (int n : sizes) {
    im.offsets.push_back(im.offsets.back() + n);
    const int64_t words = words_for(n);
    const double p = n > 100 ? 0.01 : 0.2;
    std::bernoulli_distribution bit(p);
    for (int a = 0; a < n; ++a)
      for (int64_t w = 0; w < words; ++w) {
        uint64_t v = 0;
        for (int t = 0; t < kWordBits; ++t) {
          const int64_t b = w * kWordBits + t;
          if (b < n && (b > a || (self && b == a)) && (bit(*rng) || (self && b == a && bit(*rng))))
            v |= uint64_t(1) << t;
        }
        im.mask.push_back(v);
      }
    im.mask_offsets.push_back(im.mask_offsets.back() + n * words);
  }
  const int64_t N = im.offsets.back();
  for (int64_t i = 0; i < N; ++i) im.order.push_back(i);
  std::vector<int64_t> perm(im.order);
  for (size_t m = 0; m + 1 < im.offsets.size(); ++m)  // pick order within each image
    std::shuffle(perm.begin() + im.offsets[m], perm.begin() + im.offsets[m + 1], *rng);
  im.order = perm;
  return im;
}

void check_oks_nms_reduce(std::mt19937_64* rng) {
  Images im = random_images(rng, false);
  const int64_t M = static_cast<int64_t>(im.offsets.size()) - 1, N = im.offsets.back();
  std::vector<uint64_t> mask1(im.mask), mask32(im.mask);
  std::vector<char> keep1(N, 0), keep32(N, 0);
  OksNmsReduceArgs a{mask1.data(), im.offsets.data(), im.mask_offsets.data(), M,
                     reinterpret_cast<bool*>(keep1.data())};
  for (int64_t m = 0; m < M; ++m) oks_nms_reduce_image(a, m);
  OksNmsReduceArgs b{mask32.data(), im.offsets.data(), im.mask_offsets.data(), M,
                     reinterpret_cast<bool*>(keep32.data())};
  for (int64_t m = 0; m < M; ++m)
    for (int64_t row = 0; row < im.offsets[m + 1] - im.offsets[m]; ++row)
      for (int lane = 0; lane < 32; ++lane) oks_nms_reduce_row(b, m, row, lane, 32);
  EXPECT(keep1 == keep32);
  int kept = 0;
  for (char k : keep1) kept += k;
  EXPECT(kept > 0 && kept < N);
}

void check_alpha_reduce(std::mt19937_64* rng) {
  Images im = random_images(rng, true);
  const int64_t M = static_cast<int64_t>(im.offsets.size()) - 1, N = im.offsets.back();
  std::vector<int64_t> removed_offsets(1, 0);
  for (int64_t m = 0; m < M; ++m) {
    const int64_t n = im.offsets[m + 1] - im.offsets[m];
    removed_offsets.push_back(removed_offsets.back() + words_for(n));
  }
  struct Out {
    std::vector<uint64_t> removed;
    std::vector<int64_t> picks, owner, counts;
  } one, warp;
  for (Out* o : {&one, &warp}) {
    o->removed.assign(removed_offsets.back() + 1, ~uint64_t(0));
    o->picks.assign(N, -1);
    o->owner.assign(N, -1);
    o->counts.assign(M, -1);
  }
  auto args = [&](Out* o) {
    return AlphaReduceArgs{im.mask.data(), im.order.data(), im.offsets.data(),
                           im.mask_offsets.data(), M, o->removed.data(), removed_offsets.data(),
                           o->picks.data(), o->owner.data(), o->counts.data()};
  };
  const AlphaReduceArgs a = args(&one), b = args(&warp);
  for (int64_t m = 0; m < M; ++m) {
    alpha_reduce_image(a, m);
    alpha_reduce_image(b, m, 32);
  }
  EXPECT(one.picks == warp.picks && one.owner == warp.owner && one.counts == warp.counts);
  int64_t picks = 0;
  for (int64_t c : one.counts) picks += c;
  EXPECT(picks > 0 && picks < N);
  for (int64_t i = 0; i < N; ++i) EXPECT(one.owner[i] >= 0);  // every pose lands in a group
}

// soft_nms_image against the GPU's block form (soft_nms_block_kernel: each pick's rescoring
// spread over the block's threads, thread t taking positions t, t + threads, ...; keep and
// reorder by thread 0 between barriers), with the threads run in turn, on crowded images
// whose OKS rows are computed on the fly (no pairwise matrix).
void check_soft_nms_block_form(std::mt19937_64* rng) {
  const int K = 17, threads = 7;
  const int sizes[] = {0, 1, 9, 40, 130};
  std::vector<int64_t> offsets(1, 0);
  for (int n : sizes) offsets.push_back(offsets.back() + n);
  const int64_t M = static_cast<int64_t>(offsets.size()) - 1, N = offsets.back();
  std::normal_distribution<double> noise(0.0, 4.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> kpts(N * K * 3), scores(N), areas(N), sigmas(K, 0.05);
  for (int64_t i = 0; i < N; ++i) {
    const double cx = 60.0 * (i % 5), cy = 40.0 * ((i / 5) % 4);
    for (int k = 0; k < K; ++k) {
      kpts[(i * K + k) * 3] = cx + 3.0 * k + noise(*rng);
      kpts[(i * K + k) * 3 + 1] = cy + 2.0 * k + noise(*rng);
      kpts[(i * K + k) * 3 + 2] = u(*rng);
    }
    scores[i] = std::round(u(*rng) * 16) / 16;  // ties, as detectors' rounded scores have
    areas[i] = 1500.0 + 3000.0 * u(*rng);
  }
  std::vector<int64_t> order(N);
  for (int64_t i = 0; i < N; ++i) order[i] = i;
  for (int method : {kSoftGaussian, kSoftLinear}) {
    std::vector<int64_t> work1(kSoftScratch * N), work2(kSoftScratch * N), keep1(N, -1),
        keep2(N, -1);
    std::vector<double> ws1(kSoftScratch * N), ws2(kSoftScratch * N);
    std::vector<char> flags1(N, 0), flags2(N, 0);
    SoftNmsArgs<double> a{};
    a.kpts = kpts.data();
    a.scores = scores.data();
    a.areas = areas.data();
    a.sigmas = sigmas.data();
    a.order = order.data();
    a.offsets = offsets.data();
    a.boxes = nullptr;
    a.M = M;
    a.K = K;
    a.thr = 0.3f;
    a.method = method;
    a.exp_path = pyhpe::kNumpyExpSvml;
    a.identity_limit = soft_identity_limit(a.thr, method);
    a.max_dets = 25;
    SoftNmsArgs<double> b = a;
    a.work = work1.data(), a.work_scores = ws1.data(), a.keep = keep1.data();
    a.keep_flags = reinterpret_cast<bool*>(flags1.data());
    b.work = work2.data(), b.work_scores = ws2.data(), b.keep = keep2.data();
    b.keep_flags = reinterpret_cast<bool*>(flags2.data());
    for (int64_t m = 0; m < M; ++m) {
      soft_nms_image(a, m);
      SoftNmsImage<double> st = soft_nms_begin(b, m);
      for (int64_t kept = 0; st.len > 0 && kept < b.max_dets; ++kept) {
        soft_nms_keep(b, m, st, kept);
        for (int t = 0; t < threads; ++t)
          for (int64_t p = t; p < st.len - 1; p += threads) soft_nms_rescore(b, m, st, p, p + 1);
        soft_nms_reorder(st);
      }
    }
    EXPECT(keep1 == keep2 && flags1 == flags2);
    int kept = 0;
    for (char f : flags1) kept += f;
    EXPECT(kept == 1 + 9 + 25 + 25);
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(11);
  for (int rep = 0; rep < 20; ++rep) {
    check_oks_nms_reduce(&rng);
    check_alpha_reduce(&rng);
  }
  for (int rep = 0; rep < 3; ++rep) check_soft_nms_block_form(&rng);
  std::printf("test_nms_math: %d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
