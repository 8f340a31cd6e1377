"""The reference COCO keypoint evaluators, run silently: pycocotools (the definition of the
numbers pyhpe reproduces), xtcocotools (its variants: no-area OKS, CrowdPose, COCO-WholeBody)
and faster-coco-eval. Tests, benchmarks, the demo and ``pyhpe eval
--check`` compare :class:`pyhpe.eval.COCOKeypointEval` against these.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
import tempfile
import types

import numpy as np

from ..eval.coco import _load


def _inputs(gt, results, copy_inputs: bool):
    gt_data, dt_data = _load(gt, "gt"), _load(results, "results")
    if not isinstance(gt_data, dict):
        raise TypeError(f"pycocotools_stats: 'gt' must be a COCO dataset dict, got "
                        f"{type(gt_data).__name__}")
    if not isinstance(dt_data, list):
        raise TypeError(f"pycocotools_stats: 'results' must be a list of result dicts, got "
                        f"{type(dt_data).__name__}")
    if copy_inputs:
        # COCOeval writes 'ignore' into GT annotations and loadRes adds area/bbox/id to results
        gt_data, dt_data = copy.deepcopy(gt_data), copy.deepcopy(dt_data)
    return gt_data, dt_data


def pycocotools_eval(gt, results, sigmas=None, *, copy_inputs: bool = True):
    """A finished pycocotools ``COCOeval(iouType='keypoints')`` (evaluate, accumulate and
    summarize run with stdout silenced), for tests that inspect ``ious``/``evalImgs``/``eval``.

    ``gt``: COCO dict, json path or pycocotools ``COCO``; ``results``: list of result dicts or
    a json path. Inputs are deep-copied unless ``copy_inputs=False``. An empty results list is
    evaluated as pyhpe does (no detections: AP 0 where there is GT) instead of failing inside
    ``loadRes``.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_data, dt_data = _inputs(gt, results, copy_inputs)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt_data
        coco.createIndex()
        coco_dt = _load_results(COCO, coco, gt_data, dt_data)
        ev = COCOeval(coco, coco_dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def pycocotools_stats(gt, results, sigmas=None, *, copy_inputs: bool = True) -> np.ndarray:
    """The 10 keypoint stats (AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl) pycocotools
    itself computes, float64 ``(10,)``; see :func:`pycocotools_eval`."""
    return np.asarray(pycocotools_eval(gt, results, sigmas, copy_inputs=copy_inputs).stats,
                      dtype=np.float64)


def faster_coco_eval_stats(gt, results, sigmas=None, *, copy_inputs: bool = True) -> np.ndarray:
    """The 10 keypoint stats of faster-coco-eval's ``COCOeval_faster``, float64 ``(10,)``.
    An empty results list raises (faster-coco-eval cannot load one)."""
    from faster_coco_eval import COCO, COCOeval_faster

    gt_data, dt_data = _inputs(gt, results, copy_inputs)
    if not dt_data:
        raise ValueError("faster_coco_eval_stats: 'results' is empty; faster-coco-eval cannot "
                         "load an empty results list (pycocotools_stats evaluates it)")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(gt_data)
        ev = COCOeval_faster(coco, coco.loadRes(dt_data), "keypoints",
                             print_function=lambda *a, **k: None)
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats[:10], dtype=np.float64)


def _import_xtcocotools():
    """xtcocotools' COCO and COCOeval. Its compiled mask module is not needed for keypoints;
    a build against another numpy fails to import, so a stub stands in for it then."""
    import xtcocotools
    if "xtcocotools.mask" not in sys.modules:
        try:
            import xtcocotools.mask  # noqa: F401
        except Exception:  # binary built against another numpy: keypoints never use it
            stub = types.ModuleType("xtcocotools.mask")
            sys.modules["xtcocotools.mask"] = stub
            xtcocotools.mask = stub
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    return COCO, COCOeval


def xtcocotools_available() -> bool:
    """Whether xtcocotools can be imported (the reference of the non-pycocotools modes)."""
    try:
        _import_xtcocotools()
    except ImportError:
        return False
    return True


def xtcocotools_eval(gt, results, sigmas, iou_type: str = "keypoints", *, use_area: bool = True,
                     copy_inputs: bool = True):
    """A finished xtcocotools ``COCOeval`` (stdout silenced). ``iou_type``: 'keypoints',
    'keypoints_crowd' or a COCO-WholeBody part ('keypoints_body', 'keypoints_foot',
    'keypoints_face', 'keypoints_lefthand', 'keypoints_righthand', 'keypoints_wholebody').
    An empty results list is evaluated as no detections (xtcocotools' loadRes fails on it)."""
    XCOCO, XCOCOeval = _import_xtcocotools()
    gt_data, dt_data = _inputs(gt, results, copy_inputs)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # xtcocotools' CrowdPose summary re-reads the GT from its file: give it one
            with tempfile.TemporaryDirectory() as tmp:
                gt_path = os.path.join(tmp, "gt.json")
                with open(gt_path, "w") as f:
                    json.dump(gt_data, f)
                coco = XCOCO(gt_path)
                ev = _run_xtcocotools(XCOCO, XCOCOeval, coco, gt_data, dt_data, sigmas,
                                      iou_type, use_area)
    return ev


def _load_results(COCO, coco, gt_data, dt_data):
    """``coco.loadRes(dt_data)``, or for no results an empty result set over the GT's images
    (``loadRes`` refuses an empty list)."""
    if dt_data:
        return coco.loadRes(dt_data)
    coco_dt = COCO()
    coco_dt.dataset = {"images": list(gt_data.get("images", [])),
                       "categories": copy.deepcopy(gt_data.get("categories", [])),
                       "annotations": []}
    coco_dt.createIndex()
    return coco_dt


def _run_xtcocotools(XCOCO, XCOCOeval, coco, gt_data, dt_data, sigmas, iou_type, use_area):
    coco_dt = _load_results(XCOCO, coco, gt_data, dt_data)
    if not dt_data and len(getattr(coco, "anno_file", [])) == 1:
        coco.anno_file.append(None)  # as loadRes records it; read by the CrowdPose summary
    ev = XCOCOeval(coco, coco_dt, iou_type, np.asarray(sigmas, dtype=np.float64),
                   use_area=use_area)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev


def xtcocotools_stats(gt, results, sigmas, iou_type: str = "keypoints", *,
                      use_area: bool = True, copy_inputs: bool = True) -> np.ndarray:
    """The stats xtcocotools itself computes (10, or 9 for 'keypoints_crowd'), float64;
    see :func:`xtcocotools_eval`."""
    return np.asarray(xtcocotools_eval(gt, results, sigmas, iou_type, use_area=use_area,
                                       copy_inputs=copy_inputs).stats, dtype=np.float64)
