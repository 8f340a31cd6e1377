"""Readers of each dataset's own format, on the real samples (mmpose's test data, copied into
tests/data; the full files under ../shared/data are used when present)."""
import json
import pathlib
import pickle

import numpy as np
import pytest

from pyhpe.data import (READERS, load_coco, mpii_to_coco, project_panoptic, project_pinhole,
                        read_aic, read_amass, read_coco, read_coco_wholebody, read_crowdpose,
                        read_h36m, read_halpe, read_jhmdb, read_keypoint_file, read_mpi_inf_3dhp,
                        read_mpii_mat, read_ochuman, read_panoptic_body3d,
                        read_panoptic_calibration, read_posetrack18, split_wholebody)
from pyhpe.keypoints import (AIC14, COCO17, COCO_WHOLEBODY133, CROWDPOSE14, H36M17, HALPE26,
                             HALPE136, JHMDB15, MPI_INF_3DHP17, MPII16, PANOPTIC19, POSETRACK17,
                             keypoint_set_from_coco)

DATA = pathlib.Path(__file__).resolve().parent / "data"
SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _kps(ann, k):
    return np.asarray(ann["keypoints"], np.float64).reshape(k, 3)


# ------------------------------------------------------------------ COCO-style 2-D files
@pytest.mark.parametrize("reader,path,kset,n_img,n_ann", [
    (read_ochuman, "ochuman_sample.json", COCO17, 3, 5),
    (read_crowdpose, "crowdpose_sample.json", CROWDPOSE14, 2, 5),
    (read_aic, "aic_sample.json", AIC14, 3, 9),
    (read_coco, "xtcocoapi_coco_val.json", COCO17, None, None),
    (read_jhmdb, "jhmdb/test_jhmdb_sub1.json", JHMDB15, 3, 3),
    (read_posetrack18, "posetrack18/test_posetrack18_val.json", POSETRACK17, 3, 14),
])
def test_coco_style_readers_name_their_set(reader, path, kset, n_img, n_ann):
    raw = json.loads((DATA / path).read_text())
    data = reader(DATA / path)
    assert keypoint_set_from_coco(data) is kset
    cat = data["categories"][0]
    assert cat["keypoints"] == list(kset.names)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in kset.skeleton]
    assert len(data["images"]) == len(raw["images"]) and len(data["annotations"]) == \
        len(raw["annotations"])
    if n_img is not None:
        assert (len(data["images"]), len(data["annotations"])) == (n_img, n_ann)
    assert all(len(a["keypoints"]) == 3 * kset.num_keypoints for a in data["annotations"])
    # the fields COCO tools read are there (AIC's and JHMDB's files lack 'iscrowd')
    assert all(a["iscrowd"] in (0, 1) and "num_keypoints" in a and "category_id" in a
               for a in data["annotations"])
    assert reader(raw) == data and raw == json.loads((DATA / path).read_text())  # not modified
    load_coco(data)


def test_crowdpose_category_is_fixed_and_images_keep_crowd_index():
    raw = json.loads((DATA / "crowdpose_sample.json").read_text())
    assert max(max(limb) for limb in raw["categories"][0]["skeleton"]) == 17   # 17 > 14 points
    data = read_crowdpose(raw)
    assert max(max(limb) for limb in data["categories"][0]["skeleton"]) <= 14
    assert all("crowdIndex" in im for im in data["images"])
    # keypoints as in the file
    assert data["annotations"][0]["keypoints"] == raw["annotations"][0]["keypoints"]


