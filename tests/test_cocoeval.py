"""COCOKeypointEval against pycocotools (and xtcocotools) themselves."""
import contextlib
import copy
import io
import json
import pathlib
import sys

import numpy as np
import pytest

from pyhpe.eval import COCO_STAT_NAMES, COCOKeypointEval, coco_keypoint_stats
from pyhpe.keypoints import COCO_SIGMAS, CROWDPOSE14, keypoint_set_from_coco
from pyhpe.testing import (faster_coco_eval_stats, pycocotools_eval, pycocotools_stats,
                           synthetic_keypoint_eval_set)

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402


def run_pycocotools(gt, dt, sigmas=None):
    return pycocotools_eval(gt, dt, sigmas)


def assert_identical(ours: COCOKeypointEval, ref):
    assert np.array_equal(ours.stats, ref.stats), (ours.stats, ref.stats)
    for key in ("precision", "recall", "scores"):
        assert np.array_equal(ours.eval[key], ref.eval[key]), key


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("with_bbox", [True, False])
def test_identical_to_pycocotools(seed, with_bbox):
    gt, dt = synthetic_keypoint_eval_set(40, seed, with_bbox=with_bbox)
    ours = COCOKeypointEval(gt, dt)
    ours.run()
    ref = run_pycocotools(gt, dt)
    assert_identical(ours, ref)
    for (img_id, cat_id), ious in ref.ious.items():
        mine = ours.ious(img_id, cat_id)
        if len(ious) == 0:
            assert mine.size == 0
        else:
            assert np.array_equal(mine, ious)


def test_per_image_matching_matches_eval_imgs():
    gt, dt = synthetic_keypoint_eval_set(25, 99)
    ours = COCOKeypointEval(gt, dt)
    ours.run()
    ref = run_pycocotools(gt, dt)
    p = ref.params
    for k, cat in enumerate(p.catIds):
        for a in range(len(p.areaRng)):
            for i, img in enumerate(p.imgIds):
                e = ref.evalImgs[(k * len(p.areaRng) + a) * len(p.imgIds) + i]
                mine = ours.eval_img(img, cat, a)
                if e is None:
                    assert mine is None
                    continue
                assert np.array_equal(mine["dtMatches"], e["dtMatches"])
                assert np.array_equal(mine["dtIgnore"].astype(bool), e["dtIgnore"])
                assert np.array_equal(mine["gtIgnore"], e["gtIgnore"])
                assert np.array_equal(mine["dtScores"], e["dtScores"])


def test_quirks_gt_id_zero_duplicate_ids_and_ignore_field():
    gt, dt = synthetic_keypoint_eval_set(30, 7)
    anns = gt["annotations"]
    anns[0]["id"] = 0            # pycocotools: a match to GT id 0 counts as unmatched
    anns[5]["id"] = anns[6]["id"]  # duplicate id: COCO.anns keeps the last
    anns[8]["ignore"] = 1        # overridden by iscrowd in _prepare
    ours = COCOKeypointEval(gt, dt)
    ours.run()
    assert_identical(ours, run_pycocotools(gt, dt))


def test_multiple_categories_and_foreign_category_results():
    gt, dt = synthetic_keypoint_eval_set(30, 3)
    gt["categories"].append({"id": 7, "name": "robot"})
    for i, a in enumerate(gt["annotations"]):
        if i % 3 == 0:
            a["category_id"] = 7
    for i, r in enumerate(dt):
        if i % 3 == 0:
            r["category_id"] = 7
        elif i % 11 == 0:
            r["category_id"] = 99  # not a GT category: dropped
    ours = COCOKeypointEval(gt, dt)
    ours.run()
    assert_identical(ours, run_pycocotools(gt, dt))


def test_custom_keypoint_set():
    K = 5
    sigmas = np.array([0.03, 0.05, 0.07, 0.09, 0.11])
    gt, dt = synthetic_keypoint_eval_set(40, 11, num_keypoints=K)
    ours = COCOKeypointEval(gt, dt, sigmas=sigmas)
    ours.run()
    assert_identical(ours, run_pycocotools(gt, dt, sigmas))


def test_inputs_as_path_and_coco_objects(tmp_path):
    gt, dt = synthetic_keypoint_eval_set(20, 5)
    gp, dp = tmp_path / "gt.json", tmp_path / "dt.json"
    gp.write_text(json.dumps(gt))
    dp.write_text(json.dumps(dt))
    ref = pycocotools_stats(gt, dt)
    assert np.array_equal(COCOKeypointEval(str(gp), str(dp)).run(), ref)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gp))
        res = coco.loadRes(str(dp))
    assert np.array_equal(COCOKeypointEval(coco, res).run(), ref)


