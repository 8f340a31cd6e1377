"""Codecs of the image-based 3-D methods: crops of one person -> camera-frame 3-D joints.

Shared conventions: ``keypoints`` are the joints' ``(x, y)`` in input (crop) pixels,
``keypoints_3d`` their camera-frame positions in millimetres ``(B, K, 3)``, ``camera`` the
pinhole intrinsics ``(B, 4)`` = ``(fx, fy, cx, cy)`` in image pixels, and ``root_index`` the
joint whose depth the root-relative targets are measured from.

* :class:`MPPE3DCodec` (``"mppe3d"``, Moon et al. ICCV 2019): PoseNet's volume coordinates
  ``(x, y, z)`` in voxels -- ``x = u * W_v / W_in``, ``y = v * H_v / H_in`` (the official
  ``joint_img / input_shape * output_shape``) and ``z = ((Z - Z_root) / (depth_range / 2) + 1)
  / 2 * D`` (the official ``bbox_3d_shape`` 2000 mm cube) -- and RootNet's root target (map
  pixels and depth in mm) with its ``k`` value ``sqrt(ax * ay * fx * fy / A_img)``
  (``bbox_real`` = (ax, ay) mm, ``A_img`` the crop's area in image pixels).
  :func:`back_project` is the official ``pixel2cam``.
* :class:`VNectCodec` (``"vnect"``, Mehta et al. SIGGRAPH 2017): 2-D heatmaps (MSRA Gaussians)
  and per-joint root-relative locations (``location_unit`` mm per unit, metres by default)
  that the X / Y / Z location maps must hold around each joint's heatmap peak; decoding reads
  the location maps at the heatmap maxima.
* :class:`DconvMPCodec` (``"dconvmp"``, Li & Chan ACCV 2014): the regression target, each
  joint's root-relative position in units of ``unit`` mm, and the detection target, the cell
  of a ``grid x grid`` partition of the input that holds the joint (a ``grid^2``-way
  classification per joint); decoding gives root-relative mm and the detected cells' centres.
* :class:`ORPMCodec` (``"orpm"``, Mehta et al. 3DV 2018): multi-person 2-D heatmaps and PAFs
  (:class:`PAFCodec`) and occlusion-robust pose maps: per joint X / Y / Z maps holding each
  person's root-relative joints redundantly -- the whole pose around the torso joint and the
  pelvis, each limb's joints from a joint on to the limb's end around that joint (nearer
  persons overwrite farther ones); decoding groups the 2-D joints by PAFs and reads each
  joint at the most distal valid joint of its limb chain before it, else at the torso
  (:func:`orpm_read_sources`).
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Sequence, Tuple

import torch
from torch import Tensor

from .base import Codec, as_size, keypoints_and_visibility
from .heatmap import MSRAHeatmap


def _whd(value, name: str, who: str) -> Tuple[int, int, int]:
    try:
        w, h, d = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: '{name}' must be (W, H, D) ints, got {value!r}") from None
    if min(w, h, d) <= 0:
        raise ValueError(f"{who}: '{name}' must be positive, got {(w, h, d)}")
    return w, h, d


def _points_3d(points, shape, who: str, name: str = "keypoints_3d") -> Tensor:
    t = torch.as_tensor(points)
    if t.shape != shape:
        raise ValueError(f"{who}: '{name}' must have shape {tuple(shape)}, got {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    return t


def _camera(camera, batch: int, device, who: str) -> Tensor:
    cam = torch.as_tensor(camera, device=device)
    if cam.shape != (batch, 4):
        raise ValueError(f"{who}: 'camera' must be (B, 4) = (fx, fy, cx, cy), got "
                         f"{tuple(cam.shape)}")
    return cam.to(torch.float64)


def back_project(keypoints: Tensor, depth: Tensor, camera: Tensor) -> Tensor:
    """Image pixels ``(B, K, 2)`` and depths ``(B, K)`` (mm) -> camera-frame points
    ``(B, K, 3)`` mm through the pinhole ``camera (B, 4) = (fx, fy, cx, cy)``:
    ``X = (u - cx) / fx * Z``, ``Y = (v - cy) / fy * Z`` (the official ``pixel2cam``)."""
    kp = torch.as_tensor(keypoints)
    z = torch.as_tensor(depth, device=kp.device).to(kp.dtype)
    cam = torch.as_tensor(camera, device=kp.device).to(kp.dtype)
    if kp.dim() != 3 or kp.shape[-1] != 2 or z.shape != kp.shape[:-1] or cam.shape != (kp.shape[0], 4):
        raise ValueError(f"back_project: keypoints (B, K, 2), depth (B, K), camera (B, 4); got "
                         f"{tuple(kp.shape)}, {tuple(z.shape)}, {tuple(cam.shape)}")
    f, c = cam[:, None, :2], cam[:, None, 2:]
    return torch.cat([(kp - c) / f * z[..., None], z[..., None]], -1)


def project(points: Tensor, camera: Tensor) -> Tensor:
    """Camera-frame points ``(B, K, 3)`` -> pinhole image pixels ``(B, K, 2)``."""
    cam = camera.to(points.dtype)
    return points[..., :2] / points[..., 2:3] * cam[:, None, :2] + cam[:, None, 2:]


def k_value(camera: Tensor, area: Tensor, bbox_real=(2000.0, 2000.0)) -> Tensor:
    """RootNet's ``k = sqrt(ax * ay * fx * fy / A_img)`` ``(B,)`` mm: the depth at which a
    person of real extent ``bbox_real = (ax, ay)`` mm fills a box of area ``A_img`` pixels."""
    cam = torch.as_tensor(camera).to(torch.float64)
    area = torch.as_tensor(area, device=cam.device).to(torch.float64)
    return torch.sqrt(float(bbox_real[0]) * float(bbox_real[1]) * cam[:, 0] * cam[:, 1]
                      / area.clamp_min(1e-12)).to(torch.float32)


class MPPE3DCodec(Codec):
    """3DMPPE targets (see the module docstring). ``input_size (W, H)``, ``volume_size (W, H,
    D)`` (official: 64 x 64 x 64 at 256 x 256), ``depth_range`` the side of the depth cube
    around the root (mm), ``bbox_real`` RootNet's person extent (mm), ``root_index``."""

    name = "mppe3d"

    def __init__(self, input_size=(256, 256), volume_size=(64, 64, 64), depth_range: float = 2000.0,
                 bbox_real=(2000.0, 2000.0), root_index: int = 0):
        who = type(self).__name__
        self.input_size = as_size(input_size, "input_size", who)
        self.volume_size = _whd(volume_size, "volume_size", who)
        if not float(depth_range) > 0:
            raise ValueError(f"{who}: 'depth_range' must be positive, got {depth_range}")
        self.depth_range = float(depth_range)
        self.bbox_real = tuple(float(v) for v in bbox_real)
        if len(self.bbox_real) != 2 or min(self.bbox_real) <= 0:
            raise ValueError(f"{who}: 'bbox_real' must be two positive sizes (mm), got {bbox_real!r}")
        self.root_index = int(root_index)

    def _map_scale(self, device) -> Tensor:
        return torch.tensor([self.volume_size[0] / self.input_size[0],
                             self.volume_size[1] / self.input_size[1]], device=device)

    def encode(self, keypoints, visibility=None, *, keypoints_3d=None, camera=None, area=None,
               **meta) -> Dict[str, Tensor]:
        """Input-pixel keypoints ``(B, K, 2)``, camera-frame ``keypoints_3d (B, K, 3)`` mm ->
        ``coords (B, K, 3)`` voxels, ``keypoint_weights (B, K)`` (visible, inside the input
        and the depth range: the official ``joint_vis``), ``root_coords (B, 3)`` (map pixels
        and the root depth in mm), ``root_weight (B,)``; with ``camera`` and ``area`` (the
        crop's area in image pixels) also RootNet's ``k_value (B,)``."""
        who = "MPPE3DCodec.encode"
        kp, vis = keypoints_and_visibility(keypoints, visibility, who, dims=(3,))
        if keypoints_3d is None:
            raise ValueError(f"{who}: needs 'keypoints_3d' (B, K, 3) camera-frame mm")
        X = _points_3d(keypoints_3d, kp.shape[:-1] + (3,), who).to(kp.device, torch.float32)
        W, H, D = self.volume_size
        r = self.root_index
        xy = kp * self._map_scale(kp.device)
        dz = X[..., 2] - X[:, r:r + 1, 2]
        z = (dz / (self.depth_range / 2) + 1) / 2 * D
        coords = torch.cat([xy, z[..., None]], -1)
        Win, Hin = self.input_size
        inside = ((kp[..., 0] >= 0) & (kp[..., 0] < Win) & (kp[..., 1] >= 0) & (kp[..., 1] < Hin)
                  & (z >= 0) & (z < D))
        weights = vis * inside.float()
        out = {"coords": coords, "keypoint_weights": weights,
               "root_coords": torch.cat([xy[:, r], X[:, r, 2:3]], -1),
               "root_weight": weights[:, r].clone()}
        if camera is not None and area is not None:
            out["k_value"] = k_value(camera, area, self.bbox_real).to(kp.device)
        return out

    def decode(self, coords: Tensor, **meta) -> Tuple[Tensor, Tensor]:
        """``coords (B, K, 3)`` voxels -> input-pixel keypoints ``(B, K, 2)`` and depths
        relative to the root ``(B, K)`` mm (the official ``(z / D * 2 - 1) * range / 2``)."""
        if not isinstance(coords, Tensor) or coords.dim() != 3 or coords.shape[-1] != 3:
            raise ValueError(f"MPPE3DCodec.decode: 'coords' must be (B, K, 3), got "
                             f"{getattr(coords, 'shape', type(coords))}")
        xy = coords[..., :2] / self._map_scale(coords.device)
        dz = (coords[..., 2] / self.volume_size[2] * 2 - 1) * (self.depth_range / 2)
        return xy, dz

    def decode_root(self, root: Tensor) -> Tuple[Tensor, Tensor]:
        """RootNet's ``(B, 3)`` -> the root's input pixels ``(B, 2)`` and depth ``(B,)`` mm."""
        return root[:, :2] / self._map_scale(root.device), root[:, 2]

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "volume_size": list(self.volume_size), "depth_range": self.depth_range,
                "bbox_real": list(self.bbox_real), "root_index": self.root_index}


