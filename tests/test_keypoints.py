"""Keypoint sets: the one home of names, flip pairs, sigmas, skeletons and colours."""
import ast
import json
import pathlib

import numpy as np
import pytest

from pyhpe.keypoints import (COCO17, COCO_SIGMAS, CROWDPOSE14, H36M17, H36M_BONES, H36M_PARENTS,
                             MPII16, KeypointSet, get_keypoint_set, keypoint_set_from_coco,
                             register_keypoint_set)

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
    with pytest.raises(ValueError, match="skeleton refers to"):
        keypoint_set_from_coco(data, sigmas=CROWDPOSE14.sigmas)


def test_real_ochuman_file_is_coco17():
    data = _load("ochuman_sample.json")
    assert keypoint_set_from_coco(data) is COCO17
    # its skeleton is pycocotools' person skeleton, 1-based
    assert sorted(tuple(sorted((a - 1, b - 1))) for a, b in data["categories"][0]["skeleton"]) \
        == sorted(tuple(sorted(limb)) for limb in COCO17.skeleton)


def test_real_aic_file_builds_a_set_with_flip_pairs():
    data = _load("aic_sample.json")
    k = keypoint_set_from_coco(data)
    assert k.num_keypoints == 14 and k.names[0] == "Right Shoulder"
    assert sorted(k.flip_pairs) == [(3, 0), (4, 1), (5, 2), (9, 6), (10, 7), (11, 8)]
    fi = k.flip_index()
    assert fi[12] == 12 and fi[13] == 13 and [fi[i] for i in fi] == list(range(14))
    assert k.skeleton[0] == (2, 1) and np.allclose(k.sigmas, 0.05)
    # limb colours follow the side read from 'Right ...' / 'Left ...'
    assert k.colors[k.skeleton.index((2, 1))] != k.colors[k.skeleton.index((3, 4))]


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
