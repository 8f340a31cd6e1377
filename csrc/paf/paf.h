// Launchers of the PAF grouping family. Raw pointers only, so the .cu file needs no torch headers.
#pragma once

#include <stdint.h>

#include <vector>

#include "paf/paf_math.h"

namespace pyhpe {
namespace paf {

// CPU: one task per channel, raster order (OpenPose nmsCpu).
template <typename T>
void find_peaks_cpu(const PeakArgs<T>& args);
// CPU runs of the GPU's two passes (flags, then compaction), for validation.
template <typename T>
void peak_flags_cpu(const PeakArgs<T>& args);
template <typename T>
void peak_write_cpu(const PeakArgs<T>& args);
// CPU: one task per output row (b, limb, i).
template <typename T>
void paf_scores_cpu(const ScoreArgs<T>& args);

// One image's grouping result: persons in OpenPose's order after filtering.
template <typename T>
struct GroupedImage {
  std::vector<int64_t> parts;  // persons x K peak indices, -1 where missing
  std::vector<T> scores;       // persons: OpenPose poseScores (sum / (K + L))
};

// Host-only, sequential per image (parallel over images), as connectBodyPartsCpu.
template <typename T>
void group_poses_cpu(const GroupArgs<T>& args, std::vector<GroupedImage<T>>& out);

#ifdef PYHPE_WITH_CUDA
// `stream` is a cudaStream_t. Peaks run in two passes around a per-channel running count
// computed by the caller: flags (one thread per pixel), then compaction (one per pixel).
template <typename T>
void peak_flags_cuda(const PeakArgs<T>& args, void* stream);
template <typename T>
void peak_write_cuda(const PeakArgs<T>& args, void* stream);
template <typename T>
void paf_scores_cuda(const ScoreArgs<T>& args, void* stream);
#endif

}  // namespace paf
}  // namespace pyhpe
