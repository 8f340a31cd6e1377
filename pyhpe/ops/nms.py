"""Pose non-maximum suppression (torch.ops.pyhpe.oks_nms / soft_oks_nms / pose_nms_alphapose).

All three run over many images in one call: concatenate the images' poses and pass
``image_offsets`` ``(M+1,)`` (image m owns rows ``image_offsets[m]:image_offsets[m+1]``);
returned indices are rows of the concatenation, image by image, each image's in keep order.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ._common import as_float_tensor, check_finite, float_option, int_option, sigmas_tensor
from ._types import AlphaPoseNMSResult, NMSResult


def _num_images(image_offsets) -> int:
    return 1 if image_offsets is None else image_offsets.shape[0] - 1


@torch.library.register_fake("pyhpe::oks_nms")
def _oks_nms_fake(keypoints, scores, areas, sigmas, thr=0.9, vis_thr=None, image_offsets=None,
                  order=None):
    n = torch.library.get_ctx().new_dynamic_size()
    return (keypoints.new_empty((n,), dtype=torch.int64),
            keypoints.new_empty((_num_images(image_offsets),), dtype=torch.int64))


@torch.library.register_fake("pyhpe::soft_oks_nms")
def _soft_oks_nms_fake(keypoints, scores, areas, sigmas, thr=0.3, max_dets=20,
                       method="gaussian", vis_thr=None, image_offsets=None, order=None):
    n = torch.library.get_ctx().new_dynamic_size()
    return (keypoints.new_empty((n,), dtype=torch.int64),
            keypoints.new_empty((_num_images(image_offsets),), dtype=torch.int64))


@torch.library.register_fake("pyhpe::pose_nms_alphapose")
def _pose_nms_alphapose_fake(bboxes, pose_preds, pose_scores, image_offsets=None, delta1=1.0,
                             mu=1.7, delta2=2.65, gamma=22.48, score_thr=0.3, match_thr=5.0,
                             alpha=0.1, area_thr=0.0):
    n = torch.library.get_ctx().new_dynamic_size()
    K = pose_preds.shape[1]
    return (pose_preds.new_empty((n, K, 2)), pose_preds.new_empty((n, K)),
            pose_preds.new_empty((n,), dtype=torch.int64),
            pose_preds.new_empty((_num_images(image_offsets),), dtype=torch.int64))


def _prepare(op, keypoints, scores, areas, sigmas, image_offsets, score_per_joint, validate):
    keypoints = as_float_tensor(keypoints, "keypoints")
    scores = as_float_tensor(scores, "scores", like=keypoints)
    areas = as_float_tensor(areas, "areas", like=keypoints)
    if keypoints.dim() != 3 or keypoints.shape[-1] != 3:
        raise ValueError(f"{op}: 'keypoints' must have shape (N, K, 3) [x, y, score], got "
                         f"shape {tuple(keypoints.shape)}")
    K = keypoints.shape[1]
    if score_per_joint and scores.dim() != 2:
        raise ValueError(f"{op}: score_per_joint=True needs 'scores' of shape (N, K), got "
                         f"shape {tuple(scores.shape)}")
    if not score_per_joint and scores.dim() != 1:
        raise ValueError(f"{op}: 'scores' must have shape (N,) (or (N, K) with "
                         f"score_per_joint=True), got shape {tuple(scores.shape)}")
    # float64 like mmpose's sigmas array, whatever the pose dtype (see oks_nms).
    sigmas = sigmas_tensor(op, sigmas, K, torch.float64, keypoints.device)
    if image_offsets is not None:
        image_offsets = torch.as_tensor(image_offsets, device=keypoints.device)
    if validate:
        for name, t in (("keypoints", keypoints), ("scores", scores), ("areas", areas),
                        ("sigmas", sigmas)):
            check_finite(t, name, op)
        if sigmas.numel() and bool((sigmas <= 0).any()):
            raise ValueError(f"{op}: 'sigmas' must be positive, got {sigmas.tolist()}")
    return keypoints, scores, areas, sigmas, image_offsets


def _numpy_order(scores: torch.Tensor, image_offsets, score_per_joint: bool) -> torch.Tensor:
    """mmpose's ``scores.argsort()[::-1]`` per image, computed by numpy itself so that ties
    come out in exactly numpy's (unstable, platform SIMD) order."""
    s = scores.detach().cpu().numpy()
    if score_per_joint:
        s = np.array([row.mean() for row in s], dtype=s.dtype)
    offs = [0, len(s)] if image_offsets is None else image_offsets.cpu().tolist()
    parts = [s[a:b].argsort()[::-1] + a for a, b in zip(offs[:-1], offs[1:])]
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(order.astype(np.int64)).to(scores.device)


