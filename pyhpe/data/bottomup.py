"""Bottom-up pipeline basics: whole-image affine resize with augmentation, multi-person
heatmaps (max over persons) and Part Affinity Field targets (OpenPose)."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..keypoints import get_keypoint_set
from .transforms import affine_points, crop, flip_keypoints


def paf_targets(keypoints: torch.Tensor, visibility: torch.Tensor, limbs: Sequence, size, width: float = 1.0):
    """OpenPose PAF targets ``(2L, H, W)`` from ``(N, K, 2)`` keypoints in map pixels.

    A pixel belongs to limb (a, b) of a person when its distance along the limb is within
    [0, length] and across it within ``width``; its target is the limb's unit vector averaged
    over the persons covering it (Cao et al. 2017, eq. 8-9)."""
    W, H = int(size[0]), int(size[1])
    L = len(limbs)
    out = torch.zeros(2 * L, H, W)
    if keypoints.numel() == 0:
        return out
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    for li, (a, b) in enumerate(limbs):
        acc = torch.zeros(2, H, W)
        cnt = torch.zeros(H, W)
        for n in range(keypoints.shape[0]):
            if visibility[n, a] <= 0 or visibility[n, b] <= 0:
                continue
            pa, pb = keypoints[n, a], keypoints[n, b]
            v = pb - pa
            length = float(torch.linalg.norm(v))
            if length < 1e-6:
                continue
            u = v / length
            dx, dy = xs - pa[0], ys - pa[1]
            along = dx * u[0] + dy * u[1]
            across = (dx * u[1] - dy * u[0]).abs()
            m = (along >= 0) & (along <= length) & (across <= width)
            acc[0][m] += u[0]
            acc[1][m] += u[1]
            cnt[m] += 1
        nz = cnt > 0
        out[2 * li][nz] = acc[0][nz] / cnt[nz]
        out[2 * li + 1][nz] = acc[1][nz] / cnt[nz]
    return out


class BottomUpDataset(torch.utils.data.Dataset):
    """Whole images resized (keeping aspect) to ``input_size`` with random flip/scale/rotation;
    items hold the image, all persons' keypoints ``(N, K, 2)``/visibility in input pixels, and,
    with a codec, multi-person heatmaps and PAFs at ``heatmap_size``."""

    def __init__(self, coco: Dict, image_loader: Callable, keypoint_set="coco17", input_size=(128, 128),
                 heatmap_size=(32, 32), sigma: float = 2.0, train: bool = True, seed: int = 0,
                 max_persons: int = 20, with_paf: bool = True):
        self.coco, self.loader = coco, image_loader
        self.kset = get_keypoint_set(keypoint_set)
        self.input_size, self.heatmap_size = tuple(input_size), tuple(heatmap_size)
        self.sigma, self.train, self.seed, self.epoch = sigma, train, seed, 0
        self.max_persons, self.with_paf = max_persons, with_paf
        self.by_image: Dict[int, List[Dict]] = {im["id"]: [] for im in coco["images"]}
        for a in coco["annotations"]:
            if not a.get("iscrowd", 0):
                self.by_image.setdefault(a["image_id"], []).append(a)
        self.ids = [im["id"] for im in coco["images"]]

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, idx):
        from ..codecs._fallback import msra_heatmaps_torch
        image_id = self.ids[idx]
        img = self.loader(image_id)
        h, w = img.shape[:2]
        anns = self.by_image[image_id][: self.max_persons]
        K = self.kset.num_keypoints
        kps = np.array([np.asarray(a["keypoints"], np.float32).reshape(K, 3) for a in anns]).reshape(-1, K, 3)
        kp, vis = kps[..., :2], kps[..., 2]
        center = np.array([w / 2, h / 2], np.float32)
        side = max(w / self.input_size[0], h / self.input_size[1])
        scale = np.array([self.input_size[0] * side, self.input_size[1] * side], np.float32)
        rot = 0.0
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, idx])
            if rng.random() < 0.5:
                img = img[:, ::-1]
                kp, vis = flip_keypoints(kp, vis, w, self.kset.flip_pairs)
            scale = scale * rng.uniform(0.75, 1.25)
            rot = float(rng.uniform(-30, 30))
        out, mat = crop(np.ascontiguousarray(img), center, scale, rot, self.input_size)
        kp_in = affine_points(kp, mat) if len(kp) else kp.astype(np.float32)
        item = {"image": torch.from_numpy(out), "keypoints": torch.from_numpy(np.asarray(kp_in, np.float32)),
                "visibility": torch.from_numpy(np.asarray(vis, np.float32)), "image_id": image_id}
        stride = np.array(self.input_size, np.float32) / np.array(self.heatmap_size, np.float32)
        kp_hm = torch.from_numpy(np.asarray(kp_in, np.float32) / stride)
        hm, _ = msra_heatmaps_torch(kp_hm[None], item["visibility"][None], self.heatmap_size, self.sigma)
        item["heatmaps"] = hm[0]
        if self.with_paf:
            item["pafs"] = paf_targets(kp_hm, item["visibility"], self.kset.skeleton, self.heatmap_size)
        return item
