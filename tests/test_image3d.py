"""Image-based 3-D pose: the 3DMPPE and VNect codecs, back-projection, VNect's read-out and
kinematic fitting, and both models learning through the engine on real Human3.6M /
MPI-INF-3DHP crops (tests/data/image3d, see make_fixtures.py there). The volumetric model's
tests in the same task are in tests/test_volume_model.py."""
import json
import os

import numpy as np
import pytest
import torch

from pyhpe.codecs import MPPE3DCodec, VNectCodec, build_codec
from pyhpe.codecs.body3d import back_project, k_value, project, read_location_maps
from pyhpe.engine.config import ConfigError
from pyhpe.models import build_model
from pyhpe.models.vnect import (fit_skeleton, forward_kinematics, solve_translation)
from pyhpe.tasks import build_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "image3d")
H36M_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]


def _config(name, tmp_path, *overrides):
    from pyhpe.engine.config import apply_overrides
    with open(os.path.join(ROOT, "configs", f"image3d_{name}_sample.json")) as f:
        cfg = json.load(f)
    for sec in ("data",):
        for k, v in list(cfg[sec].items()):
            if isinstance(v, str) and v.startswith("tests/"):
                cfg[sec][k] = os.path.join(ROOT, v)
    cfg["train"].update(out_dir=str(tmp_path), progress=False, device="cpu")
    apply_overrides(cfg, list(overrides))
    return cfg


def _h36m_frames():
    from pyhpe.data import read_h36m
    return read_h36m(os.path.join(DATA, "h36m", "test_h36m_body3d.npz"),
                     os.path.join(DATA, "h36m", "cameras.pkl"))


# ---------------------------------------------------------------------------- 3DMPPE codec
def test_mppe3d_codec_round_trip_and_official_targets():
    codec = MPPE3DCodec((64, 64), (16, 16, 16), depth_range=2000.0, root_index=0)
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(3, 17, 2, generator=g) * 63
    X = torch.randn(3, 17, 3, generator=g) * 150 + torch.tensor([0.0, 0.0, 5000.0])
    X[0, 5, 2] = X[0, 0, 2] + 1200.0          # outside the 2 m depth cube: not supervised
    kp[1, 3, 0] = 70.0                         # outside the crop
    t = codec.encode(kp, None, keypoints_3d=X)
    # official: x * out / in, z = ((Z - Z_root) / 1000 + 1) / 2 * D
    assert torch.allclose(t["coords"][..., :2], kp / 4.0)
    z = ((X[..., 2] - X[:, :1, 2]) / 1000.0 + 1) / 2 * 16
    assert torch.allclose(t["coords"][..., 2], z)
    assert t["keypoint_weights"][0, 5] == 0 and t["keypoint_weights"][1, 3] == 0
    assert t["keypoint_weights"].sum() == 3 * 17 - 2
    assert torch.allclose(t["root_coords"], torch.cat([kp[:, 0] / 4, X[:, 0, 2:]], -1))
    xy, dz = codec.decode(t["coords"])
    assert torch.allclose(xy, kp, atol=1e-5)
    assert torch.allclose(dz, X[..., 2] - X[:, :1, 2], atol=1e-3)
    assert build_codec(**codec.to_config()) == codec


def test_k_value_is_rootnet_formula():
    cam = torch.tensor([[1145.0, 1144.0, 512.0, 515.0], [500.0, 520.0, 40.0, 50.0]])
    area = torch.tensor([300.0 * 300.0, 80.0 * 60.0])
    k = k_value(cam, area, (2000.0, 2000.0))
    want = [np.sqrt(2000 * 2000 * 1145 * 1144 / 90000.0), np.sqrt(2000 * 2000 * 500 * 520 / 4800.0)]
    np.testing.assert_allclose(k.numpy(), want, rtol=1e-6)
    # the depth at which a 2 m person fills the box: project the box back at depth k
    side = 2000.0 * cam[0, 0] / k[0]
    assert abs(float(side) - 300.0) < 0.5


