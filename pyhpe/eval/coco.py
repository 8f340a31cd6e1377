"""COCO keypoint evaluation with pycocotools' exact numbers, computed in C++.

:class:`COCOKeypointEval` reproduces ``pycocotools.cocoeval.COCOeval(iouType='keypoints')``
(and, by ``mode``, xtcocotools' variants) stat for stat: the 10 summary numbers are equal
with ``==``, not approximately. What is reproduced, quirks included:

* ``COCO.loadRes``: detection ids are 1-based positions in the results list; the area rule
  is chosen by the FIRST result only: if it carries a non-empty ``bbox`` every result's area
  is ``w*h`` of its bbox, else it is the extent of its keypoints (all K, zero-score ones
  included); result image ids must belong to the GT images.
* ``COCOeval._prepare``: only GT images and categories are evaluated; a GT is ignored when
  ``iscrowd`` or ``num_keypoints == 0`` (any ``ignore`` field is overridden); annotations with
  a repeated id resolve to the last one with that id, as ``COCO.anns`` does.
* ``computeOks``: detections stably sorted by score and cut to ``maxDets[-1]`` (20) before
  OKS; OKS as :func:`pyhpe.ops.oks_matrix` (numpy pairwise sums, bbox fallback).
* ``evaluateImg``: inclusive area ranges, ignored GTs sorted last, greedy matching with
  ``min(t, 1-1e-10)`` and pycocotools' tie rules, crowd GTs matched repeatedly, unmatched
  out-of-range detections ignored; GT id 0 doubles as "unmatched" (pycocotools quirk).
* ``accumulate``: stable merge sort over all images' detections, pairwise-max precision
  envelope, ``np.searchsorted(..., 'left')`` at 101 recall thresholds, -1 for absent cells.
* ``summarize``: numpy means over ``> -1`` cells, exactly as pycocotools.
* NaN scores: both sorts place them after every number, in input order, as numpy's
  ``argsort(kind='mergesort')`` does (so they are the first cut by ``maxDets``).
* Ids may be ints (any size) or strings, as COCO allows; image ids and category ids must not
  mix the two (pycocotools cannot sort them either).

Where pycocotools would return garbage or fail deep inside, the inputs are rejected with a
TypeError/ValueError/KeyError that names the field (``annotations[3]['keypoints']``,
``results[0]['score']``, ``gt['images'][2]['id']``): non-dict annotations, keypoints that are
not a list of 3*K numbers, non-numeric numbers, and a GT area (or, with ``use_area=False``,
bbox area) that is negative or not finite, which the OKS divides by.

Modes:
  ``'pycocotools'`` (default) as above.
  ``'xtcocotools'``: GT ignored when no keypoint has v > 0; detections whose keypoint scores
  are all 0 are dropped; -1 as the unmatched sentinel; ``use_area=False`` replaces GT areas by
  ``0.53 * w * h`` of the GT box (for datasets without areas, e.g. CrowdPose, AIC).
  ``'crowdpose'``: xtcocotools ``keypoints_crowd``: GT ignored when ``num_keypoints == 0``, 9
  stats with AP(easy/medium/hard) split by the images' ``crowdIndex`` (< 0.2, < 0.8, rest).
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Sequence

import numpy as np

from .. import _C
from ..keypoints import COCO_SIGMAS

MODES = ("pycocotools", "xtcocotools", "crowdpose")

#: Named evaluation protocols (``pyhpe eval --mode``, the image tasks' ``eval.mode``) ->
#: (:class:`COCOKeypointEval` ``mode``, ``use_area``). Without ``use_area`` the OKS scale is
#: 0.53 x the GT box area (xtcocotools' rule for annotations without 'area', e.g. CrowdPose).
EVAL_MODES = {"pycocotools": ("pycocotools", True), "xtcocotools": ("xtcocotools", True),
              "xtcocotools_noarea": ("xtcocotools", False), "crowdpose": ("crowdpose", False)}


def _load(obj, what: str):
    """A COCO-format dict (or results list) from a path, a dict/list, or a COCO object."""
    if isinstance(obj, (str, os.PathLike)):
        with open(obj) as f:
            return json.load(f)
    if hasattr(obj, "dataset") and isinstance(obj.dataset, dict):
        return obj.dataset
    if isinstance(obj, (dict, list)):
        return obj
    raise TypeError(f"pyhpe.COCOKeypointEval: '{what}' must be a path, a dict/list or a COCO "
                    f"object, got {type(obj).__name__}")


_OP = "pyhpe.COCOKeypointEval"


def _id_kind(v) -> str:
    """'int' or 'str' for the ids COCO files hold (bools and floats with an integer value
    count as ints, as they hash like them); raises for anything else."""
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return "int"
    if isinstance(v, str):
        return "str"
    raise TypeError(f"{type(v).__name__}")


def _int64_id(v):
    """The id as a Python int when it is an integer that fits int64, else None."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    if isinstance(v, (int, np.integer)) and -2 ** 63 <= v < 2 ** 63:
        return int(v)
    return None