def test_halpe_reader_136_and_body_subset():
    path = DATA / "halpe" / "test_halpe.json"
    data = read_halpe(path)
    assert keypoint_set_from_coco(data) is HALPE136
    raw = json.loads(path.read_text())
    a, r = data["annotations"][0], raw["annotations"][0]
    assert a["keypoints"] == r["keypoints"] and len(a["keypoints"]) == 408
    assert a["num_keypoints"] == int((_kps(a, 136)[:, 2] > 0).sum())
    body = read_halpe(path, body_only=True)
    assert keypoint_set_from_coco(body) is HALPE26
    assert body["annotations"][0]["keypoints"] == r["keypoints"][:78]
    # Halpe's first 17 are COCO's: the body of a person lies where COCO's nose/ankles are
    k = _kps(a, 136)
    lab = k[:, 2] > 0
    if lab[0] and lab[15]:
        assert k[0, 1] < k[15, 1]   # nose above the left ankle
    with pytest.raises(ValueError, match="expected 136"):
        read_halpe(DATA / "aic_sample.json")


def test_coco_wholebody_parts_are_merged_in_order():
    path = DATA / "coco_wholebody" / "coco_wholebody_test.json"
    raw = json.loads(path.read_text())
    data = read_coco_wholebody(path)
    assert keypoint_set_from_coco(data) is COCO_WHOLEBODY133
    for a, r in zip(data["annotations"], raw["annotations"]):
        k = np.asarray(a["keypoints"])
        assert k.shape == (399,)
        parts = split_wholebody(k)
        assert parts["body"].tolist() == r["keypoints"]
        assert parts["foot"].tolist() == r["foot_kpts"]
        assert parts["face"].tolist() == r["face_kpts"]
        assert parts["lefthand"].tolist() == r["lefthand_kpts"]
        assert parts["righthand"].tolist() == r["righthand_kpts"]
        assert a["num_keypoints"] == int((k.reshape(133, 3)[:, 2] > 0).sum())
        assert a["righthand_kpts"] == r["righthand_kpts"]     # kept for part-wise evaluation
    # split on (133, 3) arrays keeps the 2-D layout
    assert split_wholebody(np.zeros((133, 3)))["face"].shape == (68, 3)
    # a left-hand point lies nearer the left wrist than the right wrist when both are labelled
    for a in data["annotations"]:
        k = _kps(a, 133)
        if k[9, 2] > 0 and k[10, 2] > 0 and k[91:112, 2].sum() > 0:
            hand = k[91:112][k[91:112, 2] > 0, :2].mean(0)
            assert np.linalg.norm(hand - k[9, :2]) < np.linalg.norm(hand - k[10, :2])
    with pytest.raises(ValueError, match="foot_kpts"):
        read_coco_wholebody(DATA / "ochuman_sample.json")
    with pytest.raises(ValueError, match="merged file already"):
        read_coco_wholebody(data)


def test_posetrack18_frames_and_per_video_folder():
    data = read_posetrack18(DATA / "posetrack18" / "test_posetrack18_val.json")
    im = data["images"][0]
    assert {"vid_id", "frame_id", "nframes", "is_labeled", "file_name"} <= set(im)
    assert all("track_id" in a and "bbox_head" in a for a in data["annotations"])
    assert all(a["iscrowd"] in (0, 1) for a in data["annotations"])
    folder = read_posetrack18(DATA / "posetrack18" / "val")
    assert keypoint_set_from_coco(folder) is POSETRACK17
    assert {i["vid_id"] for i in folder["images"]} == {"009473", "003418"}
    ids = {i["id"] for i in folder["images"]}
    assert all(a["image_id"] in ids for a in folder["annotations"])
    # head_top above head_bottom above the shoulders' mean where labelled
    for a in data["annotations"]:
        k = _kps(a, 17)
        if k[1, 2] > 0 and k[2, 2] > 0:
            assert k[2, 1] < k[1, 1]
    not_video = json.loads((DATA / "posetrack18" / "test_posetrack18_val.json").read_text())
    del not_video["images"][0]["vid_id"]
    with pytest.raises(ValueError, match="vid_id"):
        read_posetrack18(not_video)
    with pytest.raises(ValueError, match="not the posetrack17 order"):
        read_posetrack18(DATA / "ochuman_sample.json")


