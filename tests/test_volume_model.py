"""The coarse-to-fine volumetric model (Pavlakos et al. 2017) and its codec: architecture and
parameter count, targets per level, decoding through pyhpe.ops.soft_argmax_3d, and a learning
test through the engine in the image3d task (configs/image3d_volumetric_sample.json: the real
Human3.6M sample frames of tests/data/image3d) evaluated by MPJPE after the paper's
back-projection at the ground-truth root depth."""
import json
import os

import pytest
import torch

from pyhpe.codecs import build_codec
from pyhpe.codecs.volumetric import VolumetricC2F
from pyhpe.models import build_model
from pyhpe.models.volumetric import C2FVolumetric

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "configs", "image3d_volumetric_sample.json")


def _sample(tmp_path, *overrides):
    """The sample config with its fixture paths made absolute and the run under tmp_path."""
    from pyhpe.engine.config import apply_overrides
    with open(SAMPLE) as f:
        cfg = json.load(f)
    for k, v in list(cfg["data"].items()):
        if isinstance(v, str) and v.startswith("tests/"):
            cfg["data"][k] = os.path.join(ROOT, v)
    cfg["train"].update(out_dir=str(tmp_path), progress=False, device="cpu")
    apply_overrides(cfg, list(overrides))
    return cfg


def test_paper_architecture_and_parameter_count():
    model = build_model("volumetric", "paper")
    bb = model.backbone
    assert isinstance(bb, C2FVolumetric) and bb.res_z == (1, 2, 4, 64) and len(bb.hgs) == 4
    # hg-stacked-4: stack inputs 256, 384, 512, 512; outputs 17 * (1, 2, 4, 64) channels;
    # the last stack's features stay at 512 channels
    assert [hg.up[0].body[2].in_channels for hg in bb.hgs] == [256, 384, 512, 512]
    assert [o.out_channels for o in bb.outs] == [17, 34, 68, 1088]
    assert bb.outs[-1].in_channels == 512
    # The paper gives no parameter count; this pins the count of the network above
    # (53.5 M, most of it in the four 512-output hourglasses).
    assert sum(p.numel() for p in model.parameters()) == 53_494_583
    assert model.codec.heatmap_size == (64, 64) and model.codec.depth == 64


def test_tiny_forward_shapes():
    model = build_model("volumetric", "tiny")
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 17, 1, 16, 16), (2, 17, 4, 16, 16),
                                              (2, 17, 16, 16, 16)]


def test_codec_levels_and_round_trip():
    codec = VolumetricC2F((64, 64), (16, 16), (1, 4, 16), sigma=1.0, depth_range=2000.0)
    kp = torch.tensor([[[10.0, 22.0, -300.0], [41.0, 33.0, 500.0], [20.0, 20.0, 5000.0]]])
    t = codec.encode(kp, torch.tensor([[1.0, 1.0, 1.0]]))
    assert t["keypoint_weights"].tolist() == [[1.0, 1.0, 0.0]]  # 5 m behind the root: outside
    vox = codec.to_voxels(kp)
    for i, r in enumerate((1, 4, 16)):
        v = t[f"volumes_{i}"][0, 0]
        assert v.shape == (r, 16, 16)
        zb = int(torch.floor((vox[0, 0, 2] + 0.5) * r / 16 - 0.5 + 0.5))
        # coarse levels: the 2-D Gaussian in the keypoint's bin only
        if r < 16:
            assert v[zb].max() == 1 and v.sum() == v[zb].sum()
    # the finest level is gaussian_volumes at the voxel coordinates
    from pyhpe.ops import gaussian_volumes
    want = gaussian_volumes(vox, None, (16, 16, 16), sigma=1.0).volumes
    torch.testing.assert_close(t["volumes_2"][:, :2], want[:, :2])
    # decoding a target gives its centre voxel int(v + 0.5), back in pixels and mm
    dec, scores = codec.decode(t["volumes_2"][:, :2])
    centre = codec.from_voxels(torch.floor(vox[:, :2] + 0.5))
    torch.testing.assert_close(dec, centre, atol=1e-2, rtol=0)
    assert torch.all(scores == 1)
    with pytest.raises(ValueError, match="depth spread"):
        VolumetricC2F((64, 64), (16, 16), (8, 16), sigma=2.0)


