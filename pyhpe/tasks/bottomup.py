"""Bottom-up multi-person pose: an OpenPose-style PAF network trained on multi-person synthetic
images, grouped by the PAF kernels and scored with COCO AP.

Targets come from the kernels: multi-person Gaussian heatmaps (:func:`pyhpe.ops.msra_heatmaps`,
max over persons, plus OpenPose's background map ``1 - max``) and Part Affinity Fields
(:func:`pyhpe.ops.paf_targets`) over the COCO-17 limb tree :data:`pyhpe.ops.paf.COCO17_LIMBS`.
Every stage is supervised (OpenPose's intermediate supervision). Inference upsamples the last
stage's maps and runs :func:`pyhpe.ops.paf_group` (peaks, PAF line integrals, greedy assembly);
people are mapped back to the image and evaluated by :class:`pyhpe.eval.COCOKeypointEval`.

``python -m pyhpe.tasks bottomup --epochs 20 --train-images 1000`` (``--help`` for options).
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ._common import Logger, add_common_args, coco_stats, fit, save_run, setup

# OpenPose-style network configs for this task (keyword overrides of pyhpe.models.OpenPoseNet).
# 'tiny' is for tests; 'small' is a stride-4 network that learns synthetic figures in minutes
# on a CPU; 'paper' is OpenPose's VGG-19 body with 6 stages (stride 8).
NET_CONFIGS = {
    "tiny": dict(num_stages=2, vgg=(8, "M", 16, "M", 16), feat_channels=16, stage_channels=16,
                 refine_convs=1, refine_kernel=3),
    "small": dict(num_stages=2, vgg=(16, "M", 32, 32, "M", 48, 48, 48), feat_channels=48,
                  stage_channels=48, refine_convs=3, refine_kernel=3),
    "paper": dict(),
}


def net_stride(config: Dict) -> int:
    vgg = config.get("vgg", (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512))
    return 2 ** sum(1 for v in vgg if v == "M")


def build_network(config: str = "small", num_keypoints: int = 17, limbs=None):
    from ..models import build_model
    from ..ops.paf import COCO17_LIMBS
    limbs = COCO17_LIMBS if limbs is None else limbs
    if config not in NET_CONFIGS:
        raise ValueError(f"bottomup: unknown network config {config!r}; known: {sorted(NET_CONFIGS)}")
    overrides = dict(NET_CONFIGS[config])
    model = build_model("openpose", "paper", num_keypoints=num_keypoints, num_limbs=len(limbs), **overrides)
    return model, net_stride(overrides)


def collate_bottomup(items: List[Dict]) -> Dict:
    """Stack images; pad every image's persons to the batch maximum (visibility 0)."""
    n = max(max(int(it["keypoints"].shape[0]) for it in items), 1)
    K = items[0]["visibility"].shape[-1] if items[0]["visibility"].dim() == 2 else 17
    B = len(items)
    kp = torch.zeros(B, n, K, 2)
    vis = torch.zeros(B, n, K)
    for i, it in enumerate(items):
        m = it["keypoints"].shape[0]
        if m:
            kp[i, :m] = it["keypoints"].reshape(m, K, 2)
            vis[i, :m] = it["visibility"].reshape(m, K)
    return {"image": torch.stack([it["image"] for it in items]), "keypoints": kp,
            "visibility": vis, "image_id": torch.tensor([int(it["image_id"]) for it in items])}


def make_targets(keypoints: torch.Tensor, visibility: torch.Tensor, heatmap_size, stride: float,
                 limbs, sigma: float = 1.5, limb_width: float = 1.0, encoding: str = "msra"):
    """Input-pixel ``(B, N, K, 2)`` keypoints -> heatmaps ``(B, K + 1, H, W)`` (last: background
    ``1 - max``) and PAFs ``(B, 2L, H, W)``, both computed by the pyhpe kernels.

    ``encoding='msra'`` centres each Gaussian on the nearest pixel (:func:`pyhpe.ops.msra_heatmaps`),
    ``'unbiased'`` on the exact sub-pixel position (:func:`pyhpe.ops.unbiased_heatmaps`, DARK)."""
    from ..ops import msra_heatmaps, paf_targets, unbiased_heatmaps
    kp_hm = keypoints / float(stride)
    if encoding == "msra":
        hm, _ = msra_heatmaps(kp_hm, visibility, heatmap_size, sigma)
    elif encoding == "unbiased":
        hm, _ = unbiased_heatmaps(kp_hm, visibility, heatmap_size, sigma)
    else:
        raise ValueError(f"make_targets: 'encoding' must be 'msra' or 'unbiased', got {encoding!r}")
    background = (1.0 - hm.amax(1, keepdim=True)).clamp_(0.0, 1.0)
    pafs, _ = paf_targets(kp_hm, visibility, limbs, heatmap_size, limb_width)
    return torch.cat([hm, background], 1), pafs


