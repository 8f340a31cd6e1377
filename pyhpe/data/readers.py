"""Readers for the COCO-style keypoint files of each 2-D dataset.

Every reader returns a new COCO dict (``images`` / ``annotations`` / ``categories``, each
annotation's ``keypoints`` flattened ``K * 3``) whose category names the dataset's keypoints as
the built-in set does (:mod:`pyhpe.keypoints`), so :func:`pyhpe.keypoints.keypoint_set_from_coco`
returns that set, and the skeleton is the set's (1-based). A file in the wrong format is refused
with an error that names the file and what is wrong. The input is never modified.

* COCO, OCHuman: as they are (:func:`read_coco`, :func:`read_ochuman`).
* CrowdPose: its files name the head top 'head' and carry COCO's 17-point skeleton for 14
  keypoints; the category is replaced by CrowdPose-14's (``crowdIndex`` of images is kept).
* AIC (mmpose's conversion): 'Right Shoulder' ... -> AIC-14's names.
* Halpe: the category names no keypoints, annotations carry 136 (``body_only``: the 26-point
  body + feet subset, :data:`pyhpe.keypoints.HALPE26`).
* COCO-WholeBody: ``keypoints`` (body 17) and the separate ``foot_kpts``, ``face_kpts``,
  ``lefthand_kpts``, ``righthand_kpts`` merged in the 133-point order (the part arrays are kept
  for xtcocotools-style evaluation; :func:`split_wholebody` cuts a 133-point array back).
* PoseTrack18: video frames (images carry ``vid_id``, ``frame_id``, ``nframes``,
  ``is_labeled``; annotations ``track_id``, ``bbox_head``); one json or a folder of per-video
  files (``annotations/val/*.json``) merged.
* sub-JHMDB: 1-based MATLAB pixel coordinates made 0-based (keypoints and boxes), as mmpose
  reads them.
* MPII (:func:`read_mpii`: the json list or the ``.mat`` release) and mmpose's Human3.6M COCO
  json (:func:`read_h36m_coco`).
"""
from __future__ import annotations

import copy
import glob
import os
from typing import Dict, Optional

import numpy as np

from ..keypoints import (AIC14, COCO17, COCO_WHOLEBODY133, COCO_WHOLEBODY_PARTS, CROWDPOSE14,
                         HALPE26, HALPE136, JHMDB15, OCHUMAN17, POSETRACK17, KeypointSet,
                         _canonical_name)
from .jsonio import read_json

#: COCO-WholeBody's part arrays, in the 133-point order after the 17 body keypoints.
WHOLEBODY_PART_KEYS = (("foot_kpts", "foot"), ("face_kpts", "face"),
                       ("lefthand_kpts", "lefthand"), ("righthand_kpts", "righthand"))


def _load_json(src, who: str) -> Dict:
    if isinstance(src, dict):
        return copy.deepcopy(src)
    if not isinstance(src, (str, os.PathLike)):
        raise TypeError(f"{who}: expected a json path or a dict, got {type(src).__name__}")
    return read_json(src, who)


def _check_coco(data, who: str, src, num_keypoints: Optional[int] = None) -> Dict:
    name = src if isinstance(src, (str, os.PathLike)) else "the given dict"
    if not isinstance(data, dict):
        raise ValueError(f"{who}: {str(name)!r} holds a {type(data).__name__}, not a COCO dict "
                         f"with 'images', 'annotations' and 'categories'")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise ValueError(f"{who}: {str(name)!r} is not a COCO-style keypoint file: it lacks "
                         f"{missing} (has {sorted(data)[:8]})")
    image_ids = {im.get("id") for im in data["images"]}
    for ann in data["annotations"]:
        kps = ann.get("keypoints")
        if kps is None:
            continue
        if len(kps) % 3:
            raise ValueError(f"{who}: annotation {ann.get('id')} in {str(name)!r} has "
                             f"{len(kps)} keypoint values, not K * 3")
        if num_keypoints is not None and len(kps) != 3 * num_keypoints:
            raise ValueError(f"{who}: annotation {ann.get('id')} in {str(name)!r} has "
                             f"{len(kps) // 3} keypoints, expected {num_keypoints}")
        if ann.get("image_id") not in image_ids:
            raise ValueError(f"{who}: annotation {ann.get('id')} in {str(name)!r} refers to "
                             f"image {ann.get('image_id')!r}, which is not in 'images'")
    return data


def _set_category(data: Dict, kset: KeypointSet) -> Dict:
    """Name the person category's keypoints and skeleton after ``kset``."""
    cats = data["categories"] or [{"id": 1, "name": "person", "supercategory": "person"}]
    for c in cats:
        if c.get("name", "person") == "person" or len(cats) == 1:
            c["keypoints"] = list(kset.names)
            c["skeleton"] = [[a + 1, b + 1] for a, b in kset.skeleton]
    data["categories"] = cats
    return data


def _check_names(data: Dict, kset: KeypointSet, who: str, src) -> None:
    cats = [c for c in data["categories"] if c.get("keypoints")]
    if cats:
        got = [_canonical_name(n) for n in cats[0]["keypoints"]]
        if got != [_canonical_name(n) for n in kset.names]:
            raise ValueError(f"{who}: {str(src)!r} names keypoints {cats[0]['keypoints']}, "
                             f"not the {kset.name} order {kset.names}")


