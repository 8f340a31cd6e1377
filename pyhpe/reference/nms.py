"""Faithful numpy/torch reimplementations of the pose NMS references (test oracles).

* :func:`oks_iou`, :func:`oks_nms`, :func:`soft_oks_nms`: mmpose 1.x
  ``mmpose/evaluation/functional/nms.py`` (same numpy operations and dtypes: float32 ``ious``,
  ``scores.argsort()[::-1]``), taking arrays instead of mmpose's list of dicts.
  ``stable=True`` swaps numpy's default (introsort/SIMD, unstable) argsort for a stable one;
  that is the tie order pyhpe's kernels use when no explicit ``order`` is given.
* :func:`pose_nms_alphapose`: AlphaPose ``alphapose/utils/pPose_nms.py`` ``pose_nms_body``
  with ``get_parametric_distance``, ``PCK_match`` and ``p_merge_fast`` (torch ops, same order).
"""
from __future__ import annotations

import numpy as np
import torch

from ..keypoints import COCO_SIGMAS


def _argsort_desc(scores: np.ndarray, stable: bool) -> np.ndarray:
    if stable:
        return np.argsort(scores, kind="stable")[::-1]
    return scores.argsort()[::-1]


def oks_iou(g, d, a_g, a_d, sigmas=None, vis_thr=None) -> np.ndarray:
    """mmpose ``oks_iou``: g (K*3,), d (N, K*3) flattened [x, y, score] rows; float32 out."""
    if sigmas is None:
        sigmas = COCO_SIGMAS
    variances = (sigmas * 2) ** 2
    xg, yg, vg = g[0::3], g[1::3], g[2::3]
    ious = np.zeros(len(d), dtype=np.float32)
    for n in range(len(d)):
        xd, yd, vd = d[n, 0::3], d[n, 1::3], d[n, 2::3]
        dx = xd - xg
        dy = yd - yg
        e = (dx ** 2 + dy ** 2) / variances / ((a_g + a_d[n]) / 2 + np.spacing(1)) / 2
        if vis_thr is not None:
            e = e[list((vg > vis_thr) & (vd > vis_thr))]
        ious[n] = np.sum(np.exp(-e)) / len(e) if len(e) != 0 else 0.0
    return ious


def _pose_arrays(keypoints, scores, areas, score_per_joint):
    kpts = np.asarray(keypoints)
    kpts = kpts.reshape(len(kpts), -1)
    scores = np.asarray(scores)
    if score_per_joint:
        scores = np.array([s.mean() for s in scores])
    return kpts, scores, np.asarray(areas)


def oks_nms(keypoints, scores, areas, thr, sigmas=None, vis_thr=None, score_per_joint=False,
            stable=False) -> np.ndarray:
    """mmpose ``oks_nms``: keypoints (N, K, 3), scores (N,) or (N, K), areas (N,)."""
    if len(keypoints) == 0:
        return np.zeros(0, dtype=np.int64)
    kpts, scores, areas = _pose_arrays(keypoints, scores, areas, score_per_joint)
    order = _argsort_desc(scores, stable)
    keep = []
    while len(order) > 0:
        i = order[0]
        keep.append(i)
        ovr = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, vis_thr)
        order = order[np.where(ovr <= thr)[0] + 1]
    return np.array(keep, dtype=np.int64)


def _rescore(overlap, scores, thr, method="gaussian"):
    assert len(overlap) == len(scores)
    if method == "linear":
        inds = np.where(overlap >= thr)[0]
        scores[inds] = scores[inds] * (1 - overlap[inds])
    else:
        scores = scores * np.exp(-overlap ** 2 / thr)
    return scores


def soft_oks_nms(keypoints, scores, areas, thr, max_dets=20, sigmas=None, vis_thr=None,
                 score_per_joint=False, method="gaussian", stable=False) -> np.ndarray:
    """mmpose ``soft_oks_nms`` (mmpose always rescores 'gaussian'; 'linear' is its _rescore
    alternative)."""
    if len(keypoints) == 0:
        return np.zeros(0, dtype=np.int64)
    kpts, scores, areas = _pose_arrays(keypoints, scores, areas, score_per_joint)
    order = _argsort_desc(scores, stable)
    scores = scores[order]
    keep = np.zeros(max_dets, dtype=np.intp)
    keep_cnt = 0
    while len(order) > 0 and keep_cnt < max_dets:
        i = order[0]
        ovr = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, vis_thr)
        order = order[1:]
        scores = _rescore(ovr, scores[1:], thr, method)
        tmp = _argsort_desc(scores, stable)
        order = order[tmp]
        scores = scores[tmp]
        keep[keep_cnt] = i
        keep_cnt += 1
    return keep[:keep_cnt].astype(np.int64)


def oks_nms_batched(keypoints, scores, areas, offsets, fn=oks_nms, **kw) -> np.ndarray:
    """Run a per-image reference over a ragged batch; returns global row indices."""
    out = []
    for m in range(len(offsets) - 1):
        s, e = int(offsets[m]), int(offsets[m + 1])
        out.append(fn(keypoints[s:e], scores[s:e], areas[s:e], **kw) + s)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# AlphaPose parametric pose NMS.
ALPHAPOSE_DEFAULTS = dict(delta1=1.0, mu=1.7, delta2=2.65, gamma=22.48, score_thr=0.3,
                          match_thr=5.0, alpha=0.1, area_thr=0.0)


