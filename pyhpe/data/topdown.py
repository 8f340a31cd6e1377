"""Top-down instance dataset: one person crop per item, with augmentation (no targets: the
codec encodes whole batches after collation)."""
from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from ..keypoints import KeypointSet, get_keypoint_set
from .transforms import TopDownAugment, affine_points, bbox_xywh_to_center_scale, crop_matrix

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


def _column(values: list):
    """``(kind, array)`` holding ``values`` (one field of every record) without Python
    objects where their types allow: arrays of one shape and dtype stacked, lists of floats
    (or of ints) of one length as a 2-D array, floats / ints / bools as 1-D arrays; anything
    else (None, strings, mixed types) stays an object array."""
    v0 = values[0]
    try:
        if isinstance(v0, np.ndarray) and all(
                isinstance(v, np.ndarray) and v.shape == v0.shape and v.dtype == v0.dtype
                for v in values):
            return "array", np.stack(values)
        if type(v0) is list:
            for elem in (float, int):
                if all(type(v) is list and len(v) == len(v0) and
                       all(type(x) is elem for x in v) for v in values):
                    return f"list_{elem.__name__}", np.asarray(
                        values, np.float64 if elem is float else np.int64).reshape(len(values), -1)
        for kind, dtype in ((float, np.float64), (int, np.int64), (bool, np.bool_)):
            if all(type(v) is kind for v in values):
                return kind.__name__, np.asarray(values, dtype)
    except OverflowError:      # ints beyond int64
        pass
    col = np.empty(len(values), dtype=object)
    col[:] = values
    return "object", col


