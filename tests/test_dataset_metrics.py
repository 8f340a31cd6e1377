"""Each dataset's official metric against its reference: xtcocotools (COCO-WholeBody, CrowdPose,
no-area modes), pycocotools, and the published formulas of MPII PCKh, Human3.6M, MPI-INF-3DHP
and CMU Panoptic (reimplemented here as their code states them), on the real samples in
tests/data."""
import json
import os
import pathlib

import numpy as np
import pytest

from pyhpe.eval import (COCO_STAT_NAMES, FILE_MODES, WHOLEBODY_PARTS, auc3d, evaluate_coco_file,
                        evaluate_wholebody, format_eval_report, h36m_action, mpi_inf_3dhp_metrics,
                        mpii_head_sizes, mpii_pckh, mpjpe_by_action, multiperson_mpjpe_ap, pck3d)
from pyhpe.testing import synthetic_keypoint_eval_set, xtcocotools_available

DATA = pathlib.Path(__file__).resolve().parent / "data"
needs_xtcocotools = pytest.mark.skipif(not xtcocotools_available(),
                                       reason="xtcocotools (the reference) is not installed")


def _json(name):
    return json.loads((DATA / name).read_text())


# ----------------------------------------------------------------------- COCO-WholeBody
# The sigmas of xtcocoapi's demos/demo_wholebody.py (as mmpose's coco_wholebody metadata).
SIGMAS_BODY = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
               0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
SIGMAS_FOOT = [0.068, 0.066, 0.066, 0.092, 0.094, 0.094]
SIGMAS_FACE = [0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029,
               0.032, 0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012,
               0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009,
               0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008,
               0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010,
               0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008,
               0.01, 0.008]
SIGMAS_HAND = [0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
               0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031]
WHOLEBODY_SIGMAS = np.array(SIGMAS_BODY + SIGMAS_FOOT + SIGMAS_FACE + SIGMAS_HAND + SIGMAS_HAND)

# (AP, AR) per part that xtcocotools prints for this pair (recorded from xtcocotools 1.14).
WHOLEBODY_RECORDED = {
    "body": (0.853921820753504, 0.8958333333333334),
    "foot": (0.9571054164239954, 0.975),
    "face": (0.727013201320132, 0.7461538461538462),
    "lefthand": (0.5487426599802838, 0.575),
    "righthand": (0.49784103410341035, 0.5615384615384615),
    "wholebody": (0.6420759218779022, 0.7041666666666666),
}


def _wholebody_pair():
    return _json("xtcocoapi_wholebody_val.json"), _json("xtcocoapi_wholebody_preds.json")


def test_wholebody_recorded_values():
    gt, dt = _wholebody_pair()
    out = evaluate_wholebody(gt, dt, WHOLEBODY_SIGMAS)
    assert list(out) == [p[0] for p in WHOLEBODY_PARTS]
    for part, (ap, ar) in WHOLEBODY_RECORDED.items():
        assert list(out[part]) == list(COCO_STAT_NAMES)
        assert out[part]["AP"] == pytest.approx(ap, abs=1e-12)
        assert out[part]["AR"] == pytest.approx(ar, abs=1e-12)


@needs_xtcocotools
def test_wholebody_identical_to_xtcocotools():
    from pyhpe.testing import xtcocotools_stats
    gt, dt = _wholebody_pair()
    # part scores where some results have them: xtcocotools ranks by them
    for i, r in enumerate(dt[::3]):
        r["face_score"] = 0.1 + 0.05 * (i % 7)
    out = evaluate_wholebody(gt, dt, WHOLEBODY_SIGMAS)
    for name, iou_type, _, _, a, b in WHOLEBODY_PARTS:
        ref = xtcocotools_stats(gt, dt, WHOLEBODY_SIGMAS[a:b], iou_type)
        assert np.array_equal(np.array(list(out[name].values())), ref), name


def test_wholebody_needs_its_part_arrays():
    gt, dt = _wholebody_pair()
    del dt[3]["face_kpts"]
    with pytest.raises(KeyError, match=r"results\[3\] has no 'face_kpts'"):
        evaluate_wholebody(gt, dt, WHOLEBODY_SIGMAS)
    with pytest.raises(ValueError, match="133"):
        evaluate_wholebody(gt, [], WHOLEBODY_SIGMAS[:17])


# ----------------------------------------------------------------------- evaluate_coco_file
@needs_xtcocotools
@pytest.mark.parametrize("mode", FILE_MODES)
def test_every_mode_identical_to_its_reference(mode):
    if mode == "wholebody":
        gt, dt = _wholebody_pair()
        kw = {"sigmas": WHOLEBODY_SIGMAS}
    elif mode == "crowdpose":
        gt, dt = _json("xtcocoapi_crowdpose_val.json"), _json("xtcocoapi_crowdpose_preds.json")
        kw = {"keypoint_set": "crowdpose14"}
    else:
        gt, dt = _json("xtcocoapi_coco_val.json"), _json("xtcocoapi_coco_preds.json")
        kw = {"keypoint_set": "coco17"}
    report = evaluate_coco_file(gt, dt, mode=mode, compare_reference=True, **kw)
    assert report["mode"] == mode and report["note"] is None
    assert report["identical"] is True, (report["stats"], report["reference_stats"])
    assert report["reference"] == ("pycocotools" if mode == "pycocotools" else "xtcocotools")
    text = format_eval_report(report)
    assert "stats identical: True" in text and "AP" in text


