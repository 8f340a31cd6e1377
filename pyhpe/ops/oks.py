"""Object Keypoint Similarity matrices (torch.ops.pyhpe.oks_matrix / oks_matrix_ragged)."""
from __future__ import annotations

from typing import Optional

import torch

from ._common import as_float_tensor, check_finite, sigmas_tensor
from ._types import RaggedOKS


@torch.library.register_fake("pyhpe::oks_matrix")
def _oks_matrix_fake(dt, gt, gt_areas, sigmas, gt_boxes=None, dt_areas=None, dt_counts=None,
                     gt_counts=None, vis_thr=None, mode="coco"):
    torch._check(dt.dim() == 4, lambda: "pyhpe.oks_matrix: 'dt' must be (N, D, K, 2|3)")
    torch._check(gt.dim() == 4, lambda: "pyhpe.oks_matrix: 'gt' must be (N, G, K, 3)")
    return dt.new_empty((dt.shape[0], dt.shape[1], gt.shape[1]))


@torch.library.register_fake("pyhpe::oks_matrix_ragged")
def _oks_matrix_ragged_fake(dt, gt, gt_areas, sigmas, dt_offsets, gt_offsets, total,
                            gt_boxes=None, dt_areas=None, vis_thr=None, mode="coco"):
    return dt.new_empty((total,))


def _sigmas_for(op: str, sigmas, K: int, like: torch.Tensor) -> torch.Tensor:
    if like.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op}: 'dt' must be float32 or float64, got {like.dtype}")
    return sigmas_tensor(op, sigmas, K, like.dtype, like.device)


def _check_values(op: str, dt, gt, gt_areas, sigmas, gt_boxes, dt_areas) -> None:
    """Value checks of both wrappers (the ops check shapes, dtypes and devices)."""
    for name, t in (("dt", dt), ("gt", gt), ("gt_areas", gt_areas), ("sigmas", sigmas),
                    ("gt_boxes", gt_boxes), ("dt_areas", dt_areas)):
        check_finite(t, name, op)
    if sigmas.numel() and bool((sigmas <= 0).any()):
        raise ValueError(f"{op}: 'sigmas' must be positive, got {sigmas.tolist()}")
    # A negative area flips the sign of the exponent: exp(+e) > 1, an OKS above 1.
    for name, t in (("gt_areas", gt_areas), ("dt_areas", dt_areas)):
        if t is not None and t.numel() and t.is_floating_point() and bool((t < 0).any()):
            raise ValueError(f"{op}: '{name}' must be >= 0 (an area in pixels²), got a "
                             f"minimum of {t.min().item()}")


def _offsets_total(dt_offsets: torch.Tensor, gt_offsets: torch.Tensor):
    """Per-image (D_n, G_n) and the output length sum(D_n * G_n) from well-formed offsets;
    (None, None, 0) otherwise, leaving the op to reject the offsets with a message."""
    if (dt_offsets.dim() != 1 or gt_offsets.dim() != 1 or dt_offsets.shape != gt_offsets.shape
            or dt_offsets.numel() == 0 or dt_offsets.dtype not in (torch.int32, torch.int64)
            or gt_offsets.dtype not in (torch.int32, torch.int64)):
        return None, None, 0
    d_counts = (dt_offsets[1:] - dt_offsets[:-1]).cpu().to(torch.int64)
    g_counts = (gt_offsets[1:] - gt_offsets[:-1]).cpu().to(torch.int64)
    if bool((d_counts < 0).any()) or bool((g_counts < 0).any()):
        return None, None, 0  # the op names the image where the offsets decrease
    return d_counts, g_counts, int((d_counts * g_counts).sum())


