"""OKS matrix: pyhpe vs pycocotools' computeOks loop, a vectorized numpy broadcast, and the
floor of writing the (D, G) output."""
import numpy as np
import pytest
import torch

from pyhpe.ops import oks_matrix
from pyhpe.keypoints import COCO_SIGMAS
from pyhpe.reference.oks import coco_oks_matrix

D, G, K = 200, 100, 17


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    gt = np.concatenate([rng.uniform(0, 500, (G, K, 2)), rng.choice([0., 2.], (G, K, 1))], -1)
    dt = np.concatenate([rng.uniform(0, 500, (D, K, 2)), rng.uniform(0, 1, (D, K, 1))], -1)
    areas = rng.uniform(100, 40000, G)
    boxes = np.concatenate([rng.uniform(0, 400, (G, 2)), rng.uniform(10, 100, (G, 2))], 1)
    return dt, gt, areas, boxes


def numpy_broadcast(dt, gt, areas, sigmas):
    var = (sigmas * 2) ** 2
    d2 = ((dt[:, None, :, :2] - gt[None, :, :, :2]) ** 2).sum(-1)
    e = d2 / var / (areas[None, :, None] + np.spacing(1)) / 2
    vis = gt[None, :, :, 2] > 0
    return (np.exp(-e) * vis).sum(-1) / np.maximum(vis.sum(-1), 1)


def test_pyhpe_float64(benchmark, case):
    t = [torch.tensor(a) for a in case]
    benchmark(oks_matrix, t[0], t[1], t[2], gt_boxes=t[3], validate=False)


def test_pyhpe_float32(benchmark, case):
    t = [torch.tensor(a, dtype=torch.float32) for a in case]
    benchmark(oks_matrix, t[0], t[1], t[2], gt_boxes=t[3], validate=False)


def test_numpy_broadcast(benchmark, case):
    dt, gt, areas, _ = case
    benchmark(numpy_broadcast, dt, gt, areas, COCO_SIGMAS)


def test_pycocotools_loop(benchmark, case):
    dt, gt, areas, boxes = case
    benchmark.pedantic(coco_oks_matrix, args=(dt, gt, areas, COCO_SIGMAS, boxes),
                       rounds=2)


def test_floor_write_output(benchmark):
    benchmark(torch.zeros, D, G, dtype=torch.float64)
