"""Speed tables (``pyhpe bench``, the demo): pyhpe's kernels against vectorised torch/numpy
baselines, and the COCO evaluator against pycocotools / faster-coco-eval."""
from __future__ import annotations

import copy
import time
from typing import Callable, Dict, List

import numpy as np
import torch

from ..keypoints import COCO_SIGMAS


def median_time(fn: Callable, repeat: int = 5, min_time: float = 0.02,
                sync: Callable[[], None] = lambda: None) -> float:
    """Median over ``repeat`` rounds of fn's seconds per call (each round runs it for at least
    ``min_time``); ``sync`` waits for asynchronous work (a GPU stream) after every call."""
    fn()
    sync()
    times = []
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            sync()
            if time.perf_counter() - t0 >= min_time:
                break
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def speed_table(print_fn=print, num_images: int = 200, seed: int = 0) -> List[Dict]:
    """Time the pyhpe.ops kernels against vectorised numpy/torch baselines
    (:mod:`pyhpe.testing.baselines`); rows for ops that are absent or fail say so."""
    import pyhpe.ops as ops
    from . import baselines as base
    rng = np.random.default_rng(seed)
    rows = []
    N, D, G, K = num_images, 20, 10, 17
    gt = rng.uniform(0, 200, (N, G, K, 3))
    gt[..., 2] = rng.integers(0, 3, (N, G, K))
    dt = gt[:, rng.integers(0, G, D)].copy()
    dt[..., :2] += rng.normal(0, 5, dt[..., :2].shape)
    areas = rng.uniform(500, 20000, (N, G))
    tdt, tgt, tar = (torch.from_numpy(x) for x in (dt, gt, areas))
    B, H, W = 64, 64, 48
    kp = torch.rand(B, 1, K, 2, generator=torch.Generator().manual_seed(seed)) * torch.tensor([W, H])
    vis = torch.ones(B, 1, K)
    hm = base.msra_heatmaps_torch(kp, vis, (W, H), 2.0)[0]
    hm_shape = f"{B}x{K}x{H}x{W}"
    cases = (
        ("oks_matrix", lambda op: op(tdt, tgt, tar),
         lambda: base.numpy_oks_matrix(dt, gt, areas, COCO_SIGMAS), "numpy (vectorised)",
         f"{N} img x {D}x{G}x{K}"),
        ("msra_heatmaps", lambda op: op(kp, vis, (W, H), sigma=2.0),
         lambda: base.msra_heatmaps_torch(kp, vis, (W, H), 2.0), "torch (vectorised)", hm_shape),
        ("argmax_decode", lambda op: op(hm, quarter_offset=True),
         lambda: base.argmax_decode_torch(hm, True), "torch (vectorised)", hm_shape),
        ("dark_decode", lambda op: op(hm, kernel=11),
         lambda: base.dark_decode_torch(hm, 11), "torch (vectorised)", hm_shape),
    )
    for name, ours_fn, base_fn, base_name, shape in cases:
        row = {"op": name, "shape": shape, "baseline": base_name, "ours_ms": None,
               "base_ms": median_time(base_fn, repeat=3) * 1e3}
        op = getattr(ops, name, None)
        if op is not None:
            try:
                row["ours_ms"] = median_time(lambda: ours_fn(op)) * 1e3
            except Exception as e:  # a kernel with another signature must not break the table
                row["note"] = f"error: {type(e).__name__}"
        rows.append(row)
    print_fn("\nkernel speed (median wall time, CPU, %d threads)" % torch.get_num_threads())
    print_fn(f"{'op':16s} {'shape':26s} {'pyhpe':>10s} {'baseline':>10s} {'speed-up':>9s}  baseline")
    for r in rows:
        o = f"{r['ours_ms']:.3f}ms" if r["ours_ms"] is not None else "absent"
        b = f"{r['base_ms']:.3f}ms"
        sp = f"{r['base_ms'] / r['ours_ms']:.1f}x" if r["ours_ms"] else "-"
        print_fn(f"{r['op']:16s} {r['shape']:26s} {o:>10s} {b:>10s} {sp:>9s}  {r['baseline']}"
                 + (f" ({r['note']})" if r.get("note") else ""))
    return rows


def _best_time(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def evaluator_table(num_images: int = 2000, seed: int = 0, references: bool = True):
    """Rows ``(name, seconds, stats)`` for pyhpe, pycocotools and faster-coco-eval (those
    installed) on :func:`pyhpe.testing.synthetic_keypoint_eval_set` data."""
    from ..eval import COCOKeypointEval
    from .cocoeval import faster_coco_eval_stats, pycocotools_stats
    from .synthetic_eval import synthetic_keypoint_eval_set

    gt, dt = synthetic_keypoint_eval_set(num_images, seed)
    rows = [("pyhpe", *_best_time(lambda: COCOKeypointEval(gt, dt).run(), repeat=3))]
    if references:
        for name, fn, module in (("pycocotools", pycocotools_stats, "pycocotools"),
                                 ("faster-coco-eval", faster_coco_eval_stats, "faster_coco_eval")):
            try:
                __import__(module)
            except ImportError:
                continue
            g, d = copy.deepcopy(gt), copy.deepcopy(dt)
            rows.append((name, *_best_time(lambda: fn(g, d, copy_inputs=False))))
    return rows


def print_evaluator_table(num_images: int = 2000, seed: int = 0, print_fn=print) -> List:
    """End-to-end evaluation time of pyhpe vs the references, with the stats checked equal."""
    rows = evaluator_table(num_images, seed)
    base = rows[0][1]
    print_fn(f"COCO keypoint evaluation, {num_images} synthetic images (end to end):")
    for name, sec, stats in rows:
        same = "identical" if np.array_equal(stats, rows[0][2]) else "DIFFERENT"
        print_fn(f"  {name:18s} {sec * 1e3:9.1f} ms  {sec / base:6.1f}x   AP={stats[0]:.4f} {same}")
    return rows
