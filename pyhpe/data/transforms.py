"""Top-down geometry: boxes to centre/scale, affine crops, flips, half-body and augmentation.

Conventions follow mmpose 1.x: ``scale`` is the (w, h) of the crop region in image pixels
(box size times the padding, expanded to the input aspect ratio); the warp maps the region
centred at ``center`` rotated by ``rot`` degrees onto the ``(W, H)`` network input. The
plain warp maps the region's width onto ``W`` pixels (:func:`get_warp_matrix`); the unbiased
one (UDP, Huang et al. 2020) onto the ``W - 1`` pixel-centre spacing
(:func:`get_udp_warp_matrix`), so that pixel centres map onto pixel centres.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import cv2
import numpy as np


def bbox_xywh_to_center_scale(bbox, aspect_ratio: float, padding: float = 1.25):
    """``[x, y, w, h]`` -> centre ``(2,)``, scale ``(2,)`` with ``w / h == aspect_ratio``."""
    x, y, w, h = [float(v) for v in bbox[:4]]
    center = np.array([x + w * 0.5, y + h * 0.5], np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w, h], np.float32) * padding


def _rotate_point(pt, angle_rad):
    s, c = math.sin(angle_rad), math.cos(angle_rad)
    return np.array([pt[0] * c - pt[1] * s, pt[0] * s + pt[1] * c], np.float32)


def get_warp_matrix(center, scale, rot: float, output_size, inverse: bool = False) -> np.ndarray:
    """2x3 affine matrix from the image region to the output (or back when ``inverse``)
    (mmpose ``get_warp_matrix``: three point correspondences, centre, top-middle, and a third
    point at a right angle)."""
    center = np.asarray(center, np.float32)
    src_w = float(scale[0])
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    rot_rad = math.radians(rot)
    src_dir = _rotate_point(np.array([0.0, src_w * -0.5]), rot_rad)
    dst_dir = np.array([0.0, dst_w * -0.5], np.float32)
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + src_dir
    dst[0], dst[1] = [dst_w * 0.5, dst_h * 0.5], np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]], np.float32)
    src[2], dst[2] = third(src[0], src[1]), third(dst[0], dst[1])
    if inverse:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def get_udp_warp_matrix(center, scale, rot: float, output_size) -> np.ndarray:
    """2x3 UDP affine from the image region to the output, as mmpose 1.x
    ``get_udp_warp_matrix``: ``x' = (W - 1) / scale_w * R(x - center) + (W - 1) / 2`` per axis,
    rotation ``rot`` degrees about ``center`` (float32, as mmpose builds it)."""
    cx, cy = float(center[0]), float(center[1])
    sw, sh = float(scale[0]), float(scale[1])
    rot_rad = math.radians(rot)
    cos, sin = math.cos(rot_rad), math.sin(rot_rad)
    scale_x = (float(output_size[0]) - 1) / sw
    scale_y = (float(output_size[1]) - 1) / sh
    mat = np.zeros((2, 3), np.float32)
    mat[0, 0] = cos * scale_x
    mat[0, 1] = -sin * scale_x
    mat[0, 2] = scale_x * (-cx * cos + cy * sin + 0.5 * sw)
    mat[1, 0] = sin * scale_y
    mat[1, 1] = cos * scale_y
    mat[1, 2] = scale_y * (-cx * sin - cy * cos + 0.5 * sh)
    return mat


def affine_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to ``(..., 2)`` points."""
    pts = np.asarray(points, np.float32)
    return pts @ mat[:, :2].T + mat[:, 2]


def crop(image: np.ndarray, center, scale, rot, output_size,
         udp: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Affine crop of ``image`` to ``output_size=(W, H)``; returns the crop and the matrix
    (:func:`get_udp_warp_matrix` when ``udp``, else :func:`get_warp_matrix`)."""
    if udp:
        mat = get_udp_warp_matrix(center, scale, rot, output_size)
    else:
        mat = get_warp_matrix(center, scale, rot, output_size)
    out = cv2.warpAffine(image, mat, (int(output_size[0]), int(output_size[1])),
                         flags=cv2.INTER_LINEAR)
    return out, mat


def flip_keypoints(keypoints: np.ndarray, visibility: np.ndarray, image_width: float,
                   flip_pairs: Sequence[Tuple[int, int]]):
    """Horizontal flip about the image (``x' = W - 1 - x``) with left/right swapped."""
    kp = np.array(keypoints, np.float32, copy=True)
    vis = np.array(visibility, np.float32, copy=True)
    kp[..., 0] = image_width - 1 - kp[..., 0]
    for a, b in flip_pairs:
        kp[..., [a, b], :] = kp[..., [b, a], :]
        vis[..., [a, b]] = vis[..., [b, a]]
    return kp, vis


def half_body_center_scale(keypoints, visibility, upper_body, lower_body, aspect_ratio,
                           rng: np.random.Generator, padding: float = 1.5, min_keypoints: int = 2):
    """mmpose ``RandomHalfBody``: a box around the visible upper (or lower) body keypoints."""
    vis = np.asarray(visibility) > 0
    upper = [i for i in upper_body if vis[i]]
    lower = [i for i in lower_body if vis[i]]
    if rng.random() < 0.5 and len(upper) >= min_keypoints:
        sel = upper
    elif len(lower) >= min_keypoints:
        sel = lower
    else:
        sel = upper
    if len(sel) < min_keypoints:
        return None
    pts = np.asarray(keypoints)[sel]
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    w, h = x1 - x0, y1 - y0
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w, h], np.float32) * padding


class TopDownAugment:
    """Random flip, half-body, scale and rotation for one instance (mmpose defaults)."""

    def __init__(self, flip_prob=0.5, half_body_prob=0.3, half_body_min_total=8,
                 scale_factor=(0.75, 1.25), rot_factor=40.0, rot_prob=0.6, shift_factor=0.16,
                 shift_prob=0.3):
        self.flip_prob, self.half_body_prob = flip_prob, half_body_prob
        self.half_body_min_total = half_body_min_total
        self.scale_factor, self.rot_factor, self.rot_prob = scale_factor, rot_factor, rot_prob
        self.shift_factor, self.shift_prob = shift_factor, shift_prob

    def __call__(self, rng, image, keypoints, visibility, center, scale, kset, aspect_ratio):
        rot = 0.0
        if rng.random() < self.flip_prob:
            image = image[:, ::-1]
            keypoints, visibility = flip_keypoints(keypoints, visibility, image.shape[1], kset.flip_pairs)
            center = np.array([image.shape[1] - 1 - center[0], center[1]], np.float32)
        if (self.half_body_prob > 0 and (np.asarray(visibility) > 0).sum() > self.half_body_min_total
                and rng.random() < self.half_body_prob and kset.upper_body):
            hb = half_body_center_scale(keypoints, visibility, kset.upper_body, kset.lower_body,
                                        aspect_ratio, rng)
            if hb is not None:
                center, scale = hb
        if rng.random() < self.shift_prob:
            center = center + rng.uniform(-1, 1, size=2).astype(np.float32) * self.shift_factor * scale
        lo, hi = self.scale_factor
        scale = scale * float(np.clip(rng.normal() * 0.25 + 1.0, lo, hi))
        if rng.random() < self.rot_prob:
            rot = float(np.clip(rng.normal() * self.rot_factor, -2 * self.rot_factor, 2 * self.rot_factor))
        return np.ascontiguousarray(image), keypoints, visibility, center, scale, rot