class RecordTable(SequenceABC):
    """Person records stored as columns (one numpy array per field) instead of a list of
    dicts. DataLoader workers are forked from the training process and share its memory
    until they write to it; reading a record dict writes its reference counts, so over an
    epoch each worker copies every record page of a list (about 1 KiB per COCO person, 150
    MiB for train2017, per worker). Reading a row of the table touches no Python object of
    the parent. Row ``i`` is a new dict equal to record ``i`` (same keys, values of the same
    types: arrays as copies, lists, floats, ints, other objects as they were)."""

    def __init__(self, records: Sequence[Dict]):
        records = list(records)
        self._n = len(records)
        keys = list(records[0]) if records else []
        if any(list(r) != keys for r in records):
            raise ValueError("RecordTable: every record must have the same keys in the same "
                             "order")
        self._columns = {k: _column([r[k] for r in records]) for k in keys}

    def __len__(self) -> int:
        return self._n

    def column(self, key: str) -> np.ndarray:
        """The field ``key`` of every record, as stored (one row per record)."""
        return self._columns[key][1]

    def _row(self, i: int) -> Dict:
        out = {}
        for k, (kind, col) in self._columns.items():
            v = col[i]
            if kind == "array":
                v = v.copy()
            elif kind.startswith("list_"):
                v = v.tolist()
            elif kind in ("float", "int", "bool"):
                v = v.item()
            out[k] = v
        return out

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(self._n))]
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"RecordTable index {i} out of range for {self._n} records")
        return self._row(i)


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
        # columns, so that forked DataLoader workers share the records instead of copying them
        self.records = records if isinstance(records, RecordTable) else RecordTable(records)
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

    def instance_image_ids(self) -> List[int]:
        """The image id of each item, in item order (the engine's ``train.sampler:
        'image_grouped'`` keeps each image's people together with it)."""
        return self.records.column("image_id").tolist() if len(self.records) else []

    def _sample(self, idx: int, image: np.ndarray, out: Optional[np.ndarray] = None):
        """The crop (written into ``out`` when given), input-pixel keypoints, visibility,
        centre and scale of record ``idx`` on its decoded ``image``."""
        rec = self.records[idx]
        center, scale = bbox_xywh_to_center_scale(rec["bbox"], self.aspect_ratio, self.padding)
        kp, vis = rec["keypoints"], rec["visibility"]
        rot = 0.0
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, idx])
            image, kp, vis, center, scale, rot = self.augment(
                rng, image, kp, vis, center, scale, self.kset, self.aspect_ratio)
        mat = crop_matrix(center, scale, rot, self.input_size, udp=self.udp)
        W, H = self.input_size
        if out is None:
            img = cv2.warpAffine(image, mat, (W, H), flags=cv2.INTER_LINEAR)
        else:
            img = cv2.warpAffine(image, mat, (W, H), dst=out, flags=cv2.INTER_LINEAR)
        kp_in = affine_points(kp, mat)
        inside = (kp_in[:, 0] >= 0) & (kp_in[:, 0] < W) & (kp_in[:, 1] >= 0) & (kp_in[:, 1] < H)
        vis_t = np.where(inside, vis, 0).astype(np.float32)
        return img, kp_in, vis_t, center, scale

    def __getitem__(self, idx: int) -> Dict:
        rec = self.records[idx]
        img, kp_in, vis_t, center, scale = self._sample(idx, self.image_loader(rec["image_id"]))
        item = {"image": torch.from_numpy(np.ascontiguousarray(img)),
                "keypoints": torch.from_numpy(kp_in.astype(np.float32)),
                "visibility": torch.from_numpy(vis_t),
                "center": torch.from_numpy(np.asarray(center, np.float32)),
                "scale": torch.from_numpy(np.asarray(scale, np.float32)),
                "image_id": int(rec["image_id"]), "score": float(rec.get("score", 1.0)),
                "area": float(rec.get("area", 0.0)), "index": idx}
        return item

    def __getitems__(self, indices: Sequence[int]) -> "TopDownBatch":
        """A whole batch at once (what ``DataLoader`` asks a dataset for when it can): each
        image is decoded once for all of its instances in the batch (one decoded image held
        at a time), crops are warped straight into one ``(B, H, W, 3)`` array and the items
        are views of the batch arrays. The items equal ``[self[i] for i in indices]``;
        :func:`collate_topdown` returns the already stacked batch."""
        indices = [int(i) for i in indices]
        B, K = len(indices), self.kset.num_keypoints
        W, H = self.input_size
        images = np.empty((B, H, W, 3), np.uint8)
        kps = np.zeros((B, K, 2), np.float32)
        vis = np.zeros((B, K), np.float32)
        centers = np.zeros((B, 2), np.float32)
        scales = np.zeros((B, 2), np.float32)
        recs = [self.records[i] for i in indices]
        order = sorted(range(B), key=lambda j: recs[j]["image_id"])
        current, image = None, None
        for j in order:
            image_id = recs[j]["image_id"]
            if image is None or image_id != current:
                image, current = self.image_loader(image_id), image_id
            img, kps[j], vis[j], centers[j], scales[j] = self._sample(indices[j], image, images[j])
            if img is not images[j] and not np.shares_memory(img, images[j]):
                images[j] = img
        image = None
        batch = {"image": torch.from_numpy(images), "keypoints": torch.from_numpy(kps),
                 "visibility": torch.from_numpy(vis), "center": torch.from_numpy(centers),
                 "scale": torch.from_numpy(scales),
                 "image_id": torch.tensor([int(r["image_id"]) for r in recs], dtype=torch.int64),
                 "score": torch.tensor([float(r.get("score", 1.0)) for r in recs],
                                       dtype=torch.float32),
                 "area": torch.tensor([float(r.get("area", 0.0)) for r in recs],
                                      dtype=torch.float32),
                 "index": torch.tensor(indices, dtype=torch.int64)}
        return TopDownBatch(batch)


