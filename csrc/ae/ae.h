// Launchers of the Associative Embedding grouping family. Raw pointers only, so the .cu file
// needs no torch headers.
#pragma once

#include <stdint.h>

#include "ae/ae_math.h"

namespace pyhpe {
namespace ae {

// One call of ae_group over a batch; maps are float32 and contiguous.
struct AEArgs {
  const float* heatmaps;  // B x K x H x W
  const float* tags;      // B x (K * L) x H x W
  const int32_t* order;   // K (device memory on the GPU)
  int64_t B;
  int K, L, H, W, T;
  int nms_radius;
  double val_thr, tag_thr;
  int64_t N;              // output rows per image (the group cap)
  int matching, refine;
  float blur_w[decode::kMaxKernel];
  int blur_r;
  float center_shift;
  bool fill_missing;
  float* keypoints;        // B x N x K x 2 (zeroed)
  float* scores;           // B x N x K (zeroed)
  float* instance_scores;  // B x N (zeroed)
  int64_t* num;            // B
};

void ae_group_cpu(const AEArgs& a);

#ifdef PYHPE_WITH_CUDA
// Device buffers the CUDA path needs between its kernels (allocated by the op).
struct AECudaBuffers {
  float* cand_buf;      // B x K x HW candidate values (-inf: none)
  float* cand_val;      // B x K x T
  int64_t* cand_idx;    // B x K x T
  int32_t* cand_count;  // B x K
  float* modulated;     // B x K x HW (dark_udp) or nullptr
  const float* hm_max;  // B x K (dark_udp)
  const float* bl_max;  // B x K (dark_udp)
  char* work;           // per-image GroupWork, at work_offsets[b]
  const int64_t* work_offsets;  // B
  float* fill_tag;      // B x N x L
  float* scratch;       // B x K x L
};
// Step 1: candidate values and per-map top-k (cand_val / cand_idx / cand_count).
void ae_candidates_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream);
// dark_udp: blurred maps into buf.modulated (before the maxima are taken).
void ae_blur_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream);
// dark_udp: modulate buf.modulated in place with the maxima.
void ae_modulate_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream);
// Grouping + refinement per image (one thread each), then the fill-missing search.
void ae_group_finish_cuda(const AEArgs& a, const AECudaBuffers& buf, void* stream);
#endif

}  // namespace ae
}  // namespace pyhpe