def stage_loss(stages, hm_target, paf_target, paf_weight: float = 1.0):
    """Sum over stages of the heatmap and PAF mean squared errors (OpenPose's L2 loss)."""
    loss_hm = sum(F.mse_loss(h.float(), hm_target) for _, h in stages)
    loss_paf = sum(F.mse_loss(p.float(), paf_target) for p, _ in stages)
    return loss_hm + paf_weight * loss_paf, loss_hm, loss_paf


def _input_to_image(points: np.ndarray, image_hw, input_size) -> np.ndarray:
    """Undo BottomUpDataset's evaluation resize (centre crop keeping the aspect ratio)."""
    h, w = image_hw
    side = max(w / input_size[0], h / input_size[1])
    center = np.array([w / 2, h / 2])
    scale = np.array(input_size, np.float64) * side
    return points * side + center - 0.5 * scale


@torch.no_grad()
def predict(model, dataset, image_hw: Optional[Tuple[int, int]], input_size, stride: int, limbs,
            *, device, batch_size: int = 16, upsample: Optional[int] = None, threshold: float = 0.1,
            min_parts: int = 3, min_mean_score: float = 0.2, max_persons: int = 20) -> List[Dict]:
    """COCO keypoint results of every image of a (non-augmenting) BottomUpDataset.

    ``image_hw`` is the (height, width) of every image; None reads each image's size from
    the dataset's COCO ``images`` entries."""
    from ..data.topdown import normalize_images
    from ..ops import paf_group
    model.eval()
    up = stride if upsample is None else int(upsample)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate_bottomup, num_workers=0)
    results = []
    K = dataset.kset.num_keypoints
    sizes = {im["id"]: (im["height"], im["width"]) for im in dataset.coco["images"]}
    for batch in loader:
        pafs, hms = model(normalize_images(batch["image"].to(device)))
        hms, pafs = hms.float(), pafs.float()
        if up > 1:
            # align_corners with (n - 1) * up + 1 samples keeps every map pixel centre on an
            # output pixel (q = up * j): a peak stays a strict maximum instead of becoming a
            # two-pixel plateau that find_peaks would reject
            size = ((hms.shape[-2] - 1) * up + 1, (hms.shape[-1] - 1) * up + 1)
            hms = F.interpolate(hms, size=size, mode="bilinear", align_corners=True)
            pafs = F.interpolate(pafs, size=size, mode="bilinear", align_corners=True)
        people = paf_group(hms, pafs, list(limbs), num_parts=K, threshold=threshold,
                           min_parts=min_parts, min_mean_score=min_mean_score,
                           max_persons=max_persons)
        for b, (kps, scores) in enumerate(people):
            image_id = int(batch["image_id"][b])
            for p in range(kps.shape[0]):
                kp = kps[p].double().numpy()
                found = kp[:, 2] > 0
                if not found.any():
                    continue
                # upsampled map -> heatmap -> input -> image pixels
                xy = kp[:, :2] / up * stride
                xy = _input_to_image(xy, image_hw or sizes[image_id], input_size)
                xy[~found] = xy[found].mean(0)  # missing parts: the person's centroid
                out = np.concatenate([xy, kp[:, 2:3]], 1)
                results.append({"image_id": image_id, "category_id": 1,
                                "keypoints": [float(v) for v in out.reshape(-1)],
                                "score": float(scores[p])})
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyhpe.tasks bottomup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, epochs=20, batch_size=16, lr=2e-3, out="runs/bottomup")
    p.add_argument("--net", default="small", choices=sorted(NET_CONFIGS), help="network config")
    p.add_argument("--train-images", type=int, default=1000)
    p.add_argument("--val-images", type=int, default=100)
    p.add_argument("--image-size", type=int, default=128, help="synthetic image side (pixels)")
    p.add_argument("--input-size", type=int, default=128, help="network input side (pixels)")
    p.add_argument("--max-persons", type=int, default=3, help="persons per synthetic image (1..N)")
    p.add_argument("--occlusion", type=float, default=0.1)
    p.add_argument("--sigma", type=float, default=1.5, help="heatmap Gaussian sigma (map pixels)")
    p.add_argument("--encoding", default="msra", choices=["msra", "unbiased"],
                   help="heatmap targets: MSRA (integer centres) or unbiased (sub-pixel, DARK)")
    p.add_argument("--limb-width", type=float, default=1.0, help="PAF half-width (map pixels)")
    p.add_argument("--paf-weight", type=float, default=1.0)
    p.add_argument("--no-augment", action="store_true", help="no flip/scale/rotation augmentation")
    p.add_argument("--threshold", type=float, default=0.1, help="peak threshold")
    p.add_argument("--min-parts", type=int, default=3)
    p.add_argument("--min-mean-score", type=float, default=0.2)
    p.add_argument("--upsample", type=int, default=None,
                   help="upsampling of the maps before grouping (default: the network stride)")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--checkpoint", default=None,
                   help="start from this model.pth (with --epochs 0: evaluate only)")
    return p


