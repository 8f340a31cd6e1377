"""Keypoint sets: the one home of names, flip pairs, sigmas, skeletons and colours."""
import ast
import json
import pathlib

import numpy as np
import pytest

from pyhpe.keypoints import (AIC14, BUILTIN_SETS, COCO17, COCO_SIGMAS, COCO_WHOLEBODY133,
                             COCO_WHOLEBODY_PARTS, CROWDPOSE14, H36M17, H36M_BONES, H36M_PARENTS,
                             HALPE26, HALPE136, JHMDB15, MPI_INF_3DHP17, MPII16, OCHUMAN17,
                             PANOPTIC19, POSETRACK17, KeypointSet, get_keypoint_set,
                             keypoint_set_from_coco, list_keypoint_sets, register_keypoint_set)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_coco17_metadata():
    assert COCO17.num_keypoints == 17 and len(COCO17.skeleton) == 19
    fi = COCO17.flip_index()
    assert fi == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert [fi[i] for i in fi] == list(range(17))
    assert COCO17.sigmas[0] == pytest.approx(0.026)
    assert COCO17.limbs == COCO17.skeleton
    assert get_keypoint_set("coco") is COCO17 and get_keypoint_set("mpii16") is MPII16


def test_coco_sigmas_are_pycocotools_bits():
    # pycocotools builds them as np.array([...]) / 10.0: equal bit for bit, float64
    ref = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                    .89, .89]) / 10.0
    assert COCO_SIGMAS.dtype == np.float64 and np.array_equal(COCO_SIGMAS, ref)
    assert np.array_equal(COCO17.sigmas, COCO_SIGMAS)


def test_coco_sigmas_defined_once_in_owned_modules():
    """No module of pyhpe/keypoints, data, eval, vis or testing assigns its own COCO_SIGMAS."""
    owned = [ROOT / "pyhpe" / "keypoints.py"]
    for sub in ("data", "eval", "vis", "testing"):
        owned += sorted((ROOT / "pyhpe" / sub).glob("*.py"))
    homes = []
    for path in owned:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "COCO_SIGMAS" for t in node.targets):
                homes.append(path.relative_to(ROOT).as_posix())
    assert homes == ["pyhpe/keypoints.py"]


def test_crowdpose14_metadata():
    k = get_keypoint_set("crowdpose")
    assert k is get_keypoint_set("crowdpose14") is CROWDPOSE14 and k.num_keypoints == 14
    # mmpose's crowdpose.py / the CrowdPose API: the COCO body sigmas, head and neck 0.079
    np.testing.assert_allclose(k.sigmas, [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
                                          0.087, 0.087, 0.089, 0.089, 0.079, 0.079])
    for a, b in k.flip_pairs:
        assert k.names[a].replace("left", "right") == k.names[b]
    assert sorted(k.upper_body + k.lower_body) == list(range(14))


def test_h36m17_metadata():
    k = get_keypoint_set("h36m")
    assert k is H36M17 and k.num_keypoints == 17 and k.parents == list(H36M_PARENTS)
    assert k.parents[0] == -1 and k.names[0] == "hip"
    # the skeleton is the kinematic tree: one (parent, child) bone per non-root joint
    assert k.skeleton == list(H36M_BONES) and len(k.skeleton) == 16
    assert all(k.parents[child] == parent for parent, child in k.skeleton)
    fi = k.flip_index()
    assert [fi[i] for i in fi] == list(range(17))
    for i, j in enumerate(fi):
        assert k.names[j] == k.names[i].replace("left", "@").replace("right", "left").replace("@", "right")
    assert sorted(k.upper_body + k.lower_body) == list(range(17))


def test_colours_follow_body_side():
    assert len(COCO17.colors) == len(COCO17.skeleton)
    assert len(COCO17.keypoint_colors) == COCO17.num_keypoints
    left_arm = COCO17.skeleton.index((5, 7))
    right_arm = COCO17.skeleton.index((6, 8))
    shoulders = COCO17.skeleton.index((5, 6))
    assert len({COCO17.colors[left_arm], COCO17.colors[right_arm], COCO17.colors[shoulders]}) == 3
    assert COCO17.keypoint_colors[5] == COCO17.colors[left_arm]
    for kset in (MPII16, CROWDPOSE14, H36M17):
        assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in kset.colors)
    with pytest.raises(ValueError, match="colors"):
        KeypointSet("bad", ["a", "b"], [], [0.1, 0.1], [(0, 1)], colors=[(1, 2, 3), (4, 5, 6)])


