"""Keypoint accuracy metrics: PCK, PCKh, PCP, MPJPE, N-MPJPE and P-MPJPE (numpy).

Semantics follow mmpose's ``mmpose/evaluation/functional/keypoint_eval.py``: PCK distances
are divided per axis by ``normalize`` (N, 2); keypoints whose mask is False or whose
normaliser is not positive are ignored; the average is over keypoints with at least one valid
sample. MPJPE alignment 'procrustes' is a similarity transform (rotation, uniform scale,
translation) fitted per sample by SVD, as in VideoPose3D/mmpose ``compute_similarity_transform``.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def _check(pred, gt, name):
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"{name}: 'pred' {pred.shape} and 'gt' {gt.shape} must have the same shape")
    if pred.ndim != 3:
        raise ValueError(f"{name}: 'pred' must be (N, K, D), got {pred.shape}")
    return pred, gt


def normalized_distances(pred, gt, mask, normalize) -> np.ndarray:
    """``(N, K, D)`` -> ``(K, N)`` distances divided by ``normalize`` (N, D); -1 where ignored
    (mmpose ``_calc_distances``)."""
    pred, gt = _check(pred, gt, "normalized_distances")
    N, K, _ = pred.shape
    mask = np.asarray(mask, bool).copy() if mask is not None else np.ones((N, K), bool)
    normalize = np.asarray(normalize, np.float64)
    if normalize.ndim == 1:
        normalize = np.repeat(normalize[:, None], pred.shape[-1], axis=1)
    mask[np.where((normalize <= 0).sum(1))[0], :] = False
    dist = np.full((N, K), -1.0)
    safe = np.where(normalize > 0, normalize, 1.0)
    d = np.linalg.norm((pred - gt) / safe[:, None, :], axis=-1)
    dist[mask] = d[mask]
    return dist.T


def _dist_acc(dists: np.ndarray, thr: float) -> float:
    valid = dists != -1
    n = valid.sum()
    return float((dists[valid] < thr).sum() / n) if n > 0 else -1.0


def pck_accuracy(pred, gt, mask=None, thr: float = 0.05, normalize=None) -> Tuple[np.ndarray, float, int]:
    """PCK: fraction of keypoints within ``thr`` (normalised distance, strictly less).

    pred, gt ``(N, K, D)``; mask ``(N, K)``; normalize ``(N, D)`` or ``(N,)`` (e.g. the box
    size for PCK@bbox). Returns per-keypoint accuracy ``(K,)`` (-1 where no valid sample), the
    average over keypoints with valid samples, and how many keypoints were averaged.
    """
    pred, gt = _check(pred, gt, "pck_accuracy")
    if normalize is None:
        normalize = np.ones((pred.shape[0], pred.shape[-1]))
    dists = normalized_distances(pred, gt, mask, normalize)
    acc = np.array([_dist_acc(d, thr) for d in dists])
    valid = acc[acc >= 0]
    cnt = len(valid)
    return acc, float(valid.mean()) if cnt > 0 else 0.0, cnt


def pckh_accuracy(pred, gt, mask, head_size, thr: float = 0.5):
    """PCKh (MPII): PCK normalised by the head segment length ``head_size`` (N,)."""
    head_size = np.asarray(head_size, np.float64)
    return pck_accuracy(pred, gt, mask, thr, np.tile(head_size[:, None], (1, 2)))


def pcp_accuracy(pred, gt, limbs: Sequence[Tuple[int, int]], mask=None, alpha: float = 0.5,
                 variant: str = "strict") -> Tuple[np.ndarray, float]:
    """PCP: a limb is correct when its endpoint errors are within ``alpha`` x its GT length.

    ``variant='strict'`` needs both endpoints within the bound (Ferrari et al.); ``'mean'``
    uses the mean of the two endpoint errors (the looser, commonly reported variant).
    Limbs with a masked endpoint are skipped. Returns per-limb rates ``(L,)`` (-1 if never
    valid) and their mean over limbs with valid samples.
    """
    pred, gt = _check(pred, gt, "pcp_accuracy")
    N, K, _ = pred.shape
    mask = np.ones((N, K), bool) if mask is None else np.asarray(mask, bool)
    err = np.linalg.norm(pred - gt, axis=-1)
    rates = []
    for a, b in limbs:
        length = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
        ok = mask[:, a] & mask[:, b]
        if variant == "strict":
            good = (err[:, a] <= alpha * length) & (err[:, b] <= alpha * length)
        elif variant == "mean":
            good = (err[:, a] + err[:, b]) / 2 <= alpha * length
        else:
            raise ValueError(f"pcp_accuracy: unknown variant {variant!r}; use 'strict' or 'mean'")
        rates.append(float(good[ok].mean()) if ok.any() else -1.0)
    rates = np.array(rates)
    valid = rates[rates >= 0]
    return rates, float(valid.mean()) if len(valid) else 0.0


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Align ``src`` to ``dst`` by the least-squares similarity transform (Umeyama, no
    reflections): ``(K, D)`` or batched ``(N, K, D)`` (one transform per sample, in one
    batched SVD). A sample whose ``src`` has no spread maps to the centroid of ``dst``."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.ndim == 2:
        return similarity_transform(src[None], dst[None])[0]
    N, _, D = src.shape
    if N == 0:
        return src.copy()
    mu_s, mu_d = src.mean(1, keepdims=True), dst.mean(1, keepdims=True)
    s0, d0 = src - mu_s, dst - mu_d
    var = (s0 ** 2).sum(axis=(1, 2))
    cov = s0.transpose(0, 2, 1) @ d0  # (N, D, D)
    U, _, Vt = np.linalg.svd(cov)
    V, Ut = Vt.transpose(0, 2, 1), U.transpose(0, 2, 1)
    Z = np.broadcast_to(np.eye(D), (N, D, D)).copy()
    Z[:, -1, -1] = np.sign(np.linalg.det(V @ Ut))  # no reflections
    R = V @ Z @ Ut
    scale = np.trace(R @ cov, axis1=1, axis2=2) / np.where(var > 0, var, 1.0)
    out = scale[:, None, None] * (s0 @ R.transpose(0, 2, 1)) + mu_d
    flat = var == 0
    out[flat] = np.broadcast_to(mu_d[flat], out[flat].shape)
    return out


def mpjpe(pred, gt, mask=None, alignment: str = "none") -> float:
    """Mean per-joint position error over valid joints of ``(N, K, D)`` arrays.

    ``alignment``: 'none' (MPJPE), 'scale' (N-MPJPE: optimal uniform scale of pred per sample,
    ``<pred, gt> / <pred, pred>``), 'procrustes' (P-MPJPE: similarity transform per sample).
    """
    pred, gt = _check(pred, gt, "mpjpe")
    N, K, _ = pred.shape
    mask = np.ones((N, K), bool) if mask is None else np.asarray(mask, bool)
    if alignment == "procrustes":
        pred = similarity_transform(pred, gt)
    elif alignment == "scale":
        num = (pred * gt).sum(axis=(1, 2))
        den = (pred * pred).sum(axis=(1, 2))
        pred = pred * (num / np.where(den > 0, den, 1.0))[:, None, None]
    elif alignment != "none":
        raise ValueError(f"mpjpe: unknown alignment {alignment!r}; use 'none', 'scale' or 'procrustes'")
    err = np.linalg.norm(pred - gt, axis=-1)
    return float(err[mask].mean()) if mask.any() else 0.0


def p_mpjpe(pred, gt, mask=None) -> float:
    """MPJPE after per-sample Procrustes (similarity) alignment."""
    return mpjpe(pred, gt, mask, alignment="procrustes")


def n_mpjpe(pred, gt, mask=None) -> float:
    """MPJPE after the per-sample optimal uniform scaling of the prediction."""
    return mpjpe(pred, gt, mask, alignment="scale")


__all__ = ["normalized_distances", "pck_accuracy", "pckh_accuracy", "pcp_accuracy",
           "similarity_transform", "mpjpe", "p_mpjpe", "n_mpjpe"]
