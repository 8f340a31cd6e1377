"""COCO keypoint annotations (pycocotools json format) and an image loader."""
from __future__ import annotations

import json
import os
from typing import Dict

import cv2
import numpy as np


def load_coco(ann) -> Dict:
    """A COCO dict from a json path, a dict, or a pycocotools COCO object (its ``dataset``)."""
    if isinstance(ann, dict):
        data = ann
    elif isinstance(ann, (str, os.PathLike)):
        with open(ann) as f:
            data = json.load(f)
    elif hasattr(ann, "dataset"):
        data = ann.dataset
    else:
        raise TypeError(f"load_coco: expected a json path, dict or pycocotools COCO, got {type(ann).__name__}")
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
