"""SMPLify-X on SMPL-X: a small synthetic model file in the official npz layout, the OpenPose
and COCO-WholeBody keypoint tables, the hand / expression / jaw priors, the five-stage fit."""
import math
import pickle

import numpy as np
import pytest
import torch

smplx = pytest.importorskip("smplx")

from pyhpe.engine.config import ConfigError  # noqa: E402
from pyhpe.fitting import (SMPLX_KEYPOINT_MAPS, SMPLX_PARTS, SMPLX_STAGE_WEIGHTS,  # noqa: E402
                           SMPLify, SMPLifyConfig, SMPLXModel, read_smplx_file,
                           write_synthetic_smplx)
from pyhpe.keypoints import COCO_WHOLEBODY133, COCO_WHOLEBODY_PARTS  # noqa: E402

D64 = torch.float64
F = torch.full((2,), 5000.0, dtype=D64)
C = torch.full((2,), 500.0, dtype=D64)


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("smplx") / "SMPLX_SYNTH.npz"    # smplx.create reads the type
    info = write_synthetic_smplx(path)
    return path, info["vertex_ids"]


def _zeros(m, B=1):
    z = lambda n: torch.zeros(B, n, dtype=D64)  # noqa: E731
    return [z(3), z(63), z(10), z(3), z(m.hand_dim), z(m.hand_dim), z(3), z(m.num_expression)]


# ------------------------------------------------------------------ the model file
def test_synthetic_file_is_the_official_layout_smplx_loads(model_file, tmp_path, no_network):
    path, vids = model_file
    with np.load(path, allow_pickle=False) as z:                        # plain arrays only
        keys = set(z.files)
        assert z["posedirs"].shape[1:] == (3, 486) and z["J_regressor"].shape[0] == 55
        assert z["hands_componentsl"].shape == (45, 45) and z["hands_meanr"].shape == (45,)
        assert z["lmk_faces_idx"].shape == (51,) and z["lmk_bary_coords"].shape == (51, 3)
        assert z["dynamic_lmk_faces_idx"].shape == (79, 17)
        V = z["v_template"].shape[0]
    assert V < 1000 and {"kintree_table", "weights", "shapedirs", "f"} <= keys
    ref = smplx.create(str(path), model_type="smplx", use_pca=True, num_pca_comps=12,
                       use_face_contour=True, dtype=D64)
    ours = SMPLXModel(path, vertex_ids=vids, use_face_contour=True, dtype=D64)
    # smplx's vertex points are ids of the 10475-vertex mesh: use the file's
    ref.vertex_joint_selector.extra_joints_idxs = ours.smpl.vertex_joint_selector.extra_joints_idxs
    rng = np.random.default_rng(1)
    args = [torch.as_tensor(rng.normal(0, s, (2, n))) for s, n in
            ((0.3, 3), (0.2, 63), (1, 10), (0.1, 3), (0.8, 12), (0.8, 12), (0.1, 3), (1, 10))]
    go, bp, be, tr, lh, rh, jaw, ex = args
    with torch.no_grad():
        v, j = ours(*args)
        out = ref(global_orient=go, body_pose=bp, betas=be, transl=tr, left_hand_pose=lh,
                  right_hand_pose=rh, jaw_pose=jaw, expression=ex,
                  leye_pose=torch.zeros(2, 3, dtype=D64), reye_pose=torch.zeros(2, 3, dtype=D64))
    assert j.shape == (2, 55 + 21 + 51 + 17, 3)
    np.testing.assert_allclose(v.numpy(), out.vertices.numpy(), atol=1e-12)
    np.testing.assert_allclose(j[:, :55].numpy(), out.joints[:, :55].numpy(), atol=1e-12)
    np.testing.assert_allclose(j[:, 76:].numpy(), out.joints[:, 76:].numpy(), atol=1e-12)
    # the vertex points are the listed vertices (smplx's ids are for the 10475-vertex mesh)
    names = ("nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
             "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb",
             "rindex", "rmiddle", "rring", "rpinky")
    np.testing.assert_allclose(j[:, 55:76].numpy(), v[:, [vids[k] for k in names]].numpy())
    # hand PCA: coefficients -> components -> axis-angle (+ the mean hand)
    full = smplx.create(str(path), model_type="smplx", use_pca=False, dtype=D64)
    full.vertex_joint_selector.extra_joints_idxs = ref.vertex_joint_selector.extra_joints_idxs
    with torch.no_grad():
        out2 = full(global_orient=go, body_pose=bp, betas=be, transl=tr,
                    left_hand_pose=ours.hand_pose_aa(lh, "left"),
                    right_hand_pose=ours.hand_pose_aa(rh, "right"), jaw_pose=jaw, expression=ex,
                    leye_pose=torch.zeros(2, 3, dtype=D64), reye_pose=torch.zeros(2, 3, dtype=D64))
    np.testing.assert_allclose(out2.vertices.numpy(), v.numpy(), atol=1e-12)
    # a .pkl copy reads the same arrays (restricted unpickler)
    pkl = tmp_path / "SMPLX_SYNTH.pkl"
    write_synthetic_smplx(pkl)
    a, b = read_smplx_file(path), read_smplx_file(pkl)
    for k in a:
        np.testing.assert_allclose(a[k], b[k])
    with torch.no_grad():
        vp, _ = SMPLXModel(pkl, vertex_ids=vids, dtype=D64)(*args)
    np.testing.assert_allclose(vp.numpy(), v.numpy(), atol=1e-12)


