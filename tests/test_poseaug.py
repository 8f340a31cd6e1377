"""PoseAug: the kinematic operations (bone decomposition / recomposition), the augmentor's
bounds (bone lengths, fixed torso, symmetric ratios, reprojection), the discriminators, the
official losses, and the lift3d task training a lifter with PoseAug on real Human3.6M poses."""
import math
import os

import numpy as np
import pytest
import torch

from conftest import cpu_and_cuda

from pyhpe.data import LiftingDataset, read_h36m
from pyhpe.engine.config import ConfigError
from pyhpe.keypoints import get_keypoint_set
from pyhpe.models.poseaug import (KCSDiscriminator, KinematicChain, Pose2DDiscriminator,
                                  PoseAugConfig, PoseAugmentor, axis_angle_to_matrix,
                                  bone_vectors, compose_bones, decompose, project, range_loss,
                                  rectified_l2)
from pyhpe.tasks import build_task
from pyhpe.tasks.lift3d import Lift3DTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data")
H36M = os.path.join(DATA, "h36m", "test_h36m_body3d.npz")
CAMS = os.path.join(DATA, "h36m", "cameras.pkl")
CFG = os.path.join(REPO, "configs", "lift3d_h36m_sample.json")


def _chain(name="h36m17"):
    k = get_keypoint_set(name)
    return KinematicChain(k.parents, k.flip_index())


def _real_poses():
    """The 4 real H36M frames: root-relative mm (4, 17, 3), roots (4, 3) mm, cameras (4, 4)."""
    d = read_h36m(H36M, CAMS)
    X = d["keypoints_3d"] * 1000.0
    cam = np.concatenate([d["cameras"]["f"], d["cameras"]["c"]], 1)
    return X - X[:, :1], X[:, 0], cam


# ---------------------------------------------------------------------------- kinematics
@pytest.mark.parametrize("name", ["h36m17", "mpi_inf_3dhp17"])
def test_bone_decomposition_round_trip_is_exact(name):
    chain = _chain(name)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 17, 3, generator=g, dtype=torch.float64) * 300
    root = X[:, chain.root:chain.root + 1]
    unit, length = decompose(X, chain)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(64, 16, dtype=torch.float64))
    back = compose_bones(unit * length, chain, root)
    torch.testing.assert_close(back, X, rtol=0, atol=1e-10)
    # and the other way: bones -> joints -> bones
    B = torch.randn(8, chain.num_bones, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(bone_vectors(compose_bones(B, chain), chain), B, rtol=0, atol=1e-12)
    # on integer coordinates both directions are exact in floating point
    Xi = torch.randint(-1000, 1000, (16, 17, 3), generator=g).double()
    assert torch.equal(compose_bones(bone_vectors(Xi, chain), chain, Xi[:, chain.root:chain.root + 1]), Xi)


def test_kinematic_chain_structure_h36m17():
    chain = _chain()
    names = get_keypoint_set("h36m17").names
    bone = {names[j]: b for b, j in enumerate(chain.children)}
    # torso (fixed bone angles): hip -> spine -> thorax, as the official augmentor
    assert chain.torso_bones == [bone["spine"], bone["thorax"]]
    # left/right bones share a length ratio, midline bones have their own: 9 groups of 16
    pairs = [sorted(g) for g in chain.bone_groups if len(g) == 2]
    assert len(chain.bone_groups) == 10 and len(pairs) == 6
    assert sorted([bone["left_knee"], bone["right_knee"]]) in pairs
    # one KCS part per leaf: feet, head, wrists
    leaves = sorted(names[chain.children[c[-1]]] for c in chain.chains)
    assert leaves == ["head", "left_foot", "left_wrist", "right_foot", "right_wrist"]
    with pytest.raises(ValueError, match="one root"):
        KinematicChain([-1, -1, 0])
    with pytest.raises(ValueError, match="not a tree"):
        KinematicChain([-1, 2, 1])


def test_axis_angle_matches_scipy():
    from scipy.spatial.transform import Rotation
    r = torch.tensor([[0.3, -1.2, 2.0], [1e-9, 0, 0], [math.pi, 0, 0]], dtype=torch.float64)
    R = axis_angle_to_matrix(r)
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(r.numpy()).as_matrix(), atol=1e-7)


