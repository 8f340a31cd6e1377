"""Decode family benchmarks: pyhpe ops vs the public implementations they replace.

Run: python -m pytest bench/bench_decode.py --benchmark-only -q
Groups compare, on 64 instances x 17 keypoints of 64x48 float32 heatmaps (SimCC: 384/512
bins):
  * argmax / argmax+DARK / DARK-UDP vs mmpose's numpy decoding (faithful reimplementation
    in pyhpe.reference.decode, cv2 blur included), with torch.amax as the one-read floor;
  * SimCC (+1-D DARK) vs mmpose's numpy SimCC decoding;
  * soft-argmax forward and forward+backward vs kornia spatial_soft_argmax2d;
  * DSNT forward+backward vs dsntnn.dsnt (on normalized maps) and, fused with the softmax,
    vs dsntnn.dsnt(dsntnn.flat_softmax(.)); debiased IPR vs mmpose's torch head formula.
The forward+backward groups carry a memory floor: one copy of the maps (read them once,
write a gradient of the same size once), which any fwd+bwd has to do.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pyhpe.ops as ops
from pyhpe.reference import decode as ref

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_decode import gaussian_maps, simcc_labels  # noqa: E402

B, K, H, W = 64, 17, 64, 48


@pytest.fixture(scope="module")
def maps():
    hm = gaussian_maps(np.random.default_rng(0), B, K, H, W)
    return hm, torch.from_numpy(hm)


@pytest.fixture(scope="module")
def logits():
    return torch.randn(B, K, H, W, generator=torch.Generator().manual_seed(0)) * 3


# ---- argmax / DARK ----------------------------------------------------------------------


@pytest.mark.benchmark(group="argmax+quarter 64x17x64x48")
def test_argmax_pyhpe(benchmark, maps):
    benchmark(ops.argmax_decode, maps[1])


@pytest.mark.benchmark(group="argmax+quarter 64x17x64x48")
def test_argmax_mmpose_numpy(benchmark, maps):
    benchmark(lambda: ref.argmax_decode(maps[0].copy()))


@pytest.mark.benchmark(group="argmax+DARK 64x17x64x48")
def test_dark_pyhpe(benchmark, maps):
    benchmark(ops.dark_decode, maps[1], kernel=11)


@pytest.mark.benchmark(group="argmax+DARK 64x17x64x48")
def test_dark_mmpose_numpy(benchmark, maps):
    benchmark(lambda: ref.dark_decode(maps[0].copy(), 11))


@pytest.mark.benchmark(group="argmax+DARK 64x17x64x48")
def test_dark_floor_torch_amax(benchmark, maps):
    benchmark(torch.amax, maps[1], (2, 3))


@pytest.mark.benchmark(group="argmax+DARK-UDP 64x17x64x48")
def test_dark_udp_pyhpe(benchmark, maps):
    benchmark(ops.dark_decode, maps[1], kernel=11, udp=True)


@pytest.mark.benchmark(group="argmax+DARK-UDP 64x17x64x48")
def test_dark_udp_mmpose_numpy(benchmark, maps):
    benchmark(lambda: ref.dark_decode(maps[0].copy(), 11, udp=True))


# ---- SimCC ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simcc():
    x, y = simcc_labels(np.random.default_rng(1), B, K, 384, 512)
    return x, y, torch.from_numpy(x), torch.from_numpy(y)


@pytest.mark.benchmark(group="SimCC+DARK 64x17x(384,512)")
def test_simcc_dark_pyhpe(benchmark, simcc):
    benchmark(ops.simcc_decode, simcc[2], simcc[3], dark=True)


@pytest.mark.benchmark(group="SimCC+DARK 64x17x(384,512)")
def test_simcc_dark_mmpose_numpy(benchmark, simcc):
    benchmark(lambda: ref.simcc_decode(simcc[0].copy(), simcc[1].copy(), 2.0, 37, 37))


@pytest.mark.benchmark(group="SimCC 64x17x(384,512)")
def test_simcc_pyhpe(benchmark, simcc):
    benchmark(ops.simcc_decode, simcc[2], simcc[3])


@pytest.mark.benchmark(group="SimCC 64x17x(384,512)")
def test_simcc_mmpose_numpy(benchmark, simcc):
    benchmark(lambda: ref.simcc_decode(simcc[0].copy(), simcc[1].copy(), 2.0))


# ---- soft-argmax family -----------------------------------------------------------------


def fwd_bwd(fn, x):
    def step():
        x.grad = None
        fn(x).sum().backward()
    return step


@pytest.mark.benchmark(group="soft-argmax fwd 64x17x64x48")
def test_soft_argmax_fwd_pyhpe(benchmark, logits):
    benchmark(ops.soft_argmax, logits, beta=1.0)


@pytest.mark.benchmark(group="soft-argmax fwd 64x17x64x48")
def test_soft_argmax_fwd_kornia(benchmark, logits):
    kornia = pytest.importorskip("kornia")
    benchmark(kornia.geometry.subpix.spatial_soft_argmax2d, logits, 1.0, False)


@pytest.mark.benchmark(group="soft-argmax fwd+bwd 64x17x64x48")
def test_soft_argmax_fwdbwd_pyhpe(benchmark, logits):
    benchmark(fwd_bwd(lambda t: ops.soft_argmax(t), logits.clone().requires_grad_(True)))


@pytest.mark.benchmark(group="soft-argmax fwd+bwd 64x17x64x48")
def test_soft_argmax_fwdbwd_kornia(benchmark, logits):
    kornia = pytest.importorskip("kornia")
    fn = lambda t: kornia.geometry.subpix.spatial_soft_argmax2d(t, 1.0, False)  # noqa: E731
    benchmark(fwd_bwd(fn, logits.clone().requires_grad_(True)))


@pytest.mark.benchmark(group="soft-argmax fwd+bwd 64x17x64x48")
def test_soft_argmax_fwdbwd_floor_copy(benchmark, logits):
    benchmark(lambda: torch.empty_like(logits).copy_(logits))


@pytest.mark.benchmark(group="DSNT fwd+bwd 64x17x64x48")
def test_dsnt_fwdbwd_pyhpe(benchmark, logits):
    probs = torch.softmax(logits.flatten(2), -1).view_as(logits)
    benchmark(fwd_bwd(ops.dsnt, probs.clone().requires_grad_(True)))


@pytest.mark.benchmark(group="DSNT fwd+bwd 64x17x64x48")
def test_dsnt_fwdbwd_dsntnn(benchmark, logits):
    dsntnn = pytest.importorskip("dsntnn")
    probs = torch.softmax(logits.flatten(2), -1).view_as(logits)
    benchmark(fwd_bwd(dsntnn.dsnt, probs.clone().requires_grad_(True)))


@pytest.mark.benchmark(group="DSNT fwd+bwd 64x17x64x48")
def test_dsnt_fwdbwd_floor_copy(benchmark, logits):
    probs = torch.softmax(logits.flatten(2), -1).view_as(logits)
    benchmark(lambda: torch.empty_like(probs).copy_(probs))


@pytest.mark.benchmark(group="softmax+DSNT fwd+bwd 64x17x64x48")
def test_softmax_dsnt_fwdbwd_pyhpe(benchmark, logits):
    fn = lambda t: ops.dsnt(t, normalize="softmax")  # noqa: E731
    benchmark(fwd_bwd(fn, logits.clone().requires_grad_(True)))


@pytest.mark.benchmark(group="softmax+DSNT fwd+bwd 64x17x64x48")
def test_softmax_dsnt_fwdbwd_dsntnn(benchmark, logits):
    dsntnn = pytest.importorskip("dsntnn")
    fn = lambda t: dsntnn.dsnt(dsntnn.flat_softmax(t))  # noqa: E731
    benchmark(fwd_bwd(fn, logits.clone().requires_grad_(True)))


@pytest.mark.benchmark(group="debiased IPR (mmpose form) fwd+bwd 64x17x64x48")
def test_debiased_fwdbwd_pyhpe(benchmark, logits):
    benchmark(fwd_bwd(lambda t: ops.debiased_soft_argmax(t, form="mmpose"),
                      logits.clone().requires_grad_(True)))


@pytest.mark.benchmark(group="debiased IPR (mmpose form) fwd+bwd 64x17x64x48")
def test_debiased_fwdbwd_mmpose_torch(benchmark, logits):
    benchmark(fwd_bwd(ref.debiased_soft_argmax_mmpose, logits.clone().requires_grad_(True)))