def test_model_file_errors_and_no_unpickling(model_file, tmp_path, no_network):
    path, vids = model_file
    with pytest.raises(ValueError, match="model_path is required"):
        SMPLXModel(None)
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        SMPLXModel(tmp_path / "SMPLX_NEUTRAL.npz")
    with pytest.raises(ValueError, match="10475"):
        SMPLXModel(path)                                     # vertex ids needed off-topology
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    bad = dict(arrays)
    del bad["hands_componentsl"]
    np.savez(tmp_path / "SMPLX_BAD.npz", **bad)
    with pytest.raises(ValueError, match="lacks.*hands_componentsl"):
        SMPLXModel(tmp_path / "SMPLX_BAD.npz", vertex_ids=vids)

    class Boom:                                              # would run on unpickling
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled')",))
    evil = dict(arrays, joint2num=np.array([Boom()], dtype=object))
    np.savez(tmp_path / "SMPLX_OBJ.npz", **evil)            # object arrays are skipped
    m = SMPLXModel(tmp_path / "SMPLX_OBJ.npz", vertex_ids=vids)
    assert m.num_vertices == arrays["v_template"].shape[0]
    with open(tmp_path / "SMPLX_EVIL.pkl", "wb") as f:
        pickle.dump(evil, f, protocol=2)
    with pytest.raises(ValueError, match="cannot read"):
        SMPLXModel(tmp_path / "SMPLX_EVIL.pkl", vertex_ids=vids)
    no_contour = {k: v for k, v in arrays.items() if not k.startswith("dynamic")}
    np.savez(tmp_path / "SMPLX_NC.npz", **no_contour)
    with pytest.raises(ValueError, match="use_face_contour"):
        SMPLXModel(tmp_path / "SMPLX_NC.npz", vertex_ids=vids, use_face_contour=True)


