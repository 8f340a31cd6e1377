"""``pyhpe demo``: train a small top-down model on synthetic figures, evaluate it, draw it.

On a 2-core CPU the whole run (rendering, training, flip-test evaluation, PNGs, speed table)
fits in five minutes (training is budgeted 200 s): the model is a stride-4 SimpleBaseline
(ResNet-style, 3 stages, ~0.6 M parameters) on 64x48 crops with 16x12 heatmaps and DARK
decoding, trained by the one engine on the ``topdown`` task (:func:`demo_config` is a plain
task config). Training stops at the time budget; every 30 steps the cosine schedule is
refitted to the measured speed so it ends annealed. AP is computed by pyhpe's COCO evaluator
and cross-checked with pycocotools.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, Optional

import numpy as np
import torch

# Quick mode (the seconds-long smoke run): a fixed number of steps, no time budget, and an AP
# floor a working pipeline clears with margin. Measured on 128 training / 16 held-out 96x96
# images, batch 16: AP 0.17-0.22 over seeds 0-2 after 60 steps; an untrained model scores 0.
QUICK_STEPS = 60
QUICK_MIN_AP = 0.10

DEMO_MODEL = dict(depth=18, layers=[1, 2, 2], widths=[32, 64, 96], stem_channels=32,
                  stem="conv3x2", deconv_channels=[48, 48])
# The heatmap loss is mmpose's plain mean (no x1000 rescaling): Adam's update does not depend
# on the loss scale, and AdamW's weight decay is decoupled from it.
DEMO_LR = 2e-3


def demo_config(out_dir: str, num_images: int, num_val: int, image_size: int, batch_size: int,
                seed: int, budget_s: float, quick: bool) -> Dict:
    """The demo as a top-down task config (``pyhpe train --config`` accepts the same dict)."""
    return {
        "task": "topdown", "keypoints": "coco17", "input_size": [48, 64],
        "model": dict(name="simple_baseline", config="demo", **DEMO_MODEL),
        "codec": {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0, "decode": "dark",
                  "blur_kernel_size": 5},
        "data": {"type": "synthetic", "num_images": num_images, "val_images": num_val,
                 "image_size": image_size, "seed": seed, "occlusion": 0.1},
        "augment": {"rot_factor": 20, "half_body_prob": 0.1},
        "eval": {"flip_test": True, "batch_size": 128},
        "train": {"epochs": 1000, "batch_size": batch_size, "lr": DEMO_LR,
                  "warmup_steps": 10 if quick else int(min(50, max(budget_s, 1))),
                  "lr_policy": "cosine", "time_budget_s": None if quick else budget_s,
                  "calibrate_steps": 0 if quick else 30, "max_steps": QUICK_STEPS if quick else None,
                  "out_dir": os.path.join(out_dir, "work_dir"), "eval_every": -1, "ema": True,
                  "ema_decay": 0.998, "progress": sys.stderr.isatty(), "seed": seed},
    }


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
    from pyhpe.engine import Trainer
    from pyhpe.eval import COCO_STAT_NAMES, coco_keypoint_stats
    from pyhpe.tasks import TopDownTask
    from pyhpe.testing import pycocotools_stats, speed_table
    from pyhpe.vis import draw_pose, plot_training_curve, save_grid

    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    log(f"pyhpe demo: synthetic COCO-17 figures, top-down SimpleBaseline, {torch.get_num_threads()} CPU threads")
    task = TopDownTask(demo_config(out_dir, num_images, num_val, image_size, batch_size, seed,
                                   budget_s, quick))
    train_ds, val_ds = task.datasets()
    val_gt = task.val_gt
    log(f"rendered {num_images} training and {num_val} held-out images ({image_size}x{image_size}) "
        f"in {time.time() - t0:.1f}s")
    trainer = Trainer(task, log=log)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    log(f"model: SimpleBaseline-demo ({n_params / 1e6:.2f} M params), input 64x48, "
        f"heatmaps 16x12, train budget {budget_s:.0f}s")
    t_train = time.time()
    trainer.fit()
    train_s = time.time() - t_train
    log(f"trained {trainer.step} steps ({trainer.step * batch_size} crops) in {train_s:.1f}s")

    t_eval = time.time()
    results = task.predict(trainer.eval_model(), val_ds, trainer.device)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f)
    with open(os.path.join(out_dir, "val_gt.json"), "w") as f:
        json.dump(val_gt, f)
    stats = coco_keypoint_stats(val_gt, results)
    ours = [stats[n] for n in COCO_STAT_NAMES]
    try:
        ref = pycocotools_stats(val_gt, results)
    except ImportError:
        ref = None
    log(f"evaluation on {len(val_ds)} held-out persons (flip test) in {time.time() - t_eval:.1f}s")
    log("           " + " ".join(f"{n:>6s}" for n in COCO_STAT_NAMES))
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
    for i, im in enumerate(val_gt["images"][:16]):
        img = val_ds.image_loader(im["id"])
        tiles.append(draw_pose(img, np.stack(by_img.get(im["id"], [np.zeros((17, 3))])), score_thr=0.2))
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