def test_back_projection_inverts_the_real_cameras():
    from pyhpe.data import project_pinhole
    d = _h36m_frames()
    X = torch.as_tensor(d["keypoints_3d"] * 1000.0)
    cam = torch.as_tensor(np.concatenate([d["cameras"]["f"], d["cameras"]["c"]], 1))
    uv = torch.as_tensor(project_pinhole(X.numpy(), d["cameras"]["f"], d["cameras"]["c"]))
    back = back_project(uv, X[..., 2], cam)
    assert torch.allclose(back, X, atol=1e-6)
    assert torch.allclose(project(back, cam), uv, atol=1e-9)
    # the dataset's 2-D joints include lens distortion: pinhole back-projection of them is
    # within a few mm of the joints (the bound the evaluation inherits)
    back_d = back_project(torch.as_tensor(d["keypoints_2d"]), X[..., 2], cam)
    assert (back_d - X).norm(dim=-1).max() < 25.0


class _Oracle(torch.nn.Module):
    """predict() -> the codec's decoding of the ground-truth targets (stashed by prepare)."""

    def __init__(self, codec, with_root):
        super().__init__()
        self.codec, self.with_root = codec, with_root
        self.w = torch.nn.Parameter(torch.zeros(1))

    def predict(self, inputs):
        kp, dz = self.codec.decode(inputs["oracle"]["coords"])
        out = {"keypoints": kp, "depth": dz}
        if self.with_root:
            out["root"], out["root_depth"] = self.codec.decode_root(inputs["oracle"]["root_coords"])
        return out


@pytest.mark.parametrize("data", ["h36m", "mpi_inf_3dhp"])
def test_task_chain_crop_decode_back_project_is_exact_for_gt(tmp_path, data):
    """Targets of the real crops decoded, mapped back to the image and back-projected by the
    task give the ground truth: the whole crop -> volume -> camera chain."""
    cfg = _config("mppe3d", tmp_path, "eval.root=rootnet")
    if data == "mpi_inf_3dhp":
        d = os.path.join(DATA, "mpi_inf_3dhp")
        cfg["data"] = {"type": "mpi_inf_3dhp",
                       "train_path": os.path.join(d, "test_3dhp_train.npz"),
                       "train_cameras": os.path.join(d, "cameras_train.pkl"),
                       "train_images": d, "test_path": os.path.join(d, "test_3dhp_test.npz"),
                       "test_cameras": os.path.join(d, "cameras_test.pkl"), "test_images": d}
    task = build_task(cfg)
    prepare = task.prepare

    def stash(batch, device):
        inputs, targets = prepare(batch, device)
        inputs["oracle"] = targets
        return inputs, targets
    task.prepare = stash
    val = task.val_dataset()
    pred = task.predict(_Oracle(task.codec, True), val)
    m = task.metrics(pred, val)
    # only the dataset's 2-D annotation vs its pinhole projection differs (H36M: distortion)
    bound = 10.0 if data == "h36m" else 2.0
    assert m["MPJPE"] < bound and m["MRPE"] < bound and m["MPJPE_abs"] < bound
    assert (m["PCK3D"] == 100.0) if data == "mpi_inf_3dhp" else ("MPJPE_WalkDog" in m)


def test_mppe3d_paper_parameter_counts():
    # the official construction: torchvision ResNet-50 without fc (23,508,032), three
    # ConvTranspose2d(., 256, 4, 2, 1, bias=False) + BN, and the final 1x1 conv
    resnet50 = 23_508_032
    deconv = (2048 * 256 + 2 * 256 * 256) * 16 + 3 * 2 * 256
    posenet = resnet50 + deconv + 256 * 17 * 64 + 17 * 64
    rootnet = resnet50 + deconv + (256 + 1) + (2048 + 1)
    m = build_model("mppe3d", "paper")
    assert sum(p.numel() for p in m.backbone.posenet.parameters()) == posenet == 34_274_944  # ~34M
    assert sum(p.numel() for p in m.backbone.rootnet.parameters()) == rootnet
    assert sum(p.numel() for p in m.backbone.posenet.backbone.parameters()) == resnet50
    assert m.codec.volume_size == (64, 64, 64) and m.codec.input_size == (256, 256)


