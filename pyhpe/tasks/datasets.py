"""The 2-D datasets the image tasks read, and each one's official top-down metric, in one place.

``data.format`` of an image task names the annotation file's own format (:data:`FORMATS`); it
is read by that dataset's reader (:func:`pyhpe.data.load_coco` with ``dataset=``) into a COCO
dict. :data:`DATASET_METRICS` says how the top-down task evaluates each format by default:

* 'coco' (COCO, OCHuman, CrowdPose, AIC, Halpe): COCO keypoint AP in the mode of
  :func:`pyhpe.tasks.common.coco_eval_mode` (pycocotools where the GT has areas; CrowdPose's
  easy/medium/hard AP where images carry ``crowdIndex``; xtcocotools without areas for AIC);
* 'wholebody' (COCO-WholeBody): the six xtcocotools evaluations (body, foot, face, left hand,
  right hand, whole body) of :func:`pyhpe.eval.cocofile.evaluate_coco_file`, the 133-point
  predictions split into the part arrays; stats named ``AP`` ... for the whole body and
  ``body_AP``, ``foot_AP`` ... for the parts;
* 'pckh' (MPII): PCKh@0.5 per joint row, mean and mean PCKh@0.1 (:func:`pyhpe.eval.metrics.mpii_pckh`,
  official convention) with each annotation's ``head_size`` (the head box of the json's
  ``headbox`` or the ``.mat`` release); an annotation without one falls back to the length of
  its upper-neck -> head-top segment (the head segment PCKh is defined on);
* 'pck' (sub-JHMDB): PCK@0.2 of the box size (max of its width and height) and tPCK@0.2 of
  the torso, per joint row and mean, as mmpose's JHMDB evaluation reports them (fractions);
* 'posetrack18': poseval's multi-person AP per joint (:func:`pyhpe.eval.metrics.posetrack18_ap`).

PCK metrics compare each prediction with the annotation its box came from, so they need the GT
boxes; the COCO-style metrics also work on a detector's boxes (``eval.bbox_file``).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from ..engine.config import ConfigError

#: data.format -> (reader dataset name for load_coco, or None for a plain COCO dict;
#: keyword arguments of that reader)
FORMATS = {"coco": (None, {}), "ochuman": ("ochuman", {}), "crowdpose": ("crowdpose", {}),
           "aic": ("aic", {}), "halpe": ("halpe", {}), "halpe136": ("halpe", {}),
           "halpe26": ("halpe", {"body_only": True}), "coco_wholebody": ("coco_wholebody", {}),
           "mpii": ("mpii", {}), "posetrack18": ("posetrack18", {}), "jhmdb": ("jhmdb", {})}

#: data.format -> the kind of its official top-down metric
DATASET_METRICS = {"coco": "coco", "ochuman": "coco", "crowdpose": "coco", "aic": "coco",
                   "halpe": "coco", "halpe136": "coco", "halpe26": "coco",
                   "coco_wholebody": "wholebody", "mpii": "pckh", "jhmdb": "pck",
                   "posetrack18": "posetrack18"}

#: metric kind -> (the stat a run is judged by (best checkpoint), whether it needs GT boxes)
METRIC_KINDS = {"coco": ("AP", False), "wholebody": ("AP", False), "pckh": ("PCKh", True),
                "pck": ("PCK", True), "posetrack18": ("Total AP", False)}

#: sub-JHMDB's rows as mmpose reports them (keypoint indices of :data:`pyhpe.keypoints.JHMDB15`)
JHMDB_PCK_ROWS = (("Head", (2,)), ("Sho", (3, 4)), ("Elb", (7, 8)), ("Wri", (11, 12)),
                  ("Hip", (5, 6)), ("Knee", (9, 10)), ("Ank", (13, 14)))


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"data.format: one of {sorted(FORMATS)}, got {fmt!r}")
    return fmt


def read_annotations(path, fmt: str = "coco") -> Dict:
    """The COCO dict of an annotation file in the format ``fmt`` (:data:`FORMATS`)."""
    from ..data import load_coco
    dataset, kwargs = FORMATS[check_format(fmt)]
    if dataset is None:
        return load_coco(path)
    if kwargs:
        from ..data.readers import READERS
        return READERS[dataset](path, **kwargs)
    return load_coco(path, dataset=dataset)


def metric_kind(fmt: str) -> str:
    return DATASET_METRICS[check_format(fmt)]


def _gt_by_record(gt: Dict, records: List[Dict]) -> List[Dict]:
    anns = {a.get("id"): a for a in gt["annotations"]}
    out = []
    for r in records:
        if r.get("ann_id") not in anns:
            raise ValueError("PCK evaluation: a validation record has no GT annotation (PCK "
                             "needs the GT boxes, not a detection file)")
        out.append(anns[r["ann_id"]])
    return out


def _pred_gt(results: List[Dict], anns: List[Dict]):
    pred = np.array([np.asarray(r["keypoints"], np.float64).reshape(-1, 3)[:, :2] for r in results])
    kps = np.array([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in anns])
    return pred, kps[..., :2], kps[..., 2] > 0


def mpii_stats(results: List[Dict], gt: Dict, records: List[Dict]) -> Dict[str, float]:
    """MPII PCKh (%) of top-down results on the GT boxes (``results[i]`` from ``records[i]``)."""
    from ..eval.metrics import MPII_PCKH_ROWS, mpii_pckh
    anns = _gt_by_record(gt, records)
    pred, gtk, vis = _pred_gt(results, anns)
    heads = []
    for a, k in zip(anns, gtk):
        h = a.get("head_size")
        heads.append(float(h) if h else float(np.linalg.norm(k[9] - k[8])))
    vis &= (np.asarray(heads) > 0)[:, None]
    t = mpii_pckh(pred, gtk, vis, np.asarray(heads))
    out = {name: t[name] for name, _ in MPII_PCKH_ROWS}
    out["PCKh"] = t["Mean"]
    out["PCKh@0.1"] = t["Mean@0.1"]
    return {k: float(v) for k, v in out.items()}


def jhmdb_stats(results: List[Dict], gt: Dict, records: List[Dict], thr: float = 0.2) -> Dict[str, float]:
    """sub-JHMDB as mmpose's JHMDB evaluation reports it (fractions): PCK@``thr`` of the box
    size (the larger of its width and height) per row and ``PCK`` (mean over keypoints), and
    tPCK@``thr`` of the torso (left shoulder to right hip; from the prediction where the GT's
    is under 1 px): ``Head tPCK`` ... ``tPCK``."""
    from ..eval.metrics import pck_accuracy
    anns = _gt_by_record(gt, records)
    pred, gtk, vis = _pred_gt(results, anns)
    size = np.array([max(float(a["bbox"][2]), float(a["bbox"][3])) for a in anns])
    torso = np.linalg.norm(gtk[:, 4] - gtk[:, 5], axis=-1)
    torso = np.where(torso < 1, np.linalg.norm(pred[:, 4] - pred[:, 5], axis=-1), torso)
    out = {}
    for suffix, norm in (("PCK", size), ("tPCK", torso)):
        acc, avg, _ = pck_accuracy(pred, gtk, vis, thr, np.stack([norm, norm], 1))
        out.update({f"{name} {suffix}": float(np.mean([acc[i] for i in idx]))
                    for name, idx in JHMDB_PCK_ROWS})
        out[suffix] = float(avg)
    return out


def wholebody_stats(results: List[Dict], gt: Dict, sigmas) -> Dict[str, float]:
    """COCO-WholeBody AP/AR of 133-point results: whole-body stats by their COCO names, the
    parts' as ``<part>_<name>``."""
    from ..data.readers import WHOLEBODY_PART_KEYS, split_wholebody
    from ..eval.cocofile import evaluate_coco_file
    anns = [dict(a, keypoints=a.get("body_keypoints", a["keypoints"])) for a in gt["annotations"]]
    parts = dict(WHOLEBODY_PART_KEYS)
    dts = []
    for r in results:
        split = split_wholebody(r["keypoints"])
        d = dict(r, keypoints=split["body"].tolist())
        d.update({key: split[part].tolist() for key, part in parts.items()})
        dts.append(d)
    stats = evaluate_coco_file(dict(gt, annotations=anns), dts, "coco_wholebody133",
                               mode="wholebody", sigmas=sigmas)["stats"]
    out = {k: float(v) for k, v in stats["wholebody"].items()}
    for part, s in stats.items():
        if part != "wholebody":
            out.update({f"{part}_{k}": float(v) for k, v in s.items()})
    return out