def test_jhmdb_coordinates_become_zero_based():
    path = DATA / "jhmdb" / "test_jhmdb_sub1.json"
    raw = json.loads(path.read_text())
    data = read_jhmdb(path)
    for a, r in zip(data["annotations"], raw["annotations"]):
        k, kr = _kps(a, 15), _kps(r, 15)
        lab = kr[:, 2] > 0
        np.testing.assert_allclose(k[lab, :2], kr[lab, :2] - 1)
        assert a["bbox"][:2] == [r["bbox"][0] - 1, r["bbox"][1] - 1]
        assert a["num_keypoints"] == int(lab.sum())
        # the head is above the belly
        assert k[2, 1] < k[1, 1]


def test_readers_refuse_wrong_formats(tmp_path):
    with pytest.raises(ValueError, match="expected 14"):
        read_crowdpose(DATA / "ochuman_sample.json")
    with pytest.raises(ValueError, match="not the aic14 order"):
        read_aic(DATA / "crowdpose_sample.json")
    with pytest.raises(ValueError, match="lacks"):
        read_coco({"images": []})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a json file"):
        read_coco(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_coco(tmp_path / "missing.json")
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a COCO dict"):
        read_ochuman(lst)
    orphan = json.loads((DATA / "ochuman_sample.json").read_text())
    orphan["annotations"][0]["image_id"] = 999999
    with pytest.raises(ValueError, match="not in 'images'"):
        read_ochuman(orphan)
    with pytest.raises(ValueError, match="unknown dataset"):
        read_keypoint_file(DATA / "aic_sample.json", "nope")
    assert keypoint_set_from_coco(read_keypoint_file(DATA / "aic_sample.json", "aic")) is AIC14
    assert set(READERS) >= {"coco", "ochuman", "crowdpose", "aic", "halpe", "coco_wholebody",
                            "posetrack18", "jhmdb"}


# ------------------------------------------------------------------ MPII .mat release
def _struct_array(records):
    keys = list(records[0])
    arr = np.zeros((1, len(records)), dtype=[(k, object) for k in keys])
    for i, r in enumerate(records):
        for k in keys:
            arr[0, i][k] = r[k]
    return arr


def _write_release(path, entries):
    """The official mpii_human_pose_v1_u12_1.mat structure: RELEASE.annolist(i).image.name,
    .annorect(r).{x1,y1,x2,y2,scale,objpos.{x,y},annopoints.point(j).{id,x,y,is_visible}},
    RELEASE.img_train. Entries of one image share an annolist element."""
    import scipy.io
    by_image = {}
    for e in entries:
        by_image.setdefault(e["image"], []).append(e)
    annolist = []
    for name, es in by_image.items():
        rects = []
        for e in es:
            pts = [{"id": j, "x": float(x), "y": float(y), "is_visible": 1 if j % 3 else 0}
                   for j, ((x, y), v) in enumerate(zip(e["joints"], e["joints_vis"])) if v]
            (x1, y1), (x2, y2) = e["headbox"]
            rects.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "scale": e["scale"],
                          "objpos": {"x": e["center"][0], "y": e["center"][1]},
                          "annopoints": {"point": _struct_array(pts)}})
        # a group of people: a rectangle with neither scale nor position is not a person
        rects.append({k: np.zeros((0, 0)) for k in rects[0]})
        annolist.append({"image": {"name": name}, "annorect": _struct_array(rects),
                         "frame_sec": np.zeros((0, 0)), "vididx": np.zeros((0, 0))})
    # a test image whose one person has a position and scale but no points
    annolist.append({"image": {"name": "999999999.jpg"},
                     "annorect": _struct_array([{"x1": np.zeros((0, 0)), "y1": np.zeros((0, 0)),
                                                 "x2": np.zeros((0, 0)), "y2": np.zeros((0, 0)),
                                                 "scale": 2.5,
                                                 "objpos": {"x": 100.0, "y": 200.0},
                                                 "annopoints": np.zeros((0, 0))}]),
                     "frame_sec": np.zeros((0, 0)), "vididx": np.zeros((0, 0))})
    release = {"annolist": _struct_array(annolist),
               "img_train": np.array([[1] * (len(annolist) - 1) + [0]], np.uint8),
               "version": "12", "single_person": np.zeros((len(annolist), 1), object),
               "act": np.zeros((len(annolist), 1), object), "video_list": np.zeros((1, 0))}
    scipy.io.savemat(str(path), {"RELEASE": release})