@pytest.mark.parametrize("mode", FILE_MODES)
def test_empty_results_give_a_clear_answer_in_every_mode(mode, tmp_path):
    if mode == "wholebody":
        gt, kw = _wholebody_pair()[0], {"sigmas": WHOLEBODY_SIGMAS}
    elif mode == "crowdpose":
        gt, kw = _json("xtcocoapi_crowdpose_val.json"), {}
    else:
        gt, kw = _json("xtcocoapi_coco_val.json"), {}
    path = tmp_path / "empty.json"
    path.write_text("[]")
    report = evaluate_coco_file(gt, str(path), mode=mode,
                                compare_reference=xtcocotools_available(), **kw)
    assert report["num_results"] == 0 and "no detections" in report["note"]
    stats = report["stats"]
    flat = [v for s in stats.values() for v in s.values()] if mode == "wholebody" else \
        list(stats.values())
    assert all(v in (0.0, -1.0) for v in flat) and flat[0] == 0.0
    if xtcocotools_available():
        assert report["identical"] is True
    assert "no detections" in format_eval_report(report)


def test_default_mode_and_sigmas_follow_the_keypoint_set():
    gt, dt = _json("xtcocoapi_crowdpose_val.json"), _json("xtcocoapi_crowdpose_preds.json")
    report = evaluate_coco_file(gt, dt, keypoint_set="crowdpose14")
    assert report["mode"] == "crowdpose" and "AP_hard" in report["stats"]
    gt, dt = _json("xtcocoapi_coco_val.json"), _json("xtcocoapi_coco_preds.json")
    report = evaluate_coco_file(gt, dt)
    assert report["mode"] == "pycocotools" and report["keypoint_set"] == "coco17"
    assert 0.5 < report["stats"]["AP"] < 1
    assert "reference" not in report


def test_keypoint_set_and_mode_follow_the_gt():
    gt, dt = _json("xtcocoapi_crowdpose_val.json"), _json("xtcocoapi_crowdpose_preds.json")
    report = evaluate_coco_file(gt, dt)
    assert report["keypoint_set"] == "crowdpose14" and report["mode"] == "crowdpose"
    gt = _wholebody_pair()[0]
    from pyhpe.eval.cocofile import _keypoint_set_of
    assert _keypoint_set_of(gt) == "coco_wholebody133"
    assert _keypoint_set_of(_json("xtcocoapi_coco_val.json")) == "coco17"
    assert _keypoint_set_of({"images": [], "annotations": [], "categories": []}) == "coco17"


def test_wholebody_default_sigmas_from_the_keypoint_set():
    from pyhpe.keypoints import get_keypoint_set
    try:
        kset = get_keypoint_set("coco_wholebody133")
    except ValueError:
        pytest.skip("the coco_wholebody133 keypoint set is not registered")
    gt, dt = _wholebody_pair()
    report = evaluate_coco_file(gt, dt, keypoint_set="coco_wholebody133")
    assert report["mode"] == "wholebody"
    same = np.allclose(kset.sigmas, WHOLEBODY_SIGMAS)
    if same:
        assert report["stats"]["wholebody"]["AP"] == pytest.approx(
            WHOLEBODY_RECORDED["wholebody"][0], abs=1e-12)


def test_evaluate_coco_file_bad_inputs(tmp_path):
    gt = _json("xtcocoapi_coco_val.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read results"):
        evaluate_coco_file(gt, str(bad))
    with pytest.raises(ValueError, match="cannot read results"):
        evaluate_coco_file(gt, str(tmp_path / "missing.json"))
    with pytest.raises(TypeError, match="list of result dicts"):
        evaluate_coco_file(gt, {"annotations": []})
    with pytest.raises(ValueError, match="unknown mode"):
        evaluate_coco_file(gt, [], mode="nope")
    with pytest.raises(ValueError, match="unknown keypoint set"):
        evaluate_coco_file(gt, [], keypoint_set="nope")
    with pytest.raises(ValueError, match="cannot read GT"):
        evaluate_coco_file(str(tmp_path / "missing_gt.json"), [])
    with pytest.raises(TypeError, match="COCO dataset"):
        evaluate_coco_file([], [])


def test_no_area_mode_on_synthetic_data():
    gt, dt = synthetic_keypoint_eval_set(20, 3)
    report = evaluate_coco_file(gt, dt, mode="xtcocotools_noarea",
                                compare_reference=xtcocotools_available())
    if xtcocotools_available():
        assert report["identical"] is True
    assert set(report["stats"]) == set(COCO_STAT_NAMES)