# ------------------------------------------------------------------ keypoint tables
def test_coco_wholebody_and_openpose_tables():
    from smplx.joint_names import JOINT_NAMES
    wb = SMPLX_KEYPOINT_MAPS["coco_wholebody"]
    assert len(wb) == 133 == COCO_WHOLEBODY133.num_keypoints
    names = COCO_WHOLEBODY133.names
    finger = {"forefinger": "index", "middle_finger": "middle", "ring_finger": "ring",
              "pinky_finger": "pinky", "thumb": "thumb"}

    def smplx_name(name):
        """COCO-WholeBody name -> SMPL-X joint name (smplx.joint_names)."""
        for side in ("left", "right"):
            if name == f"{side}_hand_root":
                return f"{side}_wrist"
            for a, b in finger.items():
                if name.startswith(f"{side}_{a}"):
                    i = int(name[len(f"{side}_{a}"):])
                    return f"{side}_{b}{i}" if i < 4 else f"{side}_{b}"   # 4: the tip
        return name
    lo, hi = COCO_WHOLEBODY_PARTS["face"]
    for k, (name, j) in enumerate(zip(names, wb)):
        if lo <= k < hi:
            i = k - lo                                     # iBUG 68: contour 0..16, inner 17..
            assert j == (127 + i if i < 17 else 76 + i - 17), (k, j)
        else:
            assert JOINT_NAMES[j] == smplx_name(name), (k, name, JOINT_NAMES[j])
    # OpenPose BODY_25 + hands + face (SMPLify-X's smpl_to_openpose, coco25, smplx)
    op = SMPLX_KEYPOINT_MAPS["openpose135"]
    assert len(op) == 135 and len(SMPLX_KEYPOINT_MAPS["openpose118"]) == 118
    assert op[:25] == (55, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 56, 57, 58, 59,
                       60, 61, 62, 63, 64, 65)
    assert op[25:46] == (20, 37, 38, 39, 66, 25, 26, 27, 67, 28, 29, 30, 68, 34, 35, 36, 69,
                         31, 32, 33, 70)
    assert op[46:67] == (21, 52, 53, 54, 71, 40, 41, 42, 72, 43, 44, 45, 73, 49, 50, 51, 74,
                         46, 47, 48, 75)
    assert op[67:] == tuple(range(76, 144))
    # the hands and face carry the per-stage hand / face weights
    assert SMPLX_PARTS["openpose118"] == {"hand": tuple(range(25, 67)),
                                          "face": tuple(range(67, 118))}
    assert SMPLX_PARTS["coco_wholebody"]["hand"] == tuple(range(91, 133))
    # OpenPose's left / right hand share COCO-WholeBody's hand order
    assert wb[91:112] == op[25:46] and wb[112:133] == op[46:67]


# ------------------------------------------------------------------ weights and priors
def test_stage_weights_are_fit_smplx_yaml():
    w = SMPLifyConfig(pose_prior="l2").stage_weights("smplx")
    assert len(w) == 5
    assert [x["pose"] for x in w] == pytest.approx([404.0 ** 2, 404.0 ** 2, 57.4 ** 2,
                                                    4.78 ** 2, 4.78 ** 2])
    assert [x["shape"] for x in w] == pytest.approx([1e4, 2500, 100, 25, 25])
    assert [x["expr"] for x in w] == pytest.approx([1e4, 2500, 100, 25, 25])
    assert [x["hand_prior"] for x in w] == pytest.approx([404.0 ** 2, 404.0 ** 2, 57.4 ** 2,
                                                          4.78 ** 2, 4.78 ** 2])
    assert [x["hand"] for x in w] == [0.0, 0.0, 0.0, 0.1, 2.0]
    assert [x["face"] for x in w] == [0.0, 0.0, 0.0, 0.0, 2.0]
    assert w[2]["jaw"] == (574.0, 5740.0, 5740.0)
    assert [x["collision"] for x in w] == [0.0, 0.0, 0.0, 0.01, 1.0]
    assert [x["bending"] for x in w] == pytest.approx([3.17 * p for p in
                                                       SMPLX_STAGE_WEIGHTS["pose"]])
    # SMPL keeps its four stages; lists of other lengths must agree
    assert len(SMPLifyConfig(pose_prior="l2").stage_weights("smpl")) == 4
    three = SMPLifyConfig(pose_prior="l2", pose_weights=[404.0, 57.4, 4.78]).stage_weights(
        "smplx")
    assert [x["hand"] for x in three] == [0.0, 0.1, 2.0]
    with pytest.raises(ConfigError, match="one value per stage"):
        SMPLifyConfig(pose_prior="l2", hand_weights=[0.0, 1.0]).stage_weights("smplx")
    with pytest.raises(ConfigError, match="jaw_weights"):
        SMPLifyConfig(pose_prior="l2", jaw_weights=[[1.0, 2.0]])


