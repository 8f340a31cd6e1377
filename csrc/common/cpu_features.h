// Run-time CPU feature switches for the host SIMD paths (torch-free).
#pragma once

namespace pyhpe {
namespace cpu {

// Whether this processor runs AVX2 and FMA instructions.
bool has_avx2_fma();
// Whether the CPU loops take their AVX2 + FMA paths: has_avx2_fma() unless switched off
// (pyhpe._C._set_cpu_avx2(False), used by the tests to run the SSE2 / scalar paths too).
bool avx2_enabled();
// Switches the AVX2 paths on (when the processor has them) or off; returns the old state.
bool set_avx2_enabled(bool on);

}  // namespace cpu
}  // namespace pyhpe
