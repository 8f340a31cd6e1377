// Launchers of the heatmap (target generation) family. Raw pointers only, so the .cu file
// needs no torch headers.
#pragma once

#include <stdint.h>

#include "heatmap/heatmap_math.h"

namespace pyhpe {
namespace heatmap {

template <typename T>
void gaussian_heatmaps_cpu(const GaussianArgs<T>& args);
template <typename T>
void simcc_labels_cpu(const SimCCArgs<T>& args);
template <typename T>
void paf_targets_cpu(const PafArgs<T>& args);

#ifdef PYHPE_WITH_CUDA
// `stream` is a cudaStream_t.
template <typename T>
void gaussian_heatmaps_cuda(const GaussianArgs<T>& args, void* stream);
template <typename T>
void simcc_labels_cuda(const SimCCArgs<T>& args, void* stream);
template <typename T>
void paf_targets_cuda(const PafArgs<T>& args, void* stream);
#endif

}  // namespace heatmap
}  // namespace pyhpe
