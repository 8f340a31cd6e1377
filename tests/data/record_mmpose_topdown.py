"""Record mmpose 1.3.2's top-down HRNet-W32 keypoints on a real image into
mmpose_hrnet_w32_topdown.npz (a few KB; no weights are stored).

The weights are the deterministic ones of ``pyhpe.apis.pretrained.synthetic_state_dict`` for
the mmpose HRNet-W32 checkpoint layout (``manifests/hrnet_w32_mmpose.json``), loaded into
mmpose's ``TopdownPoseEstimator`` of its td-hm_hrnet-w32 COCO 256x192 config; the boxes are
OCHuman's two ground-truth boxes of ``ochuman/000817.jpg`` (``ochuman_sample.json``) and a
shifted, enlarged copy of each (:func:`boxes_xywh`), run
through ``mmpose.apis.inference_topdown`` without flip test (``keypoints``, ``scores``) and
with the config's flip test (``flip_mode='heatmap'``, ``shift_heatmap=True``:
``keypoints_flip``, ``scores_flip``). tests/test_speed_e2e.py loads the same weights into
pyhpe through ``load_pretrained`` and compares its image keypoints (the flip test with the
codec's ``flip_shift='mmpose'``).

Re-record (mmpose 1.3.2, mmcv-lite 2.2.0 and mmengine 0.10.7 importable, e.g. installed with
``pip install --target DIR --no-deps``, and the reference harness's stubs for the compiled
mmcv ops it never uses)::

    PYTHONPATH=DIR:. python tests/data/record_mmpose_topdown.py [path/to/mmpose_stubs.py]
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "mmpose_hrnet_w32_topdown.npz")
IMAGE = os.path.join(HERE, "ochuman", "000817.jpg")
CONFIG = "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"


def boxes_xywh() -> np.ndarray:
    """The ground-truth person boxes of the image and a shifted, 10% larger copy of each
    (x, y, w, h)."""
    with open(os.path.join(HERE, "ochuman_sample.json")) as f:
        coco = json.load(f)
    image_id = next(im["id"] for im in coco["images"] if im["file_name"] == "000817.jpg")
    gt = np.array([a["bbox"] for a in coco["annotations"] if a["image_id"] == image_id],
                  np.float64)
    moved = np.c_[gt[:, 0] + 7.3 - 0.05 * gt[:, 2], gt[:, 1] - 4.1 - 0.05 * gt[:, 3],
                  gt[:, 2:] * 1.1]
    return np.concatenate([gt, moved])


def main(stubs=None):
    if stubs:
        with open(stubs) as f:
            exec(compile(f.read(), stubs, "exec"), {"__name__": "mmpose_stubs"})
    import torch
    import mmpose
    from mmpose.apis import inference_topdown, init_model
    from mmpose.utils import register_all_modules
    from pyhpe.apis.pretrained import synthetic_state_dict
    register_all_modules()
    torch.set_num_threads(2)
    with open(os.path.join(HERE, "manifests", "hrnet_w32_mmpose.json")) as f:
        sd = synthetic_state_dict(json.load(f)["keys"])
    cfg = os.path.join(os.path.dirname(mmpose.__file__), ".mim", "configs", CONFIG)
    model = init_model(cfg, None, device="cpu")
    model.load_state_dict(sd, strict=True)
    boxes = boxes_xywh()
    xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1).astype(np.float32)
    out = {}
    for flip, suffix in ((False, ""), (True, "_flip")):
        model.test_cfg.update(flip_test=flip, flip_mode="heatmap", shift_heatmap=True)
        with torch.no_grad():
            samples = inference_topdown(model.eval(), IMAGE, xyxy, bbox_format="xyxy")
        out["keypoints" + suffix] = np.stack(
            [s.pred_instances.keypoints[0] for s in samples]).astype(np.float32)
        out["scores" + suffix] = np.stack(
            [s.pred_instances.keypoint_scores[0] for s in samples]).astype(np.float32)
    np.savez_compressed(OUT, boxes=boxes, mmpose_version=np.array(mmpose.__version__), **out)
    print(f"wrote {OUT}: {len(boxes)} boxes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
