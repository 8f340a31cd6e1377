"""numpy's float64 exp on both of its x86 paths, and pyhpe following the one numpy takes.

numpy's Linux wheels run Intel SVML's exp on AVX512_SKX processors and the C library's exp
elsewhere (numpy built without SVML runs its own AVX-512F kernel there); pycocotools' OKS
inherits whichever runs. The recorded outputs come from np.exp on an AVX-512 machine, from the
same numpy with its AVX-512 dispatch disabled, and from numpy's AVX-512F kernel built on its
own, so every path is checked on every machine, whichever one numpy itself takes here.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyhpe
from pyhpe import _numpy_exp

DATA = Path(__file__).parent / "data" / "numpy_exp_f64.npz"


@pytest.fixture(scope="module")
def recorded():
    with np.load(DATA) as d:
        return d["x"], d["svml"], d["libm"], d["avx512f"]


def _bits_equal(a, b):
    return np.array_equal(np.asarray(a).view(np.uint64), np.asarray(b).view(np.uint64))


def test_recorded_cases_tell_the_paths_apart(recorded):
    x, svml, libm, avx512f = recorded
    assert (svml != libm).sum() >= 3000
    assert (avx512f != libm).sum() >= 100 and (avx512f != svml).sum() >= 3000
    assert ((x < -708.4) & (svml > 0)).any()       # subnormal results
    assert (np.abs(x) >= 707.71).sum() >= 3000     # SVML's rare branch


def test_svml_path_matches_recorded_numpy(recorded):
    x, svml, _, _ = recorded
    assert _bits_equal(pyhpe._C._numpy_exp(x, _numpy_exp.SVML), svml)


def test_libm_path_matches_recorded_numpy(recorded):
    x, _, libm, _ = recorded
    assert _bits_equal(pyhpe._C._numpy_exp(x, _numpy_exp.LIBM), libm)


def test_avx512f_path_matches_recorded_kernel(recorded):
    x, _, _, avx512f = recorded
    assert _bits_equal(pyhpe._C._numpy_exp(x, _numpy_exp.AVX512F), avx512f)


def test_probe_arguments_tell_every_path_apart():
    x = _numpy_exp.probe_arguments()
    outs = [pyhpe._C._numpy_exp(x, p) for p in _numpy_exp.PATH_NAMES]
    for i in range(len(outs)):
        for j in range(i):
            assert not np.array_equal(outs[i], outs[j]), (i, j)


@pytest.mark.parametrize("path", sorted(_numpy_exp.PATH_NAMES))
def test_special_values(path):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 710.0, -746.0, 5e-324])
    y = pyhpe._C._numpy_exp(x, path)
    assert np.isnan(y[0])
    assert y[1] == np.inf and y[2] == 0.0 and y[3] == 1.0 and y[4] == 1.0
    assert y[5] == np.inf and y[6] == 0.0 and y[7] == 1.0


def test_selected_path_is_the_one_numpy_takes_here():
    x = np.random.default_rng(3).uniform(-60, 0, 20000)
    path = pyhpe._C.numpy_exp_path()
    if pyhpe._C.cpu_has_avx512_skx():
        assert path in (_numpy_exp.SVML, _numpy_exp.AVX512F, _numpy_exp.LIBM)
    else:
        assert path == _numpy_exp.LIBM
    assert _bits_equal(pyhpe._C._numpy_exp(x, path), np.exp(x))
    assert pyhpe.info()["numpy_exp_path"] == _numpy_exp.PATH_NAMES[path]
    assert _numpy_exp.paths_matching_numpy() == [path]


def test_set_path_validates_and_round_trips():
    old = pyhpe._C._set_numpy_exp_path(_numpy_exp.LIBM)
    try:
        assert pyhpe._C.numpy_exp_path() == _numpy_exp.LIBM
        with pytest.raises(ValueError, match="path"):
            pyhpe._C._set_numpy_exp_path(7)
        assert pyhpe._C._set_numpy_exp_path(_numpy_exp.AVX512F) == _numpy_exp.LIBM
        with pytest.raises(ValueError, match="path"):
            pyhpe._C._numpy_exp(np.zeros(2), 7)
    finally:
        pyhpe._C._set_numpy_exp_path(old)
    assert pyhpe._C.numpy_exp_path() == old


def test_oks_follows_the_path(recorded):
    """The same OKS computed on the other path differs in the last bits: the path matters."""
    import torch
    from pyhpe.ops import oks_matrix
    rng = np.random.default_rng(5)
    gt = np.concatenate([rng.uniform(0, 200, (30, 17, 2)), np.full((30, 17, 1), 2.0)], -1)
    dt = gt[np.arange(40) % 30, :, :2] + rng.normal(0, 6, (40, 17, 2))
    dt = np.concatenate([dt, np.ones((40, 17, 1))], -1)
    args = (torch.from_numpy(dt), torch.from_numpy(gt), torch.from_numpy(rng.uniform(500, 9000, 30)))
    results = {}
    old = pyhpe._C.numpy_exp_path()
    try:
        for path in _numpy_exp.PATH_NAMES:
            pyhpe._C._set_numpy_exp_path(path)
            results[path] = oks_matrix(*args).numpy()
    finally:
        pyhpe._C._set_numpy_exp_path(old)
    assert not np.array_equal(results[_numpy_exp.LIBM], results[_numpy_exp.SVML])
    assert not np.array_equal(results[_numpy_exp.LIBM], results[_numpy_exp.AVX512F])
    for path in _numpy_exp.PATH_NAMES:
        np.testing.assert_allclose(results[path], results[_numpy_exp.LIBM], rtol=1e-14, atol=0)


_AVX512_OFF = "AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR X86_V4"


@pytest.mark.skipif(not pyhpe._C.cpu_has_avx512_skx(), reason="needs an AVX-512 CPU")
def test_numpy_without_avx512_dispatch_is_followed(tmp_path):
    """With numpy's AVX-512 dispatch switched off, pyhpe takes libm and still equals pycocotools."""
    pytest.importorskip("pycocotools")
    script = tmp_path / "probe.py"
    script.write_text(
        "import numpy as np, pyhpe\n"
        "from pyhpe.eval import COCOKeypointEval\n"
        "from pyhpe.testing import pycocotools_eval, synthetic_keypoint_eval_set\n"
        "assert pyhpe._C.numpy_exp_path() == 0, pyhpe._C.numpy_exp_path()\n"
        "gt, dt = synthetic_keypoint_eval_set(20, 4, with_bbox=True)\n"
        "ours = COCOKeypointEval(gt, dt); ours.run(); ref = pycocotools_eval(gt, dt)\n"
        "assert np.array_equal(np.asarray(ours.stats), np.asarray(ref.stats))\n"
        "for (img, cat), ious in ref.ious.items():\n"
        "    if len(ious): assert np.array_equal(ours.ious(img, cat), ious)\n"
        "print('ok')\n")
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=_AVX512_OFF)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