# ---------------------------------------------------------------------------- augmentor
def test_augmentor_outputs_valid_poses_on_real_h36m():
    torch.manual_seed(0)
    X, root, cam = (torch.tensor(a, dtype=torch.float32) for a in _real_poses())
    X, root, cam = X.repeat(8, 1, 1), root.repeat(8, 1), cam.repeat(8, 1)
    cfg = PoseAugConfig(width=32, num_stages=1, noise=8)
    chain = _chain()
    aug = PoseAugmentor(chain, cfg).train()
    with torch.no_grad():
        for p in aug.parameters():      # large weights: the tanh bounds must hold anyway
            p.mul_(5)
        g = aug(X, root, cam)
    _, L0 = decompose(X, chain)
    for key, lo, hi in (("pose_ba", 1, 1), ("pose_bl", 0.8, 1.2), ("pose_rt", 0.8, 1.2)):
        _, L = decompose(g[key], chain)
        ratio = (L / L0)[..., 0]
        assert (ratio >= lo - 1e-4).all() and (ratio <= hi + 1e-4).all(), key
    _, Lbl = decompose(g["pose_bl"], chain)
    _, Lrt = decompose(g["pose_rt"], chain)
    torch.testing.assert_close(Lrt, Lbl, rtol=1e-4, atol=1e-3)        # RT is rigid
    ratio = (Lbl / L0)[..., 0]
    for group in chain.bone_groups:                                    # symmetric lengths
        torch.testing.assert_close(ratio[:, group], ratio[:, group[:1]].expand(-1, len(group)))
    assert (ratio - 1).abs().amax() > 0.05                             # it does change lengths
    last = chain.torso_bones[-1]
    torch.testing.assert_close(ratio[:, last], torch.ones(len(X)))     # the reference length
    # BA keeps the torso directions and changes the others, reported as 1 - cos
    u0, _ = decompose(X, chain)
    ub, _ = decompose(g["pose_ba"], chain)
    torch.testing.assert_close(ub[:, chain.torso_bones], u0[:, chain.torso_bones], rtol=0, atol=1e-5)
    torch.testing.assert_close(g["ba_diff"], 1 - (ub * u0).sum(-1), rtol=0, atol=1e-5)
    assert g["ba_diff"].amax() > 0.05
    # RT: root-relative, in front of the camera, projected by the pinhole camera
    assert (g["pose_rt"][:, 0] == 0).all() and (g["root_rt"][:, 2] >= cfg.min_depth).all()
    assert ((g["root_rt"] - root).abs() <= torch.tensor(cfg.trans_range) + 1e-3).all()
    P = g["pose_rt"] + g["root_rt"][:, None]
    px = P[..., :2] / P[..., 2:] * cam[:, None, :2] + cam[:, None, 2:]
    torch.testing.assert_close(g["pose_2d_rt"], px)
    # the projection of the real poses is the sample's 2-D (pinhole, up to distortion)
    d = read_h36m(H36M, CAMS)
    x2 = project(X[:4] + root[:4, None], cam[:4])
    assert (x2 - torch.tensor(d["keypoints_2d"], dtype=torch.float32)).abs().max() < 3.0


def test_discriminators_and_losses():
    chain = _chain()
    X, _, _ = _real_poses()
    X = torch.tensor(X, dtype=torch.float32)
    d3 = KCSDiscriminator(chain, width=16)
    out = d3(X)
    assert out.shape == (4, 5)
    # KCS of unit bones: bone angles only (blind to bone lengths and to the root position)
    unit, L = decompose(X, chain)
    longer = compose_bones(unit * L * torch.linspace(0.8, 1.2, 16)[:, None], chain) + 100.0
    torch.testing.assert_close(d3(longer), out, rtol=1e-4, atol=1e-5)
    assert Pose2DDiscriminator(17, 16)(X[..., :2]).shape == (4, 1)
    # the official range losses
    a = torch.tensor([0.0, 0.3, 0.5])
    assert range_loss(a, 0.2, 0.15).item() == pytest.approx((0.2 ** 2 + 0.3 ** 2) / 3)
    assert rectified_l2(torch.tensor([0.05, -0.2]), 0.1).item() == pytest.approx(0.04 / 2)