def test_no_results_gives_zero_ap_and_no_gt_gives_minus_one():
    gt, _ = synthetic_keypoint_eval_set(10, 1)
    stats = COCOKeypointEval(gt, []).run()
    assert stats[0] == 0 and stats[5] == 0
    gt_empty = dict(gt, annotations=[])
    _, dt = synthetic_keypoint_eval_set(10, 1)
    stats = COCOKeypointEval(gt_empty, dt).run()
    assert np.all(stats == -1)


def test_reference_wrapper_evaluates_no_results_as_pyhpe_does():
    """pycocotools' loadRes cannot take an empty list; the wrapper evaluates it without."""
    gt, _ = synthetic_keypoint_eval_set(10, 1)
    before = copy.deepcopy(gt)
    ref = pycocotools_stats(gt, [])
    assert ref.shape == (10,) and ref.dtype == np.float64
    assert np.array_equal(ref, COCOKeypointEval(gt, []).run())
    assert gt == before  # inputs are copied: COCOeval would write 'ignore' into them
    empty = {"images": [], "annotations": [], "categories": [{"id": 1}]}
    assert np.array_equal(pycocotools_stats(empty, []), COCOKeypointEval(empty, []).run())
    with pytest.raises(TypeError, match="results"):
        pycocotools_stats(gt, {"not": "a list"})


def test_reference_wrapper_silences_stdout(capsys):
    gt, dt = synthetic_keypoint_eval_set(5, 3)
    pycocotools_stats(gt, dt)
    assert capsys.readouterr().out == ""


def test_coco_keypoint_stats_names_the_stats():
    gt, dt = synthetic_keypoint_eval_set(15, 6)
    named = coco_keypoint_stats(gt, dt)
    assert list(named) == list(COCO_STAT_NAMES) == ["AP", "AP50", "AP75", "APm", "APl", "AR",
                                                   "AR50", "AR75", "ARm", "ARl"]
    assert all(type(v) is float for v in named.values())
    assert np.array_equal(np.array(list(named.values())), pycocotools_stats(gt, dt))
    sig = np.full(17, 0.05)
    assert np.array_equal(np.array(list(coco_keypoint_stats(gt, dt, sig).values())),
                          pycocotools_stats(gt, dt, sig))
    none = coco_keypoint_stats(gt, [])
    assert none["AP"] == 0.0 and none["AR"] == 0.0


def test_faster_coco_eval_wrapper():
    pytest.importorskip("faster_coco_eval")
    gt, dt = synthetic_keypoint_eval_set(15, 2, quirks=False)
    ours = COCOKeypointEval(gt, dt).run()
    np.testing.assert_allclose(faster_coco_eval_stats(gt, dt), ours, atol=1e-12)
    with pytest.raises(ValueError, match="empty"):
        faster_coco_eval_stats(gt, [])


def test_bad_inputs():
    gt, dt = synthetic_keypoint_eval_set(5, 2)
    with pytest.raises(ValueError, match="3\\*K=15"):
        COCOKeypointEval(gt, dt, sigmas=[0.1] * 5).run()
    bad = copy.deepcopy(dt)
    bad[0]["image_id"] = 123456
    with pytest.raises(ValueError, match="do not correspond"):
        COCOKeypointEval(gt, bad).run()
    bad = copy.deepcopy(dt)
    del bad[-1]["score"]
    with pytest.raises(ValueError, match="'score'"):
        COCOKeypointEval(gt, bad).run()
    with pytest.raises(ValueError, match="'mode'"):
        COCOKeypointEval(gt, dt, mode="nope")
    with pytest.raises(ValueError, match="positive"):
        COCOKeypointEval(gt, dt, sigmas=[0.1] * 16 + [-1])
    with pytest.raises(TypeError):
        COCOKeypointEval(42, dt)
    with pytest.raises(RuntimeError, match="evaluate"):
        COCOKeypointEval(gt, dt).accumulate()


def _nan_scores(dt, seed, fraction=0.25):
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(dt), size=max(1, int(len(dt) * fraction)), replace=False):
        dt[int(i)]["score"] = float("nan")
    return dt