# ----------------------------------------------------------------------- MPII PCKh
def _official_evaluate_pckh(preds, pos_gt_src, jnt_missing, headboxes_src):
    """The published MPII evaluation (evaluatePCKh as HRNet's/mmpose 0.x's evaluate port it),
    on the official gt_valid.mat layout: pos_gt_src (16, 2, N), jnt_missing (16, N),
    headboxes_src (2, 2, N)."""
    SC_BIAS, threshold = 0.6, 0.5
    pos_pred_src = np.transpose(preds, [1, 2, 0])
    head, lsho, lelb, lwri, lhip, lkne, lank = 9, 13, 14, 15, 3, 4, 5
    rsho, relb, rwri, rhip, rkne, rank = 12, 11, 10, 2, 1, 0
    jnt_visible = 1 - jnt_missing
    uv_err = np.linalg.norm(pos_pred_src - pos_gt_src, axis=1)
    headsizes = np.linalg.norm(headboxes_src[1, :, :] - headboxes_src[0, :, :], axis=0) * SC_BIAS
    scaled_uv_err = np.divide(uv_err, headsizes * np.ones((len(uv_err), 1)))
    scaled_uv_err = np.multiply(scaled_uv_err, jnt_visible)
    jnt_count = np.sum(jnt_visible, axis=1)
    less = np.multiply((scaled_uv_err <= threshold), jnt_visible)
    PCKh = np.divide(100. * np.sum(less, axis=1), jnt_count)
    rng = np.arange(0, 0.5 + 0.01, 0.01)
    pckAll = np.zeros((len(rng), 16))
    for r in range(len(rng)):
        less = np.multiply(scaled_uv_err <= rng[r], jnt_visible)
        pckAll[r, :] = np.divide(100. * np.sum(less, axis=1), jnt_count)
    PCKh = np.ma.array(PCKh, mask=False)
    PCKh.mask[6:8] = True
    jnt_count = np.ma.array(jnt_count, mask=False)
    jnt_count.mask[6:8] = True
    jnt_ratio = jnt_count / np.sum(jnt_count).astype(np.float64)
    return {"Head": PCKh[head], "Shoulder": 0.5 * (PCKh[lsho] + PCKh[rsho]),
            "Elbow": 0.5 * (PCKh[lelb] + PCKh[relb]), "Wrist": 0.5 * (PCKh[lwri] + PCKh[rwri]),
            "Hip": 0.5 * (PCKh[lhip] + PCKh[rhip]), "Knee": 0.5 * (PCKh[lkne] + PCKh[rkne]),
            "Ankle": 0.5 * (PCKh[lank] + PCKh[rank]), "Mean": np.sum(PCKh * jnt_ratio),
            "Mean@0.1": np.sum(pckAll[11, :] * jnt_ratio)}


def _mmpose1_pckh(preds, gt, vis, head_size):
    """mmpose 1.x MpiiPCKAccuracy (keypoint_pck_accuracy: strictly below the threshold)."""
    err = np.linalg.norm(preds - gt, axis=-1) / head_size[:, None]

    def acc(t):
        return np.array([100.0 * (err[vis[:, j], j] < t).mean() for j in range(16)])
    pck, at_01 = acc(0.5), acc(0.1)
    count = vis.sum(0).astype(np.float64)
    count[6:8] = 0
    ratio = count / count.sum()
    return {"Mean": np.sum(pck * ratio), "Mean@0.1": np.sum(at_01 * ratio),
            "Head": pck[9], "Wrist": 0.5 * (pck[15] + pck[10])}


def _mpii_sample():
    """The real MPII sample (mmpose json: 0-based joints, joints_vis); head boxes are not in
    this layout, so each person gets the box spanned by upper neck and head top, widened."""
    anns = _json("mpii_sample.json")
    gt = np.array([a["joints"] for a in anns], dtype=np.float64)
    vis = np.array([a["joints_vis"] for a in anns], dtype=bool)
    neck, top = gt[:, 8], gt[:, 9]
    half = 0.5 * np.linalg.norm(top - neck, axis=-1)[:, None]
    mid = 0.5 * (neck + top)
    boxes = np.stack([mid - half, mid + half], axis=1)  # (N, 2, 2)
    return gt, vis, boxes


@pytest.mark.parametrize("seed", range(3))
def test_mpii_pckh_equals_the_official_evaluation(seed):
    gt, vis, boxes = _mpii_sample()
    rng = np.random.default_rng(seed)
    sizes = mpii_head_sizes(boxes)
    # errors spread around the thresholds, some exactly on 0.5 x head size
    pred = gt + rng.normal(size=gt.shape) * sizes[:, None, None] * 0.35
    pred[:, 3] = gt[:, 3] + np.array([0.5, 0.0]) * sizes[:, None]
    vis[0, 4] = False
    ours = mpii_pckh(pred + 1.0, gt + 1.0, vis, head_boxes=boxes + 1.0)
    ref = _official_evaluate_pckh(pred + 1.0, np.transpose(gt + 1.0, [1, 2, 0]),
                                  (~vis).T.astype(np.float64), np.transpose(boxes + 1.0, [1, 2, 0]))
    for k, v in ref.items():
        assert ours[k] == pytest.approx(float(v), abs=1e-9), k
    assert ours["per_joint"].shape == (16,)
    ours = mpii_pckh(pred, gt, vis, sizes, convention="mmpose")
    ref = _mmpose1_pckh(pred, gt, vis, sizes)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(float(v), abs=1e-9), k


