"""Top-down instance dataset: one person crop per item, with augmentation (no targets: the
codec encodes whole batches after collation)."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..keypoints import KeypointSet, get_keypoint_set
from .transforms import (TopDownAugment, affine_points, bbox_xywh_to_center_scale, crop)

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


def records_from_coco(coco: Dict, min_keypoints: int = 1, use_crowd: bool = False) -> List[Dict]:
    """One record per person annotation with at least ``min_keypoints`` labelled keypoints.

    A record holds ``image_id``, ``bbox`` (xywh), ``keypoints`` (K, 2), ``visibility`` (K,),
    ``area`` and ``score`` (1.0 for ground-truth boxes).
    """
    out = []
    for ann in coco["annotations"]:
        if ann.get("iscrowd", 0) and not use_crowd:
            continue
        kps = np.asarray(ann.get("keypoints", []), np.float32).reshape(-1, 3)
        if (kps[:, 2] > 0).sum() < min_keypoints:
            continue
        x, y, w, h = ann["bbox"]
        if w <= 0 or h <= 0:
            continue
        out.append({"image_id": ann["image_id"], "bbox": [float(v) for v in ann["bbox"]],
                    "keypoints": kps[:, :2].copy(), "visibility": kps[:, 2].copy(),
                    "area": float(ann.get("area", w * h)), "score": 1.0, "ann_id": ann.get("id")})
    return out


def records_from_boxes(detections: Sequence[Dict], num_keypoints: int) -> List[Dict]:
    """Records for inference on detector boxes (``{"image_id", "bbox", "score"}`` dicts)."""
    return [{"image_id": d["image_id"], "bbox": list(d["bbox"]),
             "keypoints": np.zeros((num_keypoints, 2), np.float32),
             "visibility": np.zeros(num_keypoints, np.float32),
             "area": float(d["bbox"][2] * d["bbox"][3]), "score": float(d.get("score", 1.0))}
            for d in detections]


class TopDownDataset(torch.utils.data.Dataset):
    """Crops of single persons: ``image`` uint8 (H, W, 3) BGR, ``keypoints`` (K, 2) in input
    pixels, ``visibility`` (K,), and the ``center``/``scale`` that map back to the image.

    ``image_loader(image_id) -> ndarray`` supplies images. ``augment`` (train only) is a
    :class:`TopDownAugment`; its randomness comes from ``(seed, epoch, index)`` so runs and
    resumed runs see the same samples. ``udp`` crops with mmpose's unbiased warp
    (:func:`get_udp_warp_matrix`, for codecs with ``udp_transform``); map predictions back
    with ``to_image_space(..., udp=True)`` then. Items never carry targets: the codec encodes
    the collated batch.
    """

    def __init__(self, records: List[Dict], image_loader: Callable[[int], np.ndarray],
                 keypoint_set="coco17", input_size=(48, 64), padding: float = 1.25,
                 augment: Optional[TopDownAugment] = None, seed: int = 0, udp: bool = False):
        self.records = records
        self.image_loader = image_loader
        self.kset: KeypointSet = get_keypoint_set(keypoint_set)
        self.input_size = tuple(int(v) for v in input_size)
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self.padding = padding
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.udp = bool(udp)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.records)

    def __getitem__(self, idx: int) -> Dict:
        rec = self.records[idx]
        image = self.image_loader(rec["image_id"])
        center, scale = bbox_xywh_to_center_scale(rec["bbox"], self.aspect_ratio, self.padding)
        kp, vis = rec["keypoints"], rec["visibility"]
        rot = 0.0
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, idx])
            image, kp, vis, center, scale, rot = self.augment(
                rng, image, kp, vis, center, scale, self.kset, self.aspect_ratio)
        img, mat = crop(image, center, scale, rot, self.input_size, udp=self.udp)
        kp_in = affine_points(kp, mat)
        W, H = self.input_size
        inside = (kp_in[:, 0] >= 0) & (kp_in[:, 0] < W) & (kp_in[:, 1] >= 0) & (kp_in[:, 1] < H)
        vis_t = np.where(inside, vis, 0).astype(np.float32)
        item = {"image": torch.from_numpy(np.ascontiguousarray(img)),
                "keypoints": torch.from_numpy(kp_in.astype(np.float32)),
                "visibility": torch.from_numpy(vis_t),
                "center": torch.from_numpy(np.asarray(center, np.float32)),
                "scale": torch.from_numpy(np.asarray(scale, np.float32)),
                "image_id": int(rec["image_id"]), "score": float(rec.get("score", 1.0)),
                "area": float(rec.get("area", 0.0)), "index": idx}
        return item


def collate_topdown(batch: List[Dict]) -> Dict:
    """Stack the items of :class:`TopDownDataset` (tensors stacked, numbers as tensors)."""
    out = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else torch.tensor(vals)
    return out


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` BGR -> float ``(B, 3, H, W)`` RGB normalised with ImageNet stats."""
    x = images.flip(-1).permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN_RGB, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD_RGB, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def to_image_space(coords: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, input_size,
                   udp: bool = False) -> torch.Tensor:
    """Input-pixel ``(B, K, 2)`` keypoints back to the image: the inverse of the unrotated crop.

    Plain crop (mmpose 1.x): ``coords / input_size * scale + center - 0.5 * scale``. UDP crop
    (``udp=True``, the inverse of :func:`get_udp_warp_matrix`, as mmpose 0.x
    ``transform_preds(use_udp=True)``): ``coords / (input_size - 1) * scale + center - 0.5 *
    scale``. ``center``/``scale`` are ``(B, 2)``.
    """
    size = torch.as_tensor(input_size, dtype=coords.dtype, device=coords.device)
    if udp:
        size = size - 1
    scale = scale.to(coords.dtype)
    center = center.to(coords.dtype)
    return coords / size * scale[:, None, :] + center[:, None, :] - 0.5 * scale[:, None, :]