def test_mppe3d_loss_is_official_l1():
    torch.manual_seed(0)
    m = build_model("mppe3d", "tiny")
    x = {"image": torch.randn(2, 3, 64, 64), "k_value": torch.tensor([4000.0, 5000.0])}
    out = m(x)
    tgt = {"coords": torch.rand(2, 17, 3) * 15, "keypoint_weights": torch.ones(2, 17),
           "root_coords": torch.tensor([[8.0, 8.0, 5000.0], [7.0, 9.0, 4500.0]]),
           "root_weight": torch.ones(2)}
    tgt["keypoint_weights"][0, 3] = 0
    losses = m(x, tgt)
    assert torch.allclose(losses["loss_pose"], m.head.loss(out, tgt)["loss_pose"])
    err = (out["coords"] - tgt["coords"]).abs() * tgt["keypoint_weights"][..., None]
    assert torch.allclose(losses["loss_pose"], (err.sum(-1) / 3).mean())
    rerr = (out["root"] - tgt["root_coords"]).abs().sum(-1) / 3
    assert torch.allclose(losses["loss_root"], rerr.mean())
    # RootNet's depth is gamma * k: doubling k doubles it
    x2 = dict(x, k_value=x["k_value"] * 2)
    m.eval()
    assert torch.allclose(m(x2)["root"][:, 2], 2 * m(x)["root"][:, 2], rtol=1e-5)


# ---------------------------------------------------------------------------- VNect
def test_vnect_read_out_on_synthetic_maps():
    g = torch.Generator().manual_seed(1)
    B, K, H, W = 2, 5, 12, 10
    heat = torch.rand(B, K, H, W, generator=g) * 0.5
    loc = torch.randn(B, K, 3, H, W, generator=g)
    peaks = torch.stack([torch.randint(0, W, (B, K), generator=g),
                         torch.randint(0, H, (B, K), generator=g)], -1)
    for b in range(B):
        for k in range(K):
            heat[b, k, peaks[b, k, 1], peaks[b, k, 0]] = 1.0 + k
    xy, scores, xyz = read_location_maps(heat, loc)
    assert torch.equal(xy, peaks.float())
    assert torch.allclose(scores, 1.0 + torch.arange(K).float().expand(B, K))
    for b in range(B):
        for k in range(K):
            assert torch.equal(xyz[b, k], loc[b, k, :, peaks[b, k, 1], peaks[b, k, 0]])


def test_vnect_codec_round_trip_and_heatmap_weighted_loss():
    codec = VNectCodec((64, 64), (16, 16), 1.0, root_index=0)
    d = _h36m_frames()
    X = torch.as_tensor(d["keypoints_3d"] * 1000.0, dtype=torch.float32)
    kp = torch.rand(4, 17, 2, generator=torch.Generator().manual_seed(2)) * 56 + 4
    t = codec.encode(kp, None, keypoints_3d=X)
    rel = X - X[:, :1]
    assert torch.allclose(t["locations"] * 1000.0, rel, atol=1e-3)
    # location maps that hold the targets everywhere decode to the ground truth exactly
    locmaps = t["locations"][..., None, None].expand(-1, -1, -1, 16, 16)
    p = codec.decode((t["heatmaps"], locmaps))
    assert torch.allclose(p.keypoints_3d, rel, atol=1e-2)
    assert (p.keypoints - kp).abs().max() <= 2.0 + 1e-5      # stride 4: half a map pixel
    # the location loss only sees the maps under the ground-truth heatmap
    from pyhpe.models.heads.body3d import VNectHead
    m = VNectHead(codec)
    far = locmaps.clone()
    hm = t["heatmaps"]
    far[:, :, :, :, :] = torch.where(hm[:, :, None] < 1e-8, far + 5.0, far)
    l0 = m.loss((hm, locmaps), t)
    l1 = m.loss((hm, far), t)
    assert float(l0["loss_location"]) == 0.0 and float(l1["loss_location"]) < 1e-10
    near = locmaps + 0.1
    assert float(m.loss((hm, near), t)["loss_location"]) > 1e-4