def test_mpii_mat_release_reader(tmp_path):
    entries = json.loads((DATA / "mpii_sample.json").read_text())
    for e in entries:   # head boxes around the head top and the upper neck
        j = np.asarray(e["joints"])
        top, neck = j[9], j[8]
        e["headbox"] = [list(np.minimum(top, neck) - 10), list(np.maximum(top, neck) + 10)]
    path = tmp_path / "mpii_human_pose_v1_u12_1.mat"
    _write_release(path, entries)
    got = read_mpii_mat(path)
    assert len(got) == len(entries) + 1
    train = read_mpii_mat(path, train_only=True)
    assert len(train) == len(entries) and all(e["is_train"] for e in train)
    test = read_mpii_mat(path, train_only=False)
    assert len(test) == 1 and test[0]["joints_vis"] == [0.0] * 16 and "headbox" not in test[0]
    for e, g in zip(entries, train):
        assert g["image"] == e["image"] and g["scale"] == pytest.approx(e["scale"])
        np.testing.assert_allclose(g["center"], e["center"])
        vis = np.asarray(e["joints_vis"]) > 0
        np.testing.assert_allclose(np.asarray(g["joints"])[vis], np.asarray(e["joints"])[vis])
        assert (np.asarray(g["joints_vis"]) > 0).tolist() == vis.tolist()
        np.testing.assert_allclose(g["headbox"], e["headbox"])
        assert g["joints_visible"][0] == 0 and g["joints_visible"][1] == 1
    # the same COCO dict as the common json, plus the PCKh head size from the head box
    a, b = mpii_to_coco(train), mpii_to_coco(entries)
    for x, y in zip(a["annotations"], b["annotations"]):
        np.testing.assert_allclose(x["keypoints"], y["keypoints"])
        np.testing.assert_allclose(x["bbox"], y["bbox"])
        assert x["head_size"] == pytest.approx(y["head_size"])
    assert keypoint_set_from_coco(a) is MPII16


def test_mpii_mat_wrong_format(tmp_path):
    import scipy.io
    other = tmp_path / "other.mat"
    scipy.io.savemat(str(other), {"something": np.ones(3)})
    with pytest.raises(ValueError, match="RELEASE.annolist"):
        read_mpii_mat(other)
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"\x00garbage" * 40)
    with pytest.raises(ValueError, match="MATLAB"):
        read_mpii_mat(junk)
    with pytest.raises(FileNotFoundError):
        read_mpii_mat(tmp_path / "missing.mat")