def test_encode_takes_depth_relative_to_the_root_from_keypoints_3d():
    """The image3d task passes crop-pixel (x, y) and camera-frame joints: z = Z - Z_root."""
    codec = VolumetricC2F((64, 64), (16, 16), (1, 4, 16), sigma=1.0, root_index=1)
    xy = torch.tensor([[[10.0, 22.0], [41.0, 33.0], [20.0, 20.0]]])
    P = torch.tensor([[[0.0, 0.0, 4700.0], [0.0, 0.0, 5000.0], [0.0, 0.0, 5600.0]]])
    a = codec.encode(xy, None, keypoints_3d=P)
    b = codec.encode(torch.tensor([[[10.0, 22.0, -300.0], [41.0, 33.0, 0.0],
                                    [20.0, 20.0, 600.0]]]))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="keypoints_3d"):
        codec.encode(xy, None, keypoints_3d=P[:, :2])
    # registered as 'volumetric'; the config round trips
    again = build_codec(**codec.to_config())
    assert type(again) is VolumetricC2F and again == codec and again.root_index == 1


def test_config_builds_and_checks(tmp_path):
    from pyhpe.engine.config import ConfigError
    from pyhpe.tasks import build_task
    task = build_task(_sample(tmp_path))
    tiny = build_model("volumetric", "tiny").codec
    assert task.codec.to_config() == dict(tiny.to_config(), root_index=0)
    assert task.codec.heatmap_size == (16, 16) and task.codec.res_z == (1, 4, 16)
    with pytest.raises(ConfigError, match="codec: .*depth spread"):
        build_task(_sample(tmp_path, "codec.sigma=3.0")).codec
    with pytest.raises(ConfigError, match="codec.name: model 'volumetric' uses the 'volumetric'"):
        build_task(_sample(tmp_path, "codec.name=mppe3d"))
    with pytest.raises(ConfigError, match="eval.root"):
        build_task(_sample(tmp_path, "eval.root=rootnet"))
    with pytest.raises(ConfigError, match="no config"):
        build_task(_sample(tmp_path, "model.config=huge")).codec


class _Oracle(torch.nn.Module):
    """Predicts what the batch's own targets say: ``(x, y)`` crop pixels and the depth
    relative to the root, as the volumetric model's ``predict`` returns them."""

    def __init__(self, root_index):
        super().__init__()
        self.root_index = root_index

    def predict(self, inputs):
        kp, P = inputs["oracle"]
        z = P[..., 2:] - P[:, self.root_index:self.root_index + 1, 2:]
        return torch.cat([kp, z], -1), torch.ones(kp.shape[:2])


def test_task_chain_back_projects_the_ground_truth(tmp_path):
    """The image3d task's chain for the volumetric model (crop pixels -> image pixels ->
    back-projection at the ground-truth root depth -> root-relative mm) gives the ground truth
    when fed the crops' own keypoints; the codec's targets decode within a voxel of them."""
    from pyhpe.tasks import build_task
    task = build_task(_sample(tmp_path))
    prepare = task.prepare

    def stash(batch, device):
        inputs, targets = prepare(batch, device)
        inputs["oracle"] = (batch["keypoints"].float(), batch["keypoints_3d"].float())
        decoded, _ = task.codec.decode(targets[f"volumes_{len(task.codec.res_z) - 1}"])
        exact = _Oracle(task.root_index).predict(inputs)[0]
        w = targets["keypoint_weights"] > 0
        err = (decoded - exact).abs()[w]
        voxel = torch.tensor([64 / 16, 64 / 16, 2000.0 / 16])
        assert torch.all(err <= 0.5 * voxel + 1e-3)
        return inputs, targets
    task.prepare = stash
    val = task.val_dataset()
    m = task.metrics(task.predict(_Oracle(task.root_index), val), val)
    # only the dataset's 2-D annotation vs its pinhole projection differs (distortion)
    assert m["MPJPE"] < 10.0 and "MPJPE_WalkDog" in m


