"""COCO keypoint annotations (pycocotools json format) and an image loader."""
from __future__ import annotations

import os
from typing import Dict, Optional

import cv2
import numpy as np

from .jsonio import read_json


def load_coco(ann, dataset: Optional[str] = None) -> Dict:
    """A COCO dict from a json path, a dict, or a pycocotools COCO object (its ``dataset``).

    ``dataset`` names the file's own format and reads it with that dataset's reader
    (:data:`pyhpe.data.readers.READERS`: 'coco', 'ochuman', 'crowdpose', 'aic', 'halpe',
    'coco_wholebody' (parts merged into 133 keypoints), 'posetrack18', 'jhmdb', 'mpii',
    'h36m' (mmpose's Human3.6M COCO json)).
    Without it, MPII's files are recognised and converted (:func:`pyhpe.data.mpii_to_coco`):
    the official ``.mat`` release and the common json list of entries; any other file must
    be a COCO dict, used as it is.
    """
    if dataset is not None:
        from .readers import read_keypoint_file
        return read_keypoint_file(ann, dataset)
    if isinstance(ann, (str, os.PathLike)) and str(ann).lower().endswith(".mat"):
        from .mpii import mpii_to_coco, read_mpii_mat
        return mpii_to_coco(read_mpii_mat(ann))
    if isinstance(ann, dict):
        data = ann
    elif isinstance(ann, (str, os.PathLike)):
        data = read_json(ann, "load_coco")
    elif isinstance(ann, list):
        data = ann
    elif hasattr(ann, "dataset"):
        data = ann.dataset
    else:
        raise TypeError(f"load_coco: expected a json path, dict or pycocotools COCO, got {type(ann).__name__}")
    if isinstance(data, list):
        if data and all(isinstance(e, dict) and {"image", "joints", "center", "scale"} <= set(e)
                        for e in data):
            from .mpii import mpii_to_coco
            return mpii_to_coco(data)
        raise ValueError("load_coco: the file holds a list that is not MPII's json layout "
                         "(entries with 'image', 'center', 'scale', 'joints'); expected a COCO "
                         "dict with 'images', 'annotations' and 'categories'")
    if not isinstance(data, dict):
        raise ValueError(f"load_coco: expected a COCO dict, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"load_coco: annotation file lacks the '{key}' list")
    return data


class CocoImageLoader:
    """``loader(image_id) -> (H, W, 3) uint8 BGR`` reading ``image_root/file_name``."""

    def __init__(self, data: Dict, image_root: str, cache: bool = False):
        self.files = {im["id"]: os.path.join(image_root, im["file_name"]) for im in data["images"]}
        self.cache = {} if cache else None

    def __call__(self, image_id: int) -> np.ndarray:
        if self.cache is not None and image_id in self.cache:
            return self.cache[image_id]
        path = self.files[image_id]
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"CocoImageLoader: cannot read image {path!r}")
        if self.cache is not None:
            self.cache[image_id] = img
        return img
