"""Evaluator demo and speed table (used by `pyhpe bench` and, until training lands,
`pyhpe demo`): synthetic COCO keypoint data, pyhpe vs pycocotools / faster-coco-eval."""
from __future__ import annotations

import copy
import time

import numpy as np


def _time(fn, *args, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, out


def evaluator_table(num_images: int = 2000, seed: int = 0, references: bool = True):
    """Rows (name, seconds, stats) for pyhpe, pycocotools and faster-coco-eval."""
    from . import COCOKeypointEval, faster_coco_eval_stats, pycocotools_stats
    from .synthetic import synthetic_keypoint_eval_set

    gt, dt = synthetic_keypoint_eval_set(num_images, seed)
    rows = [("pyhpe", *_time(lambda: COCOKeypointEval(gt, dt).run(), repeat=3))]
    if references:
        for name, fn, module in (("pycocotools", pycocotools_stats, "pycocotools"),
                                 ("faster-coco-eval", faster_coco_eval_stats, "faster_coco_eval")):
            try:
                __import__(module)
            except ImportError:
                continue
            g, d = copy.deepcopy(gt), copy.deepcopy(dt)
            rows.append((name, *_time(lambda: fn(g, d, copy_inputs=False))))
    return rows


def oks_table(seed: int = 0):
    """Rows (name, seconds) for a 200x100 OKS matrix."""
    import torch

    from ..ops import oks_matrix
    from ..ops.oks import COCO_SIGMAS
    from ..reference.oks import coco_oks_matrix

    rng = np.random.default_rng(seed)
    D, G, K = 200, 100, 17
    gt = np.concatenate([rng.uniform(0, 500, (G, K, 2)), rng.choice([0., 2.], (G, K, 1))], -1)
    dt = rng.uniform(0, 500, (D, K, 3))
    areas = rng.uniform(100, 40000, G)
    t = [torch.tensor(a) for a in (dt, gt, areas)]
    ours, _ = _time(lambda: oks_matrix(*t, validate=False), repeat=20)
    ref, _ = _time(lambda: coco_oks_matrix(dt, gt, areas, COCO_SIGMAS.numpy()))
    return [("oks_matrix 200x100 (pyhpe)", ours), ("pycocotools computeOks loop", ref)]


def speed_table(num_images: int = 2000, seed: int = 0) -> None:
    rows = evaluator_table(num_images, seed)
    base = rows[0][1]
    print(f"COCO keypoint evaluation, {num_images} synthetic images (end to end):")
    for name, sec, stats in rows:
        same = "identical" if np.array_equal(stats, rows[0][2]) else "DIFFERENT"
        print(f"  {name:18s} {sec * 1e3:9.1f} ms  {sec / base:6.1f}x   AP={stats[0]:.4f} {same}")
    print("OKS matrix:")
    oks = oks_table(seed)
    for name, sec in oks:
        print(f"  {name:30s} {sec * 1e3:9.2f} ms  {sec / oks[0][1]:7.1f}x")


def run_demo(out_dir: str = "demo_out", num_images: int = 2000, seed: int = 0) -> int:
    import pyhpe
    print("pyhpe", pyhpe.__version__, pyhpe.info())
    speed_table(num_images, seed)
    return 0