def test_learns_h36m_sample_through_the_engine(tmp_path, one_torch_thread):
    """The sample config (tiny model, the Human3.6M sample crops of S1/S5/S7, 40 epochs)
    through the engine in the image3d task: the loss falls and the training frames' MPJPE
    after the paper's back-projection improves."""
    from pyhpe.tasks import build_task
    task = build_task(_sample(tmp_path))
    torch.manual_seed(task.config.train.seed)
    train = task.train_dataset()
    model0 = task.build_model()
    before = task.metrics(task.predict(model0, train), train)
    result = task.fit(log=lambda *a: None)
    model = task.build_model()
    model.load_state_dict(torch.load(os.path.join(str(tmp_path), "last.pth"),
                                     weights_only=True)["model"])
    after = task.metrics(task.predict(model, train), train)
    losses = [row["loss"] for row in result["loss_log"]]
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}, MPJPE {before['MPJPE']:.0f} -> "
          f"{after['MPJPE']:.0f} mm, held-out {result['metrics']['MPJPE']:.0f} mm")
    assert losses[-1] < 0.1 * losses[0]
    assert after["MPJPE"] < 0.7 * before["MPJPE"]
    assert set(after) >= {"MPJPE", "P-MPJPE", "MPJPE_Directions"}
    assert set(result["metrics"]) >= {"MPJPE", "P-MPJPE"}


def test_plain_torch_decoder_exports_to_onnx(tmp_path):
    """VolumetricDecoder (plain torch, for export) = the codec's decode, also run by ONNX
    Runtime after export with the model."""
    from pyhpe.codecs.volumetric import VolumetricDecoder
    torch.manual_seed(0)   # an initialisation independent of the tests run before
    model = build_model("volumetric", "tiny").eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 64, 64, generator=g)
    dec = VolumetricDecoder(model.codec)
    with torch.no_grad():
        final = model.head.final_outputs(model(x))
        torch.testing.assert_close(dec(final), model.codec.decode(final), atol=2e-3, rtol=1e-4)
        # the decode of targets (peaked volumes)
        kp = torch.tensor([[[20.0, 30.0, 100.0], [40.0, 12.0, -400.0]]])
        t = model.codec.encode(kp)["volumes_2"]
        torch.testing.assert_close(dec(t), model.codec.decode(t), atol=1e-3, rtol=1e-5)
    ort = pytest.importorskip("onnxruntime")

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.dec = model, dec

        def forward(self, inputs):
            return self.dec(self.model.head.final_outputs(self.model(inputs)))

    import warnings
    path = str(tmp_path / "volumetric.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the TorchScript-based exporter, as export_onnx
        torch.onnx.export(Wrapper().eval(), (x,), path, input_names=["input"],
                          output_names=["keypoints", "scores"], opset_version=17, dynamo=False)
        ref = Wrapper()(x)
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got[0]), ref[0], atol=1e-2, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(got[1]), ref[1], atol=1e-4, rtol=1e-3)


def test_encode_takes_2d_keypoints_at_the_root_depth():
    codec = build_model("volumetric", "tiny").codec
    kp = torch.tensor([[[20.0, 30.0], [40.0, 12.0]]])
    a = codec.encode(kp)
    b = codec.encode(torch.cat([kp, torch.zeros(1, 2, 1)], -1))
    assert all(torch.equal(a[k], b[k]) for k in a)
