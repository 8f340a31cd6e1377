"""Record mmpose 1.3.2's AssociativeEmbedding encoding and AssociativeEmbeddingLoss for fixed
inputs into mmpose_ae.npz.

tests/test_ae_model.py regenerates the same inputs with :func:`make_inputs` (numpy only) and
compares pyhpe's ``associative_embedding`` codec and tag loss with the recorded outputs, so the
tests run without mmpose.

Re-record (mmpose 1.3.2, mmcv-lite 2.2.0, mmengine 0.10.7 and munkres importable)::

    PYTHONPATH=DIR python tests/data/record_mmpose_ae.py
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
OUT = os.path.join(HERE, "mmpose_ae.npz")


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
    return dict(keypoints=kp, visibility=vis, tags1=tags1, tags2=tags2)


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
    return out


if __name__ == "__main__":
    recorded = record()
    np.savez_compressed(OUT, **recorded)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(recorded)} arrays)")
