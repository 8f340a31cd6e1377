"""Target generation: pyhpe vs the mmpose numpy loop (one image at a time, as a data
pipeline runs it), a vectorized torch version over the whole batch, and the floor of writing
zeros of the output shape.

Top-down training case: B=64 images, K=17 keypoints, 64x48 heatmaps, sigma=2, N=1.
Run: python -m pytest bench/bench_heatmap.py --benchmark-only -q
PYHPE_BENCH_THREADS=n sets torch's intra-op threads (the numpy loop is single-threaded).
"""
import os

import numpy as np
import pytest
import torch

import pyhpe
from pyhpe.reference import heatmap as ref

if os.environ.get("PYHPE_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["PYHPE_BENCH_THREADS"]))

B, N, K, W, H, SIGMA = 64, 1, 17, 48, 64, 2.0
OPS = {"msra": pyhpe.ops.msra_heatmaps, "udp": pyhpe.ops.udp_heatmaps,
       "unbiased": pyhpe.ops.unbiased_heatmaps}

# COCO skeleton (0-based), 19 limbs.
COCO_LIMBS = [[15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6],
              [5, 7], [6, 8], [7, 9], [8, 10], [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5],
              [4, 6]]
PAF_B, PAF_N, PAF_W, PAF_H = 16, 6, 128, 128


@pytest.fixture(scope="module")
def topdown():
    rng = np.random.default_rng(0)
    kp = np.stack([rng.uniform(0, W, (B, N, K)), rng.uniform(0, H, (B, N, K))],
                  -1).astype(np.float32)
    vis = (rng.uniform(size=(B, N, K)) > 0.1).astype(np.float32)
    return kp, vis


@pytest.fixture(scope="module")
def bottomup():
    rng = np.random.default_rng(1)
    centre = rng.uniform(20, 108, (PAF_B, PAF_N, 1, 2))
    kp = (centre + rng.normal(0, 15, (PAF_B, PAF_N, K, 2))).astype(np.float32)
    vis = (rng.uniform(size=(PAF_B, PAF_N, K)) > 0.2).astype(np.float32)
    return kp, vis


def _mmpose_loop(kp, vis, encoding):
    return ref.gaussian_heatmaps_numpy(kp, vis, (W, H), SIGMA, encoding)


@pytest.mark.parametrize("encoding", list(OPS))
def test_pyhpe(benchmark, topdown, encoding):
    benchmark.group = f"heatmap-{encoding}"
    kp, vis = (torch.from_numpy(a) for a in topdown)
    benchmark(OPS[encoding], kp, vis, (W, H), sigma=SIGMA)


@pytest.mark.parametrize("encoding", list(OPS))
def test_pyhpe_out(benchmark, topdown, encoding):
    benchmark.group = f"heatmap-{encoding}"
    kp, vis = (torch.from_numpy(a) for a in topdown)
    out = torch.empty(B, K, H, W)
    benchmark(OPS[encoding], kp, vis, (W, H), sigma=SIGMA, out=out)


@pytest.mark.parametrize("encoding", list(OPS))
def test_mmpose_numpy_loop(benchmark, topdown, encoding):
    benchmark.group = f"heatmap-{encoding}"
    benchmark.pedantic(_mmpose_loop, args=(*topdown, encoding), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("encoding", list(OPS))
def test_torch_vectorized(benchmark, topdown, encoding):
    benchmark.group = f"heatmap-{encoding}"
    kp, vis = (torch.from_numpy(a) for a in topdown)
    benchmark.pedantic(ref.gaussian_heatmaps_torch, args=(kp, vis, (W, H), SIGMA, encoding),
                       rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("encoding", list(OPS))
def test_floor_zeros(benchmark, encoding):
    benchmark.group = f"heatmap-{encoding}"
    benchmark(torch.zeros, B, K, H, W)


@pytest.mark.parametrize("encoding", list(OPS))
def test_floor_zero_inplace(benchmark, encoding):
    """Floor of the out= variant: zeroing a preallocated output (no page faults)."""
    benchmark.group = f"heatmap-{encoding}"
    out = torch.empty(B, K, H, W)
    benchmark(out.zero_)


# SimCC: RTMPose-m COCO setting, input 192x256, split ratio 2, sigma (4.9, 5.66).
def test_simcc_pyhpe(benchmark, topdown):
    benchmark.group = "simcc"
    kp = torch.from_numpy(topdown[0][:, 0] * 4)
    vis = torch.from_numpy(topdown[1][:, 0])
    benchmark(pyhpe.ops.simcc_labels, kp, vis, (192, 256), sigma=(4.9, 5.66), split_ratio=2.0)


def test_simcc_mmpose_numpy(benchmark, topdown):
    benchmark.group = "simcc"
    kp, vis = topdown[0][:, 0] * 4, topdown[1][:, 0]
    benchmark.pedantic(ref.mmpose_simcc_gaussian, args=(kp, vis, (192, 256), (4.9, 5.66), 2.0,
                                                        False), rounds=5, warmup_rounds=1)


def test_simcc_torch_vectorized(benchmark, topdown):
    benchmark.group = "simcc"
    kp = torch.from_numpy(topdown[0][:, 0] * 4)
    vis = torch.from_numpy(topdown[1][:, 0])
    benchmark(ref.simcc_labels_torch, kp, vis, (192, 256), (4.9, 5.66), 2.0, False)


def test_simcc_floor_zeros(benchmark):
    benchmark.group = "simcc"
    benchmark(lambda: (torch.zeros(B, K, 384), torch.zeros(B, K, 512)))


# PAF: bottom-up, 16 images x 6 people, COCO skeleton, 128x128, limb width 1.
def test_paf_pyhpe(benchmark, bottomup):
    benchmark.group = "paf"
    kp, vis = (torch.from_numpy(a) for a in bottomup)
    limbs = torch.tensor(COCO_LIMBS)
    benchmark(pyhpe.ops.paf_targets, kp, vis, limbs, (PAF_W, PAF_H), limb_width=1.0)


def test_paf_mmpose_numpy(benchmark, bottomup):
    benchmark.group = "paf"
    benchmark.pedantic(ref.paf_targets_numpy, args=(*bottomup, COCO_LIMBS, (PAF_W, PAF_H), 1.0),
                       rounds=3, warmup_rounds=1)


def test_paf_torch_vectorized(benchmark, bottomup):
    benchmark.group = "paf"
    kp, vis = (torch.from_numpy(a) for a in bottomup)
    benchmark.pedantic(ref.paf_targets_torch, args=(kp, vis, COCO_LIMBS, (PAF_W, PAF_H), 1.0),
                       rounds=3, warmup_rounds=1)


def test_paf_pyhpe_out(benchmark, bottomup):
    benchmark.group = "paf"
    kp, vis = (torch.from_numpy(a) for a in bottomup)
    limbs = torch.tensor(COCO_LIMBS)
    out = torch.empty(PAF_B, 2 * len(COCO_LIMBS), PAF_H, PAF_W)
    benchmark(pyhpe.ops.paf_targets, kp, vis, limbs, (PAF_W, PAF_H), limb_width=1.0, out=out)


def test_paf_floor_zero_inplace(benchmark):
    benchmark.group = "paf"
    L = len(COCO_LIMBS)
    pafs, counts = torch.empty(PAF_B, 2 * L, PAF_H, PAF_W), torch.empty(PAF_B, L, PAF_H, PAF_W)
    benchmark(lambda: (pafs.zero_(), counts.zero_()))


def test_paf_floor_zeros(benchmark):
    benchmark.group = "paf"
    L = len(COCO_LIMBS)
    benchmark(lambda: (torch.zeros(PAF_B, 2 * L, PAF_H, PAF_W),
                       torch.zeros(PAF_B, L, PAF_H, PAF_W)))