def oks_nms(keypoints, scores, areas, *, thr: float = 0.9, sigmas=None,
            vis_thr: Optional[float] = None, image_offsets=None, score_per_joint: bool = False,
            tie_break: str = "numpy", validate: bool = True) -> NMSResult:
    """OKS non-maximum suppression, mmpose ``oks_nms`` semantics.

    keypoints ``(N, K, 3)`` [x, y, score] in pixels; scores ``(N,)`` (or ``(N, K)`` per-joint
    scores with ``score_per_joint=True``, averaged as numpy's ``.mean()``); areas ``(N,)``;
    sigmas ``(K,)`` (default COCO-17); image_offsets ``(M+1,)`` for a ragged batch of M images.
    Returns :class:`NMSResult` ``(keep (P,)`` int64 (rows of the input, per image in descending
    score order), ``counts (M,)`` kept poses per image).

    Poses are visited in descending score order; each kept pose drops every later pose whose
    OKS with it (mmpose ``oks_iou``: area = (a_i + a_j)/2, with ``vis_thr`` the mean over
    keypoints whose scores both exceed it) is > ``thr``, the OKS rounded to float32 as mmpose
    stores it. ``tie_break='numpy'`` orders equal scores exactly as numpy's
    ``scores.argsort()[::-1]`` does (computed on the host with numpy); ``'stable'`` puts the
    higher row first (``np.argsort(kind='stable')[::-1]``), stays on the device and works
    under torch.compile. Arithmetic follows numpy's promotions in mmpose with float64 sigmas:
    float64 poses reproduce mmpose bit for bit, and so do float32 keypoints/areas/scores
    (mmpose's usual input), whose distances and mean area stay float32 while e, exp and the
    mean run in float64.

    ``thr`` and ``vis_thr`` must be finite numbers (ValueError/TypeError naming them). Not
    differentiable: an input that requires grad under grad mode raises a RuntimeError.
    """
    op = "pyhpe.oks_nms"
    thr = float_option(op, thr, "thr", finite=True)
    vis_thr = None if vis_thr is None else float_option(op, vis_thr, "vis_thr", finite=True)
    keypoints, scores, areas, sig, image_offsets = _prepare(
        op, keypoints, scores, areas, sigmas, image_offsets, score_per_joint, validate)
    if tie_break == "numpy":
        order = _numpy_order(scores, image_offsets, score_per_joint)
    elif tie_break == "stable":
        order = None
    else:
        raise ValueError(f"{op}: 'tie_break' must be 'numpy' or 'stable', got {tie_break!r}")
    return NMSResult(*torch.ops.pyhpe.oks_nms(keypoints, scores, areas, sig, thr, vis_thr,
                                              image_offsets, order))


def soft_oks_nms(keypoints, scores, areas, *, thr: float = 0.3, max_dets: int = 20,
                 method: str = "gaussian", sigmas=None, vis_thr: Optional[float] = None,
                 image_offsets=None, score_per_joint: bool = False,
                 validate: bool = True) -> NMSResult:
    """Soft OKS-NMS, mmpose ``soft_oks_nms`` semantics.

    Shapes as :func:`oks_nms`. Repeatedly keeps the best remaining pose and rescores the rest
    by their float32 OKS ``o`` with it: ``'gaussian'`` (mmpose's choice) ``s * exp(-o²/thr)``,
    ``'linear'`` ``s * (1 - o)`` where ``o >= thr``; then re-sorts, until ``max_dets`` poses
    per image are kept. Returns :class:`NMSResult` ``(keep (P,)`` int64 in keep order,
    ``counts (M,))``.
    Equal scores are ordered as numpy's ``argsort()[::-1]`` would with a stable sort (higher
    row first at the start, reversed relative order after each re-sort); numpy's default
    argsort is not stable, so mmpose itself may order exact ties differently. The float32
    exp reproduces numpy's x86 SIMD float32 exp bit for bit (it is not correctly rounded, and
    a last-bit difference reorders rescored ties). NaN scores (``validate=False``) rank
    above every number, as they do in numpy's sort.

    ``thr`` must be finite (and > 0 for 'gaussian', where it divides), ``vis_thr`` finite,
    ``max_dets`` an integer >= 0. Each pick rescores only the remaining poses whose keypoint
    box lies close enough for the score to change (the others provably keep it bit for bit)
    and re-sorts only the rescored ones: on the CPU, large images keep the poses in an
    ordered set and find the close ones on a grid (O(log N) per moved pose) while no two
    scores are equal, and otherwise merge the rescored poses into the unchanged order (O(N)
    per pick), instead of mmpose's full O(N log N) sort per pick. Not differentiable (see
    :func:`oks_nms`).
    """
    op = "pyhpe.soft_oks_nms"
    thr = float_option(op, thr, "thr", finite=True)
    if method == "gaussian" and not thr > 0.0:
        raise ValueError(f"{op}: 'thr' must be > 0 for method='gaussian' (exp(-o^2 / thr)), "
                         f"got {thr}")
    vis_thr = None if vis_thr is None else float_option(op, vis_thr, "vis_thr", finite=True)
    max_dets = int_option(op, max_dets, "max_dets", 0, 2 ** 63 - 1)
    keypoints, scores, areas, sig, image_offsets = _prepare(
        op, keypoints, scores, areas, sigmas, image_offsets, score_per_joint, validate)
    return NMSResult(*torch.ops.pyhpe.soft_oks_nms(keypoints, scores, areas, sig, thr, max_dets,
                                                   method, vis_thr, image_offsets, None))