def test_hand_expression_jaw_priors(model_file):
    path, vids = model_file
    f = SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="coco_wholebody",
                dtype="float64")
    m = f.body_model
    assert f.model_type == "smplx" and f.pose_dim == 63 and m.hand_dim == 12
    w = f.weights[4]
    rng = np.random.default_rng(0)
    B = 3
    params = {k: v for k, v in zip(("global_orient", "body_pose", "betas", "transl",
                                    "left_hand_pose", "right_hand_pose", "jaw_pose",
                                    "expression"), _zeros(m, B))}
    params["transl"][:, 2] = 10.0
    params["global_orient"][:, 0] = math.pi
    lh = torch.as_tensor(rng.normal(0, 1, (B, 12)))
    params["left_hand_pose"] = lh
    params["jaw_pose"] = torch.tensor([[0.2, 0, 0], [0, 0.2, 0], [0, 0, 0.2]], dtype=D64)
    params["expression"] = torch.as_tensor(rng.normal(0, 1, (B, 10)))
    gt = torch.zeros(B, 133, 2, dtype=D64)
    conf = torch.ones(B, 133, dtype=D64)
    terms, _ = f.energy_terms(params, gt, conf, F, C, 1.0, w)
    # the hand prior is on the 45 axis-angle values the PCA coefficients make
    aa = lh @ m.smpl.left_hand_components
    np.testing.assert_allclose(terms["hand"].numpy(), 4.78 ** 2 * (aa ** 2).sum(1).numpy())
    np.testing.assert_allclose((aa ** 2).sum(1).numpy(), (lh ** 2).sum(1).numpy())  # orthonormal
    np.testing.assert_allclose(terms["expression"].numpy(),
                               25.0 * (params["expression"] ** 2).sum(1).numpy())
    # jaw: opening (about x) costs 10x less per axis weight than turning it sideways
    np.testing.assert_allclose(terms["jaw"].numpy(), [(47.8 * 0.2) ** 2, (478 * 0.2) ** 2,
                                                      (478 * 0.2) ** 2])
    # gradients reach every SMPL-X parameter; priors pull the hands and face to the mean
    for k in ("left_hand_pose", "jaw_pose", "expression"):
        params[k] = params[k].clone().requires_grad_(True)
    terms, _ = f.energy_terms(params, gt, conf, F, C, 1.0, dict(w, hand=0.0, face=0.0))
    (terms["hand"] + terms["expression"] + terms["jaw"]).sum().backward()
    for k in ("left_hand_pose", "jaw_pose", "expression"):
        g = params[k].grad
        assert (g * params[k].detach()).sum() > 0               # descent moves towards 0
    # hand / face keypoint weights follow the stage
    jw = f.joint_weights(w)
    lo, hi = COCO_WHOLEBODY_PARTS["face"]
    assert float(jw[0]) == 1.0 and float(jw[100]) == 2.0 and float(jw[lo + 20]) == 2.0
    assert float(jw[lo]) == 0.0                                 # contour: no model point
    assert float(f.joint_weights(f.weights[3])[100]) == pytest.approx(0.1)


# ------------------------------------------------------------------ fitting
def _synthetic_person(f, seed=0):
    rng = np.random.default_rng(seed)
    m = f.body_model
    t = lambda a: torch.as_tensor(a, dtype=D64)  # noqa: E731
    truth = dict(global_orient=t([[math.pi, 0, 0]] + rng.normal(0, 0.1, (1, 3))),
                 body_pose=t(rng.normal(0, 0.12, (1, 63))), betas=t(rng.normal(0, 1, (1, 10))),
                 transl=t([[0.0, 0.0, 10.0]] + rng.normal(0, 0.1, (1, 3))),
                 left_hand_pose=t(rng.normal(0, 0.8, (1, m.hand_dim))),
                 right_hand_pose=t(rng.normal(0, 0.8, (1, m.hand_dim))),
                 jaw_pose=t([[0.25, 0.0, 0.0]]), expression=t(rng.normal(0, 1, (1, 10))))
    with torch.no_grad():
        _, joints = f.run_model(truth)
        kp2 = f.project(joints[:, f.joint_map], F, C)
    return kp2.numpy(), truth


