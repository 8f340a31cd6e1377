// Thin CUDA kernels over volume_math.h. The soft-argmax forward runs one block per map (a
// reduction over D * H * W voxels): threads stride over the flat volume (coalesced), first
// for the extremes (the softmax shift), then for the sums (sums_partial, the same function
// the header test runs in this order on the CPU); a shared-memory tree combines the threads
// and thread 0 finishes the map with volume_finish, as the CPU does. The backward is one
// thread per voxel after a per-map coefficient pass; the Gaussian targets one thread per
// voxel.
#include "common/cuda_utils.cuh"
#include "volume/volume.h"

namespace pyhpe {
namespace volume {

constexpr int kBlock = 256;

template <typename T>
__global__ void soft_argmax_3d_forward_kernel(SoftArgmax3dArgs<T> a) {
  __shared__ T smx[kBlock], smn[kBlock];
  __shared__ bool snan[kBlock];
  __shared__ double ss[kBlock], sx[kBlock], sy[kBlock], sz[kBlock];
  __shared__ double shift;
  __shared__ int state;
  const int t = threadIdx.x;
  const int64_t n = voxels(a);
  for (int64_t m = blockIdx.x; m < a.num_maps; m += gridDim.x) {
    if (a.normalize == kNormSoftmax) {
      const Extremes<T> e = extremes_partial(a.volumes + m * n, n, t, kBlock);
      smx[t] = e.mx;
      smn[t] = e.mn;
      snan[t] = e.nan;
      __syncthreads();
      for (int o = kBlock / 2; o > 0; o >>= 1) {
        if (t < o) {
          Extremes<T> x{smx[t], smn[t], snan[t]};
          extremes_merge(&x, Extremes<T>{smx[t + o], smn[t + o], snan[t + o]});
          smx[t] = x.mx;
          smn[t] = x.mn;
          snan[t] = x.nan;
        }
        __syncthreads();
      }
      if (t == 0) {
        const VolumeSums s = shift_of(a, Extremes<T>{smx[0], smn[0], snan[0]});
        shift = s.m;
        state = s.state;
      }
    } else if (t == 0) {
      shift = 0.0;
      state = 0;
    }
    __syncthreads();
    VolumeSums s{shift, 0.0, 0.0, 0.0, 0.0, state};
    if (state == 0) sums_partial(a, m, t, kBlock, &s);
    ss[t] = s.S;
    sx[t] = s.Sx;
    sy[t] = s.Sy;
    sz[t] = s.Sz;
    __syncthreads();
    for (int o = kBlock / 2; o > 0; o >>= 1) {
      if (t < o) {
        ss[t] += ss[t + o];
        sx[t] += sx[t + o];
        sy[t] += sy[t + o];
        sz[t] += sz[t + o];
      }
      __syncthreads();
    }
    if (t == 0) volume_finish(a, m, VolumeSums{shift, ss[0], sx[0], sy[0], sz[0], state});
    __syncthreads();
  }
}

template <typename T>
__global__ void coeffs_kernel(SoftArgmax3dArgs<T> a) {
  PYHPE_GRID_STRIDE_LOOP(m, a.num_maps) { coeffs_element(a, m); }
}

template <typename T>
__global__ void backward_kernel(SoftArgmax3dArgs<T> a, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { backward_element(a, idx); }
}

template <typename T>
__global__ void gaussian_kernel(GaussianVolumeArgs<T> a, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(idx, total) { gaussian_volume_element(a, idx); }
}

template <typename T>
__global__ void gaussian_weight_kernel(GaussianVolumeArgs<T> a, int64_t total) {
  PYHPE_GRID_STRIDE_LOOP(bk, total) { gaussian_volume_weight_element(a, bk); }
}

template <typename T>
void soft_argmax_3d_forward_cuda(const SoftArgmax3dArgs<T>& args, void* stream) {
  if (args.num_maps == 0) return;
  const int64_t blocks = args.num_maps < 65535LL * 8 ? args.num_maps : 65535LL * 8;
  soft_argmax_3d_forward_kernel<T><<<static_cast<unsigned>(blocks), kBlock, 0,
                                     cuda::as_stream(stream)>>>(args);
  cuda::check_launch("soft_argmax_3d forward");
}

template <typename T>
void soft_argmax_3d_backward_cuda(const SoftArgmax3dArgs<T>& args, void* stream) {
  const int64_t total = args.num_maps * voxels(args);
  if (total == 0) return;
  if (args.coeffs != nullptr) {
    coeffs_kernel<T><<<cuda::blocks_for(args.num_maps), cuda::kThreadsPerBlock, 0,
                       cuda::as_stream(stream)>>>(args);
    cuda::check_launch("soft_argmax_3d coefficients");
  }
  backward_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                       cuda::as_stream(stream)>>>(args, total);
  cuda::check_launch("soft_argmax_3d backward");
}

template <typename T>
void gaussian_volumes_cuda(const GaussianVolumeArgs<T>& args, void* stream) {
  const int64_t total = args.B * args.K * args.D * args.H * args.W;
  if (total > 0) {
    gaussian_kernel<T><<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                         cuda::as_stream(stream)>>>(args, total);
    cuda::check_launch("gaussian_volumes");
  }
  const int64_t instances = args.B * args.K;
  if (instances > 0) {
    gaussian_weight_kernel<T><<<cuda::blocks_for(instances), cuda::kThreadsPerBlock, 0,
                                cuda::as_stream(stream)>>>(args, instances);
    cuda::check_launch("gaussian_volumes (weights)");
  }
}

#define PYHPE_VOLUME_INSTANTIATE(T)                                                    \
  template void soft_argmax_3d_forward_cuda<T>(const SoftArgmax3dArgs<T>&, void*);     \
  template void soft_argmax_3d_backward_cuda<T>(const SoftArgmax3dArgs<T>&, void*);    \
  template void gaussian_volumes_cuda<T>(const GaussianVolumeArgs<T>&, void*);

PYHPE_VOLUME_INSTANTIATE(float)
PYHPE_VOLUME_INSTANTIATE(double)
#undef PYHPE_VOLUME_INSTANTIATE

}  // namespace volume
}  // namespace pyhpe