def pose_nms_alphapose(bboxes, pose_preds, pose_scores, *, image_offsets=None,
                       delta1: float = 1.0, mu: float = 1.7, delta2: float = 2.65,
                       gamma: float = 22.48, score_thr: float = 0.3, match_thr: float = 5.0,
                       alpha: float = 0.1, area_thr: float = 0.0,
                       validate: bool = True) -> AlphaPoseNMSResult:
    """AlphaPose parametric pose NMS (``pPose_nms.pose_nms_body``) with its pose merge.

    bboxes ``(N, 4)`` xyxy (only their size matters: ref_dist = alpha * max(w, h));
    pose_preds ``(N, K, 2)`` pixels; pose_scores ``(N, K)`` or ``(N, K, 1)``.
    Returns :class:`AlphaPoseNMSResult` ``(keypoints (P, K, 2)`` merged, ``scores (P, K)``
    merged, ``indices (P,)`` int64 the picked rows, ``counts (M,)`` picks per image), per image
    in pick order.

    Zero scores become 1e-5; poses are picked by mean score (ties: lower row first, as
    torch.argmax); a pick deletes every remaining pose whose parametric distance
    sum_k[d_k <= 1] tanh(s_k/delta1) tanh(s'_k/delta1) + mu sum_k exp(-d_k/delta2) exceeds
    ``gamma`` or that has ``>= match_thr`` keypoints within min(ref_dist, 7); each group is
    merged score-weighted over keypoints within min(ref_dist, 15) of the pick (p_merge_fast).
    Picks whose own or merged max score is below ``score_thr``, or whose merged pose spans
    1.5² · w · h < ``area_thr``, are dropped. Constants default to AlphaPose's; the
    full-body (133/136 keypoint) variant is not implemented. AlphaPose keeps the score term
    in float32, and so does this op for float64 input.

    Rejected (ValueError naming the argument), where AlphaPose would silently produce NaN or
    delete everything: boxes with x1 < x0 or y1 < y0 (a negative ref_dist), ``alpha`` < 0,
    ``delta1`` or ``delta2`` <= 0, and non-finite constants. A zero-size box (ref_dist 0)
    is allowed: no keypoint matches by PCK, and the merge keeps only coincident keypoints.
    On the CPU each pick computes its deletions only against the poses still remaining
    (what AlphaPose evaluates; in parallel for images of 32,768 poses or more), after
    exact-safe pre-checks on the keypoint boxes and squared keypoint distances, rather than
    the full pairwise matrix; each merge reads only its own group. Not differentiable (see
    :func:`oks_nms`).
    """
    op = "pyhpe.pose_nms_alphapose"
    options = {name: float_option(op, value, name, finite=True) for name, value in (
        ("delta1", delta1), ("mu", mu), ("delta2", delta2), ("gamma", gamma),
        ("score_thr", score_thr), ("match_thr", match_thr), ("alpha", alpha),
        ("area_thr", area_thr))}
    for name in ("delta1", "delta2"):
        if not options[name] > 0.0:
            raise ValueError(f"{op}: '{name}' must be > 0, got {options[name]}")
    if options["alpha"] < 0.0:
        raise ValueError(f"{op}: 'alpha' must be >= 0 (ref_dist = alpha * max(w, h)), got "
                         f"{options['alpha']}")
    pose_preds = as_float_tensor(pose_preds, "pose_preds")
    pose_scores = as_float_tensor(pose_scores, "pose_scores", like=pose_preds)
    bboxes = as_float_tensor(bboxes, "bboxes", like=pose_preds)
    if pose_scores.dim() == 3 and pose_scores.shape[-1] == 1:
        pose_scores = pose_scores.squeeze(-1)
    if image_offsets is not None:
        image_offsets = torch.as_tensor(image_offsets, device=pose_preds.device)
    if validate:
        for name, t in (("bboxes", bboxes), ("pose_preds", pose_preds),
                        ("pose_scores", pose_scores)):
            check_finite(t, name, op)
    return AlphaPoseNMSResult(*torch.ops.pyhpe.pose_nms_alphapose(
        bboxes, pose_preds, pose_scores, image_offsets, *options.values()))


__all__ = ["oks_nms", "soft_oks_nms", "pose_nms_alphapose"]