def _count_labelled(kps) -> int:
    return int((np.asarray(kps, np.float64).reshape(-1, 3)[:, 2] > 0).sum())


def _defaults(data: Dict) -> Dict:
    """Fields COCO tools read that some datasets' files leave out (AIC, JHMDB):
    ``iscrowd`` 0 (an int), ``num_keypoints`` (labelled points), ``category_id`` 1. ``area``
    is not invented: datasets without it are evaluated in a mode that does not use it."""
    for ann in data["annotations"]:
        ann["iscrowd"] = int(bool(ann.get("iscrowd", 0)))
        ann.setdefault("category_id", 1)
        if "keypoints" in ann and "num_keypoints" not in ann:
            ann["num_keypoints"] = _count_labelled(ann["keypoints"])
    return data


def _read_set(src, kset: KeypointSet, who: str) -> Dict:
    data = _check_coco(_load_json(src, who), who, src, kset.num_keypoints)
    _check_names(data, kset, who, src)
    return _defaults(_set_category(data, kset))


def read_coco(src) -> Dict:
    """A COCO person-keypoint file (17 keypoints)."""
    return _read_set(src, COCO17, "read_coco")


def read_ochuman(src) -> Dict:
    """An OCHuman file in its COCO format (17 COCO keypoints; masks as RLE are kept)."""
    return _read_set(src, OCHUMAN17, "read_ochuman")


def read_crowdpose(src) -> Dict:
    """A CrowdPose file: its category (head top 'head', COCO's 17-point skeleton) becomes
    CrowdPose-14's; images keep ``crowdIndex``."""
    return _read_set(src, CROWDPOSE14, "read_crowdpose")


def read_aic(src) -> Dict:
    """An AI Challenger file in mmpose's COCO conversion ('Right Shoulder', ... 'Neck')."""
    return _read_set(src, AIC14, "read_aic")


def read_halpe(src, body_only: bool = False) -> Dict:
    """A Halpe-FullBody file (136 keypoints per annotation, no names in the category);
    ``body_only`` keeps the first 26 (body + feet, :data:`HALPE26`)."""
    who = "read_halpe"
    data = _check_coco(_load_json(src, who), who, src, HALPE136.num_keypoints)
    _check_names(data, HALPE136, who, src)
    kset = HALPE26 if body_only else HALPE136
    for ann in data["annotations"]:
        if body_only and "keypoints" in ann:
            ann["keypoints"] = ann["keypoints"][:3 * 26]
        if "keypoints" in ann:
            ann["num_keypoints"] = _count_labelled(ann["keypoints"])
    return _defaults(_set_category(data, kset))


def read_coco_wholebody(src) -> Dict:
    """A COCO-WholeBody file, each annotation's ``keypoints`` made the 133-point array (body,
    feet, face, left hand, right hand), ``num_keypoints`` counting all labelled points. A
    missing part (or one whose ``*_valid`` flag is false) keeps its zeros."""
    who = "read_coco_wholebody"
    data = _check_coco(_load_json(src, who), who, src, None)
    for ann in data["annotations"]:
        body = ann.get("keypoints")
        if body is None:
            continue
        if len(body) != 51:
            raise ValueError(f"{who}: annotation {ann.get('id')} has {len(body) // 3} body "
                             f"keypoints, expected COCO's 17 (is this a merged file already?)")
        merged = [float(v) for v in body]
        for key, part in WHOLEBODY_PART_KEYS:
            a, b = COCO_WHOLEBODY_PARTS[part]
            vals = ann.get(key)
            if vals is None:
                raise ValueError(f"{who}: annotation {ann.get('id')} lacks {key!r}: not a "
                                 f"COCO-WholeBody file")
            if len(vals) != 3 * (b - a):
                raise ValueError(f"{who}: annotation {ann.get('id')}: {key!r} has "
                                 f"{len(vals)} values, expected {3 * (b - a)}")
            merged += [float(v) for v in vals]
        ann["body_keypoints"] = list(body)
        ann["keypoints"] = merged
        ann["num_keypoints"] = _count_labelled(merged)
    return _defaults(_set_category(data, COCO_WHOLEBODY133))


def split_wholebody(keypoints) -> Dict[str, np.ndarray]:
    """A 133-point array (``(133, C)`` or flattened ``133 * C``) -> ``{"body", "foot", "face",
    "lefthand", "righthand"}`` arrays in the same layout (xtcocotools' part order)."""
    arr = np.asarray(keypoints)
    flat = arr.ndim == 1
    pts = arr.reshape(133, -1) if flat else arr
    if pts.shape[0] != 133:
        raise ValueError(f"split_wholebody: expected 133 keypoints, got {pts.shape}")
    return {part: (pts[a:b].reshape(-1) if flat else pts[a:b])
            for part, (a, b) in COCO_WHOLEBODY_PARTS.items()}


