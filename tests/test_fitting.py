"""SMPLify / SMPLify-X fitting over a small synthetic SMPL-layout model; AMASS / MoSh poses
through the body model."""
import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("smplx")

from pyhpe.data import read_amass  # noqa: E402
from pyhpe.engine.config import ConfigError  # noqa: E402
from pyhpe.eval.metrics import p_mpjpe  # noqa: E402
from pyhpe.fitting import (KEYPOINT_MAPS, MaxMixturePrior, SMPLify, SphereCollision,  # noqa: E402
                           VPoserDecoder, rotmat_to_axis_angle,
                           angle_prior, gmof, load_body_model, read_gmm, read_model_file,
                           sequence_joints, write_synthetic_smpl)

DATA = Path(__file__).parent / "data"
D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl") / "SMPL_SYNTH.npz"
    info = write_synthetic_smpl(path)
    return path, info["vertex_ids"]


@pytest.fixture(scope="module")
def gmm_file(tmp_path_factory):
    """A 4-component prior in the layout of SMPLify's gmm_08.pkl (a pickled dict)."""
    rng = np.random.default_rng(0)
    M = 4
    gmm = {"means": rng.normal(0, 0.1, (M, 69)),
           "covars": np.stack([np.diag(rng.uniform(0.02, 0.08, 69)) for _ in range(M)]),
           "weights": np.array([0.4, 0.3, 0.2, 0.1])}
    path = tmp_path_factory.mktemp("prior") / "gmm_04.pkl"
    with open(path, "wb") as f:
        pickle.dump(gmm, f, protocol=2)
    return path, gmm


# ------------------------------------------------------------------ model files
def test_model_file_npz_and_pkl_layouts_agree(model_file, tmp_path, no_network):
    path, vids = model_file
    pkl = tmp_path / "SMPL_SYNTH.pkl"
    assert write_synthetic_smpl(pkl)["vertex_ids"] == vids
    a, b = read_model_file(path), read_model_file(pkl)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k])                   # sparse J_regressor densified
    m = load_body_model(pkl, vertex_ids=vids, dtype=D64)
    z = torch.zeros(1, 3, dtype=D64)
    _, joints = m(z, torch.zeros(1, 69, dtype=D64), torch.zeros(1, 10, dtype=D64), z)
    # the regressor reproduces the rest joints; the face points are the listed vertices
    np.testing.assert_allclose(joints[0, :24].numpy(), a["J_regressor"] @ a["v_template"],
                               atol=1e-7)      # smplx stores float32 arrays
    np.testing.assert_allclose(joints[0, 24:].numpy(),
                               a["v_template"][[vids[k] for k in ("nose", "reye", "leye", "rear",
                                                                  "lear")]])
    # translation moves everything; a pose moves only the children of the rotated joint
    t = torch.tensor([[0.1, -0.2, 3.0]], dtype=D64)
    pose = torch.zeros(1, 69, dtype=D64)
    pose[0, 3 * 17 + 1] = 1.0                                     # left elbow (joint 18)
    _, j2 = m(z, pose, torch.zeros(1, 10, dtype=D64), t)
    moved = (j2[0, :24] - t - joints[0, :24]).norm(dim=1) > 1e-6
    assert moved.nonzero().flatten().tolist() == [20, 22]        # left wrist, left hand


def test_model_file_errors_are_clear_and_offline(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="does not exist.*never downloaded"):
        load_body_model(tmp_path / "SMPL_NEUTRAL.pkl")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SMPLify(tmp_path / "missing.npz", pose_prior="l2")
    with pytest.raises(ValueError, match="model_path is required"):
        read_model_file(None)
    with pytest.raises(ValueError, match="is a folder"):
        read_model_file(tmp_path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, v_template=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="lacks"):
        read_model_file(bad)
    # a pickle that would run code, and the release's chumpy objects, are refused
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ValueError, match="not allowed"):
        read_model_file(evil)
    mod = types.ModuleType("chumpy.ch")
    Ch = type("Ch", (), {"__module__": "chumpy.ch"})
    mod.Ch = Ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), mod
    try:
        data = pickle.dumps({"v_template": Ch()}, protocol=2)
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]
    (tmp_path / "ch.pkl").write_bytes(data)
    with pytest.raises(ValueError, match="chumpy.*clean_ch"):
        read_model_file(tmp_path / "ch.pkl")
    # a model of another topology needs its face vertices
    path = tmp_path / "m.npz"
    write_synthetic_smpl(path)
    with pytest.raises(ValueError, match="not SMPL's 6890: pass vertex_ids"):
        load_body_model(path)


