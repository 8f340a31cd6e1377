"""Which float64 ``exp`` numpy runs on this machine.

np.exp on float64 arrays is dispatched by CPU: numpy's Linux wheels call Intel SVML's
``__svml_exp8_ha`` on AVX512_SKX processors and the C library's ``exp`` elsewhere, and the
two differ in the last bit for a few percent of arguments. Ops whose float64 results copy a
numpy reference (OKS as pycocotools and mmpose compute it) reproduce the path numpy takes
(``csrc/common/numpy_exp.h``). The C++ side starts from the CPU's features; importing pyhpe
asks numpy itself here, so a numpy built or configured otherwise (``NPY_DISABLE_CPU_FEATURES``,
a build without SVML) is followed too.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import _C

LIBM = 0
SVML = 1
PATH_NAMES = {LIBM: "libm", SVML: "svml"}


def probe_arguments() -> np.ndarray:
    """4096 arguments in OKS's range (-40, 0); the two paths differ on about 4% of them."""
    return -np.linspace(0.0, 40.0, 4097)[1:]


def paths_matching_numpy() -> list[int]:
    """The pyhpe paths whose results equal np.exp's, bit for bit, on the probe arguments."""
    x = probe_arguments()
    want = np.exp(x)
    return [p for p in (SVML, LIBM) if np.array_equal(_C._numpy_exp(x, p), want)]


def configure() -> int:
    """Select the path numpy takes here; warn (keeping the CPU-based default) if none does."""
    matches = paths_matching_numpy()
    if len(matches) == 1:
        _C._set_numpy_exp_path(matches[0])
    elif not matches:
        warnings.warn(
            "pyhpe: numpy's float64 exp on this machine matches neither the C library's exp "
            "nor SVML's; float64 OKS may differ from pycocotools/mmpose in the last bit",
            RuntimeWarning, stacklevel=2)
    return _C.numpy_exp_path()


def numpy_exp_path() -> str:
    """The path in use: 'libm' or 'svml'."""
    return PATH_NAMES[_C.numpy_exp_path()]