class VNectPrediction(NamedTuple):
    keypoints: Tensor      # (B, K, 2) input pixels
    scores: Tensor         # (B, K) heatmap maxima
    keypoints_3d: Tensor   # (B, K, 3) root-relative mm, read from the location maps


def read_location_maps(heatmaps: Tensor, location_maps: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """VNect's read-out: each joint's ``(x, y, z)`` from its X / Y / Z location maps
    ``(B, K, 3, H, W)`` at the maximum of its heatmap ``(B, K, H, W)`` (integer pixel).
    Returns (heatmap-pixel peaks ``(B, K, 2)``, scores ``(B, K)``, locations ``(B, K, 3)``)."""
    B, K, H, W = heatmaps.shape
    if location_maps.shape != (B, K, 3, H, W):
        raise ValueError(f"read_location_maps: 'location_maps' must be {(B, K, 3, H, W)}, got "
                         f"{tuple(location_maps.shape)}")
    scores, idx = heatmaps.reshape(B, K, H * W).max(-1)
    loc = location_maps.reshape(B, K, 3, H * W).gather(
        -1, idx[:, :, None, None].expand(B, K, 3, 1))[..., 0]
    peaks = torch.stack([idx % W, idx // W], -1).to(heatmaps.dtype)
    return peaks, scores, loc


class VNectCodec(Codec):
    """VNect targets: ``heatmaps`` (:class:`MSRAHeatmap` at ``heatmap_size``, ``sigma``) and
    ``locations (B, K, 3)``: root-relative joints in units of ``location_unit`` mm (1000:
    metres); the model's X / Y / Z maps are supervised with these, weighted by the ground-truth
    heatmaps (the paper's loss)."""

    name = "vnect"

    def __init__(self, input_size=(368, 368), heatmap_size=(46, 46), sigma: float = 2.0,
                 root_index: int = 0, location_unit: float = 1000.0):
        self.heatmap = MSRAHeatmap(input_size, heatmap_size, sigma, "argmax")
        self.input_size, self.heatmap_size = self.heatmap.input_size, self.heatmap.heatmap_size
        self.sigma = float(sigma)
        self.root_index = int(root_index)
        if not float(location_unit) > 0:
            raise ValueError(f"VNectCodec: 'location_unit' must be positive, got {location_unit}")
        self.location_unit = float(location_unit)

    def encode(self, keypoints, visibility=None, *, keypoints_3d=None, **meta) -> Dict[str, Tensor]:
        """``heatmaps (B, K, h, w)``, ``locations (B, K, 3)`` and ``keypoint_weights (B, K)``."""
        who = "VNectCodec.encode"
        kp, vis = keypoints_and_visibility(keypoints, visibility, who, dims=(3,))
        if keypoints_3d is None:
            raise ValueError(f"{who}: needs 'keypoints_3d' (B, K, 3) camera-frame mm")
        X = _points_3d(keypoints_3d, kp.shape[:-1] + (3,), who).to(kp.device, torch.float32)
        out = self.heatmap.encode(kp, vis)
        r = self.root_index
        out["locations"] = (X - X[:, r:r + 1]) / self.location_unit
        return out

    def decode(self, outputs, **meta) -> VNectPrediction:
        """``(heatmaps (B, K, h, w), location_maps (B, K, 3, h, w))`` -> input-pixel keypoints,
        scores and root-relative 3-D joints (mm) read at the heatmap maxima."""
        heatmaps, locmaps = outputs
        peaks, scores, loc = read_location_maps(heatmaps.detach().float(), locmaps.detach().float())
        scale = torch.tensor([self.input_size[0] / self.heatmap_size[0],
                              self.input_size[1] / self.heatmap_size[1]], device=peaks.device)
        loc = loc * self.location_unit
        loc = loc - loc[:, self.root_index:self.root_index + 1]
        return VNectPrediction(peaks * scale, scores, loc)

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "sigma": self.sigma,
                "root_index": self.root_index, "location_unit": self.location_unit}


class DconvMPCodec(Codec):
    """DconvMP targets (see the module docstring): ``pose_3d (B, K, 3)`` root-relative in
    ``unit`` mm, ``cells (B, K)`` the joint's grid cell (row-major; -1 outside the input) and
    ``keypoint_weights (B, K)``."""

    name = "dconvmp"

    def __init__(self, input_size=(112, 112), grid: int = 8, root_index: int = 0,
                 unit: float = 1000.0):
        self.input_size = as_size(input_size, "input_size", "DconvMPCodec")
        if int(grid) < 1:
            raise ValueError(f"DconvMPCodec: 'grid' must be >= 1, got {grid}")
        if not float(unit) > 0:
            raise ValueError(f"DconvMPCodec: 'unit' must be positive, got {unit}")
        self.grid, self.root_index, self.unit = int(grid), int(root_index), float(unit)

    def encode(self, keypoints, visibility=None, *, keypoints_3d=None, **meta) -> Dict[str, Tensor]:
        who = "DconvMPCodec.encode"
        kp, vis = keypoints_and_visibility(keypoints, visibility, who, dims=(3,))
        if keypoints_3d is None:
            raise ValueError(f"{who}: needs 'keypoints_3d' (B, K, 3) camera-frame mm")
        X = _points_3d(keypoints_3d, kp.shape[:-1] + (3,), who).to(kp.device, torch.float32)
        W, H = self.input_size
        G = self.grid
        inside = (kp[..., 0] >= 0) & (kp[..., 0] < W) & (kp[..., 1] >= 0) & (kp[..., 1] < H)
        cx = (kp[..., 0] * G / W).floor().clamp(0, G - 1).long()
        cy = (kp[..., 1] * G / H).floor().clamp(0, G - 1).long()
        cells = torch.where(inside, cy * G + cx, torch.full_like(cx, -1))
        r = self.root_index
        return {"pose_3d": (X - X[:, r:r + 1]) / self.unit, "cells": cells,
                "keypoint_weights": vis, "detection_weights": vis * inside.float()}

    def decode(self, outputs, **meta) -> Tuple[Tensor, Tensor, Tensor]:
        """``(pose (B, K, 3), cell logits (B, K, grid^2))`` -> (the detected cells' centres
        ``(B, K, 2)`` input pixels, their probabilities ``(B, K)``, root-relative joints
        ``(B, K, 3)`` mm)."""
        pose, logits = outputs
        prob, cell = logits.detach().float().softmax(-1).max(-1)
        G = self.grid
        W, H = self.input_size
        xy = torch.stack([(cell % G).float() + 0.5, (cell // G).float() + 0.5], -1)
        xy = xy * torch.tensor([W / G, H / G], device=xy.device)
        P = pose.detach().float() * self.unit
        return xy, prob, P - P[:, self.root_index:self.root_index + 1]

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size), "grid": self.grid,
                "root_index": self.root_index, "unit": self.unit}


def orpm_chains(parents: Sequence[int], torso: int, root: int) -> List[List[int]]:
    """ORPM's limb chains of a kinematic tree: from each child of the ``torso`` joint or the
    ``root`` (off the root -> torso path), the path down while joints have one child; chains
    of at least three joints (arms, legs; the head is read at the torso)."""
    parents = [int(p) for p in parents]
    children = {j: [c for c, p in enumerate(parents) if p == j] for j in range(len(parents))}
    spine, j = set(), int(torso)
    while j >= 0:
        spine.add(j)
        j = parents[j]
    chains = []
    for base in (int(torso), int(root)):
        for c in children[base]:
            if c in spine:
                continue
            chain = [c]
            while len(children[chain[-1]]) == 1:
                chain.append(children[chain[-1]][0])
            if len(chain) >= 3:
                chains.append(chain)
    return chains


def orpm_read_sources(scores: Tensor, chains: Sequence[Sequence[int]], torso: int, root: int,
                      threshold: float) -> Tensor:
    """ORPM's read-out rules: for each person ``(P, K)`` scores -> ``(P, K)`` the joint at
    whose 2-D position each joint's 3-D location is read. Default: the torso joint, or the
    root where the torso is not valid (score <= ``threshold``); along each limb chain ``[a,
    b, c]`` a valid joint becomes the read-out joint of itself and the joints after it (the
    most distal valid one wins), so occluded extremities are read higher up the limb."""
    P, K = scores.shape
    valid = scores > threshold
    base = torch.where(valid[:, int(torso)], torch.full((P,), int(torso)), torch.full((P,), int(root)))
    src = base[:, None].expand(P, K).clone()
    for chain in chains:
        for i, j in enumerate(chain):
            for k in chain[i:]:
                src[:, k] = torch.where(valid[:, j], torch.full((P,), j), src[:, k])
    return src


class ORPMPrediction(NamedTuple):
    keypoints: List[Tensor]      # per image (P, K, 2) input pixels
    scores: List[Tensor]         # per image (P, K)
    keypoints_3d: List[Tensor]   # per image (P, K, 3) root-relative mm
    person_scores: List[Tensor]  # per image (P,)


class ORPMCodec(Codec):
    """ORPM targets (see the module docstring): the :class:`PAFCodec`'s ``heatmaps`` /
    ``pafs`` for ``limbs`` and ``orpm (B, K, 3, h, w)`` with ``orpm_mask (B, K, h, w)`` (the
    pixels written) from root-relative joints in ``location_unit`` mm, written in discs of
    ``radius`` map pixels; ``parents``, ``torso`` and ``root_index`` define the limb chains
    (:func:`orpm_chains`); ``read_threshold`` is the read-out's validity score."""

    name = "orpm"

    def __init__(self, input_size=(368, 368), heatmap_size=(46, 46), parents=(), torso: int = 8,
                 root_index: int = 0, limbs=None, sigma: float = 1.5, limb_width: float = 1.0,
                 radius: float = 1.5, location_unit: float = 1000.0, read_threshold: float = 0.2,
                 threshold: float = 0.1, min_parts: int = 3, min_mean_score: float = 0.2):
        from .paf import PAFCodec
        self.parents = [int(p) for p in parents]
        K = len(self.parents)
        if K == 0 or self.parents.count(-1) != 1:
            raise ValueError("ORPMCodec: 'parents' must be a kinematic tree with one root (-1)")
        if limbs is None:
            limbs = [(p, j) for j, p in enumerate(self.parents) if p >= 0]
        self.paf = PAFCodec(input_size, heatmap_size, limbs, sigma, limb_width, "msra", False,
                            None, threshold, min_parts, min_mean_score, 20)
        self.input_size, self.heatmap_size = self.paf.input_size, self.paf.heatmap_size
        self.torso, self.root_index = int(torso), int(root_index)
        if not (0 <= self.torso < K and 0 <= self.root_index < K):
            raise ValueError(f"ORPMCodec: 'torso' and 'root_index' must be joints 0..{K - 1}")
        self.chains = orpm_chains(self.parents, self.torso, self.root_index)
        self.radius, self.location_unit = float(radius), float(location_unit)
        self.read_threshold = float(read_threshold)

    @property
    def num_keypoints(self) -> int:
        return len(self.parents)

    def _stride(self, device) -> Tensor:
        return torch.tensor(self.paf.stride, dtype=torch.float32, device=device)

    def encode(self, keypoints, visibility=None, *, keypoints_3d=None, **meta) -> Dict[str, Tensor]:
        """``(B, N, K, 2)`` (or ``(B, K, 2)``) input-pixel keypoints and ``keypoints_3d`` of the
        same leading shape (camera-frame mm) -> ``heatmaps``, ``pafs``, ``orpm``,
        ``orpm_mask``, ``keypoint_weights``."""
        who = "ORPMCodec.encode"
        kp, vis = keypoints_and_visibility(keypoints, visibility, who)
        if keypoints_3d is None:
            raise ValueError(f"{who}: needs 'keypoints_3d' camera-frame mm")
        X = _points_3d(keypoints_3d, kp.shape[:-1] + (3,), who).to(kp.device, torch.float32)
        single = kp.dim() == 3
        if single:
            kp, vis, X = kp[:, None], vis[:, None], X[:, None]
        out = self.paf.encode(kp, vis)
        B, N, K, _ = kp.shape
        W, H = self.heatmap_size
        r = self.root_index
        rel = (X - X[:, :, r:r + 1]) / self.location_unit
        maps = kp.new_zeros(B, K, 3, H, W)
        mask = kp.new_zeros(B, K, H, W)
        pos = kp / self._stride(kp.device)
        ys = torch.arange(H, device=kp.device, dtype=torch.float32)[:, None]
        xs = torch.arange(W, device=kp.device, dtype=torch.float32)[None, :]
        writes = [(self.torso, list(range(K))), (r, list(range(K)))]
        writes += [(j, chain[i:]) for chain in self.chains for i, j in enumerate(chain)]
        for b in range(B):
            for n in torch.argsort(X[b, :, r, 2], descending=True).tolist():   # far first
                for at, joints in writes:
                    if vis[b, n, at] <= 0:
                        continue
                    disc = ((xs - pos[b, n, at, 0]) ** 2 + (ys - pos[b, n, at, 1]) ** 2
                            <= self.radius ** 2)
                    idx = torch.tensor(joints, device=kp.device)
                    maps[b, idx] = torch.where(disc, rel[b, n, idx][..., None, None], maps[b, idx])
                    mask[b, idx] = torch.where(disc, torch.ones_like(mask[b, idx]), mask[b, idx])
        out.update(orpm=maps, orpm_mask=mask)
        if single:
            out["keypoint_weights"] = out["keypoint_weights"][:, 0]
        return out

    def read_out(self, orpm: Tensor, keypoints: Tensor, scores: Tensor) -> Tensor:
        """One image's persons: ``orpm (K, 3, h, w)``, 2-D ``keypoints (P, K, 2)`` input pixels
        and ``scores (P, K)`` -> root-relative joints ``(P, K, 3)`` mm read by the rules."""
        P, K = scores.shape
        src = orpm_read_sources(scores.cpu(), self.chains, self.torso, self.root_index,
                                self.read_threshold).to(orpm.device)
        W, H = self.heatmap_size
        pos = (keypoints.to(orpm.device) / self._stride(orpm.device)).round().long()
        at = pos.gather(1, src[..., None].expand(P, K, 2))
        x, y = at[..., 0].clamp(0, W - 1), at[..., 1].clamp(0, H - 1)
        j = torch.arange(K, device=orpm.device).expand(P, K)
        loc = orpm[j, :, y, x] * self.location_unit            # (P, K, 3)
        return loc - loc[:, self.root_index:self.root_index + 1]

    def decode(self, outputs, **meta) -> ORPMPrediction:
        """``(heatmaps, pafs, orpm (B, K, 3, h, w))`` -> per image the PAF-grouped persons'
        2-D joints, scores, read-out root-relative 3-D joints and person scores."""
        heatmaps, pafs, orpm = outputs
        kps, scores, person = self.paf.decode_instances((heatmaps, pafs), self.num_keypoints)
        out3d = [self.read_out(orpm[b].detach().float(), kps[b], scores[b]) for b in range(len(kps))]
        return ORPMPrediction(kps, scores, out3d, person)

    def to_config(self) -> dict:
        p = self.paf
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "parents": list(self.parents),
                "torso": self.torso, "root_index": self.root_index,
                "limbs": [list(l) for l in p.limbs], "sigma": p.sigma, "limb_width": p.limb_width,
                "radius": self.radius, "location_unit": self.location_unit,
                "read_threshold": self.read_threshold, "threshold": p.threshold,
                "min_parts": p.min_parts, "min_mean_score": p.min_mean_score}


__all__ = ["DconvMPCodec", "MPPE3DCodec", "ORPMCodec", "ORPMPrediction", "VNectCodec",
           "VNectPrediction", "back_project", "k_value", "orpm_chains", "orpm_read_sources",
           "project", "read_location_maps"]
