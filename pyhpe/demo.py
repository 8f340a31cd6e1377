"""``pyhpe demo``: train a small top-down model on synthetic figures, evaluate it, draw it.

On a 2-core CPU the whole run (rendering, training, flip-test evaluation, PNGs, speed table)
fits in five minutes (training is budgeted 200 s): the model is a stride-4 SimpleBaseline
(ResNet-style, 3 stages, ~0.6 M parameters) on 64x48 crops with 16x12 heatmaps and DARK
decoding. Training stops at the time budget; every 30 steps the cosine schedule is refitted
to the measured speed so it ends annealed. AP is computed by pyhpe's COCO evaluator and cross-checked with
pycocotools.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .reference.oks import coco_oks_matrix

# Quick mode (the seconds-long smoke run): a fixed number of steps, no time budget, and an AP
# floor a working pipeline clears with margin. Measured on 128 training / 16 held-out 96x96
# images, batch 16: AP 0.245-0.272 over seeds 0-2 after 60 steps; an untrained model scores 0.
QUICK_STEPS = 60
QUICK_MIN_AP = 0.10

DEMO_MODEL = dict(depth=18, layers=[1, 2, 2], widths=(32, 64, 96), stem_channels=32,
                  stem="conv3x2", deconv_channels=(48, 48))


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


def _numpy_oks(dts, gts, areas, sigmas):
    """pycocotools ``computeOks`` per image (numpy; the baseline)."""
    return [coco_oks_matrix(d, g, a, sigmas) for d, g, a in zip(dts, gts, areas)]


def speed_table(print_fn=print, num_images: int = 200, seed: int = 0) -> List[Dict]:
    """Time the pyhpe.ops kernels that are built against numpy/torch baselines; skip absent ops."""
    import pyhpe.ops as ops
    from pyhpe.codecs import _fallback as fb
    rng = np.random.default_rng(seed)
    rows = []
    sig = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10
    if hasattr(ops, "oks_matrix"):
        N, D, G, K = num_images, 20, 10, 17
        gt = rng.uniform(0, 200, (N, G, K, 3))
        gt[..., 2] = rng.integers(0, 3, (N, G, K))
        dt = gt[:, rng.integers(0, G, D)].copy()
        dt[..., :2] += rng.normal(0, 5, dt[..., :2].shape)
        areas = rng.uniform(500, 20000, (N, G))
        tdt, tgt, tar = (torch.from_numpy(x) for x in (dt, gt, areas))
        ours = median_time(lambda: ops.oks_matrix(tdt, tgt, tar))
        base = median_time(lambda: _numpy_oks(dt, gt, areas, sig), repeat=3)
        rows.append({"op": "oks_matrix", "shape": f"{N} img x {D}x{G}x{K}",
                     "baseline": "pycocotools computeOks (numpy)", "ours_ms": ours * 1e3, "base_ms": base * 1e3})
    B, K, H, W = 64, 17, 64, 48
    kp = torch.rand(B, 1, K, 2) * torch.tensor([W, H])
    vis = torch.ones(B, 1, K)
    hm = fb.msra_heatmaps_torch(kp, vis, (W, H), 2.0)[0]
    for name, ours_fn, base_fn, base_name, shape in (
        ("msra_heatmaps", lambda op: op(kp, vis, (W, H), 2.0),
         lambda: fb.msra_heatmaps_torch(kp, vis, (W, H), 2.0), "torch (vectorized)", f"{B}x{K}x{H}x{W}"),
        ("argmax_decode", lambda op: op(hm, quarter_offset=True),
         lambda: fb.argmax_decode_torch(hm, True), "torch (vectorized)", f"{B}x{K}x{H}x{W}"),
        ("dark_decode", lambda op: op(hm, kernel=11),
         lambda: fb.dark_decode_torch(hm, 11), "torch (vectorized)", f"{B}x{K}x{H}x{W}"),
    ):
        op = getattr(ops, name, None)
        if op is None:
            rows.append({"op": name, "shape": shape, "baseline": base_name, "ours_ms": None,
                         "base_ms": median_time(base_fn) * 1e3})
            continue
        try:
            ours = median_time(lambda: ours_fn(op))
        except Exception as e:  # a kernel with a different signature must not break the demo
            rows.append({"op": name, "shape": shape, "baseline": base_name, "ours_ms": None,
                         "base_ms": None, "note": f"error: {type(e).__name__}"})
            continue
        rows.append({"op": name, "shape": shape, "baseline": base_name, "ours_ms": ours * 1e3,
                     "base_ms": median_time(base_fn) * 1e3})
    others = sorted(n for n in getattr(ops, "__all__", dir(ops)) if not n.startswith("_")
                    and callable(getattr(ops, n, None)) and n not in {r["op"] for r in rows}
                    and n[0].islower())
    print_fn("\nkernel speed (median wall time, CPU, %d threads)" % torch.get_num_threads())
    print_fn(f"{'op':16s} {'shape':26s} {'pyhpe':>10s} {'baseline':>10s} {'speed-up':>9s}  baseline")
    for r in rows:
        o = f"{r['ours_ms']:.3f}ms" if r.get("ours_ms") is not None else "absent"
        b = f"{r['base_ms']:.3f}ms" if r.get("base_ms") is not None else "-"
        sp = f"{r['base_ms'] / r['ours_ms']:.1f}x" if r.get("ours_ms") and r.get("base_ms") else "-"
        print_fn(f"{r['op']:16s} {r['shape']:26s} {o:>10s} {b:>10s} {sp:>9s}  {r['baseline']}"
                 + (f" ({r['note']})" if r.get("note") else ""))
    if others:
        print_fn("other pyhpe.ops present (not timed here): " + ", ".join(others))
    return rows


def run_demo(out_dir: str = "demo_out", num_images: int = 2000, seed: int = 0,
             budget_s: float = 200.0, num_val: int = 300, target_ap: float = 0.7,
             image_size: int = 128, batch_size: int = 32, quick: bool = False,
             bench: bool = True, threads: Optional[int] = 1, log=print) -> int:
    """Run the demo; returns 0 when AP >= ``target_ap`` (``QUICK_MIN_AP`` in ``quick`` mode)
    and pyhpe's stats equal pycocotools', else 1.

    ``threads`` (default 1) sets torch's intra-op threads for the run: this model's small
    convolutions gain little from a second thread, and on a shared machine a descheduled
    OpenMP thread stalls every step (measured: 0.3 s/step with 1 thread vs up to 2.6 s/step
    with 2 under load), so one thread is the robust choice. None keeps torch's default.
    """
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return _run_demo(out_dir, num_images, seed, budget_s, num_val, target_ap, image_size,
                         batch_size, quick, bench, log)
    finally:
        torch.set_num_threads(old_threads)


def _run_demo(out_dir, num_images, seed, budget_s, num_val, target_ap, image_size, batch_size,
              quick, bench, log) -> int:
    from pyhpe.codecs import MSRAHeatmap
    from pyhpe.data import (SyntheticPoseDataset, TopDownAugment, TopDownDataset, records_from_coco)
    from pyhpe.models import SimpleBaseline
    from pyhpe.train import TrainConfig, Trainer, pycocotools_keypoint_stats
    from pyhpe.train.evaluation import coco_keypoint_stats, predict_topdown
    from pyhpe.vis import draw_pose, plot_training_curve, save_grid

    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(seed)
    log(f"pyhpe demo: synthetic COCO-17 figures, top-down SimpleBaseline, {torch.get_num_threads()} CPU threads")
    size = (image_size, image_size)
    train = SyntheticPoseDataset(num_images, seed=seed, size=size, occlusion=0.1)
    val = SyntheticPoseDataset(num_val, seed=seed + 7919, size=size, occlusion=0.1)
    val_gt = val.coco_dict()
    log(f"rendered {num_images} training and {num_val} held-out images ({size[0]}x{size[1]}) "
        f"in {time.time() - t0:.1f}s")
    input_size = (48, 64)
    codec = MSRAHeatmap(input_size, (12, 16), sigma=1.0, unbiased=True, blur_kernel_size=5)
    train_ds = TopDownDataset(records_from_coco(train.coco_dict()), train.image_by_id,
                              input_size=input_size, seed=seed,
                              augment=TopDownAugment(rot_factor=20, half_body_prob=0.1))
    val_ds = TopDownDataset(records_from_coco(val_gt), val.image_by_id, input_size=input_size)
    model = SimpleBaseline(**DEMO_MODEL)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: SimpleBaseline-demo ({n_params / 1e6:.2f} M params), input {input_size[1]}x{input_size[0]}, "
        f"heatmaps 16x12, train budget {budget_s:.0f}s")
    cfg = TrainConfig(epochs=1000, batch_size=batch_size, lr=2e-3,
                      warmup_steps=10 if quick else min(50, max(budget_s, 1)), lr_policy="cosine",
                      time_budget_s=None if quick else budget_s, calibrate_steps=0 if quick else 30,
                      out_dir=os.path.join(out_dir, "work_dir"), resume=False, eval_every=0,
                      ema=True, ema_decay=0.998, progress=sys.stderr.isatty(), seed=seed,
                      max_steps=QUICK_STEPS if quick else None)
    trainer = Trainer(model, train_ds, codec, cfg, log=log)
    t_train = time.time()
    trainer.fit()
    train_s = time.time() - t_train
    log(f"trained {trainer.step} steps ({trainer.step * batch_size} crops) in {train_s:.1f}s")

    t_eval = time.time()
    results = predict_topdown(trainer.eval_model(), val_ds, codec, flip_test=True, batch_size=128)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f)
    with open(os.path.join(out_dir, "val_gt.json"), "w") as f:
        json.dump(val_gt, f)
    ours = coco_keypoint_stats(val_gt, results)
    try:
        ref = pycocotools_keypoint_stats(val_gt, results)
    except ImportError:
        ref = None
    names = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    log(f"evaluation on {len(val_ds)} held-out persons (flip test) in {time.time() - t_eval:.1f}s")
    log("           " + " ".join(f"{n:>6s}" for n in names))
    log("pyhpe      " + " ".join(f"{v:6.3f}" for v in ours))
    if ref is None:
        identical = True
        log("pycocotools is not installed: cross-check skipped")
    else:
        log("pycocotools" + " ".join(f"{v:6.3f}" for v in ref))
        identical = bool(np.array_equal(np.asarray(ours, np.float64), np.asarray(ref, np.float64)))
        log(f"pyhpe and pycocotools stats identical: {identical}")

    # drawings: predicted skeletons on held-out images, and the training curve
    by_img: Dict[int, list] = {}
    for r in results:
        by_img.setdefault(r["image_id"], []).append(np.asarray(r["keypoints"]).reshape(-1, 3))
    tiles = []
    for i in range(min(16, len(val))):
        img = val.image(i)
        tiles.append(draw_pose(img, np.stack(by_img.get(i + 1, [np.zeros((17, 3))])), score_thr=0.2))
    save_grid(tiles, os.path.join(out_dir, "predictions.png"), cols=8, scale=2.0)
    plot_training_curve(trainer.loss_log or trainer.history, os.path.join(out_dir, "training_curve.png"),
                        title=f"pyhpe demo: train loss ({trainer.step} steps), held-out AP {ours[0]:.3f}")
    log(f"wrote {out_dir}/predictions.png, {out_dir}/training_curve.png, results.json")
    if bench:
        speed_table(log, num_images=50 if quick else 200, seed=seed)
    ap = float(ours[0])
    floor = QUICK_MIN_AP if quick else target_ap
    log(f"\nAP {ap:.3f} (target {floor}{', quick mode' if quick else ''}) | total wall time "
        f"{time.time() - t0:.1f}s")
    if ap < floor:
        log(f"pyhpe demo: FAILED: AP {ap:.3f} is below {floor}")
    if not identical:
        log("pyhpe demo: FAILED: pyhpe's stats differ from pycocotools'")
    return 0 if ap >= floor and identical else 1