def read_posetrack18(src) -> Dict:
    """PoseTrack18 annotations: one json (``test_posetrack18_val.json``, a whole split) or a
    folder of per-video jsons (``annotations/val``), merged. Images are video frames with
    ``vid_id``, ``frame_id``, ``nframes`` and ``is_labeled``; annotations keep ``track_id``
    and ``bbox_head``."""
    who = "read_posetrack18"
    if isinstance(src, (str, os.PathLike)) and os.path.isdir(src):
        files = sorted(glob.glob(os.path.join(src, "*.json")))
        if not files:
            raise ValueError(f"{who}: folder {str(src)!r} holds no json files")
        parts = [_read_set(f, POSETRACK17, who) for f in files]
        data = {"images": [], "annotations": [], "categories": parts[0]["categories"]}
        seen = set()
        for p in parts:
            for im in p["images"]:
                if im["id"] not in seen:
                    seen.add(im["id"])
                    data["images"].append(im)
            data["annotations"] += p["annotations"]
    else:
        data = _read_set(src, POSETRACK17, who)
    for im in data["images"]:
        for key in ("vid_id", "frame_id"):
            if key not in im:
                raise ValueError(f"{who}: image {im.get('id')} lacks {key!r}: not a PoseTrack18 "
                                 f"file")
        im.setdefault("is_labeled", True)
    for ann in data["annotations"]:
        if "keypoints" in ann:
            ann["num_keypoints"] = _count_labelled(ann["keypoints"])
    return _defaults(data)


def read_jhmdb(src) -> Dict:
    """A sub-JHMDB file (15 keypoints, 1-based MATLAB pixels) with 0-based keypoints and boxes;
    ``num_keypoints`` counts the labelled points."""
    data = _read_set(src, JHMDB15, "read_jhmdb")
    for ann in data["annotations"]:
        if "keypoints" in ann:
            k = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
            lab = k[:, 2] > 0
            k[lab, :2] -= 1.0
            ann["keypoints"] = k.reshape(-1).tolist()
            ann["num_keypoints"] = int(lab.sum())
        if "bbox" in ann:
            x, y, w, h = ann["bbox"]
            ann["bbox"] = [x - 1.0, y - 1.0, w, h]
    return data


def read_mpii(src, image_root: Optional[str] = None) -> Dict:
    """MPII: the official ``.mat`` release or the common json (a path or a list of entries)
    as a COCO dict (:func:`pyhpe.data.mpii_to_coco`; image sizes read from ``image_root``
    when given)."""
    from .mpii import load_mpii, mpii_to_coco, read_mpii_mat
    if isinstance(src, (str, os.PathLike)) and str(src).lower().endswith(".mat"):
        return mpii_to_coco(read_mpii_mat(src), image_root=image_root)
    entries = load_mpii(src)
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and {"image", "joints", "center", "scale"} <= set(e)
            for e in entries):
        raise ValueError(f"read_mpii: {str(src)[:200]!r} is not MPII's json layout (a list of "
                         f"entries with 'image', 'center', 'scale', 'joints')")
    return mpii_to_coco(entries, image_root=image_root)


def read_h36m_coco(src) -> Dict:
    """mmpose's Human3.6M COCO-format json (``h36m_coco.json``: 17 joints per annotation in
    the order of the npz files, i.e. :data:`pyhpe.keypoints.H36M17`, plus ``keypoints_3d``
    (17 x 4, world metres and visibility)). Its category is replaced by H36M17's: the file's
    own names call joint 1 'left_hip' and its skeleton is 0-based, whereas its joints follow
    the npz order (joint 1 is the right hip; see ``tests/test_lifting.py``)."""
    who = "read_h36m_coco"
    data = _check_coco(_load_json(src, who), who, src, 17)
    for ann in data["annotations"]:
        k3 = ann.get("keypoints_3d")
        if k3 is not None and len(k3) != 17 * 4:
            raise ValueError(f"{who}: annotation {ann.get('id')}: 'keypoints_3d' has {len(k3)} "
                             f"values, expected 17 x 4")
    from ..keypoints import H36M17
    return _defaults(_set_category(data, H36M17))


#: Readers by dataset name.
READERS = {"coco": read_coco, "ochuman": read_ochuman, "crowdpose": read_crowdpose,
           "aic": read_aic, "halpe": read_halpe, "coco_wholebody": read_coco_wholebody,
           "posetrack18": read_posetrack18, "jhmdb": read_jhmdb, "mpii": read_mpii,
           "h36m": read_h36m_coco}


def read_keypoint_file(src, dataset: str) -> Dict:
    """The COCO dict of ``src`` read by the reader of ``dataset`` (a key of :data:`READERS`)."""
    try:
        reader = READERS[dataset]
    except KeyError:
        raise ValueError(f"read_keypoint_file: unknown dataset {dataset!r}; known: "
                         f"{sorted(READERS)}") from None
    return reader(src)


__all__ = ["READERS", "WHOLEBODY_PART_KEYS", "read_aic", "read_coco", "read_coco_wholebody",
           "read_crowdpose", "read_h36m_coco", "read_halpe", "read_jhmdb", "read_keypoint_file",
           "read_mpii", "read_ochuman", "read_posetrack18", "split_wholebody"]
