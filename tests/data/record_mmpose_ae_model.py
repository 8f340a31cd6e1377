"""Record mmpose 1.3.2's AssociativeEmbedding encoding and AssociativeEmbeddingLoss for fixed
inputs into mmpose_ae_model.npz.

tests/test_ae_model.py regenerates the same inputs with :func:`make_inputs` (numpy only) and
compares pyhpe's ``associative_embedding`` codec and tag loss with the recorded outputs, so the
tests run without mmpose.

Re-record (mmpose 1.3.2, mmcv-lite 2.2.0, mmengine 0.10.7 and munkres importable)::

    PYTHONPATH=DIR python tests/data/record_mmpose_ae_model.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
INPUT_SIZE = (64, 48)      # (W, H)
HEATMAP_SIZE = (16, 12)
SIGMAS = {"s15": 1.5, "default": None}
B, N, K = 4, 4, 17
LOSS_SETTINGS = {"a": dict(loss_weight=1.0, push_loss_factor=0.5),
                 "b": dict(loss_weight=1e-3, push_loss_factor=0.25)}
OUT = os.path.join(HERE, "mmpose_ae_model.npz")
# inference: an AssociativeEmbeddingHead whose 1x1 final conv is the identity on 2K feature
# channels (K heatmaps, K tags), flip test, maps restored to the input size before grouping
PRED_INPUT = (128, 96)     # (W, H)
PRED_MAP = (32, 24)
PRED_PEOPLE = 3
COCO_ORDER = [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16]
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
PRED_CODEC = dict(decode_keypoint_order=COCO_ORDER, decode_topk=30, decode_center_shift=0.5,
                  decode_max_instances=30)


def make_inputs() -> dict:
    """Fixed inputs (numpy's PCG64 streams are stable across platforms and versions): some
    keypoints off the map, image 1 with two labelled persons, image 2 with one, image 3 with
    none; tags for tag dimensions 1 and 2."""
    rng = np.random.default_rng(20240715)
    w, h = INPUT_SIZE
    kp = np.stack([rng.uniform(-6, w + 6, (B, N, K)), rng.uniform(-6, h + 6, (B, N, K))],
                  -1).astype(np.float32)
    vis = rng.choice(np.array([0.0, 1.0, 2.0], np.float32), size=(B, N, K), p=[0.2, 0.2, 0.6])
    vis[1, 2:] = 0
    vis[2, 1:] = 0
    vis[3] = 0
    hw, hh = HEATMAP_SIZE
    tags1 = rng.normal(0, 1, (B, K, hh, hw)).astype(np.float32)
    tags2 = rng.normal(0, 1, (B, 2 * K, hh, hw)).astype(np.float32)
    # head features of an image and of its mirror: Gaussian peaks of PRED_PEOPLE people
    # (width 1.5 map pixels) plus noise, tags = person id x 2 near the person plus noise
    fw, fh = PRED_MAP
    centres = np.stack([rng.uniform(2, fw - 3, (2, PRED_PEOPLE, K)),
                        rng.uniform(2, fh - 3, (2, PRED_PEOPLE, K))], -1)
    xs, ys = np.arange(fw), np.arange(fh)
    d2 = ((xs[None, None, None, None, :] - centres[..., 0, None, None]) ** 2
          + (ys[None, None, None, :, None] - centres[..., 1, None, None]) ** 2)  # (2, P, K, H, W)
    peaks = np.exp(-d2 / (2 * 1.5 ** 2)) * rng.uniform(0.5, 1.0, (2, PRED_PEOPLE, K, 1, 1))
    heat = peaks.max(1) + 0.03 * rng.random((2, K, fh, fw))
    tagmap = d2.argmin(1) * 2.0 + 0.1 * rng.normal(0, 1, (2, K, fh, fw))
    feats = np.concatenate([heat, tagmap], 1).astype(np.float32)
    flip_ch = COCO_FLIP + [K + i for i in COCO_FLIP]
    feats_flip = (feats[..., ::-1][:, flip_ch]
                  + 0.02 * rng.normal(0, 1, feats.shape)).astype(np.float32)
    return dict(keypoints=kp, visibility=vis, tags1=tags1, tags2=tags2, feats=feats,
                feats_flip=np.ascontiguousarray(feats_flip))


def record() -> dict:
    sys.path.insert(0, HERE)
    from record_mmpose_codecs import _stub_optional_modules
    _stub_optional_modules()
    import torch
    import mmpose
    from mmpose.codecs import AssociativeEmbedding
    from mmpose.models.losses import AssociativeEmbeddingLoss
    assert mmpose.__version__ == "1.3.2", mmpose.__version__
    x = make_inputs()
    kp, vis = x["keypoints"], np.minimum(x["visibility"], 1.0)
    out = {}
    for udp in (False, True):
        for sname, sigma in SIGMAS.items():
            codec = AssociativeEmbedding(INPUT_SIZE, HEATMAP_SIZE, sigma=sigma, use_udp=udp)
            enc = [codec.encode(kp[b], vis[b]) for b in range(B)]
            tag = f"{'udp' if udp else 'msra'}_{sname}"
            out[f"{tag}_heatmaps"] = np.stack([e["heatmaps"] for e in enc]).astype(np.float32)
            out[f"{tag}_weights"] = np.stack([e["keypoint_weights"] for e in enc]).astype(np.float32)
            out[f"{tag}_indices"] = np.stack([e["keypoint_indices"] for e in enc]).astype(np.int64)
            out[f"{tag}_sigma"] = np.float32(codec.sigma)
    indices = [torch.from_numpy(i) for i in out["msra_s15_indices"]]
    for L in (1, 2):
        for name, kw in LOSS_SETTINGS.items():
            tags = torch.from_numpy(x[f"tags{L}"]).requires_grad_(True)
            pull, push = AssociativeEmbeddingLoss(**kw)(tags, indices)
            (pull + push).backward()
            out[f"loss_L{L}_{name}_pull"] = np.float32(pull.detach())
            out[f"loss_L{L}_{name}_push"] = np.float32(push.detach())
            out[f"loss_L{L}_{name}_grad"] = tags.grad.numpy().astype(np.float32)
    out.update(record_predictions(x))
    return out


def record_predictions(x) -> dict:
    """mmpose's AssociativeEmbeddingHead.predict (flip test, restore_heatmap_size, no heatmap
    shift, as configs/body_2d_keypoint/associative_embedding/coco/ae_hrnet-w32) on fixed
    features: per image the keypoints, keypoint scores and instance scores, padded to 30."""
    import torch
    from mmpose.models.heads import AssociativeEmbeddingHead
    from mmpose.structures import PoseDataSample
    head = AssociativeEmbeddingHead(
        in_channels=2 * K, num_keypoints=K, tag_dim=1, tag_per_keypoint=True,
        deconv_out_channels=None, final_layer=dict(kernel_size=1),
        decoder=dict(type="AssociativeEmbedding", input_size=PRED_INPUT, heatmap_size=PRED_INPUT,
                     sigma=2, **PRED_CODEC))
    with torch.no_grad():
        head.final_layer.weight.copy_(torch.eye(2 * K).view(2 * K, 2 * K, 1, 1))
        head.final_layer.bias.zero_()
    head.eval()
    samples = []
    for _ in range(2):
        d = PoseDataSample()
        d.set_metainfo(dict(flip_indices=COCO_FLIP, img_shape=(PRED_INPUT[1], PRED_INPUT[0])))
        samples.append(d)
    feats = [(torch.from_numpy(x["feats"]),), (torch.from_numpy(x["feats_flip"]),)]
    with torch.no_grad():
        preds = head.predict(feats, samples, test_cfg=dict(
            flip_test=True, shift_heatmap=False, restore_heatmap_size=True, align_corners=False))
    M = 30
    kp, ks, inst, num = (np.zeros((2, M, K, 2), np.float32), np.zeros((2, M, K), np.float32),
                         np.zeros((2, M), np.float32), np.zeros(2, np.int64))
    for b, p in enumerate(preds):
        n = len(p.keypoints)
        kp[b, :n], ks[b, :n], inst[b, :n], num[b] = p.keypoints, p.keypoint_scores, p.bbox_scores, n
    return {"pred_keypoints": kp, "pred_keypoint_scores": ks, "pred_instance_scores": inst,
            "pred_num_instances": num}


if __name__ == "__main__":
    recorded = record()
    np.savez_compressed(OUT, **recorded)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(recorded)} arrays)")
