"""Crop the four Human3.6M sample frames (../shared/data/h36m) for the volumetric model's
learning test: h36m/volumetric_crops.npz.

Per frame: ``images`` (N, 64, 64, 3) uint8 RGB, the person box (``center``, side ``scale *
200``) warped to 64x64 (mmpose's top-down affine without rotation); ``keypoints`` (N, 17, 3)
x, y in crop pixels and z the depth relative to the pelvis (mm); ``pose_3d`` (N, 17, 3)
camera-frame joints relative to the pelvis (mm); ``root_depth`` (N,) mm; ``focal``,
``centre`` (N, 2) the camera intrinsics in crop pixels (a crop is a similarity of the
image, so f' = s f, c' = s c + t); ``visibility`` (N, 17); ``subject`` (N,).

    python tests/data/record_h36m_volumetric.py [SHARED_H36M_DIR]
"""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 64


def main(root: str) -> None:
    sys.path.insert(0, os.path.join(HERE, "..", ".."))
    from pyhpe.data import read_h36m
    from pyhpe.data.transforms import crop
    d = read_h36m(os.path.join(root, "test_h36m_body3d.npz"),
                  cameras=os.path.join(root, "cameras.pkl"), image_root=root)
    images, kps, focal, centre = [], [], [], []
    for i, path in enumerate(d["image_path"]):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        side = float(d["scale"][i]) * 200.0
        out, mat = crop(img, d["center"][i], (side, side), 0.0, (SIZE, SIZE))
        images.append(out)
        s, t = float(mat[0, 0]), mat[:, 2].astype(np.float64)
        xy = d["keypoints_2d"][i] * s + t
        kps.append(xy)
        focal.append(d["cameras"]["f"][i] * s)
        centre.append(d["cameras"]["c"][i] * s + t)
    S = d["keypoints_3d"] * 1000.0  # metres -> mm
    rel = S - S[:, :1]
    keypoints = np.concatenate([np.stack(kps), rel[..., 2:3]], -1)
    np.savez_compressed(os.path.join(HERE, "h36m", "volumetric_crops.npz"),
                        images=np.stack(images).astype(np.uint8),
                        keypoints=keypoints.astype(np.float32), pose_3d=rel.astype(np.float32),
                        root_depth=S[:, 0, 2].astype(np.float32),
                        focal=np.stack(focal).astype(np.float32),
                        centre=np.stack(centre).astype(np.float32),
                        visibility=d["visibility"].astype(np.float32),
                        subject=np.asarray(d["subject"]),
                        imgname=np.asarray([str(n) for n in d["imgname"]]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared",
                                                            "data", "h36m"))