# ------------------------------------------------------------------ the objective's terms
def test_gmof_matches_its_formula():
    r = torch.tensor([0.0, 1.0, -10.0, 100.0, 1e4], dtype=D64)
    s = 100.0
    np.testing.assert_allclose(gmof(r, s).numpy(),
                               [0.0, 1e4 / 10001, 1e6 / 10100, 1e8 / 2e4, 1e12 / (1e8 + 1e4)])
    assert float(gmof(torch.tensor(1e9, dtype=D64), s)) < s * s       # bounded by sigma^2
    small = torch.tensor(1e-3, dtype=D64)
    assert abs(float(gmof(small, s)) - 1e-6) < 1e-12                   # quadratic near zero


def test_mog_prior_matches_formula_and_prefers_plausible_poses(gmm_file, tmp_path):
    path, gmm = gmm_file
    g = read_gmm(path)
    np.savez(tmp_path / "gmm.npz", **gmm)
    assert all(np.array_equal(g[k], read_gmm(tmp_path / "gmm.npz")[k]) for k in g)
    prior = MaxMixturePrior.from_file(path, dtype=D64)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.2, (3, 69))
    # min over components of 0.5 d^T S^-1 d - log w + D/2 log 2pi + 0.5 (logdet - min logdet)
    logdet = np.array([np.linalg.slogdet(c)[1] for c in gmm["covars"]])
    want = []
    for xi in x:
        e = [0.5 * (xi - m) @ np.linalg.inv(c) @ (xi - m) - math.log(w)
             + 34.5 * math.log(2 * math.pi) + 0.5 * (ld - logdet.min())
             for m, c, w, ld in zip(gmm["means"], gmm["covars"], gmm["weights"], logdet)]
        want.append(min(e))
    np.testing.assert_allclose(prior(torch.as_tensor(x)).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(prior.mean().numpy(), gmm["weights"] @ gmm["means"])
    plausible = torch.as_tensor(gmm["means"][:1])
    implausible = plausible.clone()
    implausible[0, 3 * 17 + 1] = 2.5                                    # elbow bent backwards
    implausible[0, 3 * 3] = -2.0                                        # knee forwards
    assert float(prior(implausible)) > float(prior(plausible)) + 50


def test_angle_prior_penalises_bending_the_wrong_way(model_file):
    path, vids = model_file
    m = load_body_model(path, vertex_ids=vids, dtype=D64)
    z = torch.zeros(1, 3, dtype=D64)
    b = torch.zeros(1, 10, dtype=D64)

    def bent(joint, axis, angle):
        pose = torch.zeros(1, 69, dtype=D64)
        pose[0, 3 * (joint - 1) + axis] = angle
        return pose, m(z, pose, b, z)[1][0]
    for joint, axis, child, parent, natural in ((18, 1, 20, 18, +1.0),   # elbows: forearm forward
                                                (19, 1, 21, 19, +1.0),
                                                (4, 0, 7, 4, -1.0),      # knees: shin backward
                                                (5, 0, 8, 5, -1.0)):
        energies = {}
        for angle in (-1.2, 1.2):
            pose, joints = bent(joint, axis, angle)
            direction = float(joints[child, 2] - joints[parent, 2])     # +z is the body's front
            energies["natural" if direction * natural > 0 else "unnatural"] = float(
                angle_prior(pose)) - 3.0                                # the 3 straight joints
        assert energies["unnatural"] > 10 * energies["natural"], (joint, energies)


def test_sphere_collision_penalises_interpenetration(model_file):
    path, vids = model_file
    m = load_body_model(path, vertex_ids=vids, dtype=D64)
    coll = SphereCollision(m).to(D64)
    assert len(coll.pairs) > 100 and min(coll.radii) > 0
    z = torch.zeros(1, 3, dtype=D64)
    joints = m(z, torch.zeros(1, 69, dtype=D64), torch.zeros(1, 10, dtype=D64), z)[1]
    g = coll(joints)
    assert float(g.pow(2).sum()) < 1e-6                                 # the rest pose is free
    # the documented value: spheres at (i + 0.5) / n along each bone, sigma = radius / 3
    i, k = coll.pairs[0].tolist()
    centers = coll._centers(joints)[0]
    s2 = (coll.radii[i // 3] / 3) ** 2 + (coll.radii[k // 3] / 3) ** 2
    want = math.exp(-float(((centers[i] - centers[k]) ** 2).sum()) / s2)
    assert float(g[0, 0]) == pytest.approx(want, rel=1e-6)
    # the left forearm pushed into the chest: large; pulled back out: falls with the distance
    energies = []
    for depth in (0.0, 0.05, 0.1, 0.2):
        moved = joints.clone()
        target = moved[0, 9] + torch.tensor([0.0, 0.0, depth], dtype=D64)
        shift = target - moved[0, 20]
        moved[0, [20, 22]] += shift                                     # wrist and hand
        moved[0, 18] = moved[0, 16] + 0.5 * (target - moved[0, 16])      # elbow on the way
        energies.append(float(coll(moved).pow(2).sum()))
    assert energies[0] > 0.5 and energies == sorted(energies, reverse=True), energies
    assert energies[-1] < 1e-3


# ------------------------------------------------------------------ fitting
def _synthetic_people(fitter, B, seed, means, turn=0.0, noise=0.15):
    rng = np.random.default_rng(seed)
    dt = fitter.dtype
    pose = torch.as_tensor(means[rng.integers(0, len(means), B)]
                           + rng.normal(0, noise, (B, 69))).to(dt)
    betas = torch.as_tensor(rng.normal(0, 1, (B, 10))).to(dt)
    orient = np.array([[math.pi, 0.0, 0.0]] * B) + rng.normal(0, 0.15, (B, 3))
    if turn:
        orient = np.array([[0.0, turn, 0.0]] * B)
        orient = np.stack([_compose_x_pi(o) for o in orient])
    transl = torch.as_tensor(np.array([[0, 0, 10.0]] * B) + rng.normal(0, 0.2, (B, 3))).to(dt)
    with torch.no_grad():
        _, joints = fitter.body_model(torch.as_tensor(orient).to(dt), pose, betas, transl)
        kp2 = fitter.project(joints[:, fitter.joint_map], torch.full((2,), 5000.0, dtype=dt),
                             torch.full((2,), 500.0, dtype=dt))
    return kp2.numpy(), joints.numpy(), transl


def _compose_x_pi(aa_y):
    """Axis-angle of R_x(pi) @ R_y(angle): upright facing the camera, turned about vertical."""
    from pyhpe.fitting.smplify import _aa_to_rotmat, _rotmat_to_aa
    R = _aa_to_rotmat(np.array([math.pi, 0, 0]))[0] @ _aa_to_rotmat(aa_y)[0]
    return _rotmat_to_aa(R)


def test_smplifyx_fit_recovers_projected_pose(model_file, gmm_file):
    path, vids = model_file
    prior_path, gmm = gmm_file
    fitter = SMPLify(path, prior_path=prior_path, vertex_ids=vids, method="smplifyx",
                     iterations=20, lbfgs_steps=1, dtype="float64")
    kp2, joints, transl = _synthetic_people(fitter, 2, 0, gmm["means"])
    conf = np.ones(kp2.shape[:2])
    r = fitter.fit(kp2, conf, camera={"focal_length": 5000.0, "image_size": (1000, 1000)})
    assert [s["stage"] for s in r.stage_losses] == ["camera", "stage1", "stage2", "stage3",
                                                    "stage4"]
    assert r.body_pose.shape == (2, 69) and r.betas.shape == (2, 10)
    assert r.vertices.shape == (2, fitter.body_model.num_vertices, 3)
    assert r.joints.shape == (2, 29, 3) and r.keypoints_2d.shape == (2, 17, 2)
    reproj = np.linalg.norm(r.keypoints_2d - kp2, axis=-1).mean()
    person = np.ptp(kp2[..., 1], axis=1).mean()                          # ~ 850 px tall
    assert reproj < 5.0 and reproj < 0.01 * person, reproj
    # the stages' energies fall as the prior weights drop; the data term improves
    totals = [s["total"] for s in r.stage_losses[1:]]
    assert totals == sorted(totals, reverse=True)
    assert r.stage_losses[-1]["data"] < 0.1 * r.stage_losses[1]["data"]
    # 3-D: Procrustes-aligned joint error well below that of the initial (mean) pose
    dt = fitter.dtype
    with torch.no_grad():
        _, j0 = fitter.body_model(torch.tensor([[math.pi, 0, 0]] * 2, dtype=dt),
                                  fitter.pose_prior.mean()[None].expand(2, -1),
                                  torch.zeros(2, 10, dtype=dt), transl)
    init = p_mpjpe(j0[:, :24].numpy(), joints[:, :24])
    fit = p_mpjpe(r.joints[:, :24], joints[:, :24])
    assert fit < 0.85 * init, (init, fit)
    # the result reproduces through the body model and the camera
    with torch.no_grad():
        _, jj = fitter.body_model(*(torch.as_tensor(a) for a in (r.global_orient, r.body_pose,
                                                                 r.betas, r.transl)))
    np.testing.assert_allclose(jj.numpy(), r.joints, atol=1e-9)


def test_smplify_side_view_tries_both_orientations(model_file):
    path, vids = model_file
    fitter = SMPLify(path, pose_prior="l2", vertex_ids=vids, method="smplify", iterations=4,
                     camera_iterations=5, lbfgs_steps=1, keypoints="smpl", dtype="float64")
    assert fitter.collision is not None                   # SMPLify weights spheres every stage
    kp2, _, _ = _synthetic_people(fitter, 1, 3, np.zeros((1, 69)), turn=math.pi / 2,
                                  noise=0.02)
    assert np.linalg.norm(kp2[0, 16] - kp2[0, 17]) < 25                 # shoulders overlap
    r = fitter.fit(kp2[0], camera={"center": (500.0, 500.0)})
    assert r.flipped.shape == (1,) and r.flipped.dtype == bool
    assert all("alternative" in s for s in r.stage_losses[1:])
    assert r.keypoints_2d.shape == (1, 24, 2) and np.isfinite(r.loss).all()
    assert r.loss[0] == pytest.approx(min(r.stage_losses[-1]["total"],
                                          r.stage_losses[-1]["alternative"]))


def test_config_and_input_validation(model_file, gmm_file):
    path, vids = model_file
    with pytest.raises(ConfigError, match="unknown key 'itertions'"):
        SMPLify(path, pose_prior="l2", vertex_ids=vids, itertions=3)
    with pytest.raises(ConfigError, match="needs prior_path"):
        SMPLify(path, vertex_ids=vids)
    with pytest.raises(ConfigError, match="method"):
        SMPLify(path, pose_prior="l2", vertex_ids=vids, method="vposer")
    with pytest.raises(ConfigError, match="same length|one value per stage"):
        SMPLify(path, pose_prior="l2", vertex_ids=vids, pose_weights=[1.0, 2.0],
                shape_weights=[1.0])
    fitter = SMPLify(path, config={"pose_prior": "l2", "vertex_ids": vids, "iterations": 1})
    with pytest.raises(ValueError, match=r"expected \(B, 17, 2\)"):
        fitter.fit(np.zeros((1, 24, 2)), camera={"center": (0, 0)})
    with pytest.raises(ValueError, match="'center' or 'image_size'"):
        fitter.fit(np.zeros((17, 2)))
    with pytest.raises(ValueError, match="NaN"):
        fitter.fit(np.full((17, 2), np.nan), camera={"center": (0, 0)})
    with pytest.raises(ValueError, match="unknown camera keys"):
        fitter.fit(np.zeros((17, 2)), camera={"center": (0, 0), "fx": 1})
    with pytest.raises(ValueError, match=r"confidence has shape \(3,\)"):
        fitter.fit(np.zeros((17, 2)), np.ones(3), camera={"center": (0, 0)})
    empty = fitter.fit(np.zeros((0, 17, 2)), camera={"center": (0, 0)})
    assert empty.body_pose.shape == (0, 69) and empty.vertices.shape[0] == 0
    assert len(KEYPOINT_MAPS["coco"]) == 17


# ------------------------------------------------------------------ AMASS / MoSh
def test_amass_mosh_sequence_through_the_body_model(model_file, tmp_path):
    path, vids = model_file
    m = load_body_model(path, vertex_ids=vids, dtype=D64)
    d = read_amass(DATA / "mosh" / "test_mosh.npz")
    assert d["poses"].shape == (4, 24, 3) and d["betas"].shape == (4, 10)
    joints, verts = sequence_joints(m, d["poses"], d["betas"], d["trans"], batch_size=3)
    assert joints.shape == (4, 29, 3) and verts.shape == (4, m.num_vertices, 3)
    with torch.no_grad():
        p = torch.as_tensor(d["poses"][2].reshape(1, 72))
        _, j = m(p[:, :3], p[:, 3:], torch.as_tensor(d["betas"][2:3]), torch.zeros(1, 3, dtype=D64))
    np.testing.assert_allclose(joints[2], j[0].numpy(), atol=1e-10)
    # an AMASS SMPL-H file: 52 joints (hands dropped), 16 betas (cut to the model's 10), trans
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 0.3, (3, 156))
    np.savez(tmp_path / "seq_poses.npz", poses=poses, betas=rng.normal(0, 1, 16),
             trans=rng.normal(0, 1, (3, 3)), gender="female", mocap_framerate=120.0)
    a = read_amass(tmp_path / "seq_poses.npz")
    ja, _ = sequence_joints(m, a["poses"], a["betas"], a["trans"])
    body = np.zeros((3, 72))
    body[:, :66] = poses[:, :66]
    jb, _ = sequence_joints(m, body, a["betas"][:10], a["trans"])
    np.testing.assert_allclose(ja, jb, atol=1e-10)
    np.testing.assert_allclose(ja[:, 0] - a["trans"], sequence_joints(
        m, body, a["betas"])[0][:, 0], atol=1e-10)
    with pytest.raises(ValueError, match="expected"):
        sequence_joints(m, np.zeros((2, 5, 3)))


# ------------------------------------------------------------------ VPoser (SMPLify-X's prior)
def _vposer_snapshot(path):
    """A VPoser v1 state dict (the official key names, encoder included) whose decoder maps
    z = 0 to about the rest pose and z ~ N(0, 1) to moderate poses."""
    torch.manual_seed(0)
    dec = VPoserDecoder().double()
    with torch.no_grad():
        dec.bodyprior_dec_out.weight.mul_(0.3)
        dec.bodyprior_dec_out.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).repeat(21))
    state = {k: v.float() for k, v in dec.state_dict().items()}
    state.update({"bodyprior_enc_fc1.weight": torch.zeros(512, 63),
                  "bodyprior_enc_bn1.running_mean": torch.zeros(63)})
    torch.save(state, path)
    return dec


