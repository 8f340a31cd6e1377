"""Keypoint accuracy metrics (numpy): PCK, PCKh, PCP, the MPJPE family, and the official metric
of each dataset built on them: MPII PCKh per joint, Human3.6M MPJPE / P-MPJPE per action,
MPI-INF-3DHP PCK3D and AUC, CMU Panoptic multi-person MPJPE and AP, PoseTrack18 AP per
joint.

Semantics follow mmpose's ``mmpose/evaluation/functional/keypoint_eval.py``: PCK distances
are divided per axis by ``normalize`` (N, 2); keypoints whose mask is False or whose
normaliser is not positive are ignored; the average is over keypoints with at least one valid
sample. MPJPE alignment 'procrustes' is a similarity transform (rotation, uniform scale,
translation) fitted per sample by SVD, as in VideoPose3D/mmpose ``compute_similarity_transform``.
"""
from __future__ import annotations

import os
from typing import Dict, Sequence, Tuple

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


# ---------------------------------------------------------------------------- MPII
#: MPII joints (0 r_ankle, 1 r_knee, 2 r_hip, 3 l_hip, 4 l_knee, 5 l_ankle, 6 pelvis, 7 thorax,
#: 8 upper_neck, 9 head_top, 10 r_wrist, 11 r_elbow, 12 r_shoulder, 13 l_shoulder, 14 l_elbow,
#: 15 l_wrist) averaged into the rows of the official PCKh table.
MPII_PCKH_ROWS = (("Head", (9,)), ("Shoulder", (13, 12)), ("Elbow", (14, 11)),
                  ("Wrist", (15, 10)), ("Hip", (3, 2)), ("Knee", (4, 1)), ("Ankle", (5, 0)))


def mpii_head_sizes(head_boxes, sc_bias: float = 0.6) -> np.ndarray:
    """MPII's PCKh normaliser: ``sc_bias`` (0.6) x the diagonal of each head box.

    ``head_boxes``: ``(N, 2, 2)`` as ``[[x1, y1], [x2, y2]]`` per person (the official
    annotation's ``annorect.x1/y1/x2/y2``; ``gt_valid.mat``'s ``headboxes_src`` is this array
    transposed to ``(2, 2, N)``)."""
    boxes = np.asarray(head_boxes, dtype=np.float64)
    if boxes.ndim != 3 or boxes.shape[1:] != (2, 2):
        raise ValueError(f"mpii_head_sizes: 'head_boxes' must be (N, 2, 2), got {boxes.shape}")
    return sc_bias * np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=-1)


