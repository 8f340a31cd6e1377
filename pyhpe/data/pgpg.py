"""RMPE's pose-guided proposals generator (PGPG, Fang et al. 2017, Sec. 3.3).

Training boxes are augmented with the offsets a real detector makes: the (detected box vs GT
box) offsets are collected from the training data, grouped by the *atomic pose* of the
person (k-means over normalised poses), and during training each annotated person's box is
moved by an offset drawn from the distribution of its atomic pose, ``P(dB | atom(P))``.

Poses are normalised by their GT box (the crop's centre and scale); an offset is
``((c_det - c_gt) / s_gt, log(s_det / s_gt))`` in the same centre / scale terms the top-down
crop uses, and each atomic pose keeps a diagonal Gaussian of its offsets.

Use: ``PGPGAugment.fit(gt, detections, aspect_ratio)`` (COCO dicts; the detections of the
training images, e.g. :func:`pyhpe.tasks.topdown.simulate_detections` or a detector's file),
then pass it as the top-down ``augment`` (it is a :class:`TopDownAugment`; the other
augmentations follow the generated box). From a config: the top-down task's ``augment.pgpg``
section (:data:`PGPG_OPTIONS`, :func:`pgpg_from_options`), e.g.
``"augment": {"rot_factor": 20, "pgpg": {"num_atoms": 42, "detections": "dets.json"}}``.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from .transforms import TopDownAugment, bbox_xywh_to_center_scale


def normalise_pose(keypoints, visibility, center, scale) -> np.ndarray:
    """``(K, 2)`` pose relative to its box: ``(kp - center) / scale_h``; invisible joints NaN."""
    p = (np.asarray(keypoints, np.float64)[:, :2] - np.asarray(center, np.float64)) / float(scale[1])
    p[np.asarray(visibility) <= 0] = np.nan
    return p.reshape(-1)


def _masked_dist(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Mean squared distance over the joints both have: ``(N, D), (C, D) -> (N, C)``."""
    m = ~np.isnan(x)
    d = np.where(m[:, None], (np.nan_to_num(x)[:, None] - centres[None]) ** 2, 0.0).sum(-1)
    return d / np.maximum(m.sum(-1, keepdims=True), 1)


def kmeans_poses(poses: np.ndarray, k: int, iters: int = 30, seed: int = 0) -> np.ndarray:
    """k-means of normalised poses (NaN = invisible joint, ignored): ``(k, D)`` atomic poses."""
    rng = np.random.default_rng(seed)
    k = min(int(k), len(poses))
    filled = np.where(np.isnan(poses), np.nanmean(poses, 0, keepdims=True), poses)
    filled = np.nan_to_num(filled)
    centres = filled[rng.choice(len(poses), k, replace=False)].copy()
    for _ in range(iters):
        label = _masked_dist(poses, centres).argmin(1)
        for c in range(k):
            members = poses[label == c]
            if len(members):
                mean = np.nanmean(np.where(np.isnan(members).all(0, keepdims=True), 0, members), 0)
                centres[c] = np.nan_to_num(mean)
    return centres


def _iou(a, b) -> float:
    ax, ay, aw, ah = a[:4]
    bx, by, bw, bh = b[:4]
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / max(aw * ah + bw * bh - inter, 1e-9)


