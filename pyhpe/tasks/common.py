"""Config sections and helpers shared by the image tasks (top-down and bottom-up)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from ..engine.config import Config, ConfigError
from .base import Task


@dataclass
class SyntheticImages(Config):
    """Rendered figures (:class:`pyhpe.data.SyntheticPoseDataset`): ``num_images`` training
    and ``val_images`` held-out images (seed ``seed + 7919``) of ``image_size`` pixels."""
    type: str = "synthetic"
    num_images: int = 200
    val_images: int = 50
    image_size: int = 128
    seed: int = 0
    occlusion: float = 0.1
    max_persons: int = 1


@dataclass
class CocoImages(Config):
    """COCO-format data: keypoint annotation json files and image directories."""
    type: str = "coco"
    train_ann: str = ""
    train_images: str = ""
    val_ann: Optional[str] = None
    val_images: Optional[str] = None
    seed: int = 0

    def __post_init__(self):
        if not self.train_ann or not self.train_images:
            raise ConfigError("data: type 'coco' needs 'train_ann' and 'train_images'")
        if bool(self.val_ann) != bool(self.val_images):
            raise ConfigError("data: give both 'val_ann' and 'val_images' (or neither)")


IMAGE_DATA = {"synthetic": SyntheticImages, "coco": CocoImages}


def image_sources(data, keypoints: str):
    """(train COCO dict, train image loader, val COCO dict or None, val loader or None,
    keypoint set) of a data section."""
    from ..data import CocoImageLoader, SyntheticPoseDataset, load_coco
    from ..keypoints import get_keypoint_set, keypoint_set_from_coco
    if isinstance(data, SyntheticImages):
        size = (data.image_size, data.image_size)
        kw = dict(size=size, occlusion=data.occlusion, max_persons=data.max_persons)
        tr = SyntheticPoseDataset(data.num_images, seed=data.seed, **kw)
        va = SyntheticPoseDataset(data.val_images, seed=data.seed + 7919, **kw) if data.val_images else None
        return (tr.coco_dict(), tr.image_by_id, va.coco_dict() if va else None,
                va.image_by_id if va else None, get_keypoint_set(keypoints))
    tr = load_coco(data.train_ann)
    kset = keypoint_set_from_coco(tr) if keypoints == "auto" else get_keypoint_set(keypoints)
    va = load_coco(data.val_ann) if data.val_ann else None
    return (tr, CocoImageLoader(tr, data.train_images), va,
            CocoImageLoader(va, data.val_images) if va else None, kset)


def keypoint_set_of(data, keypoints: str):
    """The keypoint set without loading images ('auto': from the COCO train annotations)."""
    from ..keypoints import get_keypoint_set, keypoint_set_from_coco
    if keypoints == "auto":
        if not isinstance(data, CocoImages):
            raise ConfigError("keypoints: 'auto' needs COCO-format data (data.type 'coco')")
        from ..data import load_coco
        return keypoint_set_from_coco(load_coco(data.train_ann))
    try:
        return get_keypoint_set(keypoints)
    except (KeyError, ValueError) as e:
        raise ConfigError(f"keypoints: {e}") from e


def build_checked(what: str, fn: Callable, *args, **kwargs):
    """Call a constructor with config arguments; a bad argument is a ConfigError naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except TypeError as e:
        raise ConfigError(f"{what}: {e}") from e


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def size_pair(value, where: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: a (W, H) pair of ints, got {value!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"{where}: must be positive, got {(w, h)}")
    return w, h


class ImageTask(Task):
    """What the image tasks share: batches of uint8 images normalised on the device and
    keypoints encoded by the codec; the validation COCO dict (``val_gt``) for COCO AP."""

    _val_gt: Optional[Dict] = None

    @property
    def val_gt(self) -> Optional[Dict]:
        self.datasets()
        return self._val_gt

    def prepare(self, batch, device):
        from ..data import normalize_images
        inputs = normalize_images(batch["image"].to(device))
        targets = self.codec.encode(batch["keypoints"].to(device), batch["visibility"].to(device))
        return inputs, targets


__all__ = ["ImageTask", "CocoImages", "IMAGE_DATA", "SyntheticImages", "build_checked", "image_sources", "keypoint_set_of", "size_pair", "write_json"]
