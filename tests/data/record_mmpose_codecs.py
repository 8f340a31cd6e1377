"""Record mmpose 1.3.2's codec and loss outputs for fixed inputs into mmpose_codecs.npz.

tests/test_codecs.py regenerates the same inputs with :func:`make_inputs` (numpy only) and
compares pyhpe's codecs with the recorded outputs, so the tests run without mmpose.

Re-record (mmpose 1.3.2, mmcv-lite 2.2.0 and mmengine 0.10.7 importable, e.g. installed with
``pip install --target DIR --no-deps``)::

    PYTHONPATH=DIR python tests/data/record_mmpose_codecs.py
"""
from __future__ import annotations

import os
import sys
import types

import numpy as np

INPUT_SIZE = (48, 64)      # (W, H)
HEATMAP_SIZE = (12, 16)
SIGMA = 2.0
SIMCC_SIGMA = (4.9, 5.66)
SIMCC_SPLIT = 2.0
B, N, K = 3, 2, 17
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mmpose_codecs.npz")


def make_inputs() -> dict:
    """Fixed inputs (numpy's PCG64 streams are stable across platforms and versions)."""
    rng = np.random.default_rng(20240601)
    w, h = INPUT_SIZE
    kp = np.stack([rng.uniform(-6, w + 6, (B, N, K)), rng.uniform(-6, h + 6, (B, N, K))],
                  -1).astype(np.float32)
    vis = rng.choice(np.array([0.0, 1.0, 2.0], np.float32), size=(B, N, K), p=[0.15, 0.25, 0.6])
    # heatmaps to decode: sub-pixel Gaussians of varying width plus noise, some maps empty
    hw, hh = HEATMAP_SIZE
    centres = np.stack([rng.uniform(0, hw - 1, (B, K)), rng.uniform(0, hh - 1, (B, K))], -1)
    widths = rng.uniform(1.0, 3.0, (B, K, 1, 1))
    xs, ys = np.arange(hw), np.arange(hh)
    d2 = ((xs[None, None, None, :] - centres[..., 0, None, None]) ** 2
          + (ys[None, None, :, None] - centres[..., 1, None, None]) ** 2)
    maps = np.exp(-d2 / (2 * widths ** 2)) + 0.05 * rng.random((B, K, hh, hw))
    maps[0, :2] = 0.0
    wx, wy = round(w * SIMCC_SPLIT), round(h * SIMCC_SPLIT)
    simcc_x = rng.normal(0, 1, (B, K, wx)).astype(np.float32)
    simcc_y = rng.normal(0, 1, (B, K, wy)).astype(np.float32)
    simcc_x[np.arange(B)[:, None], np.arange(K)[None], rng.integers(0, wx, (B, K))] += 4
    simcc_y[np.arange(B)[:, None], np.arange(K)[None], rng.integers(0, wy, (B, K))] += 4
    pose_3d = rng.normal(0, 300, (B, K, 3)).astype(np.float32)
    stats = dict(mean_2d=rng.normal(0, 5, (K, 2)), std_2d=rng.uniform(5, 20, (K, 2)),
                 mean_3d=rng.normal(0, 50, (K, 3)), std_3d=rng.uniform(100, 300, (K, 3)))
    loss = dict(pred_hm=rng.random((B, K, hh, hw)).astype(np.float32),
                target_hm=rng.random((B, K, hh, hw)).astype(np.float32),
                weights=rng.random((B, K)).astype(np.float32),
                pred_xy=rng.random((B, K, 2)).astype(np.float32),
                target_xy=rng.random((B, K, 2)).astype(np.float32))
    return dict(keypoints=kp, visibility=vis, maps=maps.astype(np.float32), simcc_x=simcc_x,
                simcc_y=simcc_y, pose_3d=pose_3d, **{k: v.astype(np.float32) for k, v in stats.items()},
                **loss)


def _stub_optional_modules() -> None:
    """mmpose imports these at module level; the codecs and losses never use them."""
    m = types.ModuleType("xtcocotools._mask")
    for n in ("iou", "merge", "frPyObjects", "encode", "decode", "area", "toBbox"):
        setattr(m, n, None)
    sys.modules.setdefault("xtcocotools._mask", m)
    mmdet = types.ModuleType("mmdet")
    mmdet.__path__ = []
    mu = types.ModuleType("mmdet.utils")
    mu.ConfigType = mu.OptConfigType = dict
    mu.reduce_mean = lambda t: t
    sys.modules.setdefault("mmdet", mmdet)
    sys.modules.setdefault("mmdet.utils", mu)
    ops = types.ModuleType("mmcv.ops")

    class _Missing:
        def __init__(self, *a, **k):
            raise RuntimeError("mmcv.ops is not available")

    for n in ("MultiScaleDeformableAttention", "DeformConv2d", "ModulatedDeformConv2d", "nms",
              "batched_nms", "RoIAlign", "roi_align"):
        setattr(ops, n, _Missing)
    sys.modules.setdefault("mmcv.ops", ops)


