"""Integral keypoint regression (top-down) trained through pyhpe's differentiable decode ops.

Heads over a heatmap network's logits ``(B, K, h, w)``:

* ``ipr``: integral pose regression (Sun et al. 2018): ``soft_argmax(h, beta)``
  (:func:`pyhpe.ops.soft_argmax`), L1 loss on coordinates normalised by the map size.
* ``dipr``: debiased IPR (Gu et al. 2021): :func:`pyhpe.ops.debiased_soft_argmax`, same loss.
  ``form='mmpose'`` (default; mmpose ``IntegralRegressionHead(debias=True)``) trains from a
  random start; the paper's exact form divides by ``1 - 1/mean(exp(beta h))``, which is ~0 for
  the flat maps of an untrained network, and stalled in our runs (use it to fine-tune).
* ``dsnt``: DSNT (Nibali et al. 2018): ``dsnt(flat_softmax(h))`` (:func:`pyhpe.ops.dsnt`) in
  (-1, 1) coordinates, Euclidean loss plus dsntnn's Jensen-Shannon regulariser towards a
  Gaussian of ``--reg-sigma`` map pixels.

Backward passes run in the ops' own kernels (registered autograd). Targets are the input-pixel
keypoints divided by the network stride (mmpose's heatmap convention, pixel centres at
integers). Evaluation decodes the same way, maps to the image and reports COCO AP on GT boxes
(:class:`pyhpe.eval.COCOKeypointEval`).

``python -m pyhpe.tasks integral --head dsnt --epochs 10``.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ._common import Logger, add_common_args, coco_stats, fit, save_run, setup

HEADS = ("ipr", "dipr", "dsnt")


def _float(x: torch.Tensor) -> torch.Tensor:
    """float32 for half/bfloat16 (AMP) logits; float64 stays float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def flat_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the H*W pixels of each map (dsntnn ``flat_softmax``)."""
    B, K, H, W = logits.shape
    return logits.reshape(B, K, H * W).softmax(-1).view(B, K, H, W)


def decode(logits: torch.Tensor, head: str, beta: float = 1.0, debias_form: str = "mmpose"):
    """Map-pixel coordinates ``(B, K, 2)`` (pixel centres at integers) from logits."""
    from ..ops import debiased_soft_argmax, dsnt, soft_argmax
    logits = _float(logits)
    H, W = logits.shape[-2:]
    if head == "ipr":
        return soft_argmax(logits, beta=beta)
    if head == "dipr":
        return debiased_soft_argmax(logits, beta=beta, form=debias_form)
    if head == "dsnt":
        c = dsnt(logits, normalize="softmax", beta=beta)  # = dsnt(flat_softmax(beta * logits))
        size = torch.tensor([W, H], dtype=c.dtype, device=c.device)
        return ((c + 1) * size - 1) / 2
    raise ValueError(f"integral: unknown head {head!r}; use one of {HEADS}")


def keypoint_confidence(logits: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """``(B, K)`` probability mass of the softmax in the 3x3 window at its maximum."""
    p = flat_softmax(logits.float() * beta)
    return (F.avg_pool2d(p, 3, 1, 1) * 9).flatten(2).amax(-1)


def js_regularizer(probs: torch.Tensor, target_hm: torch.Tensor, sigma: float) -> torch.Tensor:
    """dsntnn ``js_reg_losses``: Jensen-Shannon divergence ``(B, K)`` between each normalised
    map and an isotropic Gaussian of ``sigma`` pixels at the target ``(B, K, 2)`` (map pixels)."""
    B, K, H, W = probs.shape
    xs = torch.arange(W, dtype=probs.dtype, device=probs.device)
    ys = torch.arange(H, dtype=probs.dtype, device=probs.device)
    gx = torch.exp(-(xs.view(1, 1, W) - target_hm[..., 0:1]) ** 2 / (2 * sigma ** 2))
    gy = torch.exp(-(ys.view(1, 1, H) - target_hm[..., 1:2]) ** 2 / (2 * sigma ** 2))
    g = gy[..., :, None] * gx[..., None, :]
    g = g / g.sum((-2, -1), keepdim=True).clamp_min(1e-24)
    m = 0.5 * (probs + g)
    eps = 1e-24

    def kl(a, b):
        return (a * ((a + eps).log() - (b + eps).log())).sum((-2, -1))

    return 0.5 * kl(probs, m) + 0.5 * kl(g, m)


def integral_loss(logits: torch.Tensor, target_hm: torch.Tensor, weights: torch.Tensor, head: str,
                  beta: float = 1.0, debias_form: str = "mmpose", reg_weight: float = 1.0,
                  reg_sigma: float = 1.0):
    """Loss of one batch: logits ``(B, K, H, W)``, targets ``(B, K, 2)`` in map pixels, weights
    ``(B, K)``. Returns ``(loss, parts)``."""
    H, W = logits.shape[-2:]
    coords = decode(logits, head, beta, debias_form)
    size = torch.tensor([W, H], dtype=coords.dtype, device=logits.device)
    w = weights.to(coords.dtype)
    denom = w.sum().clamp_min(1.0)
    if head == "dsnt":
        # Euclidean distance in dsntnn's (-1, 1) frame
        d = ((coords - target_hm) * 2 / size).norm(dim=-1)
        coord_loss = (d * w).sum() / denom
        reg = js_regularizer(flat_softmax(_float(logits) * beta), target_hm, reg_sigma)
        reg_loss = (reg * w).sum() / denom
        return coord_loss + reg_weight * reg_loss, {"loss_coord": coord_loss.detach(),
                                                    "loss_reg": reg_loss.detach()}
    l1 = ((coords - target_hm).abs() / size).sum(-1)
    coord_loss = (l1 * w).sum() / denom
    return coord_loss, {"loss_coord": coord_loss.detach()}


@torch.no_grad()
def predict(model, dataset, head: str, stride, *, device, beta: float = 1.0,
            debias_form: str = "mmpose", batch_size: int = 64) -> List[Dict]:
    """COCO results for a (non-augmenting) TopDownDataset."""
    from ..data.topdown import collate_topdown, normalize_images, to_image_space
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate_topdown, num_workers=0)
    results = []
    for batch in loader:
        logits = model(normalize_images(batch["image"].to(device))).float()
        coords = decode(logits, head, beta, debias_form).cpu() * torch.as_tensor(stride, dtype=torch.float32)
        conf = keypoint_confidence(logits, beta).cpu()
        coords = to_image_space(coords, batch["center"], batch["scale"], dataset.input_size)
        for i in range(coords.shape[0]):
            kps = torch.cat([coords[i], conf[i][:, None]], 1).double().numpy()
            results.append({"image_id": int(batch["image_id"][i]), "category_id": 1,
                            "keypoints": [float(v) for v in kps.reshape(-1)],
                            "score": float(batch["score"][i]) * float(conf[i].mean())})
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyhpe.tasks integral", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, epochs=10, batch_size=32, lr=2e-3, out="runs/integral")
    p.add_argument("--head", default="ipr", choices=HEADS)
    p.add_argument("--beta", type=float, default=1.0, help="softmax sharpness (logit multiplier)")
    p.add_argument("--debias-form", default="mmpose", choices=["paper", "mmpose"],
                   help="debiased IPR: 'mmpose' (C = sum exp(h); stable from a random start) or "
                        "'paper' (C = mean exp(beta h); divides by ~0 on the flat maps of an "
                        "untrained network and does not train from scratch here)")
    p.add_argument("--reg-weight", type=float, default=1.0, help="DSNT JS regulariser weight")
    p.add_argument("--reg-sigma", type=float, default=1.0, help="DSNT regulariser sigma (map px)")
    p.add_argument("--model", default="simple_baseline", help="heatmap model (pyhpe.models)")
    p.add_argument("--model-config", default="demo")
    p.add_argument("--input-size", type=int, nargs=2, default=[48, 64], metavar=("W", "H"))
    p.add_argument("--train-images", type=int, default=1000)
    p.add_argument("--val-images", type=int, default=100)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--occlusion", type=float, default=0.1)
    p.add_argument("--no-augment", action="store_true")
    return p


def run(argv: Optional[Sequence[str]] = None) -> Dict:
    from ..data import SyntheticPoseDataset, TopDownAugment, TopDownDataset, records_from_coco
    from ..data.topdown import collate_topdown, normalize_images
    from ..models import build_model
    args = build_parser().parse_args(list(argv or []))
    log = Logger(args.quiet)
    device = setup(args)
    os.makedirs(args.out, exist_ok=True)
    size = (args.image_size, args.image_size)
    tr = SyntheticPoseDataset(args.train_images, seed=args.seed, size=size, occlusion=args.occlusion)
    va = SyntheticPoseDataset(args.val_images, seed=args.seed + 7919, size=size, occlusion=args.occlusion)
    val_gt = va.coco_dict()
    input_size = tuple(args.input_size)
    aug = None if args.no_augment else TopDownAugment(rot_factor=20, half_body_prob=0.1)
    train_ds = TopDownDataset(records_from_coco(tr.coco_dict()), tr.image_by_id, tr.keypoint_set,
                              input_size, augment=aug, seed=args.seed)
    val_ds = TopDownDataset(records_from_coco(val_gt), va.image_by_id, va.keypoint_set, input_size)
    model = build_model(args.model, args.model_config, 17).to(device)
    with torch.no_grad():
        h, w = model(torch.zeros(1, 3, input_size[1], input_size[0], device=device)).shape[-2:]
    stride = (input_size[0] / w, input_size[1] / h)
    stride_t = torch.tensor(stride, dtype=torch.float32, device=device)
    bs = min(args.batch_size, len(train_ds))

    def batches(epoch):
        train_ds.set_epoch(epoch)
        g = torch.Generator().manual_seed(args.seed * 1000003 + epoch)
        return torch.utils.data.DataLoader(train_ds, batch_size=bs, shuffle=True, generator=g,
                                           drop_last=True, collate_fn=collate_topdown)

    def loss_fn(net, batch):
        logits = net(normalize_images(batch["image"].to(device)))
        target = batch["keypoints"].to(device) / stride_t
        vis = batch["visibility"].to(device)
        return integral_loss(logits, target, (vis > 0).float(), args.head, args.beta,
                             args.debias_form, args.reg_weight, args.reg_sigma)

    t_train = time.time()
    history = fit(model, batches, loss_fn, epochs=args.epochs, steps_per_epoch=len(train_ds) // bs,
                  lr=args.lr, weight_decay=args.weight_decay, max_steps=args.max_steps,
                  time_budget=args.time_budget, device=device, log=log, warmup=20)
    train_s = time.time() - t_train
    results = predict(model, val_ds, args.head, stride, device=device, beta=args.beta,
                      debias_form=args.debias_form)
    stats = coco_stats(val_gt, results)
    log(f"integral ({args.head}) COCO val: " + " ".join(f"{k} {v:.4f}" for k, v in stats.items()))
    torch.save({"model": model.state_dict(), "model_name": args.model,
                "model_config": args.model_config, "head": args.head, "beta": args.beta,
                "input_size": input_size}, os.path.join(args.out, "model.pth"))
    return save_run(args.out, {"task": "integral", "head": args.head, "stats": stats,
                               "train_s": train_s}, history, results, args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    run(argv)
    return 0


__all__ = ["HEADS", "decode", "flat_softmax", "integral_loss", "js_regularizer",
           "keypoint_confidence", "main", "predict", "run"]
