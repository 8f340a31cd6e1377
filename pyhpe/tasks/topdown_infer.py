"""Top-down inference on detector boxes, OKS-NMS and COCO evaluation.

Reads person boxes from a COCO *bbox results* file (``[{"image_id", "category_id", "bbox":
[x, y, w, h], "score"}, ...]``, the output of any COCO detector), crops each box, runs a
trained top-down model (a ``pyhpe train`` config + checkpoint; flip test by default), rescales
pose scores as mmpose does (box score x mean keypoint score above 0.2), suppresses duplicate
poses per image with OKS-NMS (:func:`pyhpe.ops.oks_nms`, mmpose semantics: threshold 0.9,
``vis_thr`` 0.2, area = box area) and evaluates against COCO keypoint ground truth with
:class:`pyhpe.eval.COCOKeypointEval` (pycocotools-identical), with and without NMS.

``--synthetic N`` instead evaluates on N synthetic multi-person images with simulated
detections (jittered GT boxes, duplicate boxes and false positives), written to
``<out>/detections.json`` so the run is reproducible from files.

``python -m pyhpe.tasks topdown_infer --gt person_keypoints_val2017.json --images val2017/
--dets detections.json --config cfg.json --checkpoint best.pth``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ._common import Logger, coco_stats, resolve_device, seed_all, write_json


def load_detections(dets, category_id: Optional[int] = 1, score_thr: float = 0.0,
                    image_ids=None) -> List[Dict]:
    """Person boxes from a COCO bbox results file or list, filtered by category, score and
    (optionally) image ids; boxes with non-positive size are dropped."""
    if isinstance(dets, (str, os.PathLike)):
        with open(dets) as f:
            dets = json.load(f)
    if isinstance(dets, dict):  # a COCO annotation file used as "detections" (GT boxes)
        dets = [dict(a, score=a.get("score", 1.0)) for a in dets.get("annotations", [])]
    ids = None if image_ids is None else set(int(i) for i in image_ids)
    out = []
    for d in dets:
        if category_id is not None and int(d.get("category_id", category_id)) != category_id:
            continue
        if float(d.get("score", 1.0)) < score_thr:
            continue
        if ids is not None and int(d["image_id"]) not in ids:
            continue
        x, y, w, h = (float(v) for v in d["bbox"])
        if w <= 0 or h <= 0:
            continue
        out.append({"image_id": int(d["image_id"]), "bbox": [x, y, w, h],
                    "score": float(d.get("score", 1.0))})
    return out


def simulate_detections(gt: Dict, seed: int = 0, jitter: float = 0.08, duplicate_prob: float = 0.5,
                        false_positives: float = 0.3) -> List[Dict]:
    """COCO bbox results imitating a detector: every GT person box jittered (score 0.6-1.0),
    a second jittered box for ``duplicate_prob`` of them (lower score), and on average
    ``false_positives`` random boxes per image (score < 0.5)."""
    rng = np.random.default_rng([seed, 4242])
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    dets = []

    def jittered(b):
        x, y, w, h = b
        dx, dy, dw, dh = rng.normal(0, jitter, size=4)
        return [x + dx * w, y + dy * h, w * float(np.exp(dw)), h * float(np.exp(dh))]

    for a in gt["annotations"]:
        if a.get("iscrowd", 0):
            continue
        s = float(rng.uniform(0.6, 1.0))
        dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": jittered(a["bbox"]), "score": s})
        if rng.random() < duplicate_prob:
            dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": jittered(a["bbox"]),
                         "score": s * float(rng.uniform(0.5, 0.95))})
    for image_id, (W, H) in sizes.items():
        for _ in range(int(rng.poisson(false_positives))):
            w, h = rng.uniform(0.1, 0.4) * W, rng.uniform(0.2, 0.6) * H
            dets.append({"image_id": image_id, "category_id": 1,
                         "bbox": [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), float(w), float(h)],
                         "score": float(rng.uniform(0.05, 0.5))})
    return dets


def apply_oks_nms(results: List[Dict], thr: float = 0.9, sigmas=None, vis_thr: Optional[float] = 0.2) -> List[Dict]:
    """OKS-NMS per image over COCO pose results (each with ``area``; mmpose ``oks_nms``)."""
    from ..ops import oks_nms
    if not results:
        return []
    order = sorted(range(len(results)), key=lambda i: results[i]["image_id"])  # stable
    grouped = [results[i] for i in order]
    image_ids = np.array([r["image_id"] for r in grouped])
    starts = np.flatnonzero(np.r_[True, image_ids[1:] != image_ids[:-1]])
    offsets = torch.as_tensor(np.r_[starts, len(grouped)], dtype=torch.int64)
    K = len(grouped[0]["keypoints"]) // 3
    kps = torch.tensor([r["keypoints"] for r in grouped], dtype=torch.float64).view(-1, K, 3)
    scores = torch.tensor([r["score"] for r in grouped], dtype=torch.float64)
    areas = torch.tensor([r["area"] for r in grouped], dtype=torch.float64)
    if sigmas is not None:
        sigmas = torch.as_tensor(np.asarray(sigmas), dtype=torch.float64)
    keep = oks_nms(kps, scores, areas, thr, sigmas, vis_thr, image_offsets=offsets)
    return [grouped[i] for i in keep.tolist()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyhpe.tasks topdown_infer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dets", default=None, help="COCO bbox results json (person detections)")
    p.add_argument("--gt", default=None, help="COCO keypoint annotations (evaluation, file names)")
    p.add_argument("--images", default=None, help="image directory of the GT's file_name entries")
    p.add_argument("--synthetic", type=int, default=0,
                   help="evaluate on N synthetic images with simulated detections instead")
    p.add_argument("--max-persons", type=int, default=3, help="synthetic: persons per image")
    p.add_argument("--image-size", type=int, default=128, help="synthetic: image side")
    p.add_argument("--config", default=None, help="pyhpe train config json (model, sizes, codec)")
    p.add_argument("--checkpoint", default=None, help="trained weights (without: untrained)")
    p.add_argument("--det-score-thr", type=float, default=0.0)
    p.add_argument("--nms-thr", type=float, default=0.9, help="OKS-NMS threshold (mmpose: 0.9)")
    p.add_argument("--vis-thr", type=float, default=0.2)
    p.add_argument("--no-nms", action="store_true")
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default="runs/topdown_infer")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def _load_model(cfg_path, checkpoint, kset, device, log):
    from ..train.run import build_codec, build_model_from_config, load_config
    cfg = load_config(cfg_path or {})
    model = build_model_from_config(cfg, kset.num_keypoints)
    if checkpoint:
        from ..train.utils import load_checkpoint_file
        sd = load_checkpoint_file(checkpoint)
        if isinstance(sd, dict) and sd.get("ema") and isinstance(sd["ema"], dict) and "module" in sd["ema"]:
            state = sd["ema"]["module"]
        elif isinstance(sd, dict) and "model" in sd:
            state = sd["model"]
        else:
            state = sd
        model.load_state_dict(state)
    else:
        log("topdown_infer: no --checkpoint, running the model with untrained weights")
    return model.to(device).eval(), build_codec(cfg, model), cfg


def run(argv: Optional[Sequence[str]] = None) -> Dict:
    from ..data import (CocoImageLoader, SyntheticPoseDataset, TopDownDataset, get_keypoint_set,
                        load_coco, records_from_boxes)
    from ..train.evaluation import predict_topdown
    args = build_parser().parse_args(list(argv or []))
    log = Logger(args.quiet)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_all(args.seed)
    device = resolve_device(args.device)
    os.makedirs(args.out, exist_ok=True)
    kset = get_keypoint_set("coco17")
    if args.synthetic:
        src = SyntheticPoseDataset(args.synthetic, seed=args.seed + 7919,
                                   size=(args.image_size, args.image_size), max_persons=args.max_persons)
        gt = src.coco_dict()
        loader = src.image_by_id
        dets = simulate_detections(gt, args.seed) if args.dets is None else args.dets
        write_json(os.path.join(args.out, "gt.json"), gt)
        write_json(os.path.join(args.out, "detections.json"), dets if isinstance(dets, list) else [])
    else:
        if not (args.dets and args.gt and args.images):
            raise SystemExit("topdown_infer: give --dets, --gt and --images (or --synthetic N)")
        gt = load_coco(args.gt)
        loader = CocoImageLoader(gt, args.images)
        dets = args.dets
    image_ids = [im["id"] for im in gt["images"]]
    boxes = load_detections(dets, 1, args.det_score_thr, image_ids)
    model, codec, cfg = _load_model(args.config, args.checkpoint, kset, device, log)
    ds = TopDownDataset(records_from_boxes(boxes, kset.num_keypoints), loader, kset, cfg["input_size"])
    t0 = time.time()
    results = predict_topdown(model, ds, codec, flip_test=not args.no_flip,
                              batch_size=args.batch_size, device=device) if len(ds) else []
    infer_s = time.time() - t0
    for r, b in zip(results, boxes):
        r["area"] = float(b["bbox"][2] * b["bbox"][3])
        r["bbox"] = b["bbox"]
    t0 = time.time()
    kept = results if args.no_nms else apply_oks_nms(results, args.nms_thr, kset.sigmas, args.vis_thr)
    nms_s = time.time() - t0
    stats = coco_stats(gt, kept, kset.sigmas)
    stats_no_nms = coco_stats(gt, results, kset.sigmas) if not args.no_nms else stats
    log(f"top-down on {len(boxes)} boxes: {len(kept)} poses after OKS-NMS "
        f"({len(results) - len(kept)} suppressed); inference {infer_s:.2f}s, NMS {nms_s * 1e3:.1f} ms")
    log("COCO keypoint stats: " + " ".join(f"{k} {v:.4f}" for k, v in stats.items()))
    if not args.no_nms:
        log(f"without NMS: AP {stats_no_nms['AP']:.4f}")
    out = {"task": "topdown_infer", "stats": stats, "stats_without_nms": stats_no_nms,
           "num_boxes": len(boxes), "num_poses": len(kept), "infer_s": infer_s, "nms_s": nms_s,
           "args": vars(args)}
    write_json(os.path.join(args.out, "results.json"), kept)
    write_json(os.path.join(args.out, "metrics.json"), out)
    out["results"] = kept
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    run(argv)
    return 0


__all__ = ["apply_oks_nms", "load_detections", "main", "run", "simulate_detections"]