def posetrack18_stats(results: List[Dict], gt: Dict) -> Dict[str, float]:
    """PoseTrack18 AP per joint row and ``Total AP`` (%)."""
    from ..eval.metrics import posetrack18_ap
    t = posetrack18_ap(gt, results)
    return {k: float(v) for k, v in t.items() if k != "per_joint"}


def dataset_stats(kind: str, results: List[Dict], gt: Dict, records: Optional[List[Dict]],
                  coco_stats) -> Dict[str, float]:
    """The official stats of ``kind`` (:data:`METRIC_KINDS`); 'coco' through ``coco_stats``
    (the task's COCO evaluation)."""
    if kind == "coco":
        return coco_stats(results)
    if kind == "wholebody":
        from ..keypoints import get_keypoint_set
        return wholebody_stats(results, gt, get_keypoint_set("coco_wholebody133").sigmas)
    if kind == "pckh":
        return mpii_stats(results, gt, records)
    if kind == "pck":
        return jhmdb_stats(results, gt, records)
    if kind == "posetrack18":
        return posetrack18_stats(results, gt)
    raise ValueError(f"unknown metric kind {kind!r}")


__all__ = ["DATASET_METRICS", "FORMATS", "JHMDB_PCK_ROWS", "METRIC_KINDS", "check_format",
           "dataset_stats", "jhmdb_stats", "metric_kind", "mpii_stats", "posetrack18_stats",
           "read_annotations", "wholebody_stats"]
