// CPU loops of the volume family over volume_math.h.
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>

#include "common/cpu_features.h"
#include "volume/volume.h"
#include "volume/volume_avx2.h"

namespace pyhpe {
namespace volume {
namespace {

// Maps per parallel task: at least ~64 K voxels, so that small batches stay on the calling
// thread.
int64_t grain_of(int64_t voxels_per_map) {
  if (voxels_per_map <= 0) return 1 << 20;  // empty volumes: weights only
  return voxels_per_map >= 65536 ? 1 : (65536 + voxels_per_map - 1) / voxels_per_map;
}

// Float volumes take the AVX2 + FMA paths of volume_avx2.h when the CPU has them; float64
// (gradcheck, references) and the maps those paths leave out run the generic math.
template <typename T>
VolumeSums sums_cpu(const SoftArgmax3dArgs<T>& a, int64_t m, bool avx2) {
#ifdef PYHPE_VOLUME_AVX2
  if constexpr (std::is_same<T, float>::value) {
    VolumeSums s;
    if (avx2 && avx2::sums(a, m, &s)) return s;
  }
#endif
  (void)avx2;
  return sums_host(a, m);
}

template <typename T>
void backward_cpu(const SoftArgmax3dArgs<T>& a, int64_t m, bool avx2) {
#ifdef PYHPE_VOLUME_AVX2
  if constexpr (std::is_same<T, float>::value) {
    if (avx2 && a.stats[m * kNumStats + 6] == 0.0) return avx2::grad_map(a, m);
  }
#endif
  (void)avx2;
  backward_map_host(a, m);
}

}  // namespace

template <typename T>
void soft_argmax_3d_forward_cpu(const SoftArgmax3dArgs<T>& args) {
  const bool avx2 = cpu::avx2_enabled();
  at::parallel_for(0, args.num_maps, grain_of(voxels(args)), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) volume_finish(args, m, sums_cpu(args, m, avx2));
  });
}

template <typename T>
void soft_argmax_3d_backward_cpu(const SoftArgmax3dArgs<T>& args) {
  const bool avx2 = cpu::avx2_enabled();
  at::parallel_for(0, args.num_maps, grain_of(voxels(args)), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) backward_cpu(args, m, avx2);
  });
}

// One (b, k) volume per task: zero it, then fill the window only.
template <typename T>
void gaussian_volumes_cpu(const GaussianVolumeArgs<T>& a) {
  const int64_t n = a.D * a.H * a.W;
  at::parallel_for(0, a.B * a.K, grain_of(n), [&](int64_t begin, int64_t end) {
    for (int64_t bk = begin; bk < end; ++bk) {
      gaussian_volume_weight_element(a, bk);
      T* v = a.volumes + bk * n;
      std::fill(v, v + n, T(0));
      const VolumeWindow w = volume_window(a, bk);
      if (!w.active) continue;
      const int64_t x0 = std::max<int64_t>(w.lo[0], 0), x1 = std::min(w.hi[0], a.W);
      const int64_t y0 = std::max<int64_t>(w.lo[1], 0), y1 = std::min(w.hi[1], a.H);
      const int64_t z0 = std::max<int64_t>(w.lo[2], 0), z1 = std::min(w.hi[2], a.D);
      for (int64_t z = z0; z < z1; ++z)
        for (int64_t y = y0; y < y1; ++y) {
          T* row = v + (z * a.H + y) * a.W;
          for (int64_t x = x0; x < x1; ++x) row[x] = volume_gaussian_value<T>(w, x, y, z);
        }
    }
  });
}

#define PYHPE_VOLUME_INSTANTIATE(T)                                           \
  template void soft_argmax_3d_forward_cpu<T>(const SoftArgmax3dArgs<T>&);    \
  template void soft_argmax_3d_backward_cpu<T>(const SoftArgmax3dArgs<T>&);   \
  template void gaussian_volumes_cpu<T>(const GaussianVolumeArgs<T>&);

PYHPE_VOLUME_INSTANTIATE(float)
PYHPE_VOLUME_INSTANTIATE(double)
#undef PYHPE_VOLUME_INSTANTIATE

}  // namespace volume
}  // namespace pyhpe