def test_custom_keypoint_sets(tmp_path):
    d = {"name": "hand3", "names": ["wrist", "left_tip", "right_tip"], "flip_pairs": [[1, 2]],
         "skeleton": [[0, 1], [0, 2]]}
    ks = get_keypoint_set(d)
    assert ks.flip_index() == [0, 2, 1] and np.allclose(ks.sigmas, 0.05)
    p = tmp_path / "k.json"
    p.write_text(json.dumps(ks.to_dict()))
    back = get_keypoint_set(str(p))
    assert back.names == ks.names and back.colors == ks.colors and back.skeleton == ks.skeleton
    cat = {"name": "x", "keypoints": ["nose", "left_eye", "right_eye"], "skeleton": [[1, 2], [1, 3]]}
    ks2 = KeypointSet.from_coco_category(cat)
    assert ks2.flip_pairs == [(1, 2)] and ks2.skeleton == [(0, 1), (0, 2)]
    with pytest.raises(ValueError, match="sigmas"):
        KeypointSet("bad", ["a", "b"], [], [0.1], [])
    with pytest.raises(ValueError, match="parents"):
        KeypointSet("bad", ["a", "b"], [], [0.1, 0.1], [], parents=[-1, 5])
    with pytest.raises(ValueError, match="unknown keypoint set"):
        get_keypoint_set("nope")
    register_keypoint_set(ks2, "x3_test")
    assert get_keypoint_set("x3_test") is ks2
    with pytest.raises(TypeError, match="KeypointSet"):
        register_keypoint_set({"names": []})