class PGPGAugment(TopDownAugment):
    """:class:`TopDownAugment` whose box first moves by a PGPG offset (with probability
    ``pgpg_prob``): the atomic pose nearest to the person's normalised pose, then
    ``N(mean, std)`` of that atom's (detected vs GT) offsets. ``atoms (C, 2K)``, ``offset_mean``
    / ``offset_std (C, 4)``: from :meth:`fit`. Other keyword arguments: TopDownAugment's."""

    def __init__(self, atoms, offset_mean, offset_std, pgpg_prob: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.atoms = np.asarray(atoms, np.float64)
        self.offset_mean = np.asarray(offset_mean, np.float64)
        self.offset_std = np.asarray(offset_std, np.float64)
        if not (len(self.atoms) == len(self.offset_mean) == len(self.offset_std)):
            raise ValueError("PGPGAugment: atoms, offset_mean and offset_std need one row per atom")
        if not 0.0 <= float(pgpg_prob) <= 1.0:
            raise ValueError(f"PGPGAugment: pgpg_prob must be in [0, 1], got {pgpg_prob}")
        self.pgpg_prob = float(pgpg_prob)

    @classmethod
    def fit(cls, gt: Dict, detections: List[Dict], aspect_ratio: float, num_atoms: int = 42,
            padding: float = 1.25, min_iou: float = 0.5, min_std: float = 0.01, seed: int = 0,
            **kwargs) -> "PGPGAugment":
        """Learn the atomic poses (``num_atoms``, the paper's 42) and their offset
        distributions from COCO ground truth and the detections of the same images (each GT
        person is paired with its highest-IoU detection, IoU >= ``min_iou``)."""
        by_image: Dict[int, List[Dict]] = {}
        for d in detections:
            by_image.setdefault(d["image_id"], []).append(d)
        poses, offsets = [], []
        for a in gt["annotations"]:
            if a.get("iscrowd", 0) or a.get("num_keypoints", 1) == 0:
                continue
            dets = by_image.get(a["image_id"], [])
            if not dets:
                continue
            best = max(dets, key=lambda d: _iou(a["bbox"], d["bbox"]))
            if _iou(a["bbox"], best["bbox"]) < min_iou:
                continue
            kps = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
            if (kps[:, 2] > 0).sum() == 0:
                continue
            cg, sg = bbox_xywh_to_center_scale(a["bbox"], aspect_ratio, padding)
            cd, sd = bbox_xywh_to_center_scale(best["bbox"], aspect_ratio, padding)
            poses.append(normalise_pose(kps[:, :2], kps[:, 2], cg, sg))
            offsets.append(np.concatenate([(cd - cg) / sg, np.log(sd / sg)]))
        if not poses:
            raise ValueError("PGPGAugment.fit: no GT person matched a detection")
        poses, offsets = np.stack(poses), np.stack(offsets)
        atoms = kmeans_poses(poses, num_atoms, seed=seed)
        label = _masked_dist(poses, atoms).argmin(1)
        all_mean, all_std = offsets.mean(0), offsets.std(0)
        mean, std = np.tile(all_mean, (len(atoms), 1)), np.tile(all_std, (len(atoms), 1))
        for c in range(len(atoms)):
            o = offsets[label == c]
            if len(o) >= 2:
                mean[c], std[c] = o.mean(0), o.std(0)
            elif len(o) == 1:
                mean[c] = o[0]
        return cls(atoms, mean, np.maximum(std, min_std), **kwargs)

    def atom_of(self, keypoints, visibility, center, scale) -> int:
        p = normalise_pose(keypoints, visibility, center, scale)
        return int(_masked_dist(p[None], self.atoms)[0].argmin())

    def propose(self, rng, keypoints, visibility, center, scale):
        """One pose-guided proposal: the moved ``(center, scale)``."""
        a = self.atom_of(keypoints, visibility, center, scale)
        off = rng.normal(self.offset_mean[a], self.offset_std[a])
        scale = np.asarray(scale, np.float32)
        center = (np.asarray(center, np.float32) + off[:2].astype(np.float32) * scale)
        return center.astype(np.float32), (scale * np.exp(off[2:])).astype(np.float32)

    def __call__(self, rng, image, keypoints, visibility, center, scale, kset, aspect_ratio):
        if self.pgpg_prob > 0 and (np.asarray(visibility) > 0).any() and rng.random() < self.pgpg_prob:
            center, scale = self.propose(rng, keypoints, visibility, center, scale)
        return super().__call__(rng, image, keypoints, visibility, center, scale, kset, aspect_ratio)


#: the keys of a top-down config's ``augment.pgpg`` section and their defaults
PGPG_OPTIONS = {
    "detections": None,   # a COCO bbox results json of the training images; None: simulated
    "num_atoms": 42,      # atomic poses (the paper's 42)
    "pgpg_prob": 1.0,     # share of the training crops that take a pose-guided proposal
    "min_iou": 0.5,       # a GT person's detection must overlap it this much
    "padding": 1.25,      # box -> crop padding, as the top-down crops
    "min_std": 0.01,
    "jitter": 0.08,       # simulated detections: box jitter (fractions of the box)
    "seed": 0,            # k-means initialisation and simulated detections
}


def check_pgpg_options(spec) -> Dict:
    """``augment.pgpg`` with the defaults filled in; unknown keys or bad values raise a
    ValueError naming them."""
    if spec is True:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError(f"pgpg: a dict of options {sorted(PGPG_OPTIONS)} (or true), got {spec!r}")
    unknown = sorted(set(spec) - set(PGPG_OPTIONS))
    if unknown:
        raise ValueError(f"pgpg: unknown key(s) {unknown}; known: {sorted(PGPG_OPTIONS)}")
    opts = dict(PGPG_OPTIONS, **spec)
    if int(opts["num_atoms"]) < 1:
        raise ValueError(f"pgpg: num_atoms must be >= 1, got {opts['num_atoms']}")
    if not 0.0 <= float(opts["pgpg_prob"]) <= 1.0:
        raise ValueError(f"pgpg: pgpg_prob must be in [0, 1], got {opts['pgpg_prob']}")
    return opts


def pgpg_from_options(spec, gt: Dict, aspect_ratio: float, **augment_kwargs) -> PGPGAugment:
    """The :class:`PGPGAugment` of a top-down config's ``augment.pgpg`` section, fitted on the
    training set's COCO dict ``gt``: its atomic poses and the offsets of ``detections`` (a
    detector's COCO bbox results file for the training images) from the GT boxes; without a
    file, detections simulated from the GT boxes (:func:`pyhpe.tasks.topdown.simulate_detections`
    with ``jitter``, no duplicates or false positives). ``augment_kwargs``: the rest of the
    ``augment`` section (:class:`TopDownAugment`'s arguments)."""
    from ..tasks.topdown import load_detections, simulate_detections
    opts = check_pgpg_options(spec)
    if opts["detections"]:
        dets = load_detections(opts["detections"], 1, 0.0, [im["id"] for im in gt["images"]])
    else:
        dets = simulate_detections(gt, seed=int(opts["seed"]), jitter=float(opts["jitter"]),
                                   duplicate_prob=0.0, false_positives=0.0)
    return PGPGAugment.fit(gt, dets, aspect_ratio, num_atoms=int(opts["num_atoms"]),
                           padding=float(opts["padding"]), min_iou=float(opts["min_iou"]),
                           min_std=float(opts["min_std"]), seed=int(opts["seed"]),
                           pgpg_prob=float(opts["pgpg_prob"]), **augment_kwargs)