def test_mpii_gt_mat_in_the_official_layout(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    from pyhpe.eval import load_mpii_gt_mat
    gt, vis, boxes = _mpii_sample()
    gt, boxes = gt + 1.0, boxes + 1.0  # the .mat is 1-based
    names = np.array([["rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck",
                       "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri"]], dtype=object)
    path = tmp_path / "gt_valid.mat"
    scipy_io.savemat(path, {"dataset_joints": names, "jnt_missing": (~vis).T.astype(np.uint8),
                            "pos_gt_src": np.transpose(gt, [1, 2, 0]),
                            "headboxes_src": np.transpose(boxes, [1, 2, 0])})
    g, v, b = load_mpii_gt_mat(path)
    np.testing.assert_array_equal(g, gt)
    np.testing.assert_array_equal(v, vis)
    np.testing.assert_array_equal(b, boxes)
    pred = g + 3.0
    ref = _official_evaluate_pckh(pred, np.transpose(g, [1, 2, 0]), (~v).T.astype(float),
                                  np.transpose(b, [1, 2, 0]))
    ours = mpii_pckh(pred, g, v, head_boxes=b)
    for k, val in ref.items():
        assert ours[k] == pytest.approx(float(val), abs=1e-9), k
    scipy_io.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="lacks"):
        load_mpii_gt_mat(tmp_path / "other.mat")
    (tmp_path / "bad.mat").write_text("not a mat file")
    with pytest.raises(ValueError, match="cannot read"):
        load_mpii_gt_mat(tmp_path / "bad.mat")


def test_mpii_pckh_tables_and_errors():
    gt, vis, boxes = _mpii_sample()
    perfect = mpii_pckh(gt, gt, vis, head_boxes=boxes)
    assert perfect["Head"] == 100.0
    assert perfect["Mean"] == pytest.approx(100.0) and perfect["Mean@0.1"] == pytest.approx(100.0)
    assert list(perfect)[:9] == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle",
                                 "Mean", "Mean@0.1"]
    with pytest.raises(ValueError, match="exactly one"):
        mpii_pckh(gt, gt, vis)
    with pytest.raises(ValueError, match="16, 2"):
        mpii_pckh(gt[:, :15], gt[:, :15], vis[:, :15], np.ones(len(gt)))
    with pytest.raises(ValueError, match="head size"):
        mpii_pckh(gt, gt, vis, np.zeros(len(gt)))
    np.testing.assert_allclose(mpii_head_sizes([[[0, 0], [3, 4]]]), [3.0])


# ----------------------------------------------------------------------- Human3.6M
def _mmpose_similarity(X, Y):
    """mmpose / VideoPose3D compute_similarity_transform (one sample)."""
    muX, muY = X.mean(0, keepdims=True), Y.mean(0, keepdims=True)
    X0, Y0 = X - muX, Y - muY
    var = np.sum(X0 ** 2)
    K = X0.T @ Y0
    U, s, Vh = np.linalg.svd(K)
    V = Vh.T
    Z = np.eye(U.shape[0])
    Z[-1, -1] *= np.sign(np.linalg.det(U @ V.T))
    R = V @ (Z @ U.T)
    scale = np.trace(R @ K) / var
    t = muY - scale * (R @ muX.T).T
    return scale * (R @ X.T).T + t


def test_h36m_mpjpe_per_action_on_real_frames():
    d = np.load(DATA / "h36m" / "test_h36m_body3d.npz")
    gt = d["S"][..., :3] * 1000.0  # m -> mm
    gt = gt - gt[:, :1]  # root-relative, as the lifting models predict
    names = [str(n) for n in d["imgname"]]
    assert [h36m_action(n) for n in names] == ["Directions", "SittingDown", "Greeting", "WalkDog"]
    rng = np.random.default_rng(0)
    R = np.array([[0.96, -0.28, 0], [0.28, 0.96, 0], [0, 0, 1.0]])
    pred = 1.1 * gt @ R.T + rng.normal(scale=20.0, size=gt.shape)
    mask = d["S"][..., 3] > 0
    # two samples per action, to test the grouping
    pred, gt, mask = np.concatenate([pred, pred[::-1] + 5]), np.concatenate([gt, gt[::-1]]), \
        np.concatenate([mask, mask[::-1]])
    names = names + names[::-1]
    out = mpjpe_by_action(pred, gt, names, mask)
    err = np.linalg.norm(pred - gt, axis=-1)
    aligned = np.stack([_mmpose_similarity(p, g) for p, g in zip(pred, gt)])
    perr = np.linalg.norm(aligned - gt, axis=-1)
    assert out["MPJPE"] == pytest.approx(err[mask].mean(), rel=1e-12)
    assert out["P-MPJPE"] == pytest.approx(perr[mask].mean(), rel=1e-9)
    acts = np.array([h36m_action(n) for n in names])
    for a in ["Directions", "SittingDown", "Greeting", "WalkDog"]:
        s = acts == a
        assert out[f"MPJPE_{a}"] == pytest.approx(err[s][mask[s]].mean(), rel=1e-12)
        assert out[f"P-MPJPE_{a}"] == pytest.approx(perr[s][mask[s]].mean(), rel=1e-9)
    assert out["P-MPJPE"] < out["MPJPE"]
    assert set(mpjpe_by_action(pred, gt, acts, protocols=(1,))) == {"MPJPE"} | {
        f"MPJPE_{a}" for a in set(acts)}
    with pytest.raises(ValueError, match="not a Human3.6M name"):
        h36m_action("foo.jpg")
    with pytest.raises(ValueError, match="protocol"):
        mpjpe_by_action(pred, gt, acts, protocols=(3,))


