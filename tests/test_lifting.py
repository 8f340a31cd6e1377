"""Lifting data: the Human3.6M VideoPose3D npz reader, camera fitting, synthetic pairs."""
import json
import pathlib

import numpy as np
import pytest
import torch

from pyhpe.data import (LiftingDataset, fit_camera, h36m_arrays, load_h36m_npz,
                        synthetic_lifting_data)
from pyhpe.data.synthetic import _rot as _axis_rot
from pyhpe.keypoints import H36M17, H36M_KEEP_32


def _rot(yaw, pitch):
    return _axis_rot("x", pitch) @ _axis_rot("y", yaw)


def test_synthetic_lifting_data_geometry():
    p2, p3 = synthetic_lifting_data(50, 1)
    assert p2.shape == (50, 17, 2) and p3.shape == (50, 17, 3)
    np.testing.assert_allclose((p3[:, 11] + p3[:, 12]) / 2, 0, atol=1e-3)  # hip-centred
    # thighs ~0.43 m scaled 0.85..1.15
    thigh = np.linalg.norm(p3[:, 13] - p3[:, 11], axis=-1)
    assert (thigh > 300).all() and (thigh < 550).all()
    # feet are below the hips in the y-down camera frame for upright bodies (on average)
    assert (p3[:, 15, 1] > 0).mean() > 0.9
    a2, a3 = synthetic_lifting_data(5, 1)
    assert np.array_equal(a2, p2[:5]) and np.array_equal(a3, p3[:5])


def _fake_h36m(tmp_path, per_camera_3d=False, frames=(30, 25)):
    """A fake Human3.6M pair in the VideoPose3D layout; returns paths and truth."""
    rng = np.random.default_rng(0)
    K = np.array([[1145.0, 0, 512.0], [0, 1144.0, 515.0], [0, 0, 1]])
    cams = [(_rot(0.3 + 1.5 * c, -0.2), np.array([0.1 * c, -0.2, 5.0 + 0.3 * c])) for c in range(2)]
    pos3d, pos2d, truth = {}, {}, {}
    for s, T in zip(("S1", "S9"), frames):
        pos3d[s], pos2d[s] = {}, {}
        for a in ("Walking", "Eating 2"):
            world = rng.normal(0, 0.4, size=(T, 32, 3)) + np.array([0.5, 1.0, -0.3])
            kept = world[:, list(H36M_KEEP_32)]
            cam_frames, views = [], []
            for R, t in cams:
                Xc = kept @ R.T + t
                x = Xc @ K.T
                views.append((x[..., :2] / x[..., 2:]).astype(np.float32))
                cam_frames.append(Xc.astype(np.float32))
            # detections may be longer than the mocap (VideoPose3D crops them)
            views = [np.concatenate([v, v[:2]]) for v in views]
            pos3d[s][a] = cam_frames if per_camera_3d else world.astype(np.float32)
            pos2d[s][a] = views
            for c in range(2):
                truth[(s, a, c)] = cam_frames[c]
    p3, p2 = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz"
    np.savez_compressed(p3, positions_3d=pos3d)
    np.savez_compressed(p2, positions_2d=pos2d, metadata={"num_joints": 17})
    return str(p3), str(p2), truth


@pytest.mark.parametrize("per_camera_3d", [False, True])
def test_h36m_npz_loader(tmp_path, per_camera_3d):
    p3, p2, truth = _fake_h36m(tmp_path, per_camera_3d)
    seqs = load_h36m_npz(p3, p2, subjects=["S1"])
    assert sorted(seqs) == [("S1", "Eating 2", 0), ("S1", "Eating 2", 1), ("S1", "Walking", 0),
                            ("S1", "Walking", 1)]
    for key, (x2, x3) in seqs.items():
        assert x2.shape == (30, 17, 2) and x3.shape == (30, 17, 3)
        np.testing.assert_allclose(x3, truth[key], atol=2e-4)  # camera frame recovered
    p2d, p3d, actions = h36m_arrays(seqs, downsample=2)
    assert p2d.shape == (60, 17, 2) and p3d.shape == (60, 17, 3)
    np.testing.assert_allclose(p3d[:, 0], 0, atol=1e-6)  # root-relative, mm
    assert set(actions.tolist()) == {"Walking", "Eating"}
    with pytest.raises(ValueError, match="no \\(subject, action\\)"):
        load_h36m_npz(p3, p2, subjects=["S11"])


