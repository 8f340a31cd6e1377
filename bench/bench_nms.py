"""Pose NMS benchmarks: pyhpe ops vs mmpose's numpy oks_nms / soft_oks_nms (faithful
reimplementations in pyhpe.reference.nms, the same numpy operations) and AlphaPose's
torch pose_nms_body.

Scenario: a crowded image, P people with D noisy duplicate detections each (N = P * D poses),
the input a top-down detector + OKS-NMS actually sees.
    python -m pytest bench/bench_nms.py --benchmark-only -q
"""
import numpy as np
import pytest
import torch

from pyhpe.ops import oks_nms, pose_nms_alphapose, soft_oks_nms
from pyhpe.reference import nms as ref


def crowd(n, dups=5, K=17, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    people = n // dups
    centres = rng.random((people, 1, 2)) * 1000
    base = centres + rng.normal(0, 30, (people, K, 2))
    xy = np.repeat(base, dups, 0) + rng.normal(0, 3, (people * dups, K, 2))
    kpts = np.concatenate([xy, rng.random((people * dups, K, 1))], -1)
    scores = rng.random(people * dups)
    areas = np.repeat(rng.random(people) * 8000 + 2000, dups)
    return kpts.astype(dtype), scores.astype(dtype), areas.astype(dtype)


def tensors(*arrays):
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)


@pytest.mark.parametrize("n", [100, 500])
def test_oks_nms_pyhpe(benchmark, n):
    k, s, a = tensors(*crowd(n))
    benchmark.group = f"oks_nms N={n}"
    keep = benchmark(oks_nms, k, s, a, thr=0.9).keep
    np.testing.assert_array_equal(keep.numpy(), ref.oks_nms(*crowd(n), 0.9))


@pytest.mark.parametrize("n", [100, 500])
def test_oks_nms_pyhpe_stable_ties(benchmark, n):
    k, s, a = tensors(*crowd(n))
    benchmark.group = f"oks_nms N={n}"
    benchmark(oks_nms, k, s, a, thr=0.9, tie_break="stable", validate=False)


@pytest.mark.parametrize("n", [100, 500])
def test_oks_nms_mmpose_numpy(benchmark, n):
    k, s, a = crowd(n)
    benchmark.group = f"oks_nms N={n}"
    benchmark.pedantic(ref.oks_nms, args=(k, s, a, 0.9), rounds=3, iterations=1)


def test_oks_nms_pyhpe_batch_64_images(benchmark):
    parts = [crowd(100, seed=i) for i in range(64)]
    k, s, a = tensors(*(np.concatenate([p[i] for p in parts]) for i in range(3)))
    offsets = torch.arange(0, 6401, 100)
    benchmark.group = "oks_nms 64 images x N=100"
    benchmark(oks_nms, k, s, a, thr=0.9, image_offsets=offsets, tie_break="stable", validate=False)


def test_oks_nms_mmpose_numpy_batch_64_images(benchmark):
    parts = [crowd(100, seed=i) for i in range(64)]
    benchmark.group = "oks_nms 64 images x N=100"
    benchmark.pedantic(lambda: [ref.oks_nms(*p, 0.9) for p in parts], rounds=1, iterations=1)


@pytest.mark.parametrize("n", [100, 500])
def test_soft_oks_nms_pyhpe(benchmark, n):
    k, s, a = tensors(*crowd(n))
    benchmark.group = f"soft_oks_nms N={n}"
    keep = benchmark(soft_oks_nms, k, s, a, thr=0.3, max_dets=20).keep
    np.testing.assert_array_equal(keep.numpy(), ref.soft_oks_nms(*crowd(n), 0.3, 20))


@pytest.mark.parametrize("n", [100, 500])
def test_soft_oks_nms_mmpose_numpy(benchmark, n):
    k, s, a = crowd(n)
    benchmark.group = f"soft_oks_nms N={n}"
    benchmark.pedantic(ref.soft_oks_nms, args=(k, s, a, 0.3, 20), rounds=3, iterations=1)


def alphapose_crowd(n, seed=0):
    k, _, a = crowd(n, seed=seed, dtype=np.float32)
    preds = k[..., :2] / 4  # a 250 x 250 input: AlphaPose's heatmap-scale distances
    scores = k[..., 2]
    side = np.sqrt(a)[:, None] / 4
    boxes = np.concatenate([preds.min(1), preds.min(1) + side], 1).astype(np.float32)
    return boxes, np.ascontiguousarray(preds), np.ascontiguousarray(scores)


@pytest.mark.parametrize("n", [100, 500])
def test_pose_nms_alphapose_pyhpe(benchmark, n):
    b, p, s = tensors(*alphapose_crowd(n))
    benchmark.group = f"pose_nms_alphapose N={n}"
    benchmark(pose_nms_alphapose, b, p, s)


@pytest.mark.parametrize("n", [100, 500])
def test_pose_nms_alphapose_reference_torch(benchmark, n):
    b, p, s = tensors(*alphapose_crowd(n))
    benchmark.group = f"pose_nms_alphapose N={n}"
    benchmark.pedantic(ref.pose_nms_alphapose, args=(b, p, s), rounds=3, iterations=1)


# One image with 20,000 poses (4,000 people x 5 detections), every pose kept by soft-NMS:
# the full-sort soft-NMS and the full pairwise AlphaPose mask took minutes here.
@pytest.mark.parametrize("canvas", [1000, 4000])
def test_soft_oks_nms_pyhpe_20000(benchmark, canvas):
    k, s, a = tensors(*crowd20000(canvas))
    benchmark.group = f"20,000 poses, {canvas}px image"
    benchmark.pedantic(soft_oks_nms, args=(k, s, a), kwargs=dict(thr=0.3, max_dets=20000),
                       rounds=1, iterations=1)


@pytest.mark.parametrize("canvas", [1000, 4000])
def test_oks_nms_pyhpe_20000(benchmark, canvas):
    k, s, a = tensors(*crowd20000(canvas))
    benchmark.group = f"20,000 poses, {canvas}px image"
    benchmark.pedantic(oks_nms, args=(k, s, a), kwargs=dict(thr=0.9), rounds=1, iterations=1)


@pytest.mark.parametrize("canvas", [1000, 4000])
def test_pose_nms_alphapose_pyhpe_20000(benchmark, canvas):
    k, _, _ = crowd20000(canvas)
    preds = torch.from_numpy(np.ascontiguousarray(k[..., :2] / 4)).float()
    boxes = torch.cat([preds.amin(1), preds.amax(1)], 1)
    benchmark.group = f"20,000 poses, {canvas}px image"
    benchmark.pedantic(pose_nms_alphapose, args=(boxes, preds, torch.from_numpy(k[..., 2]).float()),
                       rounds=1, iterations=1)


def crowd20000(canvas, seed=0):
    rng = np.random.default_rng(seed)
    n, people, K = 20000, 4000, 17
    centres = rng.random((people, 1, 2)) * canvas
    xy = np.repeat(centres + rng.normal(0, 30, (people, K, 2)), 5, 0) + rng.normal(0, 3, (n, K, 2))
    kpts = np.concatenate([xy, rng.random((n, K, 1))], -1)
    return kpts, rng.random(n), np.repeat(rng.random(people) * 8000 + 2000, 5)