def test_keypoint_set_from_coco():
    coco = {"categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.names)}]}
    assert keypoint_set_from_coco(coco) is COCO17
    assert keypoint_set_from_coco({"categories": [{"id": 1, "name": "person"}]}) is COCO17
    other = {"categories": [{"id": 1, "name": "hand", "keypoints": ["wrist", "left_tip", "right_tip"],
                             "skeleton": [[1, 2]]}]}
    k = keypoint_set_from_coco(other, sigmas=[0.1, 0.2, 0.2])
    assert k.num_keypoints == 3 and k.flip_pairs == [(1, 2)] and k.skeleton == [(0, 1)]


# Real annotation files (mmpose's tests/data fixtures, Apache-2.0), copied into tests/data.
DATA = pathlib.Path(__file__).resolve().parent / "data"


def _load(name):
    return json.loads((DATA / name).read_text())


def test_real_crowdpose_file_maps_to_crowdpose14():
    # CrowdPose's own files name the head top 'head' and carry COCO's 17-point skeleton
    data = _load("crowdpose_sample.json")
    assert data["categories"][0]["keypoints"][12] == "head"
    assert max(max(limb) for limb in data["categories"][0]["skeleton"]) == 17
    assert keypoint_set_from_coco(data) is CROWDPOSE14
    # given sigmas replace the set's; the file's 17-point skeleton is never used
    k = keypoint_set_from_coco(data, sigmas=np.full(14, 0.1))
    assert k.names == CROWDPOSE14.names and k.skeleton == CROWDPOSE14.skeleton
    assert np.allclose(k.sigmas, 0.1) and np.allclose(CROWDPOSE14.sigmas[0], 0.079)
    # a category that is no known set and whose skeleton does not fit is refused clearly
    bad = json.loads(json.dumps(data))
    bad["categories"][0]["keypoints"][13] = "chin"
    with pytest.raises(ValueError, match="skeleton refers to"):
        keypoint_set_from_coco(bad)


def test_real_ochuman_file_is_coco17():
    data = _load("ochuman_sample.json")
    assert keypoint_set_from_coco(data) is COCO17
    # its skeleton is pycocotools' person skeleton, 1-based
    assert sorted(tuple(sorted((a - 1, b - 1))) for a, b in data["categories"][0]["skeleton"]) \
        == sorted(tuple(sorted(limb)) for limb in COCO17.skeleton)


def test_real_aic_file_is_aic14_with_its_sigmas():
    data = _load("aic_sample.json")
    assert data["categories"][0]["keypoints"][0] == "Right Shoulder"
    k = keypoint_set_from_coco(data)
    assert k is AIC14 and k.num_keypoints == 14
    assert sorted(k.flip_pairs) == [(0, 3), (1, 4), (2, 5), (6, 9), (7, 10), (8, 11)]
    fi = k.flip_index()
    assert fi[12] == 12 and fi[13] == 13 and [fi[i] for i in fi] == list(range(14))
    # AI Challenger's keypoint_eval.py deltas are twice these sigmas
    np.testing.assert_allclose(2 * k.sigmas[:3], [0.02776304, 0.03030456, 0.0211533])
    assert k.sigmas[6] == 0.03909642 and k.sigmas[13] == 0.01236173
    # limb colours follow the side read from the names
    assert k.colors[k.skeleton.index((2, 1))] != k.colors[k.skeleton.index((4, 5))]


def test_real_mpii_joint_order_is_mpii16():
    from pyhpe.data import mpii_to_coco
    coco = mpii_to_coco(_load("mpii_sample.json"))
    assert keypoint_set_from_coco(coco) is MPII16
    kps = np.asarray(coco["annotations"][0]["keypoints"]).reshape(16, 3)
    # ankles below knees below hips (image y grows downwards) in the first real annotation
    for ankle, knee, hip in ((MPII16.names.index("right_ankle"), MPII16.names.index("right_knee"),
                              MPII16.names.index("right_hip")),
                             (MPII16.names.index("left_ankle"), MPII16.names.index("left_knee"),
                              MPII16.names.index("left_hip"))):
        assert kps[ankle, 1] > kps[knee, 1] > kps[hip, 1]
    assert kps[MPII16.names.index("head_top"), 1] < kps[MPII16.names.index("upper_neck"), 1]


# ------------------------------------------------------------------ the built-in sets
EXPECTED = {  # name: (keypoints, flip pairs, skeleton limbs, aliases)
    "coco17": (17, 8, 19, ["coco"]), "coco_wholebody133": (133, 61, 65, ["coco_wholebody"]),
    "halpe26": (26, 11, 27, []), "halpe136": (136, 61, 67, ["halpe"]),
    "crowdpose14": (14, 6, 15, ["crowdpose"]), "aic14": (14, 6, 14, ["aic"]),
    "mpii16": (16, 6, 15, ["mpii"]), "ochuman17": (17, 8, 19, ["ochuman"]),
    "posetrack17": (17, 7, 16, ["posetrack", "posetrack18"]), "jhmdb15": (15, 6, 14, ["jhmdb"]),
    "h36m17": (17, 6, 16, ["h36m"]), "mpi_inf_3dhp17": (17, 6, 16, ["mpi_inf_3dhp"]),
    "panoptic19": (19, 8, 14, ["panoptic", "coco19"]),
}


def test_every_builtin_set_is_listed_and_consistent():
    assert sorted(EXPECTED) == sorted(BUILTIN_SETS)
    assert set(EXPECTED) <= set(list_keypoint_sets())
    assert not {"coco", "aic"} & set(list_keypoint_sets())
    assert {"coco", "aic", "halpe"} <= set(list_keypoint_sets(aliases=True))
    for name, (k, nflip, nlimb, aliases) in EXPECTED.items():
        kset = get_keypoint_set(name)
        assert kset.name == name and kset.num_keypoints == k, name
        assert len(kset.flip_pairs) == nflip and len(kset.skeleton) == nlimb, name
        assert all(get_keypoint_set(a) is kset for a in aliases)
        assert len(set(kset.names)) == k, name
        fi = kset.flip_index()
        assert [fi[i] for i in fi] == list(range(k)), name
        for a, b in kset.flip_pairs:   # mirror pairs are named left/right twins
            na, nb = kset.names[a], kset.names[b]
            if na.startswith(("left", "right")):
                assert na.replace("left", "@").replace("right", "left").replace("@", "right") \
                    == nb, (name, na, nb)
        assert np.all(kset.sigmas > 0) and kset.sigmas.dtype == np.float64
        assert len(kset.colors) == len(kset.skeleton)
        assert len(kset.keypoint_colors) == k
        assert not set(kset.upper_body) & set(kset.lower_body)


def test_published_sigmas():
    # COCO-WholeBody: xtcocotools' body, foot, face, hand sigmas
    wb = COCO_WHOLEBODY133
    np.testing.assert_allclose(wb.sigmas[:17], COCO_SIGMAS, rtol=1e-12)
    a, b = COCO_WHOLEBODY_PARTS["foot"]
    np.testing.assert_allclose(wb.sigmas[a:b], [0.068, 0.066, 0.066, 0.092, 0.094, 0.094])
    a, b = COCO_WHOLEBODY_PARTS["face"]
    assert b - a == 68 and wb.sigmas[a] == 0.042 and wb.sigmas[b - 1] == 0.008
    l0, l1 = COCO_WHOLEBODY_PARTS["lefthand"]
    r0, r1 = COCO_WHOLEBODY_PARTS["righthand"]
    assert (l1 - l0, r1 - r0, r1) == (21, 21, 133)
    np.testing.assert_array_equal(wb.sigmas[l0:l1], wb.sigmas[r0:r1])
    assert wb.sigmas[l0] == 0.029 and wb.names[l0] == "left_hand_root"
    # Halpe: HalpeCOCOAPI's values (the 26-point subset and the full 136 differ on purpose)
    assert HALPE26.sigmas[17:20].tolist() == [0.026, 0.026, 0.066]
    assert HALPE136.sigmas[17:26].tolist() == [0.08] * 3 + [0.089] * 6
    assert np.all(HALPE136.sigmas[26:] == 0.015)
    assert HALPE136.names[:26] == HALPE26.names
    from pyhpe.keypoints import HALPE136_PARTS
    assert HALPE136.names[HALPE136_PARTS["lefthand"][0]] == "left_hand_root"
    assert HALPE136.names[HALPE136_PARTS["righthand"][1] - 1] == "right_pinky_finger4"
    assert HALPE136.names[HALPE136_PARTS["foot"][0]] == "left_big_toe"
    assert HALPE136.names[HALPE136_PARTS["face"][0]] == "face-0"
    # COCO's sigmas for OCHuman and PoseTrack18; MPII / JHMDB / Panoptic as mmpose states them
    np.testing.assert_allclose(OCHUMAN17.sigmas, COCO_SIGMAS)
    np.testing.assert_allclose(POSETRACK17.sigmas, COCO_SIGMAS)
    assert MPII16.sigmas[12] == 0.179 and MPII16.sigmas[6] == 0.026
    assert JHMDB15.sigmas[:3].tolist() == [0.025, 0.107, 0.025]
    assert PANOPTIC19.sigmas[:3].tolist() == [0.026, 0.026, 0.107]


def test_3d_sets_have_kinematic_trees():
    for kset, root in ((H36M17, "hip"), (MPI_INF_3DHP17, "root")):
        p = kset.parents
        assert p.count(-1) == 1 and kset.names[p.index(-1)] == root
        edges = {frozenset(e) for e in kset.skeleton}
        assert all(frozenset((j, pj)) in edges for j, pj in enumerate(p) if pj >= 0)


def test_halpe_file_without_keypoint_names_is_halpe136():
    """Halpe's json names no keypoints and carries 136 per annotation: not COCO-17."""
    data = json.loads((DATA / "halpe" / "test_halpe.json").read_text())
    assert not data["categories"][0].get("keypoints")
    assert {len(a["keypoints"]) for a in data["annotations"]} == {408}
    assert keypoint_set_from_coco(data) is HALPE136
    assert keypoint_set_from_coco({"categories": [], "annotations": [
        {"keypoints": [0] * 78}]}) is HALPE26
    # 14 keypoints without names: CrowdPose or AIC, the caller must say which
    with pytest.raises(ValueError, match="pass the keypoint set by name"):
        keypoint_set_from_coco({"categories": [{"id": 1, "name": "person"}],
                                "annotations": [{"keypoints": [0] * 42}]})
    with pytest.raises(ValueError, match="different numbers"):
        keypoint_set_from_coco({"categories": [], "annotations": [
            {"keypoints": [0] * 42}, {"keypoints": [0] * 51}]})


def test_real_files_name_their_sets():
    assert keypoint_set_from_coco(json.loads(
        (DATA / "posetrack18" / "test_posetrack18_val.json").read_text())) is POSETRACK17
    assert keypoint_set_from_coco(json.loads(
        (DATA / "jhmdb" / "test_jhmdb_sub1.json").read_text())) is JHMDB15
    # COCO-WholeBody's category names the 17 body points; its 'keypoints' are those 17
    wb = json.loads((DATA / "coco_wholebody" / "coco_wholebody_test.json").read_text())
    assert keypoint_set_from_coco(wb) is COCO17
    merged = {"categories": [{"id": 1, "keypoints": list(COCO_WHOLEBODY133.names)}]}
    assert keypoint_set_from_coco(merged) is COCO_WHOLEBODY133