def test_smplifyx_fits_body_hands_and_face(model_file):
    path, vids = model_file
    f = SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="coco_wholebody",
                use_face_contour=True, iterations=8, lbfgs_steps=2, camera_iterations=8,
                dtype="float64")
    kp2, truth = _synthetic_person(f)
    r = f.fit(kp2, np.ones(kp2.shape[:2]), camera={"focal_length": 5000.0,
                                                    "image_size": (1000, 1000)})
    assert [s["stage"] for s in r.stage_losses] == ["camera"] + [f"stage{i}" for i in
                                                                 range(1, 6)]
    assert r.body_pose.shape == (1, 63) and r.left_hand_pose.shape == (1, 12)
    assert r.left_hand_pose_aa.shape == (1, 45) and r.expression.shape == (1, 10)
    assert r.joints.shape == (1, 144, 3) and r.keypoints_2d.shape == (1, 133, 2)
    err = np.linalg.norm(r.keypoints_2d - kp2, axis=-1)[0]
    hand = list(range(91, 133))
    face = list(range(23, 91))
    body = list(range(0, 23))
    person = np.ptp(kp2[0, :, 1])                                        # ~ 850 px tall
    assert err[body].mean() < 0.012 * person, err[body].mean()
    # the hands and face: better than the fitted body with the mean hands, face and jaw
    with torch.no_grad():
        _, j0 = f.run_model({k: torch.as_tensor(getattr(r, k)) for k in
                             ("global_orient", "body_pose", "betas", "transl")})
        p0 = f.project(j0[:, f.joint_map], F, C).numpy()
    err0 = np.linalg.norm(p0 - kp2, axis=-1)[0]
    # (a few L-BFGS steps a stage here: the body's residual error dominates the hands';
    # test_hands_and_face_from_the_body below and the official 30 x 30 steps go further)
    assert err[hand].mean() < 0.99 * err0[hand].mean(), (err[hand].mean(), err0[hand].mean())
    assert err[face].mean() < 0.9 * err0[face].mean(), (err[face].mean(), err0[face].mean())
    # the hand / face data terms switch on in the last stages only
    s = r.stage_losses
    assert s[5]["data"] > s[4]["data"]                   # weight 0.1 -> 2 on hands and face
    assert np.abs(r.jaw_pose).max() > 0 and np.abs(r.expression).max() > 0
    # the result reproduces through the body model and the camera
    with torch.no_grad():
        _, jj = f.run_model({k: torch.as_tensor(getattr(r, k)) for k in
                             ("global_orient", "body_pose", "betas", "transl",
                              "left_hand_pose", "right_hand_pose", "jaw_pose", "expression")})
    np.testing.assert_allclose(jj.numpy(), r.joints, atol=1e-9)


def test_hands_and_face_from_the_body(model_file):
    """The last stage's objective over the hand PCA coefficients, jaw and expression with the
    body at its true pose: the hand and face keypoints close in, the coefficients approach
    the truth (the L2 hand prior shrinks them a little)."""
    path, vids = model_file
    f = SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="coco_wholebody",
                use_face_contour=True, iterations=15, lbfgs_steps=1, dtype="float64")
    kp2, truth = _synthetic_person(f)
    gt = torch.as_tensor(kp2)
    conf = torch.ones(1, 133, dtype=D64)
    params = dict(truth)
    free = []
    for k in ("left_hand_pose", "right_hand_pose", "jaw_pose", "expression"):
        params[k] = torch.zeros_like(truth[k], requires_grad=True)
        free.append(params[k])
    w = f.weights[-1]

    def errors():
        with torch.no_grad():
            _, (_, _, _, proj) = f.energy_terms(params, gt, conf, F, C, 1.0, w)
        e = (proj - gt).norm(dim=-1)[0].numpy()
        return e[91:].mean(), e[23:91].mean()
    hand0, face0 = errors()
    f._optimize(free, lambda: sum(f.energy_terms(params, gt, conf, F, C, 1.0, w)[0].values()
                                  ).sum(), f.cfg.iterations)
    hand, face = errors()
    assert hand0 > 5 and face0 > 5                                        # px
    assert hand < 0.15 * hand0 and face < 0.3 * face0, (hand0, hand, face0, face)
    got = torch.cat([params["left_hand_pose"], params["right_hand_pose"]], 1).detach()
    want = torch.cat([truth["left_hand_pose"], truth["right_hand_pose"]], 1)
    assert float((got - want).norm()) < 0.6 * float(want.norm())
    assert float(params["jaw_pose"][0, 0].detach()) > 0.1                          # the mouth opens