# ----------------------------------------------------------------------- MPI-INF-3DHP
def test_3dhp_pck_and_auc_on_real_frames():
    d = np.load(DATA / "mpi_inf_3dhp" / "test_3dhp_test.npz")
    gt = d["S"][..., :3] * 1000.0
    rng = np.random.default_rng(1)
    pred = gt + rng.normal(scale=80.0, size=gt.shape)
    mask = d["S"][..., 3] > 0
    err = np.linalg.norm(pred - gt, axis=-1)
    # mmpose keypoint_3d_pck / keypoint_3d_auc, in mm
    ref_pck = (err < 150).astype(np.float32)[mask].mean() * 100
    ref_auc = np.mean([(err < t).astype(np.float32)[mask].mean()
                       for t in np.linspace(0., 150, 31)]) * 100
    assert pck3d(pred, gt, mask) == pytest.approx(ref_pck, abs=1e-5)
    assert auc3d(pred, gt, mask) == pytest.approx(ref_auc, abs=1e-5)
    assert 0 < ref_pck < 100 and 0 < ref_auc < ref_pck
    # the same in metres with the thresholds given in metres
    assert pck3d(pred / 1000, gt / 1000, mask, threshold=0.15) == pytest.approx(ref_pck, abs=1e-5)
    out = mpi_inf_3dhp_metrics(pred, gt, mask)
    assert set(out) == {"PCK3D", "AUC", "MPJPE", "P-PCK3D", "P-AUC", "P-MPJPE"}
    assert out["PCK3D"] == pck3d(pred, gt, mask) and out["P-MPJPE"] <= out["MPJPE"]
    assert pck3d(gt, gt) == 100.0 and auc3d(gt, gt) == pytest.approx(100 * 30 / 31)


# ----------------------------------------------------------------------- CMU Panoptic
def _panoptic_frames():
    frames = []
    folder = DATA / "panoptic_body3d" / "160906_band1" / "hdPose3d_stage1_coco19"
    for name in sorted(os.listdir(folder)):
        bodies = json.loads((folder / name).read_text())["bodies"]
        j = np.array([b["joints19"] for b in bodies], dtype=np.float64).reshape(len(bodies), 19, 4)
        j = j[:, :15]  # VoxelPose evaluates the first 15 joints
        frames.append((j[..., :3] * 10.0, j[..., 3] > 0.1))  # cm -> mm, confidence > 0.1
    return frames


def _voxelpose_eval(preds, scores, gts, vis):
    """VoxelPose's panoptic evaluate(): eval list, AP per threshold, MPJPE at 500 mm."""
    eval_list, total_gt = [], 0
    for P, S, G, V in zip(preds, scores, gts, vis):
        for pose, score in zip(P, S):
            mpjpes = [np.mean(np.sqrt(np.sum((pose[v] - g[v]) ** 2, axis=-1)))
                      for g, v in zip(G, V)]
            eval_list.append({"mpjpe": float(np.min(mpjpes)), "score": float(score),
                              "gt_id": int(total_gt + np.argmin(mpjpes))})
        total_gt += len(G)

    def to_ap(threshold):
        eval_list.sort(key=lambda k: k["score"], reverse=True)
        tp, fp, gt_det = np.zeros(len(eval_list)), np.zeros(len(eval_list)), []
        for i, item in enumerate(eval_list):
            if item["mpjpe"] < threshold and item["gt_id"] not in gt_det:
                tp[i] = 1
                gt_det.append(item["gt_id"])
            else:
                fp[i] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / (total_gt + 1e-5)
        precise = tp / (tp + fp + 1e-5)
        for n in range(len(eval_list) - 2, -1, -1):
            precise[n] = max(precise[n], precise[n + 1])
        precise = np.concatenate(([0], precise, [0]))
        recall = np.concatenate(([0], recall, [1]))
        index = np.where(recall[1:] != recall[:-1])[0]
        return np.sum((recall[index + 1] - recall[index]) * precise[index + 1]), recall[-2]

    def to_mpjpe(threshold=500):
        eval_list.sort(key=lambda k: k["score"], reverse=True)
        gt_det, mpjpes = [], []
        for item in eval_list:
            if item["mpjpe"] < threshold and item["gt_id"] not in gt_det:
                mpjpes.append(item["mpjpe"])
                gt_det.append(item["gt_id"])
        return np.mean(mpjpes) if len(mpjpes) > 0 else np.inf
    out = {}
    for t in (25, 50, 75, 100, 125, 150):
        out[f"AP {t}"], out[f"AR {t}"] = to_ap(t)
    out["MPJPE 500mm"] = to_mpjpe()
    out["RECALL 500mm"] = len(np.unique([e["gt_id"] for e in eval_list
                                         if e["mpjpe"] < 500])) / total_gt
    return out


