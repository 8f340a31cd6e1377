"""Numpy oracles of the OKS family, written to follow the reference loops operation by
operation: pycocotools ``COCOeval.computeOks`` and mmpose ``oks_iou``."""
from __future__ import annotations

import numpy as np


def coco_oks_matrix(dt, gt, gt_areas, sigmas, gt_boxes=None):
    """(D, K, 2|3), (G, K, 3), (G,), (K,), (G, 4)|None -> (D, G) float64, as pycocotools."""
    dt = np.asarray(dt, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    vars = (sigmas * 2) ** 2
    k = len(sigmas)
    ious = np.zeros((len(dt), len(gt)))
    for j, g in enumerate(gt):
        xg, yg, vg = g[:, 0], g[:, 1], g[:, 2]
        k1 = np.count_nonzero(vg > 0)
        if k1 == 0 and gt_boxes is None:
            continue
        if gt_boxes is not None:
            bb = np.asarray(gt_boxes[j], dtype=np.float64)
            x0 = bb[0] - bb[2]; x1 = bb[0] + bb[2] * 2
            y0 = bb[1] - bb[3]; y1 = bb[1] + bb[3] * 2
        for i, d in enumerate(dt):
            xd, yd = d[:, 0], d[:, 1]
            if k1 > 0:
                dx = xd - xg
                dy = yd - yg
            else:
                z = np.zeros((k))
                dx = np.max((z, x0 - xd), axis=0) + np.max((z, xd - x1), axis=0)
                dy = np.max((z, y0 - yd), axis=0) + np.max((z, yd - y1), axis=0)
            e = (dx ** 2 + dy ** 2) / vars / (float(gt_areas[j]) + np.spacing(1)) / 2
            if k1 > 0:
                e = e[vg > 0]
            ious[i, j] = np.sum(np.exp(-e)) / e.shape[0]
    return ious


def mmpose_oks_iou(g, d, a_g, a_d, sigmas, vis_thr=None):
    """mmpose ``oks_iou``: one GT row (K*3,) against detections (N, K*3) -> (N,) float32."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    vars = (sigmas * 2) ** 2
    xg, yg, vg = g[0::3], g[1::3], g[2::3]
    ious = np.zeros(len(d), dtype=np.float32)
    for n_d in range(0, len(d)):
        xd, yd, vd = d[n_d, 0::3], d[n_d, 1::3], d[n_d, 2::3]
        dx = xd - xg
        dy = yd - yg
        e = (dx ** 2 + dy ** 2) / vars / ((a_g + a_d[n_d]) / 2 + np.spacing(1)) / 2
        if vis_thr is not None:
            ind = list((vg > vis_thr) & (vd > vis_thr))
            e = e[ind]
        ious[n_d] = np.sum(np.exp(-e)) / len(e) if len(e) != 0 else 0.0
    return ious


def mmpose_oks_matrix(dt, gt, gt_areas, dt_areas, sigmas, vis_thr=None):
    """(D, K, 3), (G, K, 3) -> (D, G) float64 in mmpose's arithmetic (before its float32 cast)."""
    dt = np.asarray(dt, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    vars = (sigmas * 2) ** 2
    out = np.zeros((len(dt), len(gt)))
    for j, g in enumerate(gt):
        for i, d in enumerate(dt):
            dx = d[:, 0] - g[:, 0]
            dy = d[:, 1] - g[:, 1]
            e = (dx ** 2 + dy ** 2) / vars / ((gt_areas[j] + dt_areas[i]) / 2 + np.spacing(1)) / 2
            if vis_thr is not None:
                e = e[(g[:, 2] > vis_thr) & (d[:, 2] > vis_thr)]
            out[i, j] = np.sum(np.exp(-e)) / len(e) if len(e) != 0 else 0.0
    return out