def test_openpose_layout_defaults_and_errors(model_file):
    path, vids = model_file
    f = SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="openpose135",
                iterations=2, lbfgs_steps=1, camera_iterations=2, dtype="float64",
                pose_weights=[4.78], shape_weights=[5.0], hand_weights=[2.0],
                face_weights=[2.0], hand_prior_weights=[4.78], expr_weights=[5.0],
                jaw_weights=[[47.8, 478, 478]], collision_weights=[1.0])
    assert f.ignore == [1, 9, 12]                             # neck and hips (joints_to_ign)
    jw = f.joint_weights(f.weights[0])
    assert float(jw[1]) == float(jw[9]) == float(jw[12]) == 0.0
    assert float(jw[118:].abs().sum()) == 0.0                 # contour without its landmarks
    assert float(jw[67]) == 2.0
    kp2, _ = _synthetic_person(f, 1)
    r = f.fit(kp2[0], camera={"image_size": (1000, 1000)})    # (K, 2): one person
    assert r.keypoints_2d.shape == (1, 135, 2) and np.isfinite(r.loss).all()
    assert f.collision is not None and f.collision.pairs.max() < f.collision.start.numel()
    e = f.fit(np.zeros((0, 135, 2)), camera={"image_size": (1000, 1000)})
    assert e.body_pose.shape == (0, 63) and e.left_hand_pose.shape == (0, 12)
    with pytest.raises(ConfigError, match="not a layout of the smplx"):
        SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="smpl")
    with pytest.raises(ConfigError, match="model_type"):
        SMPLify(path, pose_prior="l2", vertex_ids=vids, model_type="smpl2")
    with pytest.raises(ValueError, match="expected"):
        f.fit(np.zeros((1, 133, 2)), camera={"image_size": (1000, 1000)})


def test_cli_fit_openpose_json(model_file, tmp_path, capsys):
    import json
    from pyhpe.cli import main
    from pyhpe.fitting.cli import read_keypoints
    path, vids = model_file
    f = SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="openpose135",
                use_face_contour=True, dtype="float64")
    kp2, _ = _synthetic_person(f, 2)
    k = np.concatenate([kp2[0], np.ones((135, 1))], 1)
    face70 = np.concatenate([k[118:135], k[67:118], np.zeros((2, 3))])    # contour, inner, pupils
    person = {"pose_keypoints_2d": k[:25].ravel().tolist(),
              "hand_left_keypoints_2d": k[25:46].ravel().tolist(),
              "hand_right_keypoints_2d": k[46:67].ravel().tolist(),
              "face_keypoints_2d": face70.ravel().tolist()}
    (tmp_path / "img_keypoints.json").write_text(json.dumps({"version": 1.3,
                                                              "people": [person]}))
    kp, conf, ids = read_keypoints(str(tmp_path / "img_keypoints.json"), "openpose135")
    np.testing.assert_allclose(kp[0], kp2[0])
    assert conf.shape == (1, 135) and (conf == 1).all() and ids is None
    kp118, _, _ = read_keypoints(str(tmp_path / "img_keypoints.json"), "openpose118")
    np.testing.assert_allclose(kp118[0], kp2[0, :118])
    out = tmp_path / "fit.npz"
    rc = main(["fit", "--model", str(path), "--keypoints", str(tmp_path / "img_keypoints.json"),
               "--layout", "openpose118", "--image-size", "1000", "1000", "--out", str(out),
               "--set", "iterations=2", "--set", "lbfgs_steps=1", "--set", "camera_iterations=2",
               "--set", f"vertex_ids={json.dumps(vids)}", "--set", "interpenetration=false"])
    assert rc == 0 and "1 persons" in capsys.readouterr().out
    r = np.load(out)
    assert r["body_pose"].shape == (1, 63) and r["left_hand_pose"].shape == (1, 12)
    assert r["expression"].shape == (1, 10) and r["keypoints_2d"].shape == (1, 118, 2)