def test_vposer_decoder_and_rotations(tmp_path):
    from smplx.lbs import batch_rodrigues
    aa = torch.randn(200, 3, dtype=D64, generator=torch.Generator().manual_seed(0))
    aa = aa / aa.norm(dim=1, keepdim=True) * torch.linspace(0, 3.1, 200, dtype=D64)[:, None]
    np.testing.assert_allclose(rotmat_to_axis_angle(batch_rodrigues(aa)).numpy(), aa.numpy(),
                               atol=1e-7)                              # rodrigues' 1e-8 epsilon
    x = aa[1:6].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: rotmat_to_axis_angle(batch_rodrigues(v)), (x,))
    dec = _vposer_snapshot(tmp_path / "TR00_E096.pt")
    loaded = VPoserDecoder.from_checkpoint(tmp_path / "TR00_E096.pt", dtype=D64)
    z = torch.randn(4, 32, dtype=D64, generator=torch.Generator().manual_seed(1))
    pose = loaded(z)
    assert pose.shape == (4, 63)
    np.testing.assert_allclose(pose.detach().numpy(), dec(z).detach().numpy(), atol=1e-5)
    # the decoded rotations are proper rotations (6-D -> Gram-Schmidt)
    R = batch_rodrigues(pose.reshape(-1, 3))
    np.testing.assert_allclose((R @ R.transpose(1, 2)).detach().numpy(),
                               np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
    torch.save({"decoder_net.0.weight": torch.zeros(2, 2)}, tmp_path / "v2.pt")
    with pytest.raises(ValueError, match="not a VPoser v1 snapshot"):
        VPoserDecoder.from_checkpoint(tmp_path / "v2.pt")
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        VPoserDecoder.from_checkpoint(tmp_path / "missing.pt")


def test_smplifyx_fit_with_vposer(model_file, tmp_path):
    path, vids = model_file
    dec = _vposer_snapshot(tmp_path / "vposer.pt")
    fitter = SMPLify(path, pose_prior="vposer", vposer_path=tmp_path / "vposer.pt",
                     vertex_ids=vids, method="smplifyx", iterations=10, lbfgs_steps=1,
                     dtype="float64")
    rng = np.random.default_rng(2)
    with torch.no_grad():
        z = torch.as_tensor(rng.normal(0, 0.7, (2, 32)))
        pose = torch.cat([dec(z), torch.zeros(2, 6, dtype=D64)], 1)
    means = pose.numpy()
    kp2, joints, transl = _synthetic_people(fitter, 2, 4, means, noise=0.0)
    r = fitter.fit(kp2, camera={"image_size": (1000, 1000)})
    reproj = np.linalg.norm(r.keypoints_2d - kp2, axis=-1).mean()
    assert reproj < 5.0, reproj
    with torch.no_grad():
        p0 = fitter.decode_pose(torch.zeros(2, 32, dtype=D64))
        _, j0 = fitter.body_model(torch.tensor([[math.pi, 0, 0]] * 2, dtype=D64), p0,
                                  torch.zeros(2, 10, dtype=D64), transl)
    init = p_mpjpe(j0[:, :24].numpy(), joints[:, :24])
    fit = p_mpjpe(r.joints[:, :24], joints[:, :24])
    assert fit < 0.85 * init, (init, fit)
    np.testing.assert_allclose(r.body_pose[:, 63:], 0.0)                # SMPL's hands stay flat


def test_cli_fit(model_file, tmp_path, capsys):
    import json
    from pyhpe.cli import main
    path, vids = model_file
    fitter = SMPLify(path, pose_prior="l2", vertex_ids=vids)
    kp2, _, _ = _synthetic_people(fitter, 2, 5, np.zeros((1, 69)), noise=0.1)
    results = [{"image_id": 7 + i, "category_id": 1, "score": 0.9,
                "keypoints": np.concatenate([k, np.ones((17, 1))], 1).ravel().tolist()}
               for i, k in enumerate(kp2)]
    (tmp_path / "res.json").write_text(json.dumps(results))
    out = tmp_path / "fit" / "fit.npz"
    rc = main(["fit", "--model", str(path), "--keypoints", str(tmp_path / "res.json"),
               "--image-size", "1000", "1000", "--out", str(out), "--set", "iterations=8",
               "--set", "lbfgs_steps=1", "--set", "camera_iterations=8",
               "--set", f"vertex_ids={json.dumps(vids)}", "--set", "interpenetration=false"])
    assert rc == 0 and "2 persons" in capsys.readouterr().out
    r = np.load(out)
    assert r["body_pose"].shape == (2, 69) and r["image_id"].tolist() == [7, 8]
    assert np.linalg.norm(r["keypoints_2d"] - kp2, axis=-1).mean() < 20
    assert main(["fit", "--model", str(path), "--keypoints", str(tmp_path / "res.json"),
                 "--image-size", "1000", "1000", "--set", "itertions=3"]) == 2  # bad config
    with pytest.raises(SystemExit, match="not SMPL's 6890"):
        main(["fit", "--model", str(path), "--keypoints", str(tmp_path / "res.json"),
              "--image-size", "1000", "1000"])