# ------------------------------------------------------------------ Human3.6M, MPI-INF-3DHP
def test_h36m_npz_and_cameras():
    d = read_h36m(DATA / "h36m" / "test_h36m_body3d.npz", DATA / "h36m" / "cameras.pkl",
                  image_root="h36m")
    assert d["subject"].tolist() == ["S1", "S5", "S7", "S8"]
    assert d["action"].tolist() == ["Directions_1", "SittingDown", "Greeting", "WalkDog_1"]
    assert d["camera"].tolist() == ["54138969", "54138969", "55011271", "55011271"]
    assert d["frame"].tolist() == [1, 2061, 396, 26]
    assert d["image_path"][0] == "h36m/S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg"
    assert d["keypoints_3d"].shape == (4, 17, 3) and d["keypoints_2d"].shape == (4, 17, 2)
    cams = d["cameras"]
    assert cams["R"].shape == (4, 3, 3) and cams["k"].shape == (4, 3) and cams["w"][0] == 1000
    # the camera-frame 3-D projects onto the 2-D with the frame's intrinsics (lens distortion
    # ignored: a few pixels)
    err = np.abs(project_pinhole(d["keypoints_3d"], cams["f"], cams["c"]) - d["keypoints_2d"])
    assert err.max() < 4.0
    # with the dataset's distortion model the projection is exact: each frame got its camera
    from pyhpe.data import project_h36m
    err = np.abs(project_h36m(d["keypoints_3d"], cams["f"], cams["c"], cams["k"], cams["p"])
                 - d["keypoints_2d"])
    assert err.max() < 1e-3
    # joints in H36M17 order: the left shoulder is on the person's left (camera-frame x for a
    # person facing the camera is mirrored; compare with the hips instead: same side)
    X = d["keypoints_3d"]
    l, r = H36M17.names.index("left_shoulder"), H36M17.names.index("right_shoulder")
    lh, rh = H36M17.names.index("left_hip"), H36M17.names.index("right_hip")
    assert np.all(np.sign(X[:, l, 0] - X[:, r, 0]) == np.sign(X[:, lh, 0] - X[:, rh, 0]))
    np.testing.assert_allclose(np.linalg.det(cams["R"]), 1.0, atol=1e-6)
    if (SHARED / "h36m" / "S1").is_dir():
        d = read_h36m(SHARED / "h36m" / "test_h36m_body3d.npz", image_root=SHARED / "h36m")
        assert all(pathlib.Path(p).is_file() for p in d["image_path"])


def test_mpi_inf_3dhp_npz_and_cameras():
    for split, cams_keys in (("train", {"R", "T", "f", "c"}), ("test", {"f", "c"})):
        d = read_mpi_inf_3dhp(DATA / "mpi_inf_3dhp" / f"test_3dhp_{split}.npz",
                              DATA / "mpi_inf_3dhp" / f"cameras_{split}.pkl")
        cams = d["cameras"]
        assert cams_keys <= set(cams)
        err = np.abs(project_pinhole(d["keypoints_3d"], cams["f"], cams["c"]) - d["keypoints_2d"])
        assert err.max() < 4.0
        # the MPI_INF_3DHP17 order: left and right arm bones have the same length (one
        # mocap skeleton per subject), the head top is the end of the head
        X, n = d["keypoints_3d"], MPI_INF_3DHP17.names.index
        for a, b in (("shoulder", "elbow"), ("elbow", "wrist")):
            bone = lambda s: np.linalg.norm(X[:, n(f"{s}_{a}")] - X[:, n(f"{s}_{b}")], axis=-1)
            np.testing.assert_allclose(bone("left"), bone("right"), atol=2e-3)
            assert np.all((bone("left") > 0.2) & (bone("left") < 0.4))
        head = np.linalg.norm(X[:, n("head_top")] - X[:, n("neck")], axis=-1)
        assert np.all((head > 0.2) & (head < 0.35))
    assert d["subject"].tolist() == ["TS1", "TS2"] and d["frame"].tolist() == [2001, 1850]
    d = read_mpi_inf_3dhp(DATA / "mpi_inf_3dhp" / "test_3dhp_train.npz")
    assert d["camera"].tolist() == ["S4_Seq2_Cam0", "S8_Seq1_Cam8"]
    assert d["sequence"].tolist() == ["Seq2", "Seq1"] and "cameras" not in d


