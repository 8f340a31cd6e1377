"""Bottom-up pipeline: whole images resized (keeping the aspect ratio) with augmentation, all
persons' keypoints in input pixels, and the collate that pads persons to the batch maximum.

Items carry no targets: the codec (e.g. ``paf``) encodes the collated ``(B, N, K, 2)`` batch.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from ..keypoints import get_keypoint_set
from .transforms import affine_points, crop, flip_keypoints


def bottomup_center_scale(image_hw, input_size) -> Tuple[np.ndarray, np.ndarray]:
    """Centre ``(2,)`` and scale ``(2,)`` of the evaluation resize: the whole image, centred,
    enlarged to the input aspect ratio (one image pixel per ``side`` input pixels)."""
    h, w = float(image_hw[0]), float(image_hw[1])
    side = max(w / input_size[0], h / input_size[1])
    center = np.array([w / 2, h / 2], np.float32)
    scale = np.array([input_size[0] * side, input_size[1] * side], np.float32)
    return center, scale


def bottomup_to_image_space(points: np.ndarray, image_hw, input_size) -> np.ndarray:
    """Undo the evaluation resize of :class:`BottomUpDataset`: input-pixel ``(..., 2)`` points
    -> image pixels (the same map as :func:`pyhpe.data.to_image_space` with the item's
    ``center``/``scale``)."""
    h, w = float(image_hw[0]), float(image_hw[1])
    side = max(w / input_size[0], h / input_size[1])
    center = np.array([w / 2, h / 2])
    scale = np.array(input_size, np.float64) * side
    return np.asarray(points, np.float64) * side + center - 0.5 * scale


class BottomUpDataset(torch.utils.data.Dataset):
    """Whole images resized (keeping aspect) to ``input_size`` ``(W, H)``; with ``train``,
    random flip, scale and rotation drawn from ``(seed, epoch, index)``.

    Items: ``image`` uint8 ``(H, W, 3)`` BGR, ``keypoints`` ``(N, K, 2)`` input pixels,
    ``visibility`` ``(N, K)`` (COCO v), ``center``/``scale`` ``(2,)`` of the crop (without
    augmentation they map predictions back via :func:`pyhpe.data.to_image_space` or
    :func:`bottomup_to_image_space`) and ``image_id``. Crowd annotations are skipped; at most
    ``max_persons`` persons per image.
    """

    def __init__(self, coco: Dict, image_loader: Callable, keypoint_set="coco17",
                 input_size=(128, 128), train: bool = True, seed: int = 0,
                 max_persons: int = 20):
        self.coco, self.loader = coco, image_loader
        self.kset = get_keypoint_set(keypoint_set)
        self.input_size = tuple(int(v) for v in input_size)
        self.train, self.seed, self.epoch = bool(train), int(seed), 0
        self.max_persons = int(max_persons)
        self.by_image: Dict[int, List[Dict]] = {im["id"]: [] for im in coco["images"]}
        for a in coco["annotations"]:
            if not a.get("iscrowd", 0):
                self.by_image.setdefault(a["image_id"], []).append(a)
        self.ids = [im["id"] for im in coco["images"]]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, idx):
        image_id = self.ids[idx]
        img = self.loader(image_id)
        h, w = img.shape[:2]
        anns = self.by_image[image_id][: self.max_persons]
        K = self.kset.num_keypoints
        kps = np.array([np.asarray(a["keypoints"], np.float32).reshape(K, 3)
                        for a in anns]).reshape(-1, K, 3)
        kp, vis = kps[..., :2], kps[..., 2]
        center, scale = bottomup_center_scale((h, w), self.input_size)
        rot = 0.0
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, idx])
            if rng.random() < 0.5:
                img = img[:, ::-1]
                kp, vis = flip_keypoints(kp, vis, w, self.kset.flip_pairs)
            scale = scale * np.float32(rng.uniform(0.75, 1.25))
            rot = float(rng.uniform(-30, 30))
        out, mat = crop(np.ascontiguousarray(img), center, scale, rot, self.input_size)
        kp_in = affine_points(kp, mat) if len(kp) else kp.astype(np.float32)
        return {"image": torch.from_numpy(out),
                "keypoints": torch.from_numpy(np.asarray(kp_in, np.float32).reshape(-1, K, 2)),
                "visibility": torch.from_numpy(np.asarray(vis, np.float32).reshape(-1, K)),
                "center": torch.from_numpy(np.asarray(center, np.float32)),
                "scale": torch.from_numpy(np.asarray(scale, np.float32)),
                "image_id": image_id}


def collate_bottomup(items: List[Dict]) -> Dict:
    """Batch :class:`BottomUpDataset` items: images stacked ``(B, H, W, 3)``; every image's
    persons padded to the batch maximum (at least one) with zero keypoints and visibility 0,
    ``keypoints`` ``(B, N, K, 2)``, ``visibility`` ``(B, N, K)``; ``num_persons`` ``(B,)``;
    ``center``/``scale`` ``(B, 2)``; ``image_id`` ``(B,)``."""
    if not items:
        raise ValueError("collate_bottomup: empty batch")
    K = int(items[0]["visibility"].shape[-1])
    counts = [int(it["keypoints"].shape[0]) for it in items]
    n = max(max(counts), 1)
    kp = torch.zeros(len(items), n, K, 2)
    vis = torch.zeros(len(items), n, K)
    for i, (it, m) in enumerate(zip(items, counts)):
        if m:
            kp[i, :m] = it["keypoints"].reshape(m, K, 2)
            vis[i, :m] = it["visibility"].reshape(m, K)
    out = {"image": torch.stack([it["image"] for it in items]), "keypoints": kp,
           "visibility": vis, "num_persons": torch.tensor(counts),
           "image_id": torch.tensor([int(it["image_id"]) for it in items])}
    if all("center" in it and "scale" in it for it in items):
        out["center"] = torch.stack([it["center"] for it in items])
        out["scale"] = torch.stack([it["scale"] for it in items])
    return out