def test_panoptic_mpjpe_and_ap_equal_voxelpose_on_real_frames():
    frames = _panoptic_frames()
    rng = np.random.default_rng(2)
    preds, scores, gts, vis = [], [], [], []
    for i, (g, v) in enumerate(frames):
        p = g + rng.normal(scale=15.0 + 25.0 * np.arange(len(g))[:, None, None], size=g.shape)
        s = rng.uniform(0.3, 1.0, len(g))
        if i == 0:  # a duplicate of the first person, and a person missed
            p = np.concatenate([p[:-1], g[:1] + 60.0])
            s = np.concatenate([s[:-1], [0.95]])
        preds.append(p)
        scores.append(s)
        gts.append(g)
        vis.append(v)
    ours = multiperson_mpjpe_ap(preds, scores, gts, vis)
    ref = _voxelpose_eval(preds, scores, gts, vis)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(float(v), abs=1e-12), k
    assert ours["mAP"] == pytest.approx(np.mean([ref[f"AP {t}"] for t in range(25, 151, 25)]))
    assert ours["mAR"] == pytest.approx(np.mean([ref[f"AR {t}"] for t in range(25, 151, 25)]))
    assert 0 < ours["AP 150"] < 1 and np.isfinite(ours["MPJPE 500mm"])


def test_multiperson_mpjpe_ap_by_hand():
    g = np.zeros((2, 3, 3))
    g[1] += 1000.0
    a, b = g[0] + [10.0, 0, 0], g[0] + [30.0, 0, 0]  # both nearest the first person
    out = multiperson_mpjpe_ap([np.stack([b, a])], [[0.8, 0.9]], [g])
    assert out["MPJPE 500mm"] == pytest.approx(10.0) and out["RECALL 500mm"] == 0.5
    assert out["AP 25"] == pytest.approx(0.5, abs=1e-4)
    assert out["AP 150"] == pytest.approx(0.5, abs=1e-4)
    assert out["AR 25"] == pytest.approx(0.5, abs=1e-4)
    none = multiperson_mpjpe_ap([np.zeros((0, 3, 3))], [[]], [g])
    assert none["mAP"] == 0 and none["MPJPE 500mm"] == float("inf")
    # a GT person without visible joints is not counted
    vis = np.array([[True] * 3, [False] * 3])
    one = multiperson_mpjpe_ap([np.stack([b, a])], [[0.8, 0.9]], [g], [vis])
    assert one["RECALL 500mm"] == 1.0 and one["AP 25"] == pytest.approx(1.0, abs=1e-4)


# ----------------------------------------------------------------------- PoseTrack18
def _to_poseval_frames(gt, results):
    """GT and results in poseval's annolist form, as its convert.py leaves them (17 -> 15
    joints, a point skipped when it is (0, 0) with visibility 0), with its cleanup and
    ignore-region removal (matplotlib's point-in-polygon standing in for shapely's)."""
    from matplotlib.path import Path
    names17 = ["nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder",
               "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
               "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
    names15 = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
               "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
               "left_wrist", "head_bottom", "nose", "head_top"]
    table = [names15.index(n) if n in names15 else None for n in names17]

    def rect(a):
        kp = np.array(a["keypoints"]).reshape(17, 3)
        pts = []
        for k, (x, y, v) in enumerate(kp):
            if table[k] is None or (x == 0 and y == 0 and v == 0):
                continue
            p = {"id": [table[k]], "x": [x], "y": [y]}
            if a.get("scores"):
                p["score"] = [a["scores"][k]]
            pts.append(p)
        r = {"annopoints": [{"point": pts}]}
        if "bbox_head" in a:
            x, y, w, h = a["bbox_head"]
            r.update(x1=[x], y1=[y], x2=[x + w], y2=[y + h])
        return r
    gt_frames, pr_frames = [], []
    for img in gt["images"]:
        polys = [Path(np.stack([xs, ys], 1)) for xs, ys in
                 zip(img.get("ignore_regions_x", []), img.get("ignore_regions_y", []))]
        g = [rect(a) for a in gt["annotations"] if a["image_id"] == img["id"]]
        p = [rect(r) for r in results if r["image_id"] == img["id"]]
        if not g:
            continue
        for rects in (g, p):
            keep = []
            for r in rects:
                pts = [q for q in r["annopoints"][0]["point"]
                       if not any(poly.contains_point((q["x"][0], q["y"][0])) for poly in polys)]
                r["annopoints"][0]["point"] = pts
                if pts or not polys:
                    keep.append(r)
            rects[:] = keep
        gt_frames.append({"annorect": g})
        pr_frames.append({"annorect": p})
    return gt_frames, pr_frames