def run(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train, infer and evaluate; returns ``{"stats": {...}, "history": [...], ...}`` and
    writes model.pth, results.json, metrics.json and log.csv under ``--out``."""
    from ..data import BottomUpDataset, SyntheticPoseDataset
    from ..ops.paf import COCO17_LIMBS
    args = build_parser().parse_args(list(argv or []))
    log = Logger(args.quiet)
    device = setup(args)
    os.makedirs(args.out, exist_ok=True)
    limbs = COCO17_LIMBS
    t0 = time.time()
    size = (args.image_size, args.image_size)
    train_src = SyntheticPoseDataset(args.train_images, seed=args.seed, size=size,
                                     max_persons=args.max_persons, occlusion=args.occlusion)
    val_src = SyntheticPoseDataset(args.val_images, seed=args.seed + 7919, size=size,
                                   max_persons=args.max_persons, occlusion=args.occlusion)
    log(f"rendered {args.train_images} + {args.val_images} synthetic images in {time.time() - t0:.1f}s")
    model, stride = build_network(args.net, 17, limbs)
    if args.checkpoint:
        from ..train.utils import load_checkpoint_file
        model.load_state_dict(load_checkpoint_file(args.checkpoint)["model"])
    model.to(device)
    input_size = (args.input_size, args.input_size)
    heatmap_size = (args.input_size // stride, args.input_size // stride)
    train_gt, val_gt = train_src.coco_dict(), val_src.coco_dict()
    train_ds = BottomUpDataset(train_gt, train_src.image_by_id, "coco17", input_size, heatmap_size,
                               sigma=args.sigma, train=not args.no_augment, seed=args.seed,
                               with_paf=False)
    val_ds = BottomUpDataset(val_gt, val_src.image_by_id, "coco17", input_size, heatmap_size,
                             sigma=args.sigma, train=False, with_paf=False)

    def batches(epoch):
        train_ds.set_epoch(epoch)
        g = torch.Generator().manual_seed(args.seed * 1000003 + epoch)
        return torch.utils.data.DataLoader(train_ds, batch_size=args.batch_size, shuffle=True,
                                           generator=g, drop_last=len(train_ds) >= args.batch_size,
                                           collate_fn=collate_bottomup, num_workers=args.num_workers)

    from ..data.topdown import normalize_images

    def loss_fn(net, batch):
        kp = batch["keypoints"].to(device)
        vis = batch["visibility"].to(device)
        hm_t, paf_t = make_targets(kp, vis, heatmap_size, stride, limbs, args.sigma, args.limb_width,
                                   args.encoding)
        stages = net.forward_stages(normalize_images(batch["image"].to(device)))
        loss, l_hm, l_paf = stage_loss(stages, hm_t, paf_t, args.paf_weight)
        return loss, {"loss_heatmap": l_hm.detach(), "loss_paf": l_paf.detach()}

    steps = max(len(train_ds) // args.batch_size, 1)
    t_train = time.time()
    history = []
    if args.epochs > 0:
        history = fit(model, batches, loss_fn, epochs=args.epochs, steps_per_epoch=steps,
                      lr=args.lr, weight_decay=args.weight_decay, max_steps=args.max_steps,
                      time_budget=args.time_budget, device=device, log=log,
                      warmup=min(50, steps))
    train_s = time.time() - t_train
    torch.save({"model": model.state_dict(), "net": args.net, "stride": stride,
                "limbs": [list(l) for l in limbs], "input_size": input_size}, os.path.join(args.out, "model.pth"))
    t_inf = time.time()
    results = predict(model, val_ds, None, input_size, stride, limbs,
                      device=device, upsample=args.upsample, threshold=args.threshold,
                      min_parts=args.min_parts, min_mean_score=args.min_mean_score)
    infer_s = time.time() - t_inf
    stats = coco_stats(val_gt, results)
    log("COCO keypoint stats (val): " + " ".join(f"{k} {v:.4f}" for k, v in stats.items()))
    return save_run(args.out, {"task": "bottomup", "stats": stats, "num_results": len(results),
                               "num_val_persons": len(val_gt["annotations"]),
                               "train_s": train_s, "infer_s": infer_s},
                    history, results, args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    run(argv)
    return 0


__all__ = ["NET_CONFIGS", "build_network", "collate_bottomup", "make_targets", "predict", "run",
           "stage_loss", "main"]
