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

// Whether this processor has numpy's AVX512_SKX group (AVX-512 F, CD, BW, DQ and VL).
bool has_avx512_skx();
// The float64 exp numpy runs on this machine (a NumpyExpPath, common/numpy_exp.h), which the
// ops that copy a numpy reference use. Defaults to SVML on AVX512_SKX processors (numpy's
// Linux wheels) and the C library elsewhere; pyhpe's import asks numpy itself and sets it.
int numpy_exp_path();
// Throws std::invalid_argument, naming `fn`, unless path is a NumpyExpPath.
void check_numpy_exp_path(const char* fn, int path);
// Sets the path (a NumpyExpPath); returns the old one. Throws std::invalid_argument on others.
int set_numpy_exp_path(int path);

}  // namespace cpu
}  // namespace pyhpe