def _parametric_distance(i, all_preds, keypoint_scores, ref_dist, delta1, mu, delta2):
    pick_preds = all_preds[i]
    pred_scores = keypoint_scores[i]
    dist = torch.sqrt(torch.sum(torch.pow(pick_preds[None, :] - all_preds, 2), dim=2))
    mask = dist <= 1
    kp_nums = all_preds.size()[1]
    score_dists = torch.zeros(all_preds.shape[0], kp_nums)
    keypoint_scores.squeeze_()
    if keypoint_scores.dim() == 1:
        keypoint_scores.unsqueeze_(0)
    if pred_scores.dim() == 1:
        pred_scores.unsqueeze_(1)
    pred_scores = pred_scores.repeat(1, all_preds.shape[0]).transpose(0, 1)
    score_dists[mask] = (torch.tanh(pred_scores[mask] / delta1)
                         * torch.tanh(keypoint_scores[mask] / delta1)).to(score_dists.dtype)
    point_dist = torch.exp((-1) * dist / delta2)
    return torch.sum(score_dists, dim=1) + mu * torch.sum(point_dist, dim=1)


def _pck_match(pick_pred, all_preds, ref_dist):
    dist = torch.sqrt(torch.sum(torch.pow(pick_pred[None, :] - all_preds, 2), dim=2))
    ref_dist = min(ref_dist, 7)
    return torch.sum(dist / ref_dist <= 1, dim=1)


def _merge(ref_pose, cluster_preds, cluster_scores, ref_dist):
    dist = torch.sqrt(torch.sum(torch.pow(ref_pose[None, :] - cluster_preds, 2), dim=2))
    ref_dist = min(ref_dist, 15)
    mask = dist <= ref_dist
    if cluster_preds.dim() == 2:
        cluster_preds.unsqueeze_(0)
        cluster_scores.unsqueeze_(0)
    if mask.dim() == 1:
        mask.unsqueeze_(0)
    masked_scores = cluster_scores.mul(mask.to(cluster_scores.dtype).unsqueeze(-1))
    normed_scores = masked_scores / torch.sum(masked_scores, dim=0)
    final_pose = torch.mul(cluster_preds, normed_scores.repeat(1, 1, 2)).sum(dim=0)
    final_score = torch.mul(masked_scores, normed_scores).sum(dim=0)
    return final_pose, final_score


def pose_nms_alphapose(bboxes, pose_preds, pose_scores, delta1=1.0, mu=1.7, delta2=2.65,
                       gamma=22.48, score_thr=0.3, match_thr=5.0, alpha=0.1, area_thr=0.0):
    """AlphaPose ``pose_nms_body`` on one image.

    bboxes (n, 4) xyxy, pose_preds (n, K, 2), pose_scores (n, K) or (n, K, 1) torch tensors.
    Returns (merged poses (P, K, 2), merged scores (P, K), pick indices (P,) int64).
    """
    pose_preds = pose_preds.clone()
    pose_scores = pose_scores.clone().reshape(pose_preds.shape[0], pose_preds.shape[1], 1)
    K = pose_preds.shape[1]
    if pose_preds.shape[0] == 0:
        return (pose_preds.new_zeros((0, K, 2)), pose_scores.new_zeros((0, K)),
                torch.zeros(0, dtype=torch.int64))
    pose_scores[pose_scores == 0] = 1e-5
    ori_pose_preds = pose_preds.clone()
    ori_pose_scores = pose_scores.clone()
    widths = (bboxes[:, 2] - bboxes[:, 0]).numpy()
    heights = (bboxes[:, 3] - bboxes[:, 1]).numpy()
    ref_dists = alpha * np.maximum(widths, heights)
    human_scores = pose_scores.mean(dim=1)
    human_ids = np.arange(bboxes.shape[0])
    mask = np.ones(len(human_ids)).astype(bool)
    pick, merge_ids = [], []
    while mask.any():
        tensor_mask = torch.from_numpy(mask)
        pick_id = torch.argmax(human_scores[tensor_mask])
        pick.append(human_ids[mask][pick_id])
        ref_dist = ref_dists[human_ids[mask][pick_id]]
        simi = _parametric_distance(pick_id, pose_preds[tensor_mask], pose_scores[tensor_mask],
                                    ref_dist, delta1, mu, delta2)
        num_match = _pck_match(pose_preds[tensor_mask][pick_id], pose_preds[tensor_mask],
                               ref_dist)
        delete_ids = torch.from_numpy(np.arange(human_scores[tensor_mask].shape[0]))[
            (simi > gamma) | (num_match >= match_thr)]
        if delete_ids.shape[0] == 0:
            delete_ids = pick_id
        merge_ids.append(human_ids[mask][delete_ids])
        newmask = mask[mask]
        newmask[delete_ids] = False
        mask[mask] = newmask
    preds_pick = ori_pose_preds[pick]
    scores_pick = ori_pose_scores[pick]
    out_poses, out_scores, out_ids = [], [], []
    for j in range(len(pick)):
        ids = np.arange(K)
        if torch.max(scores_pick[j, ids, 0]) < score_thr:
            continue
        merge_id = merge_ids[j]
        merge_pose, merge_score = _merge(preds_pick[j], ori_pose_preds[merge_id],
                                         ori_pose_scores[merge_id], ref_dists[pick[j]])
        if torch.max(merge_score[ids]) < score_thr:
            continue
        xmax, xmin = max(merge_pose[:, 0]), min(merge_pose[:, 0])
        ymax, ymin = max(merge_pose[:, 1]), min(merge_pose[:, 1])
        if 1.5 ** 2 * (xmax - xmin) * (ymax - ymin) < area_thr:
            continue
        out_poses.append(merge_pose)
        out_scores.append(merge_score.reshape(K))
        out_ids.append(int(pick[j]))
    if not out_ids:
        return (pose_preds.new_zeros((0, K, 2)), pose_scores.new_zeros((0, K)),
                torch.zeros(0, dtype=torch.int64))
    return torch.stack(out_poses), torch.stack(out_scores), torch.tensor(out_ids)