# ---------------------------------------------------------------------------- training
def _jittered_h36m(n, seed):
    """Real H36M poses with jittered bone angles, turned about the vertical and placed in
    front of the sample's real cameras -> LiftingDataset with cameras."""
    chain = _chain()
    rng = np.random.default_rng(seed)
    X0, _, cam0 = _real_poses()
    X0 = torch.tensor(X0, dtype=torch.float64)
    base = rng.integers(0, len(X0), n)
    unit, L = decompose(X0[base], chain)
    noise = torch.tensor(rng.normal(0, 0.15, unit.shape))
    noise[:, chain.torso_bones] = 0
    unit = unit + noise
    unit = unit / unit.norm(dim=-1, keepdim=True)
    X = compose_bones(unit * L, chain).numpy()
    yaw = rng.uniform(-math.pi, math.pi, n)
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.zeros((n, 3, 3))
    R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, s, 1, -s, c
    X = np.einsum("nij,nkj->nki", R, X)
    root = np.stack([rng.uniform(-500, 500, n), rng.uniform(-300, 300, n),
                     rng.uniform(4000, 6000, n)], 1)
    cam = cam0[base]
    P = X + root[:, None]
    p2 = P[..., :2] / P[..., 2:] * cam[:, None, :2] + cam[:, None, 2:]
    return LiftingDataset(p2, X, camera=cam, root_3d=root, actions=np.array(["jitter"] * n))


class _JitterTask(Lift3DTask):
    def build_datasets(self):
        return _jittered_h36m(512, 0), _jittered_h36m(128, 1)


def _poseaug_config(tmp_path, poseaug, steps=120):
    import json
    cfg = json.load(open(CFG))
    cfg["data"].update(train_path=H36M, test_path=H36M, cameras=CAMS)
    cfg["model"]["poseaug"] = poseaug
    cfg["train"].update(max_steps=steps, epochs=1000, batch_size=64, lr=2e-3, eval_every=0,
                        progress=False, device="cpu", out_dir=str(tmp_path), log_every=10)
    return cfg


def test_lifter_learns_with_poseaug(tmp_path, one_torch_thread):
    from pyhpe.engine import Trainer
    cfg = _poseaug_config(tmp_path, {"config": "tiny", "warmup_steps": 20, "rot_range": 0.5,
                                     "ramp_steps": 100})
    cfg["model"]["width"] = 128
    task = _JitterTask(cfg)
    trainer = Trainer(task, log=lambda *a: None)
    model = trainer.model
    assert type(model).__name__ == "PoseAugLifter"
    g0 = [p.detach().clone() for p in model.augmentor.parameters()]
    before = trainer.evaluate()
    result = trainer.fit()
    after = result["metrics"]
    assert after["MPJPE"] < 0.6 * before["MPJPE"], (before, after)
    assert after["P-MPJPE"] <= after["MPJPE"]
    curve = [r["loss_mse"] for r in result["loss_log"]]
    assert np.mean(curve[-3:]) < 0.6 * curve[0], curve
    # the augmented batch joins the lifter's loss after the warm-up
    assert "loss_mse_aug" in result["loss_log"][-1] and "loss_mse_aug" not in result["loss_log"][0]
    # the augmentor and the discriminators were trained by their own optimizers
    assert int(model.aug_step) == 120
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.augmentor.parameters()))
    logs = model.last_aug_losses
    assert {"loss_g", "loss_g_adv3d", "loss_g_adv2d", "loss_g_feedback", "loss_d3d",
            "loss_d2d"} <= set(logs) and all(np.isfinite(v) for v in logs.values())
    assert logs["loss_g_feedback"] > 0
    # after training, the augmented poses still keep their bone lengths within the bounds
    train = task.train_dataset()
    X, root, cam = train.pose_3d[:64], train.root_3d[:64], train.camera[:64]
    with torch.no_grad():
        g = model.augmentor.eval()(X, root, cam)
    _, L0 = decompose(X, model.chain)
    _, L = decompose(g["pose_rt"], model.chain)
    ratio = L / L0
    assert (ratio > 0.8 - 1e-3).all() and (ratio < 1.2 + 1e-3).all()


