"""MPII annotations: the json layout used by HRNet/mmpose (``mpii_train.json``) and the
official ``.mat`` release (:func:`read_mpii_mat`, converted to the same entries).

Each entry: ``{"image", "center" [x, y], "scale" (person height / 200), "joints" (16, 2),
"joints_vis" (16,)}`` with MATLAB 1-based pixel coordinates. As in mmpose's MpiiDataset the
centre is shifted down by ``15 * scale`` px and the box enlarged by 1.25; coordinates become
0-based.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from ..keypoints import MPII16
from .jsonio import read_json


def load_mpii(path_or_list) -> List[Dict]:
    """The entries of an MPII json file (or a list of entries)."""
    if isinstance(path_or_list, (str, os.PathLike)):
        return read_json(path_or_list, "load_mpii")
    if isinstance(path_or_list, dict):
        raise ValueError("load_mpii: expected a list of MPII entries, got a dict")
    return list(path_or_list)


def image_size_of(path: str) -> tuple:
    """(width, height) of an image file."""
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"image_size_of: cannot read image {path!r}")
    return img.shape[1], img.shape[0]


def mpii_to_coco(entries: List[Dict], image_size: Dict[str, tuple] = None,
                 image_root: Optional[str] = None) -> Dict:
    """Convert MPII entries to a COCO-format dict (bbox from centre/scale, area = box area,
    ``head_size`` kept when the entry has a ``headbox``) usable by every top-down tool here.
    Image ``width`` / ``height`` come from ``image_size`` ({name: (w, h)}), else from the
    files under ``image_root`` when given, else 0."""
    images, anns, ids = [], [], {}
    for i, e in enumerate(entries):
        name = e["image"]
        if name not in ids:
            ids[name] = len(ids) + 1
            if image_size and name in image_size:
                w, h = image_size[name]
            elif image_root is not None:
                w, h = image_size_of(os.path.join(str(image_root), name))
            else:
                w, h = 0, 0
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


# ---------------------------------------------------------------------------- the .mat release
def _seq(x) -> list:
    """A MATLAB struct array / cell read with ``squeeze_me``: always a list (empty for [])."""
    if x is None:
        return []
    if isinstance(x, np.ndarray):
        return list(x.reshape(-1)) if x.size else []
    return [x]


def _num(x, default=None):
    """The number a MATLAB field holds (``default`` for a missing / empty / non-numeric one)."""
    if x is None:
        return default
    try:
        a = np.asarray(x, np.float64).reshape(-1)
    except (TypeError, ValueError):
        return default
    return float(a[0]) if a.size and np.isfinite(a[0]) else default


def read_mpii_mat(path, train_only: Optional[bool] = None) -> List[Dict]:
    """MPII Human Pose's official release (``mpii_human_pose_v1_u12_1.mat``) -> entries in the
    common json layout of :func:`load_mpii` plus the head box and the split.

    ``RELEASE.annolist(i).image.name``; ``.annorect(r)`` with the head box ``x1 y1 x2 y2``,
    ``scale``, ``objpos.x/.y`` and ``annopoints.point(j)`` = ``id`` (0..15, the MPII order of
    :data:`pyhpe.keypoints.MPII16`), ``x``, ``y``, ``is_visible``; ``RELEASE.img_train(i)``
    (1 train, 0 test). Each person with a scale and a position becomes one entry: ``image``,
    ``center`` (objpos), ``scale``, ``joints`` (16, 2) MATLAB 1-based pixels (-1 where not
    annotated, as in the json), ``joints_vis`` (1 where annotated), ``joints_visible`` (the
    annotator's ``is_visible``), ``headbox`` [[x1, y1], [x2, y2]], ``is_train``,
    ``image_index`` and ``person_index`` (0-based). ``train_only`` True / False keeps only the
    training / test images.
    """
    import scipy.io
    who = "read_mpii_mat"
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}: no such file {str(path)!r}") from None
    except (ValueError, TypeError, OSError, NotImplementedError) as e:
        raise ValueError(f"{who}: cannot read {str(path)!r} as a MATLAB file ({e}); MATLAB v7.3 "
                         f"(HDF5) files are not supported") from e
    rel = mat.get("RELEASE")
    if rel is None or not hasattr(rel, "annolist"):
        raise ValueError(f"{who}: {str(path)!r} has no RELEASE.annolist: not the MPII release "
                         f"(variables: {sorted(k for k in mat if not k.startswith('__'))})")
    annolist = _seq(rel.annolist)
    img_train = np.asarray(getattr(rel, "img_train", np.ones(len(annolist))), np.int64).reshape(-1)
    if len(img_train) != len(annolist):
        raise ValueError(f"{who}: RELEASE.img_train has {len(img_train)} entries for "
                         f"{len(annolist)} images")
    out = []
    for i, anno in enumerate(annolist):
        is_train = bool(img_train[i])
        if train_only is not None and is_train != train_only:
            continue
        try:
            name = str(anno.image.name)
        except AttributeError:
            raise ValueError(f"{who}: annolist({i + 1}) has no image.name") from None
        for r, rect in enumerate(_seq(getattr(anno, "annorect", None))):
            scale = _num(getattr(rect, "scale", None))
            objpos = getattr(rect, "objpos", None)
            cx, cy = _num(getattr(objpos, "x", None)), _num(getattr(objpos, "y", None))
            if scale is None or cx is None or cy is None:
                continue   # groups of people without a scale / position are not evaluated
            joints = -np.ones((16, 2))
            vis = np.zeros(16)
            visible = np.zeros(16)
            ap = getattr(rect, "annopoints", None)
            for pt in _seq(getattr(ap, "point", None)):
                jid = int(_num(pt.id, -1))
                if not 0 <= jid < 16:
                    raise ValueError(f"{who}: annolist({i + 1}).annorect({r + 1}): joint id "
                                     f"{jid} outside 0..15")
                joints[jid] = (_num(pt.x), _num(pt.y))
                vis[jid] = 1.0
                visible[jid] = _num(getattr(pt, "is_visible", None), 1.0) or 0.0
            e = {"image": name, "center": [cx, cy], "scale": scale,
                 "joints": joints.tolist(), "joints_vis": vis.tolist(),
                 "joints_visible": visible.tolist(), "is_train": is_train,
                 "image_index": i, "person_index": r}
            x1, y1, x2, y2 = (_num(getattr(rect, k, None)) for k in ("x1", "y1", "x2", "y2"))
            if None not in (x1, y1, x2, y2):
                e["headbox"] = [[x1, y1], [x2, y2]]
            out.append(e)
    return out
