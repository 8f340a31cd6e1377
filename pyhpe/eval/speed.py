"""Evaluator speed table (`pyhpe bench`): synthetic COCO keypoint data, pyhpe vs
pycocotools / faster-coco-eval, stats checked identical."""
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


def print_evaluator_table(num_images: int = 2000, seed: int = 0, print_fn=print) -> None:
    """End-to-end evaluation time of pyhpe vs the references, with the stats checked."""
    rows = evaluator_table(num_images, seed)
    base = rows[0][1]
    print_fn(f"COCO keypoint evaluation, {num_images} synthetic images (end to end):")
    for name, sec, stats in rows:
        same = "identical" if np.array_equal(stats, rows[0][2]) else "DIFFERENT"
        print_fn(f"  {name:18s} {sec * 1e3:9.1f} ms  {sec / base:6.1f}x   AP={stats[0]:.4f} {same}")