def mpii_pckh(pred, gt, visible, head_sizes=None, *, head_boxes=None, thr: float = 0.5,
              convention: str = "official") -> dict:
    """The MPII PCKh table: Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle, Mean, Mean@0.1 (%).

    pred, gt ``(N, 16, 2)`` in the same pixel convention (the official GT is 1-based: add 1 to
    0-based predictions); visible ``(N, 16)`` (not ``jnt_missing``); ``head_sizes`` ``(N,)`` or
    ``head_boxes`` ``(N, 2, 2)`` (:func:`mpii_head_sizes`, 0.6 x the box diagonal). A joint is
    correct when its error divided by the head size is within ``thr``; per-joint rates are over
    the joints' visible samples; Mean weights joints by their visible counts, without pelvis and
    thorax. ``convention``:

    * ``'official'``: the published evaluation (``evaluatePCKh`` as ported by HRNet and mmpose
      0.x ``MpiiDataset.evaluate``): ``<= thr``; Mean@0.1 is read at row 11 of the
      ``0:0.01:0.5`` threshold grid, i.e. at 0.11, as that code does.
    * ``'mmpose'``: mmpose 1.x ``MpiiPCKAccuracy``: ``< thr`` and Mean@0.1 at 0.1.

    The result also holds ``'per_joint'`` (16 rates, NaN for a joint never visible).
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1:] != (16, 2):
        raise ValueError(f"mpii_pckh: 'pred' and 'gt' must both be (N, 16, 2), got {pred.shape} "
                         f"and {gt.shape}")
    if (head_sizes is None) == (head_boxes is None):
        raise ValueError("mpii_pckh: give exactly one of 'head_sizes' and 'head_boxes'")
    if head_sizes is None:
        head_sizes = mpii_head_sizes(head_boxes)
    head_sizes = np.asarray(head_sizes, np.float64).reshape(-1)
    vis = np.asarray(visible).astype(bool)
    if vis.shape != pred.shape[:2] or head_sizes.shape != (pred.shape[0],):
        raise ValueError(f"mpii_pckh: 'visible' must be (N, 16) and head sizes (N,) for N = "
                         f"{pred.shape[0]}, got {vis.shape} and {head_sizes.shape}")
    if convention not in ("official", "mmpose"):
        raise ValueError(f"mpii_pckh: unknown convention {convention!r}; use 'official' or "
                         "'mmpose'")
    if np.any(vis & ~(head_sizes[:, None] > 0)):
        raise ValueError("mpii_pckh: every person with a visible joint needs a head size > 0")
    safe = np.where(head_sizes > 0, head_sizes, 1.0)
    err = np.linalg.norm(pred - gt, axis=-1) / safe[:, None]
    count = vis.sum(0)

    def rates(t):
        ok = (err <= t) if convention == "official" else (err < t)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * (ok & vis).sum(0) / count
    per_joint = rates(thr)
    grid = np.arange(0, 0.5 + 0.01, 0.01)
    at_01 = rates(grid[11] if convention == "official" else 0.1)
    weights = count.astype(np.float64).copy()
    weights[6:8] = 0  # pelvis, thorax
    total = weights.sum()
    if total == 0:
        raise ValueError("mpii_pckh: no visible joint to evaluate")
    ratio = weights / total
    out = {name: float(np.mean(per_joint[list(idx)])) for name, idx in MPII_PCKH_ROWS}
    used = ratio > 0
    out["Mean"] = float(np.sum(per_joint[used] * ratio[used]))
    out["Mean@0.1"] = float(np.sum(at_01[used] * ratio[used]))
    out["per_joint"] = per_joint
    return out



def load_mpii_gt_mat(path):
    """MPII's evaluation GT (``gt_valid.mat`` / mmpose's ``mpii_gt_val.mat``) as
    :func:`mpii_pckh` takes it: ``(gt (N, 16, 2), visible (N, 16), head_boxes (N, 2, 2))``,
    from its ``pos_gt_src`` (16, 2, N), ``jnt_missing`` (16, N) and ``headboxes_src``
    (2, 2, N). Coordinates stay 1-based as in the file (add 1 to 0-based predictions)."""
    from scipy.io import loadmat
    try:
        m = loadmat(path)
    except Exception as e:  # scipy raises several types for a file that is not a .mat
        raise ValueError(f"load_mpii_gt_mat: cannot read {os.fspath(path)!r} as a .mat file: "
                         f"{e}") from None
    missing = [k for k in ("pos_gt_src", "jnt_missing", "headboxes_src") if k not in m]
    if missing:
        raise ValueError(f"load_mpii_gt_mat: {os.fspath(path)!r} lacks {missing} (expected the "
                         "MPII evaluation GT: pos_gt_src, jnt_missing, headboxes_src)")
    gt = np.transpose(np.asarray(m["pos_gt_src"], np.float64), [2, 0, 1])
    visible = np.asarray(m["jnt_missing"]).T == 0
    boxes = np.transpose(np.asarray(m["headboxes_src"], np.float64), [2, 0, 1])
    if gt.shape[1:] != (16, 2) or visible.shape != gt.shape[:2] or boxes.shape[1:] != (2, 2):
        raise ValueError(f"load_mpii_gt_mat: unexpected shapes pos_gt_src {m['pos_gt_src'].shape}, "
                         f"jnt_missing {m['jnt_missing'].shape}, headboxes_src "
                         f"{m['headboxes_src'].shape}")
    return gt, visible, boxes

# ---------------------------------------------------------------------------- Human3.6M
def h36m_action(image_name: str) -> str:
    """The action category of a Human3.6M image or sequence name, as mmpose 0.x parses it:
    ``'S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg'`` -> ``'Directions'``,
    ``'S8_WalkDog_1.55011271_000026.jpg'`` -> ``'WalkDog'``."""
    base = os.path.basename(str(image_name))
    parts = base.split("_", 1)
    if len(parts) != 2 or not parts[0].startswith("S"):
        raise ValueError(f"h36m_action: {image_name!r} is not a Human3.6M name "
                         "('S<subject>_<Action>[_<n>].<camera>_<frame>.jpg')")
    return parts[1].split(".", 1)[0].split("_")[0]


_PROTOCOLS = {1: ("MPJPE", "none"), 2: ("P-MPJPE", "procrustes"), "n": ("N-MPJPE", "scale")}


def mpjpe_by_action(pred, gt, actions, mask=None, protocols=(1, 2)) -> Dict[str, float]:
    """Human3.6M MPJPE per action (mmpose's ``MPJPE`` metric): protocol 1 is MPJPE, protocol 2
    P-MPJPE (per-sample Procrustes alignment), ``'n'`` N-MPJPE.

    pred, gt ``(N, K, 3)`` (mm, usually root-relative); ``actions``: ``(N,)`` action names or
    image names (:func:`h36m_action` parses the latter); mask ``(N, K)``. Returns
    ``{'MPJPE': all samples, 'MPJPE_<Action>': that action's samples, ...}`` (and 'P-MPJPE',
    'P-MPJPE_<Action>', ...), each the mean over valid joints of the samples it covers.
    """
    pred, gt = _check(pred, gt, "mpjpe_by_action")
    names = [str(a) for a in actions]
    if len(names) != pred.shape[0]:
        raise ValueError(f"mpjpe_by_action: {len(names)} actions for {pred.shape[0]} samples")
    cats = np.array([h36m_action(a) if ("." in a or "/" in a) else a for a in names])
    mask = np.ones(pred.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    out = {}
    for p in protocols:
        if p not in _PROTOCOLS:
            raise ValueError(f"mpjpe_by_action: unknown protocol {p!r}; use 1, 2 or 'n'")
        name, align = _PROTOCOLS[p]
        out[name] = mpjpe(pred, gt, mask, align)
        for c in sorted(set(cats.tolist())):
            sel = cats == c
            out[f"{name}_{c}"] = mpjpe(pred[sel], gt[sel], mask[sel], align)
    return out


# ---------------------------------------------------------------------------- MPI-INF-3DHP
def _aligned(pred, gt, alignment):
    if alignment == "procrustes":
        return similarity_transform(pred, gt)
    if alignment != "none":
        raise ValueError(f"unknown alignment {alignment!r}; use 'none' or 'procrustes'")
    return pred


def pck3d(pred, gt, mask=None, threshold: float = 150.0, alignment: str = "none") -> float:
    """3D PCK (MPI-INF-3DHP, mmpose ``keypoint_3d_pck``): percent of valid joints whose error
    is below ``threshold`` (in the data's units: 150 for mm, 0.15 for m)."""
    pred, gt = _check(pred, gt, "pck3d")
    mask = np.ones(pred.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    err = np.linalg.norm(_aligned(pred, gt, alignment) - gt, axis=-1)
    return float((err < threshold)[mask].mean() * 100) if mask.any() else 0.0


def auc3d(pred, gt, mask=None, max_threshold: float = 150.0, num_thresholds: int = 31,
          alignment: str = "none") -> float:
    """AUC of the 3D PCK curve (MPI-INF-3DHP, mmpose ``keypoint_3d_auc``): the mean of
    :func:`pck3d` over ``linspace(0, max_threshold, num_thresholds)`` (0..150 mm, 31 values)."""
    pred, gt = _check(pred, gt, "auc3d")
    mask = np.ones(pred.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if not mask.any():
        return 0.0
    err = np.linalg.norm(_aligned(pred, gt, alignment) - gt, axis=-1)[mask]
    thrs = np.linspace(0.0, max_threshold, num_thresholds)
    return float(np.mean([(err < t).mean() for t in thrs]) * 100)


def mpi_inf_3dhp_metrics(pred, gt, mask=None, threshold: float = 150.0) -> Dict[str, float]:
    """MPI-INF-3DHP's metrics: ``PCK3D`` (@``threshold``), ``AUC`` (0..threshold, 31 steps),
    ``MPJPE``, and their Procrustes-aligned ``P-PCK3D``, ``P-AUC``, ``P-MPJPE``."""
    out = {}
    for prefix, align in (("", "none"), ("P-", "procrustes")):
        out[prefix + "PCK3D"] = pck3d(pred, gt, mask, threshold, align)
        out[prefix + "AUC"] = auc3d(pred, gt, mask, threshold, 31, align)
        out[prefix + "MPJPE"] = mpjpe(pred, gt, mask, align)
    return out


# ---------------------------------------------------------------------------- CMU Panoptic
def multiperson_mpjpe_ap(pred_poses, pred_scores, gt_poses, gt_visible=None,
                         ap_thresholds=(25, 50, 75, 100, 125, 150),
                         mpjpe_threshold: float = 500.0) -> Dict[str, float]:
    """Multi-person 3D evaluation of CMU Panoptic as VoxelPose and mmpose's Panoptic 3D
    dataset (``Body3DMviewDirectPanopticDataset.evaluate``, metrics 'mAP' and 'mpjpe') define
    it, from per-frame lists:

    ``pred_poses[i]`` ``(P, K, 3)`` with ``pred_scores[i]`` ``(P,)``; ``gt_poses[i]``
    ``(G, K, 3)`` with ``gt_visible[i]`` ``(G, K)`` (Panoptic: joint confidence > 0.1; GT
    people without a visible joint are not counted, nor are frames without any). Each
    prediction is paired with the GT person of its frame nearest in MPJPE over that GT's
    visible joints. Over all frames, by descending score (stable), a prediction whose MPJPE is
    below the threshold and whose GT is not yet taken is a true positive.

    Returns, with mmpose's names: ``'AP 25'`` ... ``'AP 150'`` (VOC area under the
    interpolated precision/recall curve, per ``ap_thresholds``), ``'mAP'``, ``'AR 25'`` ...
    (the recall reached), ``'mAR'``, ``'RECALL 500mm'`` (GT people with some prediction
    within ``mpjpe_threshold``) and ``'MPJPE 500mm'`` (mean MPJPE of the true positives at
    ``mpjpe_threshold``; ``inf`` when there are none).
    """
    n = len(gt_poses)
    if len(pred_poses) != n or len(pred_scores) != n:
        raise ValueError("multiperson_mpjpe_ap: pred_poses, pred_scores and gt_poses need one "
                         "entry per frame")
    errors, scores, gt_ids = [], [], []
    total_gt = 0
    for i in range(n):
        g = np.asarray(gt_poses[i], np.float64)
        if g.size == 0:
            continue
        vis = (np.ones(g.shape[:2], bool) if gt_visible is None
               else np.asarray(gt_visible[i], bool).reshape(g.shape[:2]))
        counted = vis.any(1)
        g, vis = g[counted], vis[counted]
        if len(g) == 0:
            continue
        p = np.asarray(pred_poses[i], np.float64).reshape(-1, *g.shape[1:])
        s = np.asarray(pred_scores[i], np.float64).reshape(-1)
        if len(s) != len(p):
            raise ValueError(f"multiperson_mpjpe_ap: frame {i}: {len(p)} poses, {len(s)} scores")
        for pose, score in zip(p, s):
            d = np.linalg.norm(pose[None] - g, axis=-1)  # (G, K)
            per_gt = np.array([d[j][vis[j]].mean() for j in range(len(g))])
            j = int(np.argmin(per_gt))
            errors.append(per_gt[j])
            scores.append(score)
            gt_ids.append(total_gt + j)
        total_gt += len(g)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    errors = np.asarray(errors, np.float64)[order]
    gt_ids = np.asarray(gt_ids, np.int64)[order]

    def true_positives(t):
        taken, tp = set(), np.zeros(len(errors), bool)
        for k, (e, g) in enumerate(zip(errors, gt_ids)):
            if e < t and g not in taken:
                tp[k] = True
                taken.add(int(g))
        return tp

    aps, ars = [], []
    for t in ap_thresholds:
        tp = true_positives(t)
        ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
        recall = ctp / (total_gt + 1e-5)
        precision = ctp / (ctp + cfp + 1e-5)
        aps.append(_voc_ap(recall, precision))
        ars.append(float(recall[-1]) if len(recall) else 0.0)
    out = {f"AP {t:g}": v for t, v in zip(ap_thresholds, aps)}
    out["mAP"] = float(np.mean(aps))
    out.update({f"AR {t:g}": v for t, v in zip(ap_thresholds, ars)})
    out["mAR"] = float(np.mean(ars))
    near = np.unique(gt_ids[errors < mpjpe_threshold])
    out[f"RECALL {mpjpe_threshold:g}mm"] = len(near) / total_gt if total_gt else 0.0
    tp = true_positives(mpjpe_threshold)
    out[f"MPJPE {mpjpe_threshold:g}mm"] = float(errors[tp].mean()) if tp.any() else float("inf")
    return out


# ---------------------------------------------------------------------------- PoseTrack18
#: poseval's 15 joints (its evaluation order) and, for each, the index among PoseTrack18's 17
#: COCO-ordered keypoints (the ears, 3 and 4, are not evaluated).
POSETRACK_JOINTS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee",
                    "left_ankle", "right_wrist", "right_elbow", "right_shoulder",
                    "left_shoulder", "left_elbow", "left_wrist", "head_bottom", "nose", "head_top")
POSETRACK_FROM_COCO17 = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9, 1, 0, 2)
#: The rows of poseval's AP table (as mmpose's PoseTrack18Metric names them): joints of
#: POSETRACK_JOINTS averaged per row.
POSETRACK_AP_ROWS = (("Head AP", (14, 12, 13)), ("Shou AP", (8, 9)), ("Elb AP", (7, 10)),
                     ("Wri AP", (6, 11)), ("Hip AP", (2, 3)), ("Knee AP", (1, 4)),
                     ("Ankl AP", (0, 5)))


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule: which of ``points`` (M, 2) lie inside ``polygon`` (V, 2)."""
    x, y = points[:, 0:1], points[:, 1:2]
    px, py = polygon[:, 0][None], polygon[:, 1][None]
    qx, qy = np.roll(px, -1, axis=1), np.roll(py, -1, axis=1)
    crosses = (py > y) != (qy > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = px + (y - py) * (qx - px) / (qy - py)
    return ((crosses & (x < xc)).sum(1) % 2 == 1)


def _posetrack_people(anns, polygons, with_scores: bool, where: str):
    """(points (P, 15, 2), present (P, 15), scores (P, 15), head sizes (P,)) of one frame,
    as poseval's conversion leaves them: a keypoint is absent when it is exactly (0, 0) with
    visibility 0, or inside an ignore region; a person left without points is dropped."""
    pts, has, sc, heads = [], [], [], []
    for i, a in enumerate(anns):
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        if kp.shape[0] != 17:
            raise ValueError(f"posetrack18_ap: {where}[{i}]['keypoints'] must hold 17 keypoints "
                             f"(PoseTrack18 order), got {kp.shape[0]}")
        kp = kp[list(POSETRACK_FROM_COCO17)]
        present = ~((kp[:, 0] == 0) & (kp[:, 1] == 0) & (kp[:, 2] == 0))
        for poly in polygons:
            present &= ~_inside(kp[:, :2], poly)
        if not present.any():
            continue
        if with_scores:
            scores = a.get("scores")
            scores = (np.asarray(scores, np.float64)[list(POSETRACK_FROM_COCO17)]
                      if scores is not None and len(scores) == 17 else kp[:, 2])
            heads.append(0.0)
        else:
            scores = np.zeros(15)
            if "bbox_head" not in a:
                raise ValueError(f"posetrack18_ap: {where}[{i}] has keypoints but no 'bbox_head' "
                                 "(the PCKh normaliser)")
            _, _, w, h = a["bbox_head"]
            heads.append(0.6 * float(np.linalg.norm([w, h])))
        pts.append(kp[:, :2])
        has.append(present)
        sc.append(scores)
    return (np.array(pts).reshape(-1, 15, 2), np.array(has, bool).reshape(-1, 15),
            np.array(sc, np.float64).reshape(-1, 15), np.array(heads, np.float64))


def _voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mrec = np.concatenate(([0.0], recall, [1.0]))
    for i in range(mpre.size - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def posetrack18_ap(gt, results, dist_thresh: float = 0.5) -> Dict[str, object]:
    """PoseTrack18 multi-person pose AP per joint, as poseval's ``evaluateAP`` computes it
    (the number mmpose's ``PoseTrack18Metric`` reports); tracking (MOTA) is not computed.

    ``gt``: a PoseTrack18 annotation dict (COCO layout: ``images`` with
    ``ignore_regions_x/y``, ``annotations`` with 17 ``keypoints`` and ``bbox_head``) or a list
    of them (one per video); ``results``: COCO-style results ``{image_id, keypoints (17 x 3),
    [scores (17)]}``; a keypoint's score is ``scores`` if given, else its third value.

    Per frame (frames with GT people only): keypoints inside ignore regions are removed from
    GT and predictions; the distance of each predicted to each GT joint is divided by the GT's
    head size (0.6 x head-box diagonal), a joint matches within ``dist_thresh``; each
    prediction keeps only its best GT by the fraction of matched GT joints, and each GT takes
    the prediction with the highest such fraction (> 0). Each predicted joint is then a true
    positive when it matched its assigned GT's joint. AP per joint over all frames: precision/
    recall by descending score and the VOC area (poseval's ``computeRPC``/``VOCap``), in %.

    Returns the table rows (``'Head AP'`` ... ``'Ankl AP'``, ``'Total AP'``: the mean over the
    joints with a defined AP) and ``'per_joint'`` (15 APs in :data:`POSETRACK_JOINTS` order).
    """
    datasets = gt if isinstance(gt, (list, tuple)) else [gt]
    by_image: Dict[object, list] = {}
    for i, r in enumerate(results):
        if "image_id" not in r or "keypoints" not in r:
            raise ValueError(f"posetrack18_ap: results[{i}] needs 'image_id' and 'keypoints'")
        by_image.setdefault(r["image_id"], []).append(r)
    gt_by_image: Dict[object, list] = {}
    frames = []
    for d in datasets:
        for a in d["annotations"]:
            gt_by_image.setdefault(a["image_id"], []).append(a)
        frames += d["images"]
    J = 15
    scores_all = [[] for _ in range(J)]
    labels_all = [[] for _ in range(J)]
    n_gt = np.zeros(J)
    for img in frames:
        gts = gt_by_image.get(img["id"], [])
        if not gts:
            continue  # poseval drops frames without GT people, with their predictions
        polygons = [np.stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)], 1)
                    for xs, ys in zip(img.get("ignore_regions_x", []),
                                      img.get("ignore_regions_y", [])) if len(xs) > 0]
        g_pts, g_has, _, heads = _posetrack_people(gts, polygons, False, "annotations")
        p_pts, p_has, p_sc, _ = _posetrack_people(by_image.get(img["id"], []), polygons, True,
                                                  "results")
        n_gt += g_has.sum(0)
        P, G = len(p_pts), len(g_pts)
        if P == 0:
            continue
        match = np.zeros((P, G, J), bool)
        if G:
            with np.errstate(divide="ignore", invalid="ignore"):
                dist = np.linalg.norm(p_pts[:, None] - g_pts[None], axis=-1) / heads[None, :, None]
            both = p_has[:, None] & g_has[None]
            match = both & (dist <= dist_thresh)
            n_joints = g_has.sum(1)
            pck = match.sum(2).astype(np.float64)
            pck = np.where(n_joints[None] > 0, pck / np.maximum(n_joints, 1)[None], pck)
            best = np.argmax(pck, axis=1)
            keep = np.zeros_like(pck)
            keep[np.arange(P), best] = pck[np.arange(P), best]
            pr_to_gt = np.argmax(keep, axis=0)
            pr_to_gt[keep.max(0) == 0] = -1
        for p in range(P):
            hit = np.flatnonzero(pr_to_gt == p) if G else np.array([], int)
            m = match[p, hit[0]] if len(hit) else np.zeros(J, bool)
            for j in np.flatnonzero(p_has[p]):
                scores_all[j].append(p_sc[p, j])
                labels_all[j].append(bool(m[j]))
    ap = np.zeros(J)
    for j in range(J):
        s = np.asarray(scores_all[j], np.float64)
        if len(s) == 0:
            continue
        order = s.argsort()[::-1]  # poseval's order, ties included
        tp = np.cumsum(np.asarray(labels_all[j], bool)[order])
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = tp / n_gt[j]
        precision = tp / np.arange(1, len(s) + 1)
        ap[j] = _voc_ap(recall, precision) * 100 if n_gt[j] > 0 else np.nan
    out: Dict[str, object] = {name: float(np.mean(ap[list(idx)]))
                              for name, idx in POSETRACK_AP_ROWS}
    out["Total AP"] = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
    out["per_joint"] = ap
    return out


__all__ = ["MPII_PCKH_ROWS", "POSETRACK_AP_ROWS", "POSETRACK_FROM_COCO17", "POSETRACK_JOINTS",
           "posetrack18_ap", "auc3d", "h36m_action", "load_mpii_gt_mat", "mpi_inf_3dhp_metrics",
           "mpii_head_sizes",
           "mpii_pckh", "mpjpe_by_action", "multiperson_mpjpe_ap", "normalized_distances",
           "pck_accuracy", "pck3d", "pckh_accuracy", "pcp_accuracy", "similarity_transform",
           "mpjpe", "p_mpjpe", "n_mpjpe"]