def _poseval_ap(gt_frames, pr_frames, dist_thresh=0.5):
    """poseval's assignGTmulti (the AP part) and computeMetrics, as its code states them."""
    nJoints = 15

    def point(points, i):
        for p in points:
            if p["id"][0] == i:
                return p
        return []
    scoresAll = {j: {i: np.zeros([0, 0]) for i in range(len(gt_frames))} for j in range(nJoints)}
    labelsAll = {j: {i: np.zeros([0, 0]) for i in range(len(gt_frames))} for j in range(nJoints)}
    nGTall = np.zeros([nJoints, len(gt_frames)])
    for imgidx, (gf, pf) in enumerate(zip(gt_frames, pr_frames)):
        G, P = gf["annorect"], pf["annorect"]
        dist = np.full((len(P), len(G), nJoints), np.inf)
        score = np.full((len(P), nJoints), np.nan)
        hasPr = np.zeros((len(P), nJoints), dtype=bool)
        hasGT = np.zeros((len(G), nJoints), dtype=bool)
        for r, g in enumerate(G):
            for i in range(nJoints):
                if len(point(g["annopoints"][0]["point"], i)) > 0:
                    hasGT[r, i] = True
        for r, p in enumerate(P):
            for i in range(nJoints):
                pp = point(p["annopoints"][0]["point"], i)
                if len(pp) > 0:
                    score[r, i] = pp["score"][0]
                    hasPr[r, i] = True
        if len(P) and len(G):
            for rg, g in enumerate(G):
                headSize = 0.6 * np.linalg.norm(np.subtract([g["x2"][0], g["y2"][0]],
                                                             [g["x1"][0], g["y1"][0]]))
                for rp, p in enumerate(P):
                    for i in range(nJoints):
                        pg, pp = point(g["annopoints"][0]["point"], i), \
                            point(p["annopoints"][0]["point"], i)
                        if hasPr[rp, i] and hasGT[rg, i]:
                            dist[rp, rg, i] = np.linalg.norm(np.subtract(
                                [pg["x"][0], pg["y"][0]], [pp["x"][0], pp["y"][0]])) / headSize
            nGTp = np.sum(hasGT, axis=1)
            match = dist <= dist_thresh
            pck = 1.0 * np.sum(match, axis=2)
            for i in range(hasPr.shape[0]):
                for j in range(hasGT.shape[0]):
                    if nGTp[j] > 0:
                        pck[i, j] = pck[i, j] / nGTp[j]
            idx = np.argmax(pck, axis=1)
            for rp in range(pck.shape[0]):
                for rg in range(pck.shape[1]):
                    if rg != idx[rp]:
                        pck[rp, rg] = 0
            prToGT = np.argmax(pck, axis=0)
            val = np.max(pck, axis=0)
            prToGT[val == 0] = -1
            for rp in range(hasPr.shape[0]):
                if rp in prToGT:
                    rg = np.argwhere(prToGT == rp)[0, 0]
                    m = np.squeeze(match[rp, rg, :])
                else:
                    m = np.zeros([match.shape[2], 1], dtype=bool)
                for i in range(nJoints):
                    if hasPr[rp, i]:
                        scoresAll[i][imgidx] = np.append(scoresAll[i][imgidx], score[rp, i])
                        labelsAll[i][imgidx] = np.append(labelsAll[i][imgidx], m[i])
        elif not len(G):
            for rp in range(hasPr.shape[0]):
                for i in range(nJoints):
                    if hasPr[rp, i]:
                        scoresAll[i][imgidx] = np.append(scoresAll[i][imgidx], score[rp, i])
                        labelsAll[i][imgidx] = np.append(labelsAll[i][imgidx], False)
        for rg in range(hasGT.shape[0]):
            for i in range(nJoints):
                nGTall[i, imgidx] += hasGT[rg, i]

    def voc_ap(rec, prec):
        mpre = np.zeros([1, 2 + len(prec)])
        mpre[0, 1:len(prec) + 1] = prec
        mrec = np.zeros([1, 2 + len(rec)])
        mrec[0, 1:len(rec) + 1] = rec
        mrec[0, len(rec) + 1] = 1.0
        for i in range(mpre.size - 2, -1, -1):
            mpre[0, i] = max(mpre[0, i], mpre[0, i + 1])
        i = np.argwhere(~np.equal(mrec[0, 1:], mrec[0, :mrec.shape[1] - 1])) + 1
        i = i.flatten()
        return np.sum(np.multiply(np.subtract(mrec[0, i], mrec[0, i - 1]), mpre[0, i]))
    apAll = np.zeros((nJoints + 1, 1))
    for j in range(nJoints):
        scores = np.zeros([0, 0])
        labels = np.zeros([0, 0])
        for imgidx in range(len(gt_frames)):
            scores = np.append(scores, scoresAll[j][imgidx])
            labels = np.append(labels, labelsAll[j][imgidx])
        nGT = sum(nGTall[j, :])
        idxs = np.array(scores).argsort()[::-1]
        labelsSort = labels[idxs]
        precision, recall, npos = np.zeros(len(scores)), np.zeros(len(scores)), 0
        for s in range(len(idxs)):
            npos += labelsSort[s] == 1
            with np.errstate(divide="ignore", invalid="ignore"):
                recall[s] = 1.0 * npos / nGT
            precision[s] = 1.0 * npos / (s + 1)
        if len(precision) > 0:
            apAll[j] = voc_ap(recall, precision) * 100
    idxs = np.argwhere(~np.isnan(apAll[:nJoints, 0]))
    apAll[nJoints] = apAll[idxs, 0].mean()
    return apAll[:, 0]


