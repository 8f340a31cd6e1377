"""Drawing: skeletons on images, heatmap overlays, training curves (matplotlib, Agg)."""
from __future__ import annotations

import csv
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..keypoints import get_keypoint_set


def line_width(image_shape) -> int:
    """Limb line width for an image of ``image_shape`` ``(H, W, ...)``: the short side / 200,
    rounded, at least 1 (up to 300 pixels: 1; 480p: 2; 720p: 4; 1080p: 5)."""
    return max(1, int(round(min(image_shape[0], image_shape[1]) / 200.0)))


def draw_pose(image: np.ndarray, keypoints, keypoint_set="coco17", score_thr: float = 0.3,
              radius: Optional[int] = None, thickness: Optional[int] = None,
              colour=None) -> np.ndarray:
    """Copy of ``image`` (H, W, 3 BGR) with skeletons of ``keypoints`` ``(N, K, 3)`` or
    ``(K, 3)`` (x, y, score) drawn; points with score < ``score_thr`` are skipped.

    Limbs and points take the keypoint set's ``colors`` / ``keypoint_colors`` unless
    ``colour`` (one BGR triple for everything) is given. ``thickness`` (limbs) and ``radius``
    (points) scale with the image when not given: :func:`line_width` and one more."""
    kset = get_keypoint_set(keypoint_set)
    img = np.ascontiguousarray(image).copy()
    if thickness is None:
        thickness = line_width(img.shape)
    if radius is None:
        radius = thickness + 1
    kps = np.asarray(keypoints, np.float64)
    if kps.ndim == 2:
        kps = kps[None]
    if kps.shape[-1] == 2:
        kps = np.concatenate([kps, np.ones(kps.shape[:-1] + (1,))], -1)
    for person in kps:
        for (a, b), limb_colour in zip(kset.skeleton, kset.colors):
            if person[a, 2] >= score_thr and person[b, 2] >= score_thr:
                pa = tuple(int(round(v)) for v in person[a, :2])
                pb = tuple(int(round(v)) for v in person[b, :2])
                cv2.line(img, pa, pb, colour or limb_colour, thickness, cv2.LINE_AA)
        for k in range(len(person)):
            if person[k, 2] >= score_thr:
                cv2.circle(img, tuple(int(round(v)) for v in person[k, :2]), radius,
                           colour or kset.keypoint_colors[k], -1, cv2.LINE_AA)
    return img


def heatmap_overlay(image: np.ndarray, heatmaps: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` (H, W, 3) blended with the max over K of ``heatmaps`` (K, h, w), colour-mapped."""
    hm = np.asarray(heatmaps, np.float32).max(0)
    hm = cv2.resize(np.clip(hm, 0, 1), (image.shape[1], image.shape[0]))
    col = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(np.ascontiguousarray(image), 1 - alpha, col, alpha, 0)


def save_grid(images: Sequence[np.ndarray], path: str, cols: int = 4, scale: float = 1.0) -> None:
    """Tile same-sized images into one PNG."""
    if not images:
        return
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    if scale != 1.0:
        grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(path, grid)


def plot_training_curve(history: List[Dict], path: str, title: str = "training") -> None:
    """Loss (and AP where present) against step, saved as a PNG. ``history`` rows have
    'step', 'loss' and optionally 'ap' (a list of dicts or a CSV path from the trainer)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if isinstance(history, str):
        with open(history) as f:
            history = list(csv.DictReader(f))
    steps = [float(r["step"]) for r in history]
    loss = [float(r["loss"]) for r in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, loss, "b.-", label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="b")
    ax.set_yscale("log")
    ap = [(float(r["step"]), float(r["ap"])) for r in history if str(r.get("ap", "")) not in ("", "nan")]
    if ap:
        ax2 = ax.twinx()
        ax2.plot([a[0] for a in ap], [a[1] for a in ap], "r.-", label="val AP")
        ax2.set_ylabel("AP", color="r")
        ax2.set_ylim(0, 1)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["draw_pose", "heatmap_overlay", "line_width", "plot_training_curve", "save_grid"]