def record() -> dict:
    _stub_optional_modules()
    import torch
    import mmpose
    from mmpose.codecs import (ImagePoseLifting, IntegralRegressionLabel, MSRAHeatmap,
                               RegressionLabel, SimCCLabel, UDPHeatmap)
    from mmpose.models.losses import KeypointMSELoss, KLDiscretLoss, L1Loss, MSELoss, SmoothL1Loss
    assert mmpose.__version__ == "1.3.2", mmpose.__version__
    x = make_inputs()
    kp, vis = x["keypoints"], np.minimum(x["visibility"], 1.0)
    out = {}
    heatmap_codecs = {
        "msra": MSRAHeatmap(INPUT_SIZE, HEATMAP_SIZE, SIGMA),
        "unbiased": MSRAHeatmap(INPUT_SIZE, HEATMAP_SIZE, SIGMA, unbiased=True),
        "udp": UDPHeatmap(INPUT_SIZE, HEATMAP_SIZE, sigma=SIGMA),
    }
    for name, codec in heatmap_codecs.items():
        enc = [codec.encode(kp[b, :1], vis[b, :1]) for b in range(B)]   # mmpose: one instance
        out[f"{name}_heatmaps"] = np.stack([e["heatmaps"] for e in enc]).astype(np.float32)
        out[f"{name}_weights"] = np.stack([e["keypoint_weights"] for e in enc]).astype(np.float32)
        dec = [codec.decode(x["maps"][b].copy()) for b in range(B)]
        out[f"{name}_decoded"] = np.stack([d[0][0] for d in dec]).astype(np.float32)
        out[f"{name}_scores"] = np.stack([d[1][0] for d in dec]).astype(np.float32)
    # single-instance codecs: mmpose's N instances are our batch rows
    flat_kp, flat_vis = kp.reshape(B * N, K, 2), vis.reshape(B * N, K)
    for name, dark in (("simcc", False), ("simcc_dark", True)):
        codec = SimCCLabel(INPUT_SIZE, "gaussian", SIMCC_SIGMA, SIMCC_SPLIT, normalize=False,
                           use_dark=dark)
        if not dark:
            enc = codec.encode(flat_kp[:B], flat_vis[:B])
            out["simcc_x_labels"] = enc["keypoint_x_labels"].astype(np.float32)
            out["simcc_y_labels"] = enc["keypoint_y_labels"].astype(np.float32)
            out["simcc_weights"] = enc["keypoint_weights"].astype(np.float32)
        # copies: mmpose's 1-D DARK blurs the labels in place
        dk, ds = codec.decode(x["simcc_x"].copy(), x["simcc_y"].copy())
        out[f"{name}_decoded"], out[f"{name}_scores"] = dk.astype(np.float32), ds.astype(np.float32)
    codec = RegressionLabel(INPUT_SIZE)
    enc = codec.encode(flat_kp, flat_vis)
    out["regression_labels"] = enc["keypoint_labels"].astype(np.float32)
    out["regression_weights"] = enc["keypoint_weights"].astype(np.float32)
    out["regression_decoded"] = codec.decode(x["pred_xy"])[0].astype(np.float32)
    # pyhpe's DSNT regulariser targets are unit-sum sub-pixel (unbiased) Gaussians
    codec = IntegralRegressionLabel(INPUT_SIZE, HEATMAP_SIZE, SIGMA, unbiased=True, normalize=True)
    enc = codec.encode(flat_kp[:1], flat_vis[:1])
    out["integral_labels"] = enc["keypoint_labels"].astype(np.float32)
    out["integral_heatmaps"] = enc["heatmaps"].astype(np.float32)
    out["integral_weights"] = enc["keypoint_weights"].astype(np.float32)
    codec = ImagePoseLifting(K, root_index=0, reshape_keypoints=False,
                             keypoints_mean=x["mean_2d"], keypoints_std=x["std_2d"],
                             target_mean=x["mean_3d"], target_std=x["std_3d"])
    inputs, labels, decoded = [], [], []
    for b in range(B):
        enc = codec.encode(kp[b, :1], vis[b, :1], lifting_target=x["pose_3d"][b:b + 1])
        inputs.append(enc["keypoint_labels"][0])
        labels.append(enc["lifting_target_label"][0])
        decoded.append(codec.decode(enc["lifting_target_label"])[0][0])
    out["lift_inputs"] = np.stack(inputs).astype(np.float32)
    out["lift_labels"] = np.stack(labels).astype(np.float32)
    out["lift_decoded"] = np.stack(decoded).astype(np.float32)
    t = {k: torch.from_numpy(v) for k, v in x.items() if k.startswith(("pred", "target", "weights"))}
    out["loss_keypoint_mse"] = np.float32(KeypointMSELoss(use_target_weight=True)(
        t["pred_hm"], t["target_hm"], t["weights"]))
    sx, sy = torch.from_numpy(x["simcc_x"]), torch.from_numpy(x["simcc_y"])
    tx, ty = torch.from_numpy(out["simcc_x_labels"]), torch.from_numpy(out["simcc_y_labels"])
    out["loss_kl_discret"] = np.float32(KLDiscretLoss(beta=10.0, label_softmax=True,
                                                      use_target_weight=True)(
        (sx, sy), (tx, ty), torch.from_numpy(out["simcc_weights"])))
    for name, cls in (("l1", L1Loss), ("smooth_l1", SmoothL1Loss), ("mse", MSELoss)):
        # (B, K, 1) weights: mmpose's MSELoss does not unsqueeze them itself
        out[f"loss_{name}"] = np.float32(cls(use_target_weight=True)(
            t["pred_xy"], t["target_xy"], t["weights"][..., None]))
    return out


if __name__ == "__main__":
    recorded = record()
    np.savez_compressed(OUT, **recorded)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(recorded)} arrays)")