@pytest.mark.parametrize("seed", range(3))
def test_nan_scores_sort_like_pycocotools(seed):
    # numpy's argsort puts NaN after every number; the evaluator's sorts must do the same
    # (a plain `-a < -b` comparator is no strict weak ordering once NaN appears).
    gt, dt = synthetic_keypoint_eval_set(20, seed)
    dt = _nan_scores(dt, seed)
    ours = COCOKeypointEval(gt, dt)
    ours.run()
    ref = run_pycocotools(gt, dt)
    assert np.array_equal(ours.stats, ref.stats), (ours.stats, ref.stats)
    for key in ("precision", "recall", "scores"):
        assert np.array_equal(ours.eval[key], ref.eval[key], equal_nan=True), key
    p = ref.params
    for k, cat in enumerate(p.catIds):
        for i, img in enumerate(p.imgIds):
            e = ref.evalImgs[k * len(p.areaRng) * len(p.imgIds) + i]
            mine = ours.eval_img(img, cat, 0)
            if e is None:
                assert mine is None
                continue
            assert np.array_equal(mine["dtScores"], e["dtScores"], equal_nan=True)
            assert np.array_equal(mine["dtMatches"], e["dtMatches"])


def test_nan_scores_small_case_and_max_dets_cut():
    # One image, one person; a perfect detection with a NaN score sorts last, behind a
    # poor one, and 21 detections are cut to 20: the NaN one is cut first.
    kp = [float(v) for k in range(17) for v in (100 + 3 * k, 200 + 5 * k, 2)]
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": kp,
                           "num_keypoints": 17, "area": 5000.0, "iscrowd": 0,
                           "bbox": [100, 200, 50, 80]}]}
    far = [v + (40.0 if i % 3 != 2 else 0.0) for i, v in enumerate(kp)]
    near = [v + (3.0 if i % 3 != 2 else 0.0) for i, v in enumerate(kp)]
    dt = [{"image_id": 1, "category_id": 1, "keypoints": kp, "score": float("nan")},
          {"image_id": 1, "category_id": 1, "keypoints": far, "score": 0.9},
          {"image_id": 1, "category_id": 1, "keypoints": near, "score": 0.1}]
    ours = COCOKeypointEval(gt, dt)
    ours.run()
    ref = run_pycocotools(gt, dt)
    assert np.array_equal(ours.stats, ref.stats), (ours.stats, ref.stats)
    assert np.array_equal(ours.eval_img(1, 1)["dtScores"], [0.9, 0.1, np.nan], equal_nan=True)
    many = dt + [{"image_id": 1, "category_id": 1, "keypoints": far, "score": 0.5}] * 18
    ours = COCOKeypointEval(gt, many)
    ours.run()
    ref = run_pycocotools(gt, many)
    assert np.array_equal(ours.stats, ref.stats), (ours.stats, ref.stats)
    assert not np.isnan(ours.eval_img(1, 1)["dtScores"]).any()


def test_ids_beyond_int64_and_string_ids_like_pycocotools():
    gt, dt = synthetic_keypoint_eval_set(12, 8)
    ref = pycocotools_stats(gt, dt)
    big = copy.deepcopy(gt), copy.deepcopy(dt)
    for img in big[0]["images"]:
        img["id"] += 2 ** 70
    for a in big[0]["annotations"]:
        a["image_id"] += 2 ** 70
        a["id"] += 2 ** 64
    for r in big[1]:
        r["image_id"] += 2 ** 70
    assert np.array_equal(COCOKeypointEval(*big).run(), pycocotools_stats(*big))
    assert np.array_equal(COCOKeypointEval(*big).run(), ref)
    # Mapped ids keep pycocotools' "GT id 0 means unmatched" quirk.
    big[0]["annotations"][0]["id"] = 0
    assert np.array_equal(COCOKeypointEval(*big).run(), pycocotools_stats(*big))
    named = copy.deepcopy(gt), copy.deepcopy(dt)
    for img in named[0]["images"]:
        img["id"] = f"img{img['id']}"
    for a in named[0]["annotations"] + named[1]:
        a["image_id"] = f"img{a['image_id']}"
    # Sorted as strings the images change order, and with it the order of tied scores.
    assert np.array_equal(COCOKeypointEval(*named).run(), pycocotools_stats(*named))


def _edit(obj, path, value):
    *head, last = path
    for key in head:
        obj = obj[key]
    if value is _DELETE:
        del obj[last]
    else:
        obj[last] = value


_DELETE = object()