def oks_matrix(dt, gt, gt_areas, *, sigmas=None, gt_boxes=None, dt_areas=None, dt_counts=None,
               gt_counts=None, vis_thr: Optional[float] = None, mode: str = "coco",
               validate: bool = True) -> torch.Tensor:
    """OKS between every detection and every ground truth.

    Shapes (unbatched or batched over N images, padded):
      dt ``(D, K, 2|3)`` or ``(N, D, K, 2|3)``: detection keypoints (x, y[, score]) in pixels.
      gt ``(G, K, 3)`` or ``(N, G, K, 3)``: GT keypoints (x, y, v); v > 0 means labelled.
      gt_areas ``(G,)`` / ``(N, G)``; sigmas ``(K,)`` (default: COCO-17, pycocotools values).
      gt_boxes ``(G, 4)`` / ``(N, G, 4)`` xywh, used for GTs without any labelled keypoint.
      dt_counts / gt_counts ``(N,)``: valid rows per image of a padded batch.
      returns ``(D, G)`` or ``(N, D, G)``; padded cells are 0.

    ``mode='coco'`` is pycocotools ``COCOeval.computeOks``: e = d²/(2σ)²/(area+eps)/2 in that
    order, mean of exp(-e) over GT keypoints with v > 0 (numpy's pairwise summation, so
    float64 matches pycocotools to the last bit), and for a GT with no labelled keypoint the
    distance to its box expanded to [x-w, x+2w] × [y-h, y+2h] over all K (0 if no box given).
    ``mode='mmpose'`` is mmpose ``oks_iou``: area = (gt_area + dt_area)/2 and, with
    ``vis_thr``, the mean over keypoints whose GT and detection scores both exceed it.
    Computation runs in the input dtype (float32 or float64) on its device.

    Areas must be >= 0: a negative area turns exp(-e) into exp(+e), an OKS above 1, so with
    ``validate=True`` (the default) negative, NaN or infinite values, and sigmas <= 0, raise
    ValueError naming the argument (``validate=False`` skips these value checks, which read
    the tensors on the host). Counts must lie in [0, D] / [0, G]. The OKS is a matching
    score, not a loss: it has no gradient, and an input that requires grad (under grad mode)
    raises RuntimeError.
    """
    op = "pyhpe.oks_matrix"
    dt = as_float_tensor(dt, "dt")
    gt = as_float_tensor(gt, "gt", like=dt)
    gt_areas = as_float_tensor(gt_areas, "gt_areas", like=dt)
    if gt_boxes is not None:
        gt_boxes = as_float_tensor(gt_boxes, "gt_boxes", like=dt)
    if dt_areas is not None:
        dt_areas = as_float_tensor(dt_areas, "dt_areas", like=dt)
    unbatched = dt.dim() == 3
    if unbatched:
        if gt.dim() != 3:
            raise ValueError(f"{op}: 'gt' must be (G, K, 3) for unbatched 'dt' "
                             f"{tuple(dt.shape)}, got shape {tuple(gt.shape)}")
        if dt_counts is not None or gt_counts is not None:
            raise ValueError(f"{op}: dt_counts/gt_counts apply to batched (N, D, K, C) input")
        dt, gt, gt_areas = dt.unsqueeze(0), gt.unsqueeze(0), gt_areas.unsqueeze(0)
        gt_boxes = gt_boxes.unsqueeze(0) if gt_boxes is not None else None
        dt_areas = dt_areas.unsqueeze(0) if dt_areas is not None else None
    if dt.dim() != 4:
        raise ValueError(f"{op}: 'dt' must be (D, K, 2|3) or (N, D, K, 2|3), "
                         f"got shape {tuple(dt.shape)}")
    sig = _sigmas_for(op, sigmas, dt.shape[2], dt)
    if validate:
        _check_values(op, dt, gt, gt_areas, sig, gt_boxes, dt_areas)
    out = torch.ops.pyhpe.oks_matrix(dt, gt, gt_areas, sig, gt_boxes, dt_areas, dt_counts,
                                     gt_counts, vis_thr, mode)
    return out[0] if unbatched else out


def oks_matrix_ragged(dt, gt, gt_areas, dt_offsets, gt_offsets, *, sigmas=None, gt_boxes=None,
                      dt_areas=None, vis_thr: Optional[float] = None, mode: str = "coco",
                      validate: bool = True) -> RaggedOKS:
    """OKS matrices of many images whose detections/GTs are concatenated (ragged).

    dt ``(ΣD, K, 2|3)``, gt ``(ΣG, K, 3)``, gt_areas ``(ΣG,)``, offsets ``(N+1,)`` with
    image n owning rows ``offsets[n]:offsets[n+1]``. Returns :class:`RaggedOKS`: the flat
    concatenation of the N row-major ``(D_n, G_n)`` blocks and the per-image counts
    (``.matrices()`` gives the N matrices).
    Same semantics and the same checks as :func:`oks_matrix` (``validate`` included); the
    offsets must be int32/int64 ``(N+1,)``, start at 0, never decrease and end at the
    number of rows of ``dt`` / ``gt``.
    """
    op = "pyhpe.oks_matrix_ragged"
    dt = as_float_tensor(dt, "dt")
    gt = as_float_tensor(gt, "gt", like=dt)
    gt_areas = as_float_tensor(gt_areas, "gt_areas", like=dt)
    if gt_boxes is not None:
        gt_boxes = as_float_tensor(gt_boxes, "gt_boxes", like=dt)
    if dt_areas is not None:
        dt_areas = as_float_tensor(dt_areas, "dt_areas", like=dt)
    dt_offsets = torch.as_tensor(dt_offsets, device=dt.device)
    gt_offsets = torch.as_tensor(gt_offsets, device=dt.device)
    if dt.dim() != 3:
        raise ValueError(f"{op}: 'dt' must be (sum D, K, 2|3), got shape {tuple(dt.shape)}")
    sig = _sigmas_for(op, sigmas, dt.shape[1], dt)
    d_counts, g_counts, total = _offsets_total(dt_offsets, gt_offsets)
    if validate:
        _check_values(op, dt, gt, gt_areas, sig, gt_boxes, dt_areas)
    out = torch.ops.pyhpe.oks_matrix_ragged(dt, gt, gt_areas, sig, dt_offsets, gt_offsets, total,
                                            gt_boxes, dt_areas, vis_thr, mode)
    return RaggedOKS(out, d_counts, g_counts)


__all__ = ["oks_matrix", "oks_matrix_ragged"]
