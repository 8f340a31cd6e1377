"""MPII annotations in the json layout used by HRNet/mmpose (``mpii_train.json``).

Each entry: ``{"image", "center" [x, y], "scale" (person height / 200), "joints" (16, 2),
"joints_vis" (16,)}`` with MATLAB 1-based pixel coordinates. As in mmpose's MpiiDataset the
centre is shifted down by ``15 * scale`` px and the box enlarged by 1.25; coordinates become
0-based.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np

from ..keypoints import MPII16


def load_mpii(path_or_list) -> List[Dict]:
    if isinstance(path_or_list, (str, os.PathLike)):
        with open(path_or_list) as f:
            return json.load(f)
    return list(path_or_list)


def mpii_to_coco(entries: List[Dict], image_size: Dict[str, tuple] = None) -> Dict:
    """Convert MPII entries to a COCO-format dict (bbox from centre/scale, area = box area,
    ``head_size`` kept when the entry has a ``headbox``) usable by every top-down tool here."""
    images, anns, ids = [], [], {}
    for i, e in enumerate(entries):
        name = e["image"]
        if name not in ids:
            ids[name] = len(ids) + 1
            w, h = (image_size or {}).get(name, (0, 0))
            images.append({"id": ids[name], "file_name": name, "width": w, "height": h})
        c = np.asarray(e["center"], np.float64)
        s = float(e["scale"]) * 200.0
        if c[0] != -1:
            c[1] += 15.0 / 200.0 * s
        c = c - 1.0
        side = s * 1.25
        joints = np.asarray(e.get("joints", np.zeros((16, 2))), np.float64) - 1.0
        vis = np.asarray(e.get("joints_vis", np.zeros(16)), np.float64)
        kps = np.concatenate([joints, (vis > 0)[:, None] * 2.0], 1)
        ann = {"id": i + 1, "image_id": ids[name], "category_id": 1, "iscrowd": 0,
               "bbox": [c[0] - side / 2, c[1] - side / 2, side, side], "area": side * side,
               "keypoints": kps.reshape(-1).tolist(), "num_keypoints": int((vis > 0).sum())}
        if "headbox" in e:
            hb = np.asarray(e["headbox"], np.float64).reshape(2, 2)
            ann["head_size"] = float(np.linalg.norm(hb[1] - hb[0]) * 0.6)
        anns.append(ann)
    cat = {"id": 1, "name": "person", "keypoints": list(MPII16.names),
           "skeleton": [[a + 1, b + 1] for a, b in MPII16.skeleton]}
    return {"images": images, "annotations": anns, "categories": [cat]}