def _sorted_ids(entries, what: str) -> list:
    """Sorted unique 'id's of gt['images'] / gt['categories'], with clear errors for entries
    that are not dicts, lack an 'id', or mix id types (which cannot be sorted)."""
    if not isinstance(entries, list):
        raise TypeError(f"{_OP}: gt[{what!r}] must be a list of dicts, got "
                        f"{type(entries).__name__}")
    first = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise TypeError(f"{_OP}: gt[{what!r}][{i}] must be a dict, got {type(e).__name__}")
        if "id" not in e:
            raise KeyError(f"{_OP}: gt[{what!r}][{i}] has no 'id'")
        try:
            kind = _id_kind(e["id"])
        except TypeError as err:
            raise TypeError(f"{_OP}: gt[{what!r}][{i}]['id'] must be an int or a string, "
                            f"got {err}") from None
        first.setdefault(kind, i)
    if len(first) > 1:
        raise TypeError(f"{_OP}: gt[{what!r}] ids must be all ints or all strings, got an int "
                        f"(gt[{what!r}][{first['int']}]['id']) and a string "
                        f"(gt[{what!r}][{first['str']}]['id'])")
    return sorted({e["id"] for e in entries})


def _index_in(values: np.ndarray, keys) -> np.ndarray:
    """Position of each value in the sorted list `keys`, -1 where absent."""
    keys = np.asarray(keys)
    if keys.size == 0:
        return np.full(len(values), -1, dtype=np.int64)
    if keys.dtype.kind not in "iu":
        raise TypeError("non-integer ids")
    pos = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return np.where(keys[pos] == values, pos, -1).astype(np.int64)


def _linspace_params():
    # Exactly pycocotools Params.setKpParams.
    iou_thrs = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
    rec_thrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
    return iou_thrs, rec_thrs