def test_poseaug_through_the_sample_config_and_cli(tmp_path, monkeypatch, one_torch_thread):
    from pyhpe.cli import main
    from pyhpe.engine import load_weights
    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    assert main(["train", "--config", os.path.join(REPO, "configs", "lift3d_h36m_poseaug_sample.json"),
                 "--set", "train.max_steps=3", "--set", "train.progress=false",
                 "--set", "train.device=cpu", "--out", str(out)]) == 0
    task = build_task(os.path.join(REPO, "configs", "lift3d_h36m_poseaug_sample.json"))
    model = task.build_model()
    load_weights(model, str(out / "best.pth"))
    assert int(model.aug_step) == 3
    pred = task.predict(model, task.val_dataset())
    assert pred.shape == (2, 17, 3) and np.isfinite(pred).all()


def test_poseaug_config_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = _poseaug_config(tmp_path, {"config": "tiny"})
    with pytest.raises(ConfigError, match="blr_tanh_limit"):
        build_task(dict(cfg, model=dict(cfg["model"], poseaug={"blr_tanh_limit": 2.0})))
    with pytest.raises(ConfigError, match="nope"):
        build_task(dict(cfg, model=dict(cfg["model"], poseaug={"nope": 1})))
    with pytest.raises(ConfigError, match="poseaug.config"):
        build_task(dict(cfg, model=dict(cfg["model"], poseaug={"config": "huge"})))
    no_cams = dict(cfg, data=dict(cfg["data"], cameras=""))
    with pytest.raises(ConfigError, match="cameras"):
        build_task(no_cams).build_model()
    pan = build_task(os.path.join(REPO, "configs", "lift3d_panoptic_sample.json"),
                     ['model.poseaug={"config": "tiny"}'])
    with pytest.raises(ConfigError, match="kinematic tree"):
        pan.build_model()


@cpu_and_cuda()
def test_poseaug_step_on_device(device, tmp_path):
    """One PoseAug step (augmentor, discriminators, lifter losses) on the device, under the
    engine's autocast where it has one: finite losses, the augmentor updated."""
    from pyhpe.engine.trainer import eval_mode
    torch.manual_seed(0)
    task = _JitterTask(_poseaug_config(tmp_path, {"config": "tiny", "d_every": 1}))
    model = task.build_model().to(device).train()
    batch = task.collate([task.train_dataset()[i] for i in range(16)])
    inputs, targets = task.prepare(batch, device)
    g0 = [p.detach().clone() for p in model.augmentor.parameters()]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
        losses = model(inputs, targets)
    assert set(losses) == {"loss_mse", "loss_mse_aug"}
    assert all(torch.isfinite(v) and v.requires_grad for v in losses.values())
    assert all(np.isfinite(v) for v in model.last_aug_losses.values())
    assert "loss_d3d" in model.last_aug_losses
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.augmentor.parameters()))
    assert all(p.grad is None for p in model.lifter.parameters())
    with eval_mode(model):
        pred, _ = model.predict(inputs)
    assert pred.shape == (16, 17, 3) and pred.device.type == device


def test_paper_augmentor_size_matches_the_official_generator():
    """On the official 16-joint skeleton (Human3.6M without the nose: 15 bones, 9 length
    groups) the paper config has the official PoseGenerator's parameters: BA 302,125,
    BL 296,713, RT (two branches) 582,662 = 1,181,500."""
    parents = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14]
    flip = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 13, 14, 15, 10, 11, 12]
    chain = KinematicChain(parents, flip)
    assert chain.num_bones == 15 and len(chain.bone_groups) == 9
    aug = PoseAugmentor(chain, PoseAugConfig())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(aug.ba) == 302125 and count(aug.bl) == 296713
    assert count(aug.rt_r) + count(aug.rt_t) == 582662 and count(aug) == 1181500
    assert count(Pose2DDiscriminator(16)) == 32 * 100 + 100 + 4 * (100 * 100 + 100) + 101
    # Pos3dDiscriminator: five KCS paths on the 15 x 15 matrix (arms, legs, torso + head)
    path = 225 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 100 + 100 + 101
    assert len(chain.chains) == 5 and count(KCSDiscriminator(chain)) == 5 * path