@pytest.mark.parametrize("where,path,value,exc,match", [
    ("gt", ("annotations", 3), [1, 2], TypeError, r"annotations\[3\] must be a dict.*got list"),
    ("dt", (2,), [{"score": 1}], TypeError, r"results\[2\] must be a dict.*got list"),
    ("gt", ("annotations", 3, "keypoints"), {i: 0 for i in range(51)}, TypeError,
     r"annotations\[3\]\['keypoints'\] must be a list of 3\*K=51 numbers, got dict"),
    ("gt", ("annotations", 3, "keypoints"), "x" * 51, TypeError,
     r"annotations\[3\]\['keypoints'\] must be a list of 3\*K=51 numbers, got str"),
    ("dt", (4, "keypoints", 7), "7", TypeError,
     r"results\[4\]\['keypoints'\] must be a list of 3\*K=51 numbers, got a str at position 7"),
    ("gt", ("annotations", 3, "keypoints"), [0.0] * 50, ValueError,
     r"annotations\[3\]\['keypoints'\] must be a list of 3\*K=51 numbers, got 50 values"),
    ("gt", ("annotations", 1, "keypoints"), _DELETE, ValueError,
     r"annotations\[1\] has no 'keypoints'"),
    ("dt", (1, "score"), "0.5", TypeError, r"results\[1\]\['score'\] must be a number, got str"),
    ("dt", (1, "score"), None, TypeError, r"results\[1\]\['score'\] must be a number"),
    ("gt", ("annotations", 3, "area"), "big", TypeError,
     r"annotations\[3\]\['area'\] must be a number, got str"),
    ("gt", ("annotations", 3, "iscrowd"), "no", TypeError,
     r"annotations\[3\]\['iscrowd'\] must be a number, got str"),
    ("gt", ("annotations", 3, "num_keypoints"), [3], TypeError,
     r"annotations\[3\]\['num_keypoints'\] must be a number, got list"),
    ("gt", ("annotations", 3, "bbox"), {"x": 1, "y": 2, "w": 3, "h": 4}, TypeError,
     r"annotations\[3\]\['bbox'\] must be a list of 4 numbers.*got dict"),
    ("gt", ("annotations", 3, "area"), -5.0, ValueError,
     r"annotations\[3\]\['area'\] must give a finite area >= 0"),
    ("gt", ("annotations", 3, "area"), float("nan"), ValueError,
     r"annotations\[3\]\['area'\] must give a finite area >= 0"),
    ("gt", ("annotations", 2, "id"), [1], TypeError,
     r"annotations\[2\]\['id'\] must be an int or a string, got list"),
    ("dt", (3, "image_id"), (1,), TypeError,
     r"results\[3\]\['image_id'\] must be an int or a string, got tuple"),
    ("dt", (0, "image_id"), _DELETE, KeyError, r"results\[0\] has no 'image_id'"),
    ("gt", ("images", 2, "id"), "abc", TypeError,
     r"gt\['images'\] ids must be all ints or all strings.*\['images'\]\[2\]\['id'\]"),
    ("gt", ("categories", 0, "id"), "person", TypeError, None),  # no int left: str is fine
    ("gt", ("images", 1), [1], TypeError, r"gt\['images'\]\[1\] must be a dict, got list"),
    ("gt", ("images", 1, "id"), _DELETE, KeyError, r"gt\['images'\]\[1\] has no 'id'"),
    ("gt", ("images", 1, "id"), [5], TypeError,
     r"gt\['images'\]\[1\]\['id'\] must be an int or a string, got list"),
    ("gt", ("annotations",), {"a": 1}, TypeError,
     r"'annotations' must be a list of annotation dicts, got dict"),
    ("gt", ("images",), {"a": 1}, TypeError, r"gt\['images'\] must be a list of dicts, got dict"),
])
def test_bad_fields_are_named(where, path, value, exc, match):
    gt, dt = synthetic_keypoint_eval_set(6, 2)
    _edit(gt if where == "gt" else dt, path, value)
    if match is None:
        COCOKeypointEval(gt, dt).run()
        return
    with pytest.raises(exc, match="pyhpe.COCOKeypointEval: " + match):
        COCOKeypointEval(gt, dt).run()


def test_mixed_category_id_types_are_named():
    gt, dt = synthetic_keypoint_eval_set(6, 2)
    gt["categories"].append({"id": "robot"})
    with pytest.raises(TypeError, match=r"gt\['categories'\] ids must be all ints or all "
                                        r"strings.*\['categories'\]\[1\]\['id'\]"):
        COCOKeypointEval(gt, dt)