def test_3d_readers_refuse_wrong_formats_and_pickled_code(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        read_h36m(DATA / "mosh" / "test_mosh.npz")
    with pytest.raises(ValueError, match="not an npz"):
        read_h36m(DATA / "aic_sample.json")
    with pytest.raises(ValueError, match="S<n>_<action>"):
        read_h36m(DATA / "mpi_inf_3dhp" / "test_3dhp_train.npz")
    with pytest.raises(ValueError, match="no camera"):
        read_mpi_inf_3dhp(DATA / "mpi_inf_3dhp" / "test_3dhp_train.npz",
                          DATA / "mpi_inf_3dhp" / "cameras_test.pkl")

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    evil = tmp_path / "cameras.pkl"
    evil.write_bytes(pickle.dumps({("S1", "54138969"): {"f": Payload()}}))
    with pytest.raises(ValueError, match="is not allowed"):
        read_h36m(DATA / "h36m" / "test_h36m_body3d.npz", evil)
    notcams = tmp_path / "list.pkl"
    notcams.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a cameras file"):
        read_h36m(DATA / "h36m" / "test_h36m_body3d.npz", notcams)
    bad = tmp_path / "bad.npz"
    np.savez(bad, imgname=np.array(["S1_Directions_1.54138969_000001.jpg"]),
             part=np.zeros((1, 16, 3)), S=np.zeros((1, 16, 4)))
    with pytest.raises(ValueError, match="17 joints"):
        read_h36m(bad)


# ------------------------------------------------------------------ CMU Panoptic
PANOPTIC = DATA / "panoptic_body3d" / "160906_band1"


def test_panoptic_bodies_and_calibration():
    frames = read_panoptic_body3d(PANOPTIC / "hdPose3d_stage1_coco19")
    assert [f["frame"] for f in frames] == [168, 169]
    assert all(f["joints"].shape == (3, 19, 3) and f["scores"].shape == (3, 19) for f in frames)
    assert frames[0]["ids"].tolist() == frames[1]["ids"].tolist() == [0, 1, 2]
    # consecutive frames (1/30 s): each person's joints move a few cm at most
    ok = (frames[0]["scores"] > 0) & (frames[1]["scores"] > 0)
    step = np.linalg.norm(frames[0]["joints"] - frames[1]["joints"], axis=-1)[ok]
    assert step.max() < 10.0
    # the coco19 order: the neck sits between the shoulders, above the mid hip (y is down)
    J = frames[0]["joints"]
    ne, mh = PANOPTIC19.names.index("neck"), PANOPTIC19.names.index("mid_hip")
    ls, rs = PANOPTIC19.names.index("left_shoulder"), PANOPTIC19.names.index("right_shoulder")
    assert np.all(J[:, ne, 1] < J[:, mh, 1])
    mid = (J[:, ls] + J[:, rs]) / 2
    assert np.all(np.linalg.norm(mid - J[:, ne], axis=-1) < 15.0)
    cams = read_panoptic_calibration(PANOPTIC / "calibration_160906_band1_hd.json")
    assert len(cams) == 31 and cams["00_00"]["K"].shape == (3, 3)
    # the visible joints project into most HD views' 1920 x 1080 frames
    pts = J[frames[0]["scores"] > 0.1]
    inside = []
    for cam in cams.values():
        uv = project_panoptic(pts, cam)
        inside.append(np.mean((uv[:, 0] >= 0) & (uv[:, 0] < 1920) & (uv[:, 1] >= 0)
                              & (uv[:, 1] < 1080)))
    assert np.median(inside) > 0.9
    # one file and a list of files read the same
    one = read_panoptic_body3d(sorted((PANOPTIC / "hdPose3d_stage1_coco19").glob("*.json"))[:1])
    np.testing.assert_array_equal(one[0]["joints"], frames[0]["joints"])
    full = SHARED / "panoptic_body3d" / "160906_band1" / "calibration_160906_band1.json"
    if full.is_file():
        allcams = read_panoptic_calibration(full)
        assert len(allcams) == 520
        np.testing.assert_array_equal(allcams["00_03"]["R"], cams["00_03"]["R"])


def test_panoptic_wrong_formats(tmp_path):
    with pytest.raises(ValueError, match="no 'bodies'"):
        read_panoptic_body3d(DATA / "aic_sample.json")
    with pytest.raises(ValueError, match="no 'cameras' list"):
        read_panoptic_calibration(DATA / "aic_sample.json")
    with pytest.raises(ValueError, match="no body3DScene"):
        read_panoptic_body3d(tmp_path)
    bad = tmp_path / "body3DScene_00000001.json"
    bad.write_text(json.dumps({"bodies": [{"id": 0, "joints19": [0.0] * 15 * 4}]}))
    with pytest.raises(ValueError, match="19 x 4"):
        read_panoptic_body3d(bad)


# ------------------------------------------------------------------ AMASS / MoSh
def test_amass_and_mosh_sequences(tmp_path):
    d = read_amass(DATA / "mosh" / "test_mosh.npz")
    assert d["poses"].shape == (4, 24, 3) and d["betas"].shape == (4, 10)
    assert d["trans"] is None and d["fps"] is None
    # axis-angle rotations: each joint's angle is within [0, 2 pi)
    assert np.all(np.linalg.norm(d["poses"], axis=-1) < 2 * np.pi)
    rng = np.random.default_rng(0)
    amass = tmp_path / "seq_poses.npz"
    np.savez(amass, poses=rng.normal(0, 0.3, (10, 156)), betas=rng.normal(0, 1, 16),
             trans=rng.normal(0, 1, (10, 3)), mocap_framerate=np.array(120.0),
             gender=np.array("female"))
    a = read_amass(amass)
    assert a["poses"].shape == (10, 52, 3) and a["fps"] == 120.0 and a["gender"] == "female"
    assert a["trans"].shape == (10, 3) and a["betas"].shape == (16,)
    with pytest.raises(ValueError, match="neither 'poses'"):
        read_amass(DATA / "h36m" / "test_h36m_body3d.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, poses=np.zeros((10, 7)))
    with pytest.raises(ValueError, match="3 \\* joints"):
        read_amass(bad)


# ------------------------------------------------------------------ load_coco entry point
def test_load_coco_reads_each_format(tmp_path):
    # MPII's json list and .mat release are recognised without being named
    mp = load_coco(DATA / "mpii_sample.json")
    assert keypoint_set_from_coco(mp) is MPII16 and len(mp["annotations"]) == 5
    assert load_coco(DATA / "mpii_sample.json", dataset="mpii") == mp
    entries = json.loads((DATA / "mpii_sample.json").read_text())
    for e in entries:
        e["headbox"] = [[0.0, 0.0], [30.0, 40.0]]
    _write_release(tmp_path / "rel.mat", entries)
    from_mat = load_coco(tmp_path / "rel.mat")
    assert len(from_mat["annotations"]) == 6      # 5 + the test person without points
    assert from_mat["annotations"][0]["head_size"] == pytest.approx(0.6 * 50.0)
    # a named dataset goes through its reader
    wb = load_coco(DATA / "coco_wholebody" / "coco_wholebody_test.json", dataset="coco_wholebody")
    assert keypoint_set_from_coco(wb) is COCO_WHOLEBODY133
    assert keypoint_set_from_coco(load_coco(DATA / "halpe" / "test_halpe.json")) is HALPE136
    assert keypoint_set_from_coco(load_coco(DATA / "crowdpose_sample.json",
                                            dataset="crowdpose")) is CROWDPOSE14
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not MPII's json layout"):
        load_coco(tmp_path / "list.json")
    with pytest.raises(ValueError, match="not MPII's json layout"):
        load_coco(DATA / "aic_sample.json", dataset="mpii")
    with pytest.raises(ValueError, match="not a json file"):
        load_coco(DATA / "mosh" / "test_mosh.npz")


def test_body3d_to_coco_for_2d_training():
    from pyhpe.data import body3d_to_coco
    for reader, npz, cams, kset in (
            (read_h36m, "h36m/test_h36m_body3d.npz", "h36m/cameras.pkl", H36M17),
            (read_mpi_inf_3dhp, "mpi_inf_3dhp/test_3dhp_train.npz",
             "mpi_inf_3dhp/cameras_train.pkl", MPI_INF_3DHP17)):
        d = reader(DATA / npz, DATA / cams)
        coco = body3d_to_coco(d)
        assert keypoint_set_from_coco(coco) is kset
        assert len(coco["images"]) == len(coco["annotations"]) == len(d["imgname"])
        for im, ann in zip(coco["images"], coco["annotations"]):
            k = _kps(ann, 17)
            x, y, w, h = ann["bbox"]
            # every labelled joint lies in the person's box, the box within reach of the image
            assert np.all((k[:, 0] >= x) & (k[:, 0] <= x + w) & (k[:, 1] >= y) & (k[:, 1] <= y + h))
            assert im["width"] > 0 and len(ann["keypoints_3d"]) == 17 * 4
    assert coco["images"][0]["file_name"] == "S4_Seq2_Cam0_001033.jpg"


def test_mpii_image_sizes_from_the_files(tmp_path):
    import shutil
    from pyhpe.data import read_mpii
    shutil.copy(DATA / "mpii_052475643.jpg", tmp_path / "052475643.jpg")
    entries = [e for e in json.loads((DATA / "mpii_sample.json").read_text())
               if e["image"] == "052475643.jpg"]
    coco = read_mpii(entries, image_root=tmp_path)
    assert (coco["images"][0]["width"], coco["images"][0]["height"]) == (854, 480)
    with pytest.raises(FileNotFoundError, match="cannot read image"):
        read_mpii(entries, image_root=DATA / "nowhere")


def test_h36m_coco_json_follows_the_npz_joint_order():
    from pyhpe.data.readers import read_h36m_coco
    raw = json.loads((DATA / "h36m" / "h36m_coco.json").read_text())
    assert raw["categories"][0]["keypoints"][1] == "left_hip"      # the file's own label
    data = read_h36m_coco(DATA / "h36m" / "h36m_coco.json")
    assert keypoint_set_from_coco(data) is H36M17
    npz = read_h36m(DATA / "h36m" / "test_h36m_body3d.npz")
    names = [str(n).split("/")[-1] for n in npz["imgname"]]
    for im, ann in zip(data["images"], data["annotations"]):
        i = names.index(im["file_name"])
        # the same 2-D joints as the npz, whose order H36M17 follows (1 = right hip)
        np.testing.assert_allclose(_kps(ann, 17)[:, :2], npz["keypoints_2d"][i])
        assert len(ann["keypoints_3d"]) == 68     # world metres and visibility
    assert data["annotations"][0]["iscrowd"] == 0
    with pytest.raises(ValueError, match="expected 17"):
        read_h36m_coco(DATA / "aic_sample.json")


@pytest.mark.parametrize("reader,ann,root", [
    (read_posetrack18, "posetrack18/annotations/test_posetrack18_val.json", "posetrack18"),
    (read_jhmdb, "jhmdb/test_jhmdb_sub1.json", "jhmdb"),
    (read_aic, "aic/test_aic.json", "aic"),
    (read_ochuman, "ochuman/test_ochuman.json", "ochuman"),
    (read_crowdpose, "crowdpose/test_crowdpose.json", "crowdpose"),
])
def test_real_images_load_with_their_sizes(reader, ann, root):
    """The images a reader's dict names are found under the dataset root and have the sizes
    the file states (needs ../shared/data, where the images are)."""
    if not (SHARED / ann).is_file():
        pytest.skip("../shared/data is not here (the sample images are not copied)")
    from pyhpe.data import CocoImageLoader
    data = reader(SHARED / ann)
    loader = CocoImageLoader(data, str(SHARED / root))
    for im in data["images"]:
        assert loader(im["id"]).shape[:2] == (im["height"], im["width"])
