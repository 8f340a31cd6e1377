"""Evaluating a COCO-format results file the way each dataset defines its metric.

* :func:`evaluate_wholebody`: COCO-WholeBody as xtcocotools' ``COCOeval`` defines it: six
  evaluations (body, foot, face, lefthand, righthand, wholebody), each on its own keypoint
  arrays (``keypoints``, ``foot_kpts``, ``face_kpts``, ``lefthand_kpts``, ``righthand_kpts``,
  and all of them concatenated), with that part's slice of the 133 sigmas, GT areas for the OKS
  scale (``use_area=True``), the part's score (``foot_score`` ...) where a result has one and
  ``score`` otherwise; a GT is ignored for a part where none of its keypoints there is
  labelled, a result is dropped for a part where all its scores there are 0. Result areas
  (for the medium/large ranges) follow ``COCO.loadRes``: the first result's ``bbox`` decides,
  else the extent of the body ``keypoints``.
* :func:`evaluate_coco_file`: one entry point for ``pyhpe eval``: sigmas from a keypoint-set
  name (:func:`pyhpe.keypoints.get_keypoint_set`), the dataset's default mode
  (:data:`DEFAULT_MODES`), an empty results list answered with zeros and a note, and, on
  request, the same numbers from the matching reference (pycocotools or xtcocotools).
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Sequence

import numpy as np

from .coco import COCO_STAT_NAMES, EVAL_MODES, COCOKeypointEval, _load

#: COCO-WholeBody parts in xtcocotools' order: (name, xtcocotools iouType, result/GT field,
#: score field, first keypoint, end) over the 133 keypoints (body 17, feet 6, face 68, hands 21).
WHOLEBODY_PARTS = (
    ("body", "keypoints_body", "keypoints", "score", 0, 17),
    ("foot", "keypoints_foot", "foot_kpts", "foot_score", 17, 23),
    ("face", "keypoints_face", "face_kpts", "face_score", 23, 91),
    ("lefthand", "keypoints_lefthand", "lefthand_kpts", "lefthand_score", 91, 112),
    ("righthand", "keypoints_righthand", "righthand_kpts", "righthand_score", 112, 133),
    ("wholebody", "keypoints_wholebody", None, "wholebody_score", 0, 133),
)
_WB_FIELDS = tuple(p[2] for p in WHOLEBODY_PARTS[:5])

#: Every mode :func:`evaluate_coco_file` knows: the COCO modes (:data:`EVAL_MODES`) and
#: 'wholebody'.
FILE_MODES = tuple(EVAL_MODES) + ("wholebody",)

#: A keypoint set's default evaluation mode (its dataset's official protocol); sets not named
#: here use 'pycocotools'.
DEFAULT_MODES = {"crowdpose14": "crowdpose", "crowdpose": "crowdpose",
                 "aic14": "xtcocotools_noarea", "aic": "xtcocotools_noarea",
                 "coco_wholebody133": "wholebody", "coco_wholebody": "wholebody"}

#: The reference each mode is compared against.
REFERENCES = {"pycocotools": "pycocotools", "xtcocotools": "xtcocotools",
              "xtcocotools_noarea": "xtcocotools", "crowdpose": "xtcocotools",
              "wholebody": "xtcocotools"}


class _Loaded:
    """A results set prepared as ``COCO.loadRes`` would leave it (ids and areas fixed)."""

    def __init__(self, anns):
        self.dataset = {"annotations": anns}


def _results_list(results) -> list:
    data = _load(results, "results")
    if hasattr(results, "dataset") and isinstance(getattr(results, "dataset"), dict):
        data = data.get("annotations", [])
    if not isinstance(data, list):
        raise TypeError(f"pyhpe.eval: results must be a list of result dicts, got "
                        f"{type(data).__name__}")
    return data


def _part(ann: dict, field, where: str) -> list:
    if field is None:
        return [v for f in _WB_FIELDS for v in _part(ann, f, where)]
    if field not in ann:
        raise KeyError(f"pyhpe.eval.evaluate_wholebody: {where} has no {field!r} (COCO-WholeBody "
                       f"annotations and results carry {', '.join(_WB_FIELDS)})")
    return list(ann[field])


def _wholebody_sigmas(sigmas):
    if sigmas is None:
        from ..keypoints import get_keypoint_set
        sigmas = get_keypoint_set("coco_wholebody133").sigmas
    sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if sig.shape != (133,):
        raise ValueError(f"pyhpe.eval.evaluate_wholebody: 'sigmas' must be the 133 COCO-WholeBody "
                         f"sigmas, got {sig.shape[0]}")
    return sig


def wholebody_part_inputs(gt, results, part: str):
    """``(gt_dict, loaded_results)`` for one COCO-WholeBody part, in the form
    :class:`COCOKeypointEval` takes: the part's keypoints moved into ``keypoints``, each
    result's part score into ``score``, result ids and areas fixed as ``COCO.loadRes`` fixes
    them on the original results."""
    names = [p[0] for p in WHOLEBODY_PARTS]
    if part not in names:
        raise ValueError(f"pyhpe.eval: unknown COCO-WholeBody part {part!r}; one of {names}")
    _, _, field, score_key, _, _ = WHOLEBODY_PARTS[names.index(part)]
    gt_data = _load(gt, "gt")
    if not isinstance(gt_data, dict):
        raise TypeError("pyhpe.eval.evaluate_wholebody: 'gt' must be a COCO dataset dict")
    dts = _results_list(results)
    gt_anns = []
    for i, a in enumerate(gt_data.get("annotations", [])):
        gt_anns.append(dict(a, keypoints=_part(a, field, f"annotations[{i}]")))
    gt_part = dict(gt_data, annotations=gt_anns)
    if dts:
        gt_images = {img["id"] for img in gt_data.get("images", [])}
        missing = [r.get("image_id") for r in dts if r.get("image_id") not in gt_images]
        if missing:
            raise ValueError(f"pyhpe.eval.evaluate_wholebody: results do not correspond to the GT "
                             f"set (image_id {missing[0]!r} is not among the GT images)")
        first = dts[0]
        use_bbox = "bbox" in first and not first["bbox"] == []
    dt_anns = []
    for i, r in enumerate(dts):
        where = f"results[{i}]"
        if "score" not in r:
            raise ValueError(f"pyhpe.eval.evaluate_wholebody: {where} has no 'score'")
        if use_bbox:
            if "bbox" not in r or len(r["bbox"]) != 4:
                raise ValueError(f"pyhpe.eval.evaluate_wholebody: the first result has a 'bbox', "
                                 f"so (as in COCO.loadRes) {where} needs a 4-number 'bbox'")
            area = float(r["bbox"][2]) * float(r["bbox"][3])
        else:
            body = np.asarray(_part(r, "keypoints", where), dtype=np.float64)
            x, y = body[0::3], body[1::3]
            area = float((x.max() - x.min()) * (y.max() - y.min())) if body.size else 0.0
        dt_anns.append({"image_id": r["image_id"], "category_id": r["category_id"], "id": i + 1,
                        "area": area, "keypoints": _part(r, field, where),
                        "score": r.get(score_key, r["score"])})
    return gt_part, _Loaded(dt_anns)


def evaluate_wholebody(gt, results, sigmas: Optional[Sequence[float]] = None, *,
                       use_area: bool = True) -> Dict[str, Dict[str, float]]:
    """COCO-WholeBody AP/AR per part, equal to xtcocotools' six ``COCOeval`` runs.

    ``gt``: COCO-WholeBody annotations (path or dict) with ``foot_kpts``, ``face_kpts``,
    ``lefthand_kpts``, ``righthand_kpts`` beside ``keypoints``; ``results``: a path or list of
    results with the same fields and ``score`` (optional per-part scores ``foot_score`` ...).
    ``sigmas``: the 133 sigmas (default: the 'coco_wholebody133' keypoint set's). Returns
    ``{part: {stat name: value}}`` for body, foot, face, lefthand, righthand, wholebody.
    """
    sig = _wholebody_sigmas(sigmas)
    gt_data = _load(gt, "gt")
    dts = _results_list(results)
    out = {}
    for name, _, _, _, a, b in WHOLEBODY_PARTS:
        gt_part, dt_part = wholebody_part_inputs(gt_data, dts, name)
        stats = COCOKeypointEval(gt_part, dt_part, sigmas=sig[a:b], mode="xtcocotools",
                                 use_area=use_area).run()
        out[name] = {k: float(v) for k, v in zip(COCO_STAT_NAMES, stats)}
    return out


def _reference_stats(gt, results, mode: str, sigmas, use_area: bool):
    """The reference's own numbers for ``mode``, shaped like :func:`evaluate_coco_file`'s."""
    from ..testing.cocoeval import pycocotools_stats, xtcocotools_stats
    if mode == "pycocotools":
        return dict(zip(COCO_STAT_NAMES, map(float, pycocotools_stats(gt, results, sigmas))))
    if mode == "wholebody":
        out = {}
        for name, iou_type, _, _, a, b in WHOLEBODY_PARTS:
            s = xtcocotools_stats(gt, results, sigmas[a:b], iou_type, use_area=use_area)
            out[name] = dict(zip(COCO_STAT_NAMES, map(float, s)))
        return out
    if mode == "crowdpose":
        s = xtcocotools_stats(gt, results, sigmas, "keypoints_crowd", use_area=False)
        return dict(zip(_CROWD_NAMES, map(float, s)))
    return dict(zip(COCO_STAT_NAMES, map(float, xtcocotools_stats(gt, results, sigmas,
                                                                   "keypoints",
                                                                   use_area=use_area))))


_CROWD_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")


def _keypoint_set_of(gt_data: dict) -> str:
    """The registered keypoint set a COCO GT is annotated with: COCO-WholeBody when its
    annotations carry ``foot_kpts``, else the set whose names match its keypoint category
    (:func:`pyhpe.keypoints.keypoint_set_from_coco`), else 'coco17'."""
    from ..keypoints import get_keypoint_set, keypoint_set_from_coco
    anns = gt_data.get("annotations") or [{}]
    if isinstance(anns[0], dict) and "foot_kpts" in anns[0]:
        return "coco_wholebody133"
    try:
        kset = keypoint_set_from_coco(gt_data)
        if get_keypoint_set(kset.name) is kset:
            return kset.name
    except (KeyError, TypeError, ValueError, IndexError):
        pass
    return "coco17"


def evaluate_coco_file(gt, results, keypoint_set: Optional[str] = None, mode: Optional[str] = None,
                       *, sigmas: Optional[Sequence[float]] = None,
                       compare_reference: bool = False) -> dict:
    """Evaluate a COCO-format results file (or list) against GT, as ``pyhpe eval`` does.

    Args:
        gt: GT annotations: json path or COCO dict.
        results: results json path or list of result dicts.
        keypoint_set: a keypoint-set name for :func:`pyhpe.keypoints.get_keypoint_set`
            ('coco17', 'crowdpose14', 'coco_wholebody133', ...): its sigmas, and its dataset's
            default mode (:data:`DEFAULT_MODES`). Default: 'crowdpose14' /
            'coco_wholebody133' when ``mode`` is 'crowdpose' / 'wholebody', else the set the
            GT is annotated with (COCO-WholeBody when annotations carry ``foot_kpts``, a
            registered set whose names match the GT's keypoint category, else 'coco17').
        mode: one of :data:`FILE_MODES`; default: the keypoint set's.
        sigmas: explicit OKS sigmas; override the set's.
        compare_reference: also run the reference of the mode (:data:`REFERENCES`) and report
            whether its numbers are identical.

    Returns a dict: ``mode``, ``keypoint_set``, ``num_results``, ``stats`` (``{name: value}``,
    or ``{part: {name: value}}`` for 'wholebody'), ``note`` (a sentence, or None: set when the
    results are empty), and with ``compare_reference``: ``reference`` (its name),
    ``reference_stats`` and ``identical`` (None where the reference is not installed, with the
    reason in ``reference_note``). Unreadable inputs raise ValueError/TypeError/KeyError with a
    message naming the problem. :func:`format_eval_report` prints it.
    """
    from ..keypoints import get_keypoint_set
    if mode is not None and mode not in FILE_MODES:
        raise ValueError(f"pyhpe.eval: unknown mode {mode!r}; one of {list(FILE_MODES)}")
    try:
        gt_data = _load(gt, "gt")
    except (OSError, ValueError) as e:
        raise ValueError(f"pyhpe.eval: cannot read GT {os.fspath(gt)!r}: {e}") from None
    if not isinstance(gt_data, dict):
        raise TypeError("pyhpe.eval: 'gt' must be a COCO dataset (a dict), got a "
                        f"{type(gt_data).__name__}")
    if keypoint_set is None and sigmas is None:
        keypoint_set = {"crowdpose": "crowdpose14", "wholebody": "coco_wholebody133"}.get(
            mode) or _keypoint_set_of(gt_data)
    if mode is None:
        mode = DEFAULT_MODES.get(keypoint_set, "pycocotools") if keypoint_set else "pycocotools"
    if sigmas is None:
        sigmas = get_keypoint_set(keypoint_set).sigmas
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if isinstance(results, (str, os.PathLike)):
        try:
            with open(results) as f:
                results = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"pyhpe.eval: cannot read results {os.fspath(results)!r}: "
                             f"{e}") from None
    dts = _results_list(results)
    report = {"mode": mode, "keypoint_set": keypoint_set, "num_results": len(dts), "note": None}
    if not dts:
        report["note"] = ("the results hold no detections: AP and AR are 0 wherever the GT has "
                          "people (-1 where it has none)")
    if mode == "wholebody":
        use_area = True
        report["stats"] = evaluate_wholebody(gt_data, dts, sigmas)
    else:
        ev_mode, use_area = EVAL_MODES[mode]
        ev = COCOKeypointEval(gt_data, dts, sigmas=sigmas, mode=ev_mode, use_area=use_area)
        ev.run()
        report["stats"] = {k: float(v) for k, v in zip(ev.stat_names, ev.stats)}
    if compare_reference:
        ref = REFERENCES[mode]
        report["reference"] = ref
        try:
            report["reference_stats"] = _reference_stats(gt_data, dts, mode, sigmas, use_area)
        except ImportError as e:
            report["reference_stats"], report["identical"] = None, None
            report["reference_note"] = f"{ref} is not installed ({e})"
            return report
        report["identical"] = _flatten(report["reference_stats"]) == _flatten(report["stats"])
        report["reference_note"] = None
    return report


def _flatten(stats) -> list:
    out = []
    for k, v in stats.items():
        out += [(k, *x) for x in _flatten(v)] if isinstance(v, dict) else [(k, v)]
    return out


def format_eval_report(report: dict) -> str:
    """Printable lines of an :func:`evaluate_coco_file` report."""
    lines = [f"mode {report['mode']}" + (f", keypoints {report['keypoint_set']}"
                                          if report.get("keypoint_set") else "")
             + f", {report['num_results']} results"]
    if report.get("note"):
        lines.append(f"note: {report['note']}")

    def block(stats, indent=" "):
        return [f"{indent}{k:10s} = {v:0.3f}" for k, v in stats.items()]
    stats = report["stats"]
    if stats and all(isinstance(v, dict) for v in stats.values()):  # one row per part
        names = list(next(iter(stats.values())))
        lines.append(" " + " " * 10 + "".join(f"{n:>7s}" for n in names))
        for part, v in stats.items():
            lines.append(f" {part:10s}" + "".join(f"{v[n]:7.3f}" for n in names))
    else:
        lines += block(stats)
    if "reference" in report:
        if report["identical"] is None:
            lines.append(f"{report['reference']} comparison: not run: {report['reference_note']}")
        else:
            lines.append(f"{report['reference']} stats identical: {report['identical']}")
            if not report["identical"]:
                lines.append(f"{report['reference']} stats: " + " ".join(
                    f"{x[-1]:.6f}" for x in _flatten(report["reference_stats"])))
    return "\n".join(lines)


__all__ = ["DEFAULT_MODES", "FILE_MODES", "REFERENCES", "WHOLEBODY_PARTS", "evaluate_coco_file",
           "evaluate_wholebody", "format_eval_report", "wholebody_part_inputs"]