def test_empty_inputs_still_work():
    gt = {"images": [], "annotations": [], "categories": [{"id": 1}]}
    assert np.all(COCOKeypointEval(gt, []).run() == -1)
    gt, _ = synthetic_keypoint_eval_set(3, 1)
    assert COCOKeypointEval(gt, []).run()[0] == 0


# ---------------------------------------------------------------- xtcocotools modes
def run_xtcocotools(gt, dt, iou_type, sigmas, use_area, tmp_path):
    """xtcocotools' own COCOeval, finished (pyhpe.testing's wrapper)."""
    pytest.importorskip("xtcocotools")
    from pyhpe.testing import xtcocotools_eval
    return xtcocotools_eval(gt, dt, sigmas, iou_type, use_area=use_area)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("use_area", [True, False])
def test_identical_to_xtcocotools(seed, use_area, tmp_path):
    gt, dt = synthetic_keypoint_eval_set(30, seed)
    for r in dt[::7]:
        r["keypoints"][2::3] = [0.0] * 17  # dropped by xtcocotools
    ref = run_xtcocotools(gt, dt, "keypoints", COCO_SIGMAS, use_area, tmp_path)
    ours = COCOKeypointEval(gt, dt, mode="xtcocotools", use_area=use_area)
    ours.run()
    assert_identical(ours, ref)


@pytest.mark.parametrize("seed", range(3))
def test_identical_to_xtcocotools_crowdpose(seed, tmp_path):
    K = 14
    sigmas = CROWDPOSE14.sigmas
    gt, dt = synthetic_keypoint_eval_set(40, seed, num_keypoints=K, crowd_index=True)
    ref = run_xtcocotools(gt, dt, "keypoints_crowd", sigmas, False, tmp_path)
    ours = COCOKeypointEval(gt, dt, sigmas=sigmas, mode="crowdpose", use_area=False)
    stats = ours.run()
    assert len(stats) == 9
    assert np.array_equal(stats, ref.stats), (stats, ref.stats)


# Real GT/prediction pairs shipped with xtcocoapi (examples/), copied into tests/data without
# the fields keypoint evaluation ignores (GT segmentation, result center/scale).
DATA = pathlib.Path(__file__).resolve().parent / "data"


def _real(name):
    return json.loads((DATA / name).read_text())


def test_real_coco_predictions_identical_to_pycocotools():
    gt, dt = _real("xtcocoapi_coco_val.json"), _real("xtcocoapi_coco_preds.json")
    ours = COCOKeypointEval(gt, dt)
    ours.run()
    ref = pycocotools_eval(gt, dt)
    assert_identical(ours, ref)
    assert 0.5 < ours.stats[0] < 1.0  # real predictions, not a degenerate case
    named = coco_keypoint_stats(gt, dt)
    assert named["AP"] == ref.stats[0] and named["ARl"] == ref.stats[9]


def test_real_coco_predictions_match_faster_coco_eval():
    pytest.importorskip("faster_coco_eval")
    gt, dt = _real("xtcocoapi_coco_val.json"), _real("xtcocoapi_coco_preds.json")
    np.testing.assert_allclose(faster_coco_eval_stats(gt, dt), COCOKeypointEval(gt, dt).run(),
                               atol=1e-12)


def test_real_crowdpose_predictions_identical_to_xtcocotools(tmp_path):
    gt, dt = _real("xtcocoapi_crowdpose_val.json"), _real("xtcocoapi_crowdpose_preds.json")
    kset = keypoint_set_from_coco(gt)
    assert kset is CROWDPOSE14
    ref = run_xtcocotools(gt, dt, "keypoints_crowd", kset.sigmas, False, tmp_path)
    stats = COCOKeypointEval(gt, dt, sigmas=kset.sigmas, mode="crowdpose", use_area=False).run()
    assert np.array_equal(stats, ref.stats), (stats, ref.stats)


def test_cli_eval_matches_pycocotools(tmp_path):
    import subprocess
    gt, dt = synthetic_keypoint_eval_set(15, 4)
    gp, dp = tmp_path / "gt.json", tmp_path / "dt.json"
    gp.write_text(json.dumps(gt))
    dp.write_text(json.dumps(dt))
    out = subprocess.run([sys.executable, "-m", "pyhpe", "eval", str(gp), str(dp),
                          "--compare-pycocotools"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pycocotools stats identical: True" in out.stdout
    assert "AP" in out.stdout
