// CUDA kernels of the Associative Embedding grouping family, thin over ae_math.h:
// one thread per pixel for the NMS candidate values, one block per map for the top-k
// (topk rounds of a block-wide arg-max in the top-k order), one thread per image for the
// grouping (the CPU's sequential code), one block per missing keypoint for the
// fill-missing arg-min, one thread per pixel for the dark-UDP blur and modulation.
#include "ae/ae.h"
#include "common/cuda_utils.cuh"

namespace pyhpe {
namespace ae {

namespace {

constexpr int kBlock = 256;

__global__ void candidate_values_kernel(AEArgs a, float* buf, int64_t total) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  PYHPE_GRID_STRIDE_LOOP(i, total) {
    const int64_t m = i / HW, p = i % HW;
    buf[i] = candidate_value(a.heatmaps + m * HW, a.H, a.W, p, a.nms_radius, a.val_thr);
  }
}

// topk rounds per map: round t takes the best candidate ranked after round t-1's pick.
__global__ void select_topk_kernel(AEArgs a, AECudaBuffers buf, int64_t maps) {
  __shared__ float sv[kBlock];
  __shared__ int64_t si[kBlock];
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  for (int64_t m = blockIdx.x; m < maps; m += gridDim.x) {
    const float* v = buf.cand_buf + m * HW;
    float pv = INFINITY;
    int64_t pi = -1;
    int count = 0;
    for (int t = 0; t < a.T; ++t) {
      float bv = -INFINITY;
      int64_t bi = -1;
      for (int64_t p = threadIdx.x; p < HW; p += blockDim.x) {
        const float c = v[p];
        if (c == -INFINITY) continue;
        if (pi >= 0 && !ranks_before(pv, pi, c, p)) continue;
        if (bi < 0 || ranks_before(c, p, bv, bi)) {
          bv = c;
          bi = p;
        }
      }
      sv[threadIdx.x] = bv;
      si[threadIdx.x] = bi;
      __syncthreads();
      for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
          const float ov = sv[threadIdx.x + s];
          const int64_t oi = si[threadIdx.x + s];
          if (oi >= 0 && (si[threadIdx.x] < 0 || ranks_before(ov, oi, sv[threadIdx.x], si[threadIdx.x]))) {
            sv[threadIdx.x] = ov;
            si[threadIdx.x] = oi;
          }
        }
        __syncthreads();
      }
      pv = sv[0];
      pi = si[0];
      __syncthreads();
      if (pi < 0) break;
      if (threadIdx.x == 0) {
        buf.cand_val[m * a.T + t] = pv;
        buf.cand_idx[m * a.T + t] = pi;
      }
      ++count;
    }
    if (threadIdx.x == 0) buf.cand_count[m] = count;
    __syncthreads();
  }
}

__global__ void blur_kernel(AEArgs a, float* out, int64_t total) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  PYHPE_GRID_STRIDE_LOOP(i, total) {
    const int64_t m = i / HW, p = i % HW;
    out[i] = decode::blur2d_at(a.heatmaps + m * HW, a.H, a.W, static_cast<int>(p % a.W),
                               static_cast<int>(p / a.W), a.blur_w, a.blur_r);
  }
}

__global__ void modulate_kernel(AEArgs a, AECudaBuffers buf, int64_t total) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  PYHPE_GRID_STRIDE_LOOP(i, total) {
    const int64_t m = i / HW;
    const float s = buf.hm_max[m] / buf.bl_max[m];
    buf.modulated[i] = modulate(buf.modulated[i], s);
  }
}

__device__ FinishArgs finish_args(const AEArgs& a, const AECudaBuffers& buf, int64_t b) {
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  FinishArgs f;
  f.heatmaps = a.heatmaps + b * a.K * HW;
  f.modulated = buf.modulated ? buf.modulated + b * a.K * HW : nullptr;
  f.tags = a.tags + b * a.K * a.L * HW;
  f.K = a.K;
  f.L = a.L;
  f.H = a.H;
  f.W = a.W;
  f.refine = a.refine;
  f.center_shift = a.center_shift;
  f.fill_missing = a.fill_missing;
  f.N = a.N;
  f.keypoints = a.keypoints + b * a.N * a.K * 2;
  f.scores = a.scores + b * a.N * a.K;
  f.instance_scores = a.instance_scores + b * a.N;
  f.fill_tag = buf.fill_tag + b * (a.N > 0 ? a.N : 1) * a.L;
  f.scratch = buf.scratch + b * a.K * a.L;
  return f;
}

