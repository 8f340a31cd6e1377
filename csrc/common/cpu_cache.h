// A small caching allocator for large CPU outputs that live for one training step (the
// dense gradients of the soft-argmax family's backward ops, heatmap / PAF / SimCC targets). A fresh multi-megabyte buffer
// from malloc is often fresh memory from the OS, and first-touch page faults then cost more
// than the kernel that fills it (about 5 ms for 13 MB on a 2-core VM, against 1 ms of
// work). Freed blocks of this allocator wait in a size-keyed pool (at most
// kMaxCachedBytes) for the next output of the same size, as CUDA's caching allocator does
// on the GPU. Tensors come from at::detail::empty_generic, so they are ordinary resizable
// CPU tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>

namespace pyhpe {
namespace cpu {

// Outputs below this size come from at::empty (small blocks rarely fault).
constexpr size_t kMinCachedBytes = size_t(1) << 20;
constexpr size_t kMaxCachedBytes = size_t(512) << 20;

// A contiguous tensor of `sizes`, like at::empty(sizes, options); from the pool when it is
// a CPU tensor of at least kMinCachedBytes (other devices: at::empty).
at::Tensor empty_cached(at::IntArrayRef sizes, const at::TensorOptions& options);

// Bytes held in the pool now, and releasing them.
size_t cached_bytes();
void empty_cache();

}  // namespace cpu
}  // namespace pyhpe