def test_smplh_body_and_hands(tmp_path):
    from pyhpe.fitting import SMPLHModel, model_file_type, write_synthetic_smplh
    path = tmp_path / "SMPLH_SYNTH.pkl"
    vids = write_synthetic_smplh(path)["vertex_ids"]
    assert model_file_type(path) == "smplh"
    ours = SMPLHModel(path, vertex_ids=vids, dtype=D64)
    ref = smplx.create(str(path), model_type="smplh", ext="pkl", use_pca=True, num_pca_comps=12,
                       dtype=D64)
    ref.vertex_joint_selector.extra_joints_idxs = ours.smpl.vertex_joint_selector.extra_joints_idxs
    rng = np.random.default_rng(3)
    go, bp, be, tr, lh, rh = [torch.as_tensor(rng.normal(0, s, (1, n))) for s, n in
                              ((0.3, 3), (0.2, 63), (1, 10), (0.1, 3), (0.8, 12), (0.8, 12))]
    with torch.no_grad():
        v, j = ours(go, bp, be, tr, lh, rh)
        out = ref(global_orient=go, body_pose=bp, betas=be, transl=tr, left_hand_pose=lh,
                  right_hand_pose=rh)
    assert j.shape == (1, 73, 3)
    np.testing.assert_allclose(v.numpy(), out.vertices.numpy(), atol=1e-12)
    np.testing.assert_allclose(j.numpy(), out.joints.numpy(), atol=1e-12)
    f = SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="openpose67", iterations=4,
                lbfgs_steps=1, camera_iterations=4, dtype="float64")
    assert f.model_type == "smplh" and set(f.extra) == {"left_hand_pose", "right_hand_pose"}
    assert f.ignore == [1, 9, 12] and len(f.weights) == 5
    truth = dict(global_orient=torch.tensor([[math.pi, 0.0, 0.0]], dtype=D64), body_pose=bp,
                 betas=be, transl=tr + torch.tensor([[0, 0, 10.0]], dtype=D64),
                 left_hand_pose=lh, right_hand_pose=rh)
    with torch.no_grad():
        kp2 = f.project(f.run_model(truth)[1][:, f.joint_map], F, C).numpy()
    r = f.fit(kp2, camera={"image_size": (1000, 1000)})
    assert r.keypoints_2d.shape == (1, 67, 2) and r.left_hand_pose.shape == (1, 12)
    assert r.jaw_pose is None and r.expression is None and r.body_pose.shape == (1, 63)
    assert np.linalg.norm(r.keypoints_2d - kp2, axis=-1)[0, :25].mean() < 25
    # COCO-WholeBody on SMPL-H: the face has no model points
    g = SMPLify(path, pose_prior="l2", vertex_ids=vids, keypoints="coco_wholebody")
    lo, hi = COCO_WHOLEBODY_PARTS["face"]
    assert float(g.joint_weights(g.weights[-1])[lo:hi].abs().sum()) == 0.0


def test_smplx_with_vposer_and_mog_priors(model_file, tmp_path):
    """VPoser decodes SMPL-X's 63-D body pose directly; SMPLify's 69-D MoG prior is applied as
    the marginal of its first 21 joints."""
    from pyhpe.fitting import MaxMixturePrior, VPoserDecoder
    path, vids = model_file
    torch.manual_seed(0)
    dec = VPoserDecoder().double()
    with torch.no_grad():
        dec.bodyprior_dec_out.weight.mul_(0.3)
        dec.bodyprior_dec_out.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).repeat(21))
    torch.save({k: v.float() for k, v in dec.state_dict().items()}, tmp_path / "vposer.pt")
    f = SMPLify(path, pose_prior="vposer", vposer_path=str(tmp_path / "vposer.pt"),
                vertex_ids=vids, keypoints="coco_wholebody", iterations=2, lbfgs_steps=1,
                camera_iterations=2, dtype="float64")
    z = torch.randn(2, 32, dtype=D64)
    assert f.decode_pose(z).shape == (2, 63)
    kp2, _ = _synthetic_person(f, 4)
    r = f.fit(kp2, camera={"image_size": (1000, 1000)})
    assert r.body_pose.shape == (1, 63) and np.isfinite(r.loss).all()
    rng = np.random.default_rng(0)
    gmm = {"means": rng.normal(0, 0.1, (3, 69)),
           "covars": np.stack([np.diag(rng.uniform(0.02, 0.08, 69)) for _ in range(3)]),
           "weights": np.array([0.5, 0.3, 0.2])}
    with open(tmp_path / "gmm.pkl", "wb") as fh:
        pickle.dump(gmm, fh, protocol=2)
    g = SMPLify(path, prior_path=str(tmp_path / "gmm.pkl"), vertex_ids=vids,
                keypoints="coco_wholebody", dtype="float64")
    ref = MaxMixturePrior(gmm["means"][:, :63], gmm["covars"][:, :63, :63], gmm["weights"],
                          dtype=D64)
    x = torch.as_tensor(rng.normal(0, 0.1, (4, 63)))
    np.testing.assert_allclose(g.pose_prior(x).numpy(), ref(x).numpy())
    assert g.pose_prior.dim == 63