def _rest_template():
    d = _h36m_frames()
    X = d["keypoints_3d"][0] * 1000.0
    return torch.as_tensor(X - X[:1], dtype=torch.float64)


def test_forward_kinematics_and_translation():
    tmpl = _rest_template()[None]
    par = [p if p >= 0 else j for j, p in enumerate(H36M_PARENTS)]
    offsets = tmpl - tmpl[:, par]
    zero = forward_kinematics(torch.zeros(1, 17, 3, dtype=torch.float64), offsets, H36M_PARENTS)
    assert torch.allclose(zero, tmpl, atol=1e-9)
    angles = torch.randn(1, 17, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.4
    P = forward_kinematics(angles, offsets, H36M_PARENTS)
    assert torch.allclose((P - P[:, par]).norm(dim=-1), offsets.norm(dim=-1), atol=1e-9)
    cam = torch.tensor([[1145.0, 1144.0, 512.0, 515.0]], dtype=torch.float64)
    d = torch.tensor([[150.0, -80.0, 5200.0]], dtype=torch.float64)
    kp = project(P + d[:, None], cam)
    assert torch.allclose(solve_translation(P, kp, cam), d, atol=1e-6)


def test_vnect_skeleton_fitting_recovers_the_pose():
    """Angles and translation of a known skeleton pose from its exact read-out and 2-D peaks
    (rest template given): the fit finds the global pose (< 1 mm). With a noisy read-out
    (20 mm) and peaks (1.5 px) it keeps the bone lengths, lowers the energy below the
    linear initialisation and lands nearer the true pose than the read-out."""
    g = torch.Generator().manual_seed(4)
    tmpl = _rest_template()[None].expand(3, 17, 3)
    par = [p if p >= 0 else j for j, p in enumerate(H36M_PARENTS)]
    offsets = tmpl - tmpl[:, par]
    angles = torch.randn(3, 17, 3, dtype=torch.float64, generator=g) * 0.3
    P = forward_kinematics(angles, offsets, H36M_PARENTS)
    d = torch.tensor([[100.0, -50.0, 4500.0], [-300.0, 100.0, 5500.0], [0.0, 0.0, 3500.0]],
                     dtype=torch.float64)
    cam = torch.tensor([[1145.0, 1144.0, 512.0, 515.0]] * 3, dtype=torch.float64)
    gt = P + d[:, None]
    exact = fit_skeleton(P, project(gt, cam), cam, H36M_PARENTS, template=tmpl[0], steps=100)
    assert (exact.joints - gt).norm(dim=-1).max() < 1.0
    assert torch.allclose(exact.translation, d, atol=1.0)
    P_L = P + torch.randn(P.shape, dtype=torch.float64, generator=g) * 20.0
    P_L = P_L - P_L[:, :1]
    kp = project(gt, cam) + torch.randn(3, 17, 2, dtype=torch.float64, generator=g) * 1.5
    lengths = offsets.norm(dim=-1)
    start = fit_skeleton(P_L, kp, cam, H36M_PARENTS, bone_lengths=lengths, steps=0)
    fit = fit_skeleton(P_L, kp, cam, H36M_PARENTS, bone_lengths=lengths, steps=50)
    fitted_len = (fit.joints - fit.joints[:, par]).norm(dim=-1)
    assert torch.allclose(fitted_len, lengths, atol=1e-6)
    assert (fit.energy < 0.8 * start.energy).all()
    rel_fit = ((fit.joints - fit.joints[:, :1]) - P).norm(dim=-1).mean()
    assert rel_fit < 0.9 * (P_L - P).norm(dim=-1).mean()
    assert (project(fit.joints, cam) - project(gt, cam)).norm(dim=-1).mean() < 6.0


# ---------------------------------------------------------------------------- the task
def test_config_errors(tmp_path):
    cfg = _config("mppe3d", tmp_path)
    cfg["data"]["test_subjects"] = ["S1"]
    with pytest.raises(ConfigError, match="subjects"):
        build_task(cfg)
    with pytest.raises(ConfigError, match="codec"):
        build_task(_config("mppe3d", tmp_path, "model.name=vnect"))
    with pytest.raises(ConfigError, match="eval.root"):
        build_task(_config("mppe3d", tmp_path, "eval.root=pelvis"))
    with pytest.raises(ConfigError, match="needs"):
        build_task(_config("mppe3d", tmp_path, "data.cameras=\"\""))
    task = build_task(_config("vnect", tmp_path))
    again = build_task(task.config.to_dict())            # what a run writes to config.json
    assert again.config == task.config and again.codec == task.codec
    assert again.kset.name == "h36m17" and again.root_index == 0


def _train_metrics(task, model):
    tr = task.train_dataset()
    return task.metrics(task.predict(model, tr), tr)


def _learns(name, tmp_path, *overrides):
    torch.manual_seed(0)
    task = build_task(_config(name, tmp_path, *overrides))
    model0 = task.build_model()
    before_train = _train_metrics(task, model0)
    before_val = task.evaluate(model0, "cpu")
    result = task.fit(log=lambda *a: None)
    model = task.build_model()
    model.load_state_dict(torch.load(os.path.join(str(tmp_path), "last.pth"),
                                     weights_only=False)["model"])
    losses = [r["loss"] for r in result["loss_log"]]
    return task, model, before_train, before_val, _train_metrics(task, model), result["metrics"], losses


def test_mppe3d_learns_on_real_h36m(tmp_path, one_torch_thread):
    task, model, b_tr, b_val, a_tr, a_val, losses = _learns("mppe3d", tmp_path, "model.rootnet=true",
                                                            "train.epochs=50")
    assert losses[-1] < 0.7 * losses[0]
    assert a_tr["MPJPE"] < 0.75 * b_tr["MPJPE"] and a_tr["P-MPJPE"] < b_tr["P-MPJPE"]
    assert a_val["MPJPE"] < b_val["MPJPE"]           # held-out S8 frame
    assert a_val["MRPE"] < 0.8 * b_val["MRPE"]        # RootNet's gamma * k learns the depth


def test_vnect_learns_on_real_h36m(tmp_path, one_torch_thread):
    task, model, b_tr, b_val, a_tr, a_val, losses = _learns("vnect", tmp_path, "train.epochs=50")
    assert losses[-1] < 0.3 * losses[0]
    assert a_tr["MPJPE"] < 0.5 * b_tr["MPJPE"]
    assert a_val["MPJPE"] < b_val["MPJPE"]
    # the kinematic fit of the trained model's read-out through the task
    task.config.eval.fit_skeleton = True
    fitted = _train_metrics(task, model)
    assert fitted["MPJPE"] < b_tr["MPJPE"]


# ---------------------------------------------------------------------------- DconvMP
def test_dconvmp_codec_cells_and_round_trip():
    from pyhpe.codecs import DconvMPCodec
    codec = DconvMPCodec((64, 48), grid=4, root_index=0)
    kp = torch.tensor([[[0.0, 0.0], [15.9, 11.9], [16.0, 12.0], [63.9, 47.9], [70.0, 5.0]]])
    X = torch.arange(15, dtype=torch.float32).reshape(1, 5, 3) * 100
    t = codec.encode(kp, None, keypoints_3d=X)
    assert t["cells"].tolist() == [[0, 0, 5, 15, -1]]
    assert t["detection_weights"].tolist() == [[1, 1, 1, 1, 0]]
    assert torch.allclose(t["pose_3d"] * 1000, X - X[:, :1])
    logits = torch.full((1, 5, 16), -10.0)
    logits[0, torch.arange(5), t["cells"].clamp_min(0)[0]] = 10.0
    xy, prob, P = codec.decode((t["pose_3d"], logits))
    assert torch.allclose(P, X - X[:, :1], atol=1e-3)
    assert (xy[0, :4] - kp[0, :4]).abs().max() <= 8.0 + 1e-5       # half a 16 x 12 cell
    assert (prob > 0.99).all()
    assert build_codec(**codec.to_config()) == codec


def test_dconvmp_stages_are_configs():
    pre = build_model("dconvmp", "tiny", stage="pretrain")
    fine = build_model("dconvmp", "tiny", stage="finetune", detection_weight=0.5)
    assert pre.state_dict().keys() == fine.state_dict().keys()       # one architecture
    t = pre.codec.encode(torch.rand(2, 17, 2) * 63, None, keypoints_3d=torch.randn(2, 17, 3) * 200)
    x = torch.randn(2, 3, 64, 64)
    assert set(pre(x, t)) == {"loss_detection"}
    assert set(fine(x, t)) == {"loss_regression", "loss_detection"}
    assert set(build_model("dconvmp", "tiny")(x, t)) == {"loss_regression"}
    with pytest.raises(ValueError, match="stage"):
        build_model("dconvmp", "tiny", stage="both")


def _cell_accuracy(task, model):
    from pyhpe.engine.trainer import eval_mode
    ds = task.train_dataset()
    batch = task.collate([ds[i] for i in range(len(ds))])
    inputs, targets = task.prepare(batch, "cpu")
    with eval_mode(model), torch.no_grad():
        _, logits = model(inputs)
    ok = (logits.argmax(-1) == targets["cells"]).float() * targets["detection_weights"]
    return float(ok.sum() / targets["detection_weights"].sum())


def test_dconvmp_pretrains_on_detection_then_regresses(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    pre_dir = tmp_path / "pretrain"
    task = build_task(_config("dconvmp_pretrain", pre_dir, "train.epochs=40"))
    acc0 = _cell_accuracy(task, task.build_model())
    result = task.fit(log=lambda *a: None)
    losses = [r["loss"] for r in result["loss_log"]]
    assert losses[-1] < 0.1 * losses[0]
    model = task.build_model()
    model.load_state_dict(torch.load(str(pre_dir / "last.pth"), weights_only=False)["model"])
    assert _cell_accuracy(task, model) > max(0.8, acc0 + 0.3)
    # fine-tuning from the pre-trained weights regresses root-relative 3-D
    fine_dir = tmp_path / "finetune"
    task2, _, b_tr, b_val, a_tr, a_val, losses = _learns(
        "dconvmp", fine_dir, "train.epochs=40", f"train.load_from={pre_dir / 'last.pth'}")
    assert losses[-1] < 0.3 * losses[0]
    assert a_tr["MPJPE"] < 0.8 * b_tr["MPJPE"]


def test_unpublished_paper_sizes_are_pinned():
    # no published count: VNect (ResNet-50 to res4f + the paper's res5a / res5b / heads), ORPM and
    # DconvMP (our reading of the paper's layer sizes); 3DMPPE = PoseNet + RootNet
    sizes = {"mppe3d": 68_272_578, "vnect": 13_514_628, "dconvmp": 26_944_339,
             "orpm": 19_926_820}
    for name, n in sizes.items():
        assert sum(p.numel() for p in build_model(name, "paper").parameters()) == n


# ---------------------------------------------------------------------------- ORPM
def test_orpm_limb_chains_of_the_keypoint_sets():
    from pyhpe.codecs.body3d import orpm_chains
    from pyhpe.keypoints import get_keypoint_set
    assert orpm_chains(get_keypoint_set("h36m17").parents, 8, 0) == [
        [11, 12, 13], [14, 15, 16], [1, 2, 3], [4, 5, 6]]
    assert orpm_chains(get_keypoint_set("mpi_inf_3dhp17").parents, 1, 14) == [
        [2, 3, 4], [5, 6, 7], [8, 9, 10], [11, 12, 13]]


def test_orpm_read_out_rules():
    from pyhpe.codecs.body3d import orpm_read_sources
    chains = [[11, 12, 13], [14, 15, 16], [1, 2, 3], [4, 5, 6]]
    s = torch.ones(3, 17)
    s[1, [13, 15]] = 0.0           # occluded left wrist, right elbow
    s[2, [8, 11, 12, 13]] = 0.0    # occluded thorax and the whole left arm
    src = orpm_read_sources(s, chains, 8, 0, 0.2)
    torso = [0, 7, 8, 9, 10]
    # all visible: every limb joint at itself, the torso / head joints at the torso
    assert src[0, torso].tolist() == [8] * 5
    assert src[0, [11, 12, 13, 1, 2, 3]].tolist() == [11, 12, 13, 1, 2, 3]
    # an occluded extremity is read at the last valid joint before it
    assert src[1, 13].item() == 12 and src[1, 12].item() == 12
    assert src[1, [14, 15, 16]].tolist() == [14, 14, 16]
    # no valid torso: the pelvis; an arm with no valid joint: the pelvis too
    assert src[2, torso].tolist() == [0] * 5 and src[2, [11, 12, 13]].tolist() == [0, 0, 0]


def _two_people():
    """Two real Human3.6M poses placed side by side in a 256 x 256 input, the second nearer."""
    d = _h36m_frames()
    X = torch.as_tensor(d["keypoints_3d"][:2] * 1000.0, dtype=torch.float32)
    X = X - X[:, :1] + torch.tensor([[[-600.0, 0.0, 6000.0]], [[500.0, 0.0, 4500.0]]])
    cam = torch.tensor([[400.0, 400.0, 128.0, 128.0]] * 2)
    kp = project(X.double(), cam.double()).float()
    return kp[None], X[None]


def test_orpm_codec_writes_redundant_maps_and_decodes_ground_truth():
    from pyhpe.codecs import ORPMCodec
    from pyhpe.keypoints import get_keypoint_set
    codec = ORPMCodec((256, 256), (64, 64), get_keypoint_set("h36m17").parents, 8, 0, sigma=1.5,
                      radius=1.5, read_threshold=0.3, min_parts=8)
    kp, X = _two_people()
    assert kp.min() > 0 and kp.max() < 256
    vis = torch.ones(1, 2, 17)
    vis[0, 1, 13] = 0                         # the nearer person's left wrist is occluded
    t = codec.encode(kp, vis, keypoints_3d=X)
    rel = (X - X[:, :, :1]) / 1000.0
    # at the torso of person 0 the whole pose; at its left elbow only the elbow and the wrist
    tx, ty = (kp[0, 0, 8] / 4).round().long().tolist()
    assert torch.allclose(t["orpm"][0, :, :, ty, tx], rel[0, 0], atol=1e-6)
    assert t["orpm_mask"][0, :, ty, tx].sum() == 17
    ex, ey = (kp[0, 0, 12] / 4).round().long().tolist()
    assert torch.allclose(t["orpm"][0, [12, 13], :, ey, ex], rel[0, 0, [12, 13]], atol=1e-6)
    # decoding the ground-truth maps: PAF grouping finds both, the read-out gives their poses
    # (the occluded wrist from the ORPM at the elbow)
    p = codec.decode((t["heatmaps"], t["pafs"], t["orpm"]))
    assert len(p.keypoints[0]) == 2
    order = p.keypoints[0][:, 0, 0].argsort()
    got = p.keypoints_3d[0][order]
    assert torch.allclose(got, X[0] - X[0, :, :1], atol=1e-2)
    assert p.scores[0][order][1, 13] < 0.3
    assert build_codec(**codec.to_config()) == codec


def test_orpm_learns_on_real_h36m(tmp_path, one_torch_thread):
    task, model, b_tr, b_val, a_tr, a_val, losses = _learns("orpm", tmp_path, "train.epochs=50")
    assert losses[-1] < 0.3 * losses[0]
    assert a_tr["MPJPE"] < 0.5 * b_tr["MPJPE"]


def test_mppe3d_learns_on_real_mpi_inf_3dhp(tmp_path, one_torch_thread):
    """MPI-INF-3DHP's metrics (PCK3D@150mm, AUC, MPJPE) on its two training frames; RootNet's
    MRPE on them."""
    task, model, b_tr, b_val, a_tr, a_val, losses = _learns("mppe3d_mpi_inf_3dhp", tmp_path,
                                                            "train.epochs=50")
    assert task.metric == "PCK3D" and {"PCK3D", "AUC", "MPJPE", "MRPE"} <= set(a_val)
    assert losses[-1] < 0.1 * losses[0]
    assert a_tr["AUC"] > b_tr["AUC"] + 5.0 and a_tr["MPJPE"] < 0.8 * b_tr["MPJPE"]
    assert a_tr["MRPE"] < 0.3 * b_tr["MRPE"]


def test_task_batches_carry_rootnet_k_of_the_crop(tmp_path):
    """The task's RootNet input: k from the frame's real focal lengths and the area of its
    crop in image pixels (the padded, aspect-corrected box, as the official process_bbox)."""
    task = build_task(_config("mppe3d", tmp_path))
    ds = task.train_dataset()
    batch = task.collate([ds[i] for i in range(len(ds))])
    inputs, targets = task.prepare(batch, "cpu")
    d = _h36m_frames()
    keep = np.isin(d["subject"], ["S1", "S5", "S7"])
    f = d["cameras"]["f"][keep]
    side = d["scale"][keep] * 200.0 * 1.25                  # square box x padding
    want = np.sqrt(2000.0 * 2000.0 * f[:, 0] * f[:, 1] / side ** 2)
    np.testing.assert_allclose(inputs["k_value"].numpy(), want, rtol=1e-5)
    assert inputs["image"].shape == (3, 3, 64, 64)
    assert torch.allclose(targets["root_coords"][:, 2], batch["keypoints_3d"][:, 0, 2])


@pytest.mark.parametrize("name", ["mppe3d", "vnect", "dconvmp", "orpm"])
def test_image3d_models_are_backbone_plus_head(name):
    """Every image-based 3-D model is a PoseModel whose head owns the loss and the decoding."""
    from pyhpe.models import PoseModel
    from pyhpe.models.heads import BaseHead
    torch.manual_seed(0)
    m = build_model(name, "tiny", **({"rootnet": False} if name == "mppe3d" else {}))
    assert isinstance(m, PoseModel) and isinstance(m.head, BaseHead)
    W, H = m.codec.input_size
    x = torch.randn(2, 3, H, W)
    m.eval()
    pred = m.predict(x)
    assert pred["keypoints"].shape == (2, 17, 2)
    assert (pred["depth"] if name == "mppe3d" else pred["keypoints_3d"]).shape[:2] == (2, 17)


@pytest.mark.parametrize("name", ["vnect", "orpm"])
def test_image3d_head_refuses_maps_of_another_size(name):
    m = build_model(name, "tiny").eval()
    with pytest.raises(ValueError, match="heatmap_size"):
        m(torch.randn(1, 3, 96, 96))
    with pytest.raises(NotImplementedError, match="flip"):
        m.head.predict(m(torch.randn(1, 3, 64, 64)), m(torch.randn(1, 3, 64, 64)))