def test_h36m_npz_loader_detections_in_another_joint_order(tmp_path):
    p3, p2, truth = _fake_h36m(tmp_path)
    perm = np.random.default_rng(0).permutation(17)
    with np.load(p2, allow_pickle=True) as f:
        pos2d = f["positions_2d"].item()
    det = {s: {a: [v[:, perm] + 0.5 for v in views] for a, views in acts.items()}
           for s, acts in pos2d.items()}
    pd = tmp_path / "data_2d_h36m_det.npz"
    np.savez(pd, positions_2d=det)
    seqs = load_h36m_npz(p3, str(pd), subjects=["S9"], camera_2d=p2)
    for key, (x2, x3) in seqs.items():
        np.testing.assert_allclose(x2, det[key[0]][key[1]][key[2]][:25])
        np.testing.assert_allclose(x3, truth[key], atol=2e-4)


def test_h36m_npz_loader_rejects_other_joint_counts(tmp_path):
    pos3d = {"S1": {"Walking": np.zeros((4, 20, 3), np.float32)}}
    pos2d = {"S1": {"Walking": [np.zeros((4, 17, 2), np.float32)]}}
    np.savez(tmp_path / "a.npz", positions_3d=pos3d)
    np.savez(tmp_path / "b.npz", positions_2d=pos2d)
    with pytest.raises(ValueError, match="expected 17 joints"):
        load_h36m_npz(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"))


def test_fit_camera_recovers_pose():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    R, t = _rot(2.0, 0.4), np.array([0.3, -0.1, 6.0])
    K = np.array([[1000.0, 0, 480], [0, 990.0, 520], [0, 0, 1]])
    x = (X @ R.T + t) @ K.T
    K2, R2, t2 = fit_camera(X, x[:, :2] / x[:, 2:])
    np.testing.assert_allclose(R2, R, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    np.testing.assert_allclose(K2, K, atol=1e-6)
    with pytest.raises(ValueError, match=">= 6"):
        fit_camera(X[:5], x[:5, :2])


def test_lifting_dataset_items():
    p2, p3 = synthetic_lifting_data(6, 2)
    ds = LiftingDataset(p2, p3, actions=np.array(["a"] * 6))
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    assert batch["keypoints"].shape == (4, 17, 2) and batch["keypoints_3d"].shape == (4, 17, 3)
    assert batch["visibility"].shape == (4, 17) and (batch["visibility"] == 1).all()
    assert torch.equal(batch["keypoints_3d"][1], torch.from_numpy(p3[1]))
    with pytest.raises(ValueError, match="pose_3d"):
        LiftingDataset(p2, p3[:, :5])
    with pytest.raises(ValueError, match="actions"):
        LiftingDataset(p2, p3, actions=["a"])


# Four real Human3.6M frames (mmpose's tests/data/h36m, Apache-2.0): camera-frame joints in
# metres, their image pixels, and each camera's calibration from its cameras.pkl.
H36M_SAMPLE = pathlib.Path(__file__).resolve().parent / "data" / "h36m_sample.json"


def _h36m_frames():
    return json.loads(H36M_SAMPLE.read_text())["frames"]


def test_real_h36m_frames_fit_the_h36m17_skeleton():
    for f in _h36m_frames():
        X = np.asarray(f["joints_3d_camera_m"])
        x = np.asarray(f["joints_2d_px"])
        # the pixels are the pinhole projection up to lens distortion (a few pixels)
        proj = np.asarray(f["f"]) * X[:, :2] / X[:, 2:] + np.asarray(f["c"])
        assert np.abs(proj - x).max() < 3.0
        # mirrored bones (H36M17 flip pairs applied to H36M17 bones) have equal lengths
        fi = H36M17.flip_index()
        bones = set(H36M17.skeleton)
        for p, j in H36M17.skeleton:
            mirror = (fi[p], fi[j])
            assert mirror in bones
            la = np.linalg.norm(X[j] - X[p])
            lb = np.linalg.norm(X[mirror[1]] - X[mirror[0]])
            assert abs(la - lb) < 0.02, (f["image"], (p, j), la, lb)
        # the head is above the thorax, the thorax above the hip (camera y points down)
        assert X[H36M17.names.index("head"), 1] < X[H36M17.names.index("thorax"), 1] < X[0, 1]


def test_real_h36m_frames_confirm_h36m17_sides():
    """H36M17's 'right' joints are the person's right: with up = thorax - hip and right =
    right_hip - left_hip, the body faces up x right, where the nose is (VideoPose3D and
    mmpose's metadata agree; some converted files swap the names)."""
    names = H36M17.names
    for f in _h36m_frames():
        X = np.asarray(f["joints_3d_camera_m"])
        up = X[names.index("thorax")] - X[0]
        right = X[names.index("right_hip")] - X[names.index("left_hip")]
        forward = np.cross(up, right)
        assert forward @ (X[names.index("neck_nose")] - X[names.index("thorax")]) > 0, f["image"]
        # and each hip sits nearer its own side's shoulder
        for side, other in (("right", "left"), ("left", "right")):
            hip = X[names.index(f"{side}_hip")]
            assert (np.linalg.norm(hip - X[names.index(f"{side}_shoulder")])
                    < np.linalg.norm(hip - X[names.index(f"{other}_shoulder")]))


def _real_h36m_npz(tmp_path, per_camera_3d):
    """The real frames in the VideoPose3D layout: world joints from each camera's R, T."""
    pos3d, pos2d, truth = {}, {}, {}
    for f in _h36m_frames():
        Xc = np.asarray(f["joints_3d_camera_m"])
        R, T = np.asarray(f["R"]), np.asarray(f["T"])
        world = Xc @ R + T  # H36M: X_camera = R (X_world - T)
        s, a = f["subject"], f["action"]
        pos3d.setdefault(s, {})[a] = [Xc[None]] if per_camera_3d else world[None]
        pos2d.setdefault(s, {})[a] = [np.asarray(f["joints_2d_px"])[None]]
        truth[(s, a, 0)] = Xc
    p3, p2 = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz"
    np.savez(p3, positions_3d=pos3d)
    np.savez(p2, positions_2d=pos2d)
    return str(p3), str(p2), truth


@pytest.mark.parametrize("per_camera_3d", [False, True])
def test_real_h36m_frames_through_the_npz_reader(tmp_path, per_camera_3d):
    p3, p2, truth = _real_h36m_npz(tmp_path, per_camera_3d)
    seqs = load_h36m_npz(p3, p2)
    assert sorted(seqs) == sorted(truth)
    for key, (x2, x3) in seqs.items():
        assert x2.shape == (1, 17, 2) and x3.shape == (1, 17, 3)
        rel = (x3[0] - x3[0, :1]) - (truth[key] - truth[key][:1])
        if per_camera_3d:
            np.testing.assert_allclose(x3[0], truth[key], atol=1e-6)
        else:
            # one real frame (17 correspondences, lens distortion) fixes the camera to a few cm
            assert np.linalg.norm(rel, axis=1).mean() < 0.04, key
    p2d, p3d, actions = h36m_arrays(seqs)
    assert p2d.shape == (4, 17, 2) and p3d.shape == (4, 17, 3)
    np.testing.assert_allclose(p3d[:, 0], 0, atol=1e-6)
    assert set(actions.tolist()) == {"Directions_1", "SittingDown", "Greeting", "WalkDog_1"}
    ds = LiftingDataset(p2d, p3d, actions=actions)
    assert len(ds) == 4 and ds[0]["keypoints_3d"].shape == (17, 3)


def test_real_h36m_npz_reader_feeds_the_lifting_dataset():
    """mmpose's test_h36m_body3d.npz through read_h36m: root-relative millimetres, the
    action without its sub-action number, items of the lifting dataset."""
    from pyhpe.data import body3d_lifting_arrays, read_h36m
    data = pathlib.Path(__file__).resolve().parent / "data"
    d = read_h36m(data / "h36m" / "test_h36m_body3d.npz", data / "h36m" / "cameras.pkl")
    p2, p3, vis, acts = body3d_lifting_arrays(d)
    assert p2.shape == (4, 17, 2) and p3.shape == (4, 17, 3) and vis.shape == (4, 17)
    assert acts.tolist() == ["Directions", "SittingDown", "Greeting", "WalkDog"]
    np.testing.assert_allclose(p3[:, 0], 0.0)
    # a real body: thorax to hip about half a metre
    torso = np.linalg.norm(p3[:, H36M17.names.index("thorax")], axis=-1)
    assert np.all((torso > 350) & (torso < 700))
    ds = LiftingDataset(p2, p3, visibility=vis, actions=acts)
    item = ds[1]
    assert item["keypoints"].shape == (17, 2) and item["keypoints_3d"].shape == (17, 3)
    assert ds.actions[1] == "SittingDown"


# ---------------------------------------------------------------------------- real samples
REPO = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_CFG = {"h36m": REPO / "configs" / "lift3d_h36m_sample.json",
              "mpi_inf_3dhp": REPO / "configs" / "lift3d_mpi_inf_3dhp_sample.json"}
CAMERAS = {"h36m": ['data.cameras="tests/data/h36m/cameras.pkl"'],
           "mpi_inf_3dhp": ['data.train_cameras="tests/data/mpi_inf_3dhp/cameras_train.pkl"',
                            'data.test_cameras="tests/data/mpi_inf_3dhp/cameras_test.pkl"']}


@pytest.mark.parametrize("name, tol", [("h36m", 1e-3), ("mpi_inf_3dhp", 2.0)])
def test_real_samples_with_cameras_project_to_their_2d(name, tol, monkeypatch):
    """With the cameras file, the 2-D inputs can be the 3-D joints projected by each frame's
    camera (the official SimpleBaseline-3D inputs): on Human3.6M (radial + tangential
    distortion) they are the file's 2-D keypoints to 1e-3 px; on MPI-INF-3DHP (pinhole) within
    2 px. The samples carry the camera and the root, which reproject the 3-D targets."""
    from pyhpe.models.poseaug import project
    from pyhpe.tasks import build_task
    monkeypatch.chdir(REPO)
    plain = build_task(SAMPLE_CFG[name]).datasets()
    proj = build_task(SAMPLE_CFG[name], CAMERAS[name] + ['data.input_2d="projected"']).datasets()
    for a, b in zip(plain, proj):
        assert a.camera is None and b.camera.shape == (len(b), 4)
        np.testing.assert_allclose(b.pose_2d.numpy(), a.pose_2d.numpy(), atol=tol)
        np.testing.assert_array_equal(b.pose_3d.numpy(), a.pose_3d.numpy())
        x = project(b.pose_3d + b.root_3d[:, None], b.camera)
        assert (x - a.pose_2d).abs().max() < 3.0     # pinhole vs the distorted 2-D: pixels
        assert (b.root_3d[:, 2] > 1000).all()          # metres -> mm, in front of the camera
        item = b[0]
        assert item["camera"].shape == (4,) and item["root_3d"].shape == (3,)
    with pytest.raises(Exception, match="input_2d"):
        build_task(SAMPLE_CFG[name], ['data.input_2d="projected"'])


@pytest.mark.parametrize("name", ["h36m", "mpi_inf_3dhp"])
def test_simplebaseline3d_learns_the_real_samples(name, monkeypatch, one_torch_thread):
    """SimpleBaseline-3D with the official normalisation (2-D standardised as given, 3-D
    root-relative standardised) on the projected 2-D of the real frames: the loss falls and
    the dataset's metric on the training frames improves (MPJPE and P-MPJPE, protocols 1 and
    2, for Human3.6M; PCK3D / AUC for MPI-INF-3DHP)."""
    from pyhpe.engine import Trainer
    from pyhpe.tasks import build_task
    monkeypatch.chdir(REPO)
    task = build_task(SAMPLE_CFG[name], CAMERAS[name] + [
        'data.input_2d="projected"', "codec.center_2d=false", "model.width=64",
        "model.dropout=0.0", "train.max_steps=150", "train.eval_every=0", "train.lr=0.003",
        "train.progress=false", 'train.device="cpu"', 'train.out_dir="/tmp/pyhpe_lift_real"',
        "train.log_every=10"])
    train = task.train_dataset()
    trainer = Trainer(task, log=lambda *a: None)
    before = task.metrics(task.predict(trainer.model, train), train)
    result = trainer.fit()
    after = task.metrics(task.predict(trainer.model, train), train)
    curve = [r["loss"] for r in result["loss_log"]]
    assert np.mean(curve[-3:]) < 0.2 * curve[0], curve
    if name == "h36m":
        assert after["MPJPE"] < 0.5 * before["MPJPE"], (before, after)
        assert after["P-MPJPE"] <= after["MPJPE"] and "P-MPJPE_Directions" in after
    else:
        assert after["PCK3D"] > before["PCK3D"] + 20 and after["AUC"] > before["AUC"], (before, after)
        assert after["MPJPE"] < 0.5 * before["MPJPE"]


def test_videopose3d_layout_carries_fitted_cameras(tmp_path):
    """The VideoPose3D layout has no intrinsics: each sequence's pinhole camera is fitted to
    its 2-D / camera-frame 3-D pairs (the fake data's K exactly), the root is the hip in mm,
    and PoseAug can run on it."""
    from pyhpe.data.lifting import fit_intrinsics, h36m_camera_arrays
    from pyhpe.tasks import build_task
    p3, p2, truth = _fake_h36m(tmp_path, frames=(20, 10))
    seqs = load_h36m_npz(p3, p2, subjects=["S1"])
    cam, root = h36m_camera_arrays(seqs, downsample=2)
    np.testing.assert_allclose(cam, np.broadcast_to([1145.0, 1144.0, 512.0, 515.0], cam.shape),
                               rtol=1e-3, atol=0.5)
    p2d, p3d, _ = h36m_arrays(seqs, downsample=2)
    assert len(cam) == len(root) == len(p2d)
    P = p3d + root[:, None]
    x = P[..., :2] / P[..., 2:] * cam[:, None, :2] + cam[:, None, 2:]
    np.testing.assert_allclose(x, p2d, atol=0.05)
    with pytest.raises(ValueError, match="fit_intrinsics"):
        fit_intrinsics(np.zeros((1, 2)), np.ones((1, 3)))
    task = build_task({"task": "lift3d", "model": {"name": "simple_baseline_3d", "config": "tiny",
                                                   "poseaug": {"config": "tiny"}},
                       "data": {"type": "h36m", "path_3d": p3, "path_2d": p2,
                                "train_subjects": ["S1"], "test_subjects": ["S9"]},
                       "train": {"max_steps": 2, "batch_size": 16, "progress": False,
                                 "device": "cpu", "out_dir": str(tmp_path / "run")}})
    assert task.train_dataset().camera is not None
    result = task.fit(log=lambda *a: None)
    assert np.isfinite(result["metrics"]["mpjpe"]) and int(task.build_model().aug_step) == 0