// One thread per image: the grouping, instance scores, refinement and instance tags.
__global__ void group_kernel(AEArgs a, AECudaBuffers buf) {
  PYHPE_GRID_STRIDE_LOOP(b, a.B) {
    const int K = a.K, T = a.T, L = a.L;
    const int64_t HW = static_cast<int64_t>(a.H) * a.W;
    int64_t S = 0;
    for (int k = 0; k < K; ++k) S += buf.cand_count[b * K + k];
    a.num[b] = 0;
    if (S == 0) continue;
    const GroupWork w = group_work_at(buf.work + buf.work_offsets[b], S, K, L, T);
    GroupArgs g;
    g.cand_val = buf.cand_val + b * K * T;
    g.cand_idx = buf.cand_idx + b * K * T;
    g.cand_count = buf.cand_count + b * K;
    g.tags = a.tags + b * K * L * HW;
    g.order = a.order;
    g.K = K;
    g.T = T;
    g.L = L;
    g.W = a.W;
    g.HW = HW;
    g.val_thr = a.val_thr;
    g.tag_thr = a.tag_thr;
    g.matching = a.matching;
    const int G = group_image(g, w);
    const int count = static_cast<int>(G < a.N ? G : a.N);
    a.num[b] = count;
    if (count > 0) finish_instances(finish_args(a, buf, b), w.joints, count);
  }
}

// One block per (image, instance, keypoint): the arg-min of the fill-missing cost.
__global__ void fill_kernel(AEArgs a, AECudaBuffers buf, int64_t tasks) {
  __shared__ float sc[kBlock];
  __shared__ int64_t sp[kBlock];
  const int64_t HW = static_cast<int64_t>(a.H) * a.W;
  for (int64_t t = blockIdx.x; t < tasks; t += gridDim.x) {
    const int64_t b = t / (a.N * a.K), n = (t / a.K) % a.N;
    const int k = static_cast<int>(t % a.K);
    if (n >= a.num[b] || a.scores[(b * a.N + n) * a.K + k] > 0.0f) continue;  // block-uniform
    const FinishArgs f = finish_args(a, buf, b);
    const float* map = (a.refine == kRefineDarkUdp ? f.modulated : f.heatmaps) + k * HW;
    const float* tag = f.fill_tag + n * a.L;
    float best = 0.0f;
    int64_t bp = -1;
    for (int64_t p = threadIdx.x; p < HW; p += blockDim.x) {
      const float c = fill_cost(f.tags, map, a.K, a.L, HW, k, p, tag);
      if (bp < 0 || argmin_before(c, p, best, bp)) {
        best = c;
        bp = p;
      }
    }
    sc[threadIdx.x] = best;
    sp[threadIdx.x] = bp;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) {
        const int64_t op = sp[threadIdx.x + s];
        if (op >= 0 && (sp[threadIdx.x] < 0 ||
                        argmin_before(sc[threadIdx.x + s], op, sc[threadIdx.x], sp[threadIdx.x]))) {
          sc[threadIdx.x] = sc[threadIdx.x + s];
          sp[threadIdx.x] = op;
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const int64_t p = sp[0];
      float* kp = f.keypoints + (n * a.K + k) * 2;
      kp[0] = static_cast<float>(p % a.W);
      kp[1] = static_cast<float>(p / a.W);
      f.scores[n * a.K + k] = map[p];
    }
    __syncthreads();
  }
}

}  // namespace

void ae_candidates_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream) {
  const int64_t maps = a.B * a.K;
  const int64_t total = maps * a.H * a.W;
  if (total == 0) return;
  candidate_values_kernel<<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                            cuda::as_stream(stream)>>>(a, buf.cand_buf, total);
  cuda::check_launch("ae_group (candidates)");
  const unsigned int grid = static_cast<unsigned int>(maps < 65535 * 8 ? maps : 65535 * 8);
  select_topk_kernel<<<grid, kBlock, 0, cuda::as_stream(stream)>>>(a, buf, maps);
  cuda::check_launch("ae_group (top-k)");
}

void ae_blur_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream) {
  const int64_t total = a.B * a.K * a.H * a.W;
  if (total == 0) return;
  blur_kernel<<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0, cuda::as_stream(stream)>>>(
      a, buf.modulated, total);
  cuda::check_launch("ae_group (blur)");
}

void ae_modulate_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream) {
  const int64_t total = a.B * a.K * a.H * a.W;
  if (total == 0) return;
  modulate_kernel<<<cuda::blocks_for(total), cuda::kThreadsPerBlock, 0,
                    cuda::as_stream(stream)>>>(a, buf, total);
  cuda::check_launch("ae_group (modulate)");
}

void ae_group_finish_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream) {
  if (a.B == 0) return;
  group_kernel<<<cuda::blocks_for(a.B, 32), 32, 0, cuda::as_stream(stream)>>>(a, buf);
  cuda::check_launch("ae_group (grouping)");
  if (!a.fill_missing) return;
  const int64_t tasks = a.B * a.N * a.K;
  if (tasks == 0) return;
  const unsigned int grid = static_cast<unsigned int>(tasks < 65535 * 8 ? tasks : 65535 * 8);
  fill_kernel<<<grid, kBlock, 0, cuda::as_stream(stream)>>>(a, buf, tasks);
  cuda::check_launch("ae_group (fill-missing)");
}

}  // namespace ae
}  // namespace pyhpe