class TopDownBatch(list):
    """The items of a batch fetched at once by :meth:`TopDownDataset.__getitems__` (a list of
    item dicts whose tensors are views of ``collated``, the stacked batch)."""

    def __init__(self, collated: Dict):
        B = len(collated["index"])
        super().__init__({"image": collated["image"][j], "keypoints": collated["keypoints"][j],
                          "visibility": collated["visibility"][j],
                          "center": collated["center"][j], "scale": collated["scale"][j],
                          "image_id": int(collated["image_id"][j]),
                          "score": float(collated["score"][j]),
                          "area": float(collated["area"][j]), "index": int(collated["index"][j])}
                         for j in range(B))
        self.collated = collated


class ImageGroupedSampler(torch.utils.data.Sampler):
    """Shuffles the images and yields the records of each image one after the other (in a
    shuffled order too), so that a batch holds whole images and
    :meth:`TopDownDataset.__getitems__` decodes each image once for all of its people (COCO
    has 2.6 people per annotated image). ``set_epoch`` reshuffles; ``shuffle=False`` keeps
    the record order grouped by first appearance."""

    def __init__(self, records: Sequence[Dict], shuffle: bool = True, seed: int = 0):
        groups: Dict[int, List[int]] = {}
        ids = (records.column("image_id").tolist() if isinstance(records, RecordTable) and
               len(records) else [r["image_id"] for r in records])
        for i, image_id in enumerate(ids):
            groups.setdefault(image_id, []).append(i)
        self.groups = list(groups.values())
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), 0
        self.num = len(records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        return self.num

    def __iter__(self):
        if not self.shuffle:
            for g in self.groups:
                yield from g
            return
        rng = np.random.default_rng([self.seed, self.epoch, 7919])
        for gi in rng.permutation(len(self.groups)):
            g = self.groups[gi]
            for k in (rng.permutation(len(g)) if len(g) > 1 else range(1)):
                yield g[k]


def collate_topdown(batch) -> Dict:
    """Stack the items of :class:`TopDownDataset` (tensors stacked, numbers as tensors); a
    batch fetched by :meth:`TopDownDataset.__getitems__` is already stacked."""
    collated = getattr(batch, "collated", None)
    if collated is not None:
        return collated
    out = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else torch.tensor(vals)
    return out


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` BGR -> float ``(B, 3, H, W)`` RGB normalised with ImageNet stats."""
    B, H, W, _ = images.shape
    out = torch.empty((B, 3, H, W), dtype=torch.float32, device=images.device)
    src = images.permute(0, 3, 1, 2)
    # One pass per channel straight into the output (RGB channel c is BGR channel 2 - c):
    # float32 (x - mean) / std as a broadcast over a flipped, permuted copy computes it, 4x
    # faster on the CPU, where every training step runs it.
    for c in range(3):
        torch.sub(src[:, 2 - c], IMAGENET_MEAN_RGB[c], out=out[:, c]).div_(IMAGENET_STD_RGB[c])
    return out


def to_image_space(coords: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, input_size,
                   udp: bool = False) -> torch.Tensor:
    """Input-pixel ``(B, K, 2)`` keypoints back to the image: the inverse of the unrotated crop.

    Plain crop (mmpose 1.x): ``coords / input_size * scale + center - 0.5 * scale``, in
    float64 and returned in the coords' dtype (mmpose's bits). UDP crop
    (``udp=True``, the inverse of :func:`get_udp_warp_matrix`, as mmpose 0.x
    ``transform_preds(use_udp=True)``): ``coords / (input_size - 1) * scale + center - 0.5 *
    scale``. ``center``/``scale`` are ``(B, 2)``.
    """
    # float64 steps rounded to the coords' dtype, as mmpose 1.x computes it (numpy promotes
    # the division by the integer input size) and as pyhpe.ops.topdown_rescore does
    wide = torch.float64 if coords.device.type != "mps" else torch.float32
    size = torch.as_tensor(input_size, dtype=wide, device=coords.device)
    if udp:
        size = size - 1
    scale = scale.to(wide)
    center = center.to(wide)
    out = coords.to(wide) / size * scale[:, None, :] + center[:, None, :] - 0.5 * scale[:, None, :]
    return out.to(coords.dtype)