class Params:
    """Evaluation parameters, named and valued as pycocotools' ``Params('keypoints')``."""

    def __init__(self):
        self.imgIds: list = []
        self.catIds: list = []
        self.iouThrs, self.recThrs = _linspace_params()
        self.maxDets = [20]
        self.areaRng = [[0 ** 2, 1e5 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
        self.areaRngLbl = ["all", "medium", "large"]
        self.useCats = 1
        self.kpt_oks_sigmas = COCO_SIGMAS.copy()
        self.iouType = "keypoints"


class COCOKeypointEval:
    """COCO keypoint AP/AR identical to pycocotools (see the module docstring).

    Args:
        gt: COCO keypoint annotations: a json path, a dict, or a pycocotools ``COCO``.
        dt: results: a json path, a list of ``{image_id, category_id, keypoints, score}``
            dicts, or a ``COCO`` returned by ``loadRes`` (its areas/ids are used as they are).
        sigmas: per-keypoint OKS sigmas ``(K,)``; default COCO-17.
        mode: ``'pycocotools'`` | ``'xtcocotools'`` | ``'crowdpose'``.
        use_area: xtcocotools/crowdpose only; False uses ``0.53 * w * h`` of the GT box.

    ``run()`` = ``evaluate(); accumulate(); summarize()`` and returns ``stats``.
    """

    def __init__(self, gt, dt, sigmas: Optional[Sequence[float]] = None, *,
                 mode: str = "pycocotools", use_area: bool = True):
        if mode not in MODES:
            raise ValueError(f"pyhpe.COCOKeypointEval: 'mode' must be one of {MODES}, got {mode!r}")
        if mode == "pycocotools" and not use_area:
            raise ValueError("pyhpe.COCOKeypointEval: use_area=False is an xtcocotools option; "
                             "use mode='xtcocotools' or 'crowdpose'")
        self.mode = mode
        self.use_area = use_area
        self.gt_dataset = _load(gt, "gt")
        if not isinstance(self.gt_dataset, dict):
            raise TypeError("pyhpe.COCOKeypointEval: 'gt' must be a COCO dataset dict, got a list")
        self._dt_source = dt
        self.params = Params()
        if sigmas is not None:
            sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
            if sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
                raise ValueError(f"pyhpe.COCOKeypointEval: 'sigmas' must be positive and finite, "
                                 f"got {sig.tolist()}")
            self.params.kpt_oks_sigmas = sig
        elif mode == "crowdpose":
            raise ValueError("pyhpe.COCOKeypointEval: mode='crowdpose' needs the dataset's "
                             "'sigmas'")
        self.params.imgIds = _sorted_ids(self.gt_dataset.get("images", []), "images")
        self.params.catIds = _sorted_ids(self.gt_dataset.get("categories", []), "categories")
        self._core = None
        self.eval: dict = {}
        self.stats = np.zeros(0)

    # ------------------------------------------------------------------ preparation
    def _extract(self, anns, K: int, name: str) -> dict:
        """Flat arrays of a list of annotation dicts, with image/category as indices into
        params.imgIds/catIds (-1 when absent there). `name` names the list in messages."""
        p = self.params
        if not isinstance(anns, list):
            raise TypeError(f"{_OP}: {name!r} must be a list of annotation dicts, got "
                            f"{type(anns).__name__}")
        r = _C.extract_annotations(anns, K, name)
        if r["int_ids"]:
            try:
                r["image"] = _index_in(r["image_id"], p.imgIds)
                r["category"] = _index_in(r["category_id"], p.catIds)
                return r
            except TypeError:  # string image/category ids in the GT
                pass
        # Ids that are not int64 (COCO allows any hashable key: strings, ints beyond int64):
        # map image/category ids through dicts and annotation ids to int64 values that keep
        # what the evaluator reads from them: equality, and whether an id is 0.
        img_index = {v: n for n, v in enumerate(p.imgIds)}
        cat_index = {v: n for n, v in enumerate(p.catIds)}
        ids, remapped = {}, []
        kept = [_int64_id(a["id"]) for a in anns if "id" in a]
        next_id = 1 + max([abs(v) for v in kept if v is not None] + [0])
        for i, a in enumerate(anns):
            for key in ("image_id", "category_id", "id"):
                if key in a:
                    try:
                        _id_kind(a[key])
                    except TypeError as err:
                        raise TypeError(f"{_OP}: {name}[{i}][{key!r}] must be an int or a "
                                        f"string, got {err}") from None
            a = dict(a, image_id=img_index.get(a["image_id"], -1),
                     category_id=cat_index.get(a["category_id"], -1))
            if "id" in a:
                v = a["id"]
                if _int64_id(v) is not None:
                    a["id"] = _int64_id(v)
                else:  # a string or an int beyond int64 (never 0): a fresh id, same sign
                    if v not in ids:
                        ids[v] = next_id if isinstance(v, str) or v > 0 else -next_id
                        next_id += 1
                    a["id"] = ids[v]
            remapped.append(a)
        r = _C.extract_annotations(remapped, K, name)
        if not r["int_ids"]:
            raise ValueError(f"{_OP}: the {name!r} ids could not be mapped into int64 (ids "
                             "close to the int64 limits mixed with larger ones or strings)")
        r["image"], r["category"] = r["image_id"], r["category_id"]
        return r

    def _gt_arrays(self, K: int) -> dict:
        anns = self.gt_dataset.get("annotations", [])
        r = self._extract(anns, K, "annotations")
        keep = (r["image"] >= 0) & (r["category"] >= 0)
        ids = r["id"]
        if not r["has_id"].all():
            raise ValueError("pyhpe.COCOKeypointEval: every GT annotation needs an 'id'")
        src = np.arange(len(anns))
        if len(np.unique(ids)) != len(ids):
            # COCO.anns keeps the last annotation of each id; loadAnns returns that one.
            last = {}
            for i, v in enumerate(ids.tolist()):
                last[v] = i
            src = np.array([last[v] for v in ids.tolist()], dtype=np.int64)
        src = src[keep]
        if self.mode == "xtcocotools":
            no_kpt = (r["keypoints"][:, 2::3] > 0).sum(1) == 0
        else:
            if not r["has_num_keypoints"][src].all():
                raise ValueError("pyhpe.COCOKeypointEval: GT annotations need 'num_keypoints' "
                                 f"(mode={self.mode!r})")
            no_kpt = r["num_keypoints_nonzero"] == 0
        bbox = r["bbox"]
        if self.use_area:
            if not r["has_area"][src].all():
                raise ValueError("pyhpe.COCOKeypointEval: GT annotations need 'area' "
                                 "(or use_area=False in xtcocotools/crowdpose modes)")
            area = r["area"]
        else:
            area = bbox[:, 3] * bbox[:, 2] * 0.53
        # pycocotools would divide by such an area: a negative one gives OKS above 1, NaN
        # matches every detection. Reject it instead of returning garbage stats.
        bad = ~(area[src] >= 0) | ~np.isfinite(area[src])
        if bad.any():
            i = int(src[np.flatnonzero(bad)[0]])
            field = "area" if self.use_area else "bbox"
            got = anns[i].get(field)
            raise ValueError(f"{_OP}: annotations[{i}][{field!r}] must give a finite area >= 0 "
                             f"(the OKS divides by it), got {got!r}")
        iscrowd = r["iscrowd"]
        return {
            "count": len(src),
            "image": r["image"][src], "category": r["category"][src], "id": ids[src],
            "keypoints": r["keypoints"][src], "oks_area": area[src], "range_area": area[src],
            "bbox": bbox[src], "iscrowd": iscrowd[src],
            "ignore": (iscrowd.astype(bool) | no_kpt)[src].astype(np.uint8),
        }

    def _dt_arrays(self, K: int) -> dict:
        src = self._dt_source
        loaded = hasattr(src, "dataset") and isinstance(src.dataset, dict)
        anns = _load(src, "dt")
        if isinstance(anns, dict):
            if not loaded:
                raise TypeError("pyhpe.COCOKeypointEval: 'dt' must be a list of results "
                                "(or a COCO from loadRes), got a dict")
            anns = anns.get("annotations", [])
        if not isinstance(anns, list):
            raise TypeError("pyhpe.COCOKeypointEval: results must be a list of objects")
        r = self._extract(anns, K, "annotations" if loaded else "results")
        if not loaded and anns:
            # Every result found among params.imgIds is a GT image; only otherwise (a user
            # subset of imgIds) compare against all GT images, as COCO.loadRes does.
            if not (r["image"] >= 0).all() and not {a["image_id"] for a in anns} <= {
                    img["id"] for img in self.gt_dataset.get("images", [])}:
                raise ValueError("pyhpe.COCOKeypointEval: results do not correspond to the GT set "
                                 "(some image_id is not among the GT images)")
            first = anns[0]
            # COCO.loadRes picks the area rule from the first result only.
            if "bbox" in first and not first["bbox"] == []:
                if not r["has_bbox"].all():
                    raise ValueError("pyhpe.COCOKeypointEval: the first result has a 'bbox', so "
                                     "(as in COCO.loadRes) every result needs a 4-number "
                                     "'bbox'")
                area = r["bbox"][:, 2] * r["bbox"][:, 3]
            elif "keypoints" in first:
                x, y = r["keypoints"][:, 0::3], r["keypoints"][:, 1::3]
                area = (x.max(1) - x.min(1)) * (y.max(1) - y.min(1))
            else:
                raise ValueError("pyhpe.COCOKeypointEval: results need 'keypoints' (and optionally "
                                 "'bbox'); caption/segmentation results are not keypoints")
            ids = np.arange(1, len(anns) + 1, dtype=np.int64)
        else:
            area, ids = r["area"], r["id"]
        keep = (r["image"] >= 0) & (r["category"] >= 0)
        if self.mode != "pycocotools" and len(anns):
            keep &= (r["keypoints"][:, 2::3] > 0).sum(1) > 0
        if not r["has_score"][keep].all():
            raise ValueError("pyhpe.COCOKeypointEval: every result needs a 'score'")
        return {
            "count": int(keep.sum()),
            "image": r["image"][keep], "category": r["category"][keep], "id": ids[keep],
            "keypoints": r["keypoints"][keep], "oks_area": area[keep],
            "range_area": area[keep], "score": r["score"][keep],
        }

    # ------------------------------------------------------------------ pycocotools API
    def evaluate(self):
        """Per-image OKS and matching for every (category, area range, image)."""
        p = self.params
        p.imgIds = list(np.unique(p.imgIds))
        p.catIds = list(np.unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        if not p.catIds:
            raise ValueError("pyhpe.COCOKeypointEval: the GT has no categories")
        K = len(p.kpt_oks_sigmas)
        self._gt = self._gt_arrays(K)
        self._dt = self._dt_arrays(K)
        params = {
            "num_images": len(p.imgIds),
            "num_categories": len(p.catIds),
            "sigmas": [float(s) for s in p.kpt_oks_sigmas],
            "iou_thrs": [float(t) for t in p.iouThrs],
            "rec_thrs": [float(r) for r in p.recThrs],
            "area_rngs": [float(v) for rng in p.areaRng for v in rng],
            "max_dets": [int(m) for m in p.maxDets],
            "zero_gt_id_is_unmatched": self.mode == "pycocotools",
        }
        self._img_index = {v: n for n, v in enumerate(p.imgIds)}
        self._cat_index = {v: n for n, v in enumerate(p.catIds)}
        self._core = _C.KeypointEvaluator(self._gt, self._dt, params)
        self._core.evaluate()
        return self

    def _require(self):
        if self._core is None:
            raise RuntimeError("pyhpe.COCOKeypointEval: call evaluate() first")

    def accumulate(self, img_ids: Optional[Sequence[int]] = None):
        """Precision/recall arrays (pycocotools ``self.eval``), over all or some images."""
        self._require()
        p = self.params
        if img_ids is None:
            images = list(range(len(p.imgIds)))
        else:
            images = sorted({self._img_index[i] for i in np.unique(img_ids).tolist()
                             if i in self._img_index})
        acc = self._core.accumulate(images)
        self.eval = {
            "params": p,
            "counts": [len(p.iouThrs), len(p.recThrs), len(p.catIds), len(p.areaRng),
                       len(p.maxDets)],
            "precision": acc["precision"],
            "recall": acc["recall"],
            "scores": acc["scores"],
        }
        return self

    def _summarize(self, ap=1, iouThr=None, areaRng="all", maxDets=20):
        p = self.params
        aind = [i for i, a in enumerate(p.areaRngLbl) if a == areaRng]
        mind = [i for i, m in enumerate(p.maxDets) if m == maxDets]
        if ap == 1:
            s = self.eval["precision"]
            if iouThr is not None:
                s = s[np.where(iouThr == p.iouThrs)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = self.eval["recall"]
            if iouThr is not None:
                s = s[np.where(iouThr == p.iouThrs)[0]]
            s = s[:, :, aind, mind]
        return -1 if len(s[s > -1]) == 0 else np.mean(s[s > -1])

    def summarize(self, verbose: bool = False):
        """The 10 COCO keypoint stats (9 for crowdpose), as pycocotools computes them."""
        if not self.eval:
            raise RuntimeError("pyhpe.COCOKeypointEval: call accumulate() first")
        rows = [(1, None, "all"), (1, .5, "all"), (1, .75, "all"), (1, None, "medium"),
                (1, None, "large"), (0, None, "all"), (0, .5, "all"), (0, .75, "all"),
                (0, None, "medium"), (0, None, "large")]
        if self.mode == "crowdpose":
            rows = [r for r in rows if r[2] == "all"]
        stats = [self._summarize(ap, thr, area, 20) for ap, thr, area in rows]
        labels = [("AP" if ap else "AR") + ("" if thr is None else str(int(thr * 100)))
                  + ({"all": "", "medium": "m", "large": "l"}[area]) for ap, thr, area in rows]
        if self.mode == "crowdpose":
            stats += self._crowd_type_results()
            labels += ["AP_easy", "AP_medium", "AP_hard"]
        self.stats = np.zeros((len(stats),))
        self.stats[:] = stats
        self.stat_names = labels
        if verbose:
            for name, v in zip(labels, self.stats):
                print(f" {name:10s} = {v:0.3f}")
        return self.stats

    def _crowd_type_results(self, first=0.2, second=0.8):
        # xtcocotools get_type_result: re-accumulate per crowdIndex bucket; mean of the
        # precision cells of area 'all' including -1 cells, rounded to 4 decimals.
        buckets = ([], [], [])
        for img in self.gt_dataset["images"]:
            c = img["crowdIndex"]
            buckets[0 if c < first else 1 if c < second else 2].append(img["id"])
        saved = self.eval
        out = []
        for ids in buckets:
            self.accumulate(ids)
            out.append(round(np.mean(self.eval["precision"][:, :, :, 0, :]), 4))
        self.eval = saved
        return out

    def run(self, verbose: bool = False) -> np.ndarray:
        """evaluate(), accumulate(), summarize(); returns the stats array."""
        self.evaluate()
        self.accumulate()
        return self.summarize(verbose=verbose)

    # ------------------------------------------------------------------ inspection
    def ious(self, img_id, cat_id) -> np.ndarray:
        """pycocotools ``self.ious[img_id, cat_id]``: (dets sorted & cut) x (GT)."""
        self._require()
        return self._core.ious(self._img_index[img_id], self._cat_index[cat_id])

    def eval_img(self, img_id, cat_id, area_index: int = 0):
        """Per-image matching like pycocotools ``evalImgs`` (None where it is None)."""
        self._require()
        return self._core.image_result(self._cat_index[cat_id], area_index,
                                       self._img_index[img_id])


#: Names of the 10 COCO keypoint stats, in pycocotools' order.
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_keypoint_stats(gt, results, sigmas: Optional[Sequence[float]] = None) -> Dict[str, float]:
    """The 10 COCO keypoint stats by name (:data:`COCO_STAT_NAMES`), computed by
    :class:`COCOKeypointEval` (equal to pycocotools'). An empty results list is evaluated too
    (AP 0 where there is GT). ``sigmas`` default to COCO-17's."""
    stats = COCOKeypointEval(gt, results, sigmas=sigmas).run()
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, stats)}