def _posetrack_predictions(gt, seed):
    """Predictions near the GT people of the real PoseTrack18 sample: noise on the joints,
    per-joint scores, a missed person, a duplicate and a stray person."""
    rng = np.random.default_rng(seed)
    results = []
    for k, a in enumerate(gt["annotations"]):
        if k == 2:
            continue  # missed
        kp = np.array(a["keypoints"], np.float64).reshape(17, 3)
        head = np.linalg.norm(a["bbox_head"][2:])
        copies = 2 if k == 5 else 1
        for c in range(copies):
            noisy = kp[:, :2] + rng.normal(scale=0.25 * head * (1 + c), size=(17, 2))
            scores = np.round(rng.uniform(0.05, 1.0, 17), 2)  # rounded: ties happen
            results.append({"image_id": a["image_id"], "category_id": 1,
                            "keypoints": np.column_stack([noisy, scores]).ravel().tolist(),
                            "scores": scores.tolist(), "score": float(scores.mean())})
    stray = np.column_stack([rng.uniform(100, 900, (17, 2)), rng.uniform(0.1, 0.9, 17)])
    results.append({"image_id": gt["images"][0]["id"], "category_id": 1,
                    "keypoints": stray.ravel().tolist(), "scores": stray[:, 2].tolist(),
                    "score": 0.5})
    return results


@pytest.mark.parametrize("seed", range(3))
def test_posetrack18_ap_equals_poseval_on_real_frames(seed):
    pytest.importorskip("matplotlib")
    from pyhpe.eval import posetrack18_ap
    gt = _json("posetrack18/test_posetrack18_val.json")
    results = _posetrack_predictions(gt, seed)
    ours = posetrack18_ap(gt, results)
    ref = _poseval_ap(*_to_poseval_frames(gt, results))
    np.testing.assert_allclose(ours["per_joint"], ref[:15], atol=1e-9, equal_nan=True)
    assert ours["Total AP"] == pytest.approx(ref[15], abs=1e-9)
    assert list(ours)[:8] == ["Head AP", "Shou AP", "Elb AP", "Wri AP", "Hip AP", "Knee AP",
                              "Ankl AP", "Total AP"]
    assert ours["Head AP"] == pytest.approx(np.mean(ref[[14, 12, 13]]), abs=1e-9)
    assert 0 < ours["Total AP"] < 100


def test_posetrack18_ap_perfect_and_empty():
    from pyhpe.eval import posetrack18_ap
    gt = _json("posetrack18/test_posetrack18_val.json")
    perfect = [{"image_id": a["image_id"], "keypoints": [v if i % 3 != 2 else 1.0
                                                         for i, v in enumerate(a["keypoints"])]}
               for a in gt["annotations"]]
    out = posetrack18_ap(gt, perfect)
    # every GT joint found; predictions of joints the GT lacks are the only false positives
    assert out["Total AP"] > 80
    assert posetrack18_ap(gt, [])["Total AP"] == 0.0
    with pytest.raises(ValueError, match="17 keypoints"):
        posetrack18_ap(gt, [{"image_id": gt["images"][0]["id"], "keypoints": [1.0] * 15}])


def test_posetrack18_ignore_regions_remove_predictions():
    from pyhpe.eval import posetrack18_ap
    gt = _json("posetrack18/test_posetrack18_val.json")
    img = gt["images"][0]
    anns = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
    gt1 = dict(gt, images=[img], annotations=anns)
    perfect = [{"image_id": a["image_id"], "keypoints": [v if i % 3 != 2 else 0.9
                                                         for i, v in enumerate(a["keypoints"])]}
               for a in anns]
    base = posetrack18_ap(gt1, perfect)
    # a confident stray person inside an ignore region: dropped, the APs do not change
    Path = pytest.importorskip("matplotlib.path").Path
    from pyhpe.eval.metrics import _inside
    xs = np.array(img["ignore_regions_x"][1], float)
    ys = np.array(img["ignore_regions_y"][1], float)
    poly = np.stack([xs, ys], 1)
    grid = np.stack(np.meshgrid(np.linspace(xs.min(), xs.max(), 37),
                                np.linspace(ys.min(), ys.max(), 41)), -1).reshape(-1, 2) + 0.01
    ref = Path(poly).contains_points(grid)
    np.testing.assert_array_equal(_inside(grid, poly), ref)  # same as matplotlib's test
    inside = grid[np.flatnonzero(ref)[0]].tolist()
    stray = {"image_id": img["id"], "keypoints": (inside + [1.0]) * 17}
    np.testing.assert_array_equal(posetrack18_ap(gt1, perfect + [stray])["per_joint"],
                                  base["per_joint"])
    # the same person outside every region: a false positive ranked first
    outside = dict(stray, keypoints=[5000.0, 5000.0, 1.0] * 17)
    assert posetrack18_ap(gt1, perfect + [outside])["Total AP"] < base["Total AP"]
