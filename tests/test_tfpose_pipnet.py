"""TFPose (transformer keypoint queries regressing normalised coordinates, every decoder layer
supervised) and PIPNet (pixel-in-pixel: grid scores, in-cell offsets, neighbour votes): the
codec's index arithmetic and decode, the heads' outputs and losses, configs, parameter counts
and learning through the top-down task."""
import json
import os

import pytest
import torch

from pyhpe.codecs import PIPNetLabel, RegressionLabel, build_codec
from pyhpe.codecs.pipnet import nearest_neighbors
from pyhpe.engine import Trainer
from pyhpe.models import MODELS, build_model
from pyhpe.models.heads.pipnet import PIPNetOutputs
from pyhpe.models.heads.tfpose import TFPoseOutputs
from pyhpe.tasks import build_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = lambda *a: None  # noqa: E731


def _kp(b=3, k=17, size=(48, 64), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, k, 2, generator=g) * torch.tensor([size[0] - 1.0, size[1] - 1.0])


# ---------------------------------------------------------------------------- PIPNet codec
def test_pipnet_codec_targets_are_index_arithmetic():
    c = PIPNetLabel((48, 64), (6, 8), num_nb=3)
    kp = torch.tensor([[[0.0, 0.0], [47.0, 63.0], [12.5, 20.0]] + [[5.0, 5.0]] * 14])
    vis = torch.ones(1, 17)
    vis[0, 3] = 0
    t = c.encode(kp, vis)
    # stride 8: (12.5, 20) -> cell (1, 2), offset (0.5625, 0.5); index row * w + col
    assert t["cell_index"][0, :3].tolist() == [0, 7 * 6 + 5, 2 * 6 + 1]
    assert torch.allclose(t["offsets"][0, 2], torch.tensor([0.5625, 0.5]))
    assert torch.allclose(t["offsets"][0, 1], torch.tensor([0.875, 0.875]))
    assert t["heatmaps"].shape == (1, 17, 8, 6) and t["heatmaps"].sum() == 16
    assert t["heatmaps"][0, 2, 2, 1] == 1 and t["heatmaps"][0, 3].sum() == 0
    # neighbour offsets: neighbour position minus own cell, grid units
    nb = c.neighbors
    i, j = 2, int(nb[2, 0])
    cell = torch.tensor([1.0, 2.0])
    assert torch.allclose(t["nb_offsets"][0, i, 0], kp[0, j] / 8 - cell)
    assert t["keypoint_weights"][0, 3] == 0
    assert (t["nb_weights"][0, 3] == 0).all() and (t["nb_weights"][0][nb == 3] == 0).all()
    # every neighbour list excludes itself; nearest first
    assert nb.shape == (17, 3) and not (nb == torch.arange(17)[:, None]).any()
    assert nearest_neighbors([[0, 0], [1, 0], [3, 0]], 2).tolist() == [[1, 2], [0, 2], [1, 0]]


def _perfect_outputs(c, t, b, k):
    gw, gh = c.heatmap_size

    def maps(v, n):
        m = torch.zeros(b, k, n, gh * gw)
        m.scatter_(3, t["cell_index"].view(b, k, 1, 1).expand(b, k, n, 1), v.reshape(b, k, n, 1))
        return m.view(b, k * n, gh, gw)
    return PIPNetOutputs(t["heatmaps"], maps(t["offsets"][..., 0], 1), maps(t["offsets"][..., 1], 1),
                         maps(t["nb_offsets"][..., 0], c.num_nb), maps(t["nb_offsets"][..., 1], c.num_nb))


def test_pipnet_decode_round_trips_and_votes():
    c = build_codec("pipnet", input_size=[48, 64], heatmap_size=[6, 8], num_nb=4)
    assert build_codec(**c.to_config()) == c
    kp = _kp()
    t = c.encode(kp)
    out = _perfect_outputs(c, t, 3, 17)
    coords, scores = c.decode(out)
    assert torch.allclose(coords, kp, atol=1e-4) and torch.allclose(scores, torch.ones(3, 17))
    # a neighbour vote moves a keypoint: it is the mean of its own estimate and the votes
    nb = out.nb_x.clone().view(3, 17, 4, 8, 6)
    nb[:, 0, 0] += 1.0                       # keypoint 0 votes its first neighbour 1 cell right
    j = int(c.neighbors[0, 0])
    votes = 1 + int((c.neighbors == j).sum())
    coords2, _ = c.decode(out._replace(nb_x=nb.view(3, 68, 8, 6)))
    assert torch.allclose(coords2[:, j, 0] - kp[:, j, 0], torch.full((3,), 8.0 / votes), atol=1e-4)
    with pytest.raises(ValueError, match="keypoints"):
        c.encode(_kp(k=14))
    custom = PIPNetLabel((48, 64), (6, 8), neighbors=[[1], [0], [1]])
    assert build_codec(**custom.to_config()) == custom and custom.num_nb == 1
    with pytest.raises(ValueError, match="other keypoints"):
        PIPNetLabel(neighbors=[[0], [0]])


# ---------------------------------------------------------------------------- heads
def test_tfpose_head_every_layer_and_aux_heatmaps():
    m = build_model("tfpose", "tiny", dec_layers=3, aux_heatmap_weight=1.0)
    assert isinstance(m.codec, RegressionLabel)
    x = torch.randn(2, 3, 64, 48)
    kp = _kp(2)
    t = m.codec.encode(kp)
    m.train()
    out = m(x)
    assert isinstance(out, TFPoseOutputs) and out.coords.shape == (3, 2, 17, 2)
    assert out.heatmaps.shape == (2, 17, 4, 3)
    assert ((out.coords >= 0) & (out.coords <= 1)).all()
    losses = m(x, t)
    assert set(losses) == {"loss_kpt", "loss_kpt_d0", "loss_kpt_d1", "loss_heatmap"}
    sum(losses.values()).backward()
    assert m.head.query_pos.weight.grad.abs().sum() > 0
    m.eval()
    k, s = m.predict(x, flip_test=True, flip_index=list(range(17)))
    assert k.shape == (2, 17, 2) and s.shape == (2, 17)
    k1, _ = m.head.predict(m(x))
    assert torch.allclose(k1, m(x).coords[-1] * torch.tensor([48.0, 64.0]))
    # without the auxiliary branch the head returns the (L, B, K, 2) coordinates
    plain = build_model("tfpose", "tiny").eval()
    assert plain(x).shape == (2, 2, 17, 2) and set(plain(x, t)) == {"loss_kpt", "loss_kpt_d0"}
    a = build_model("tfpose", "tiny", refine=False)     # independent layers start at the centre
    assert a(x).shape == (2, 2, 17, 2) and torch.allclose(a(x)[0], torch.full((2, 17, 2), 0.5))


def test_pipnet_head_loss_is_zero_at_the_targets():
    m = build_model("pipnet", "tiny")
    c = m.codec
    assert c.heatmap_size == (6, 8) and c.num_nb == 4
    x = torch.randn(2, 3, 64, 48)
    out = m(x)
    assert out.scores.shape == (2, 17, 8, 6) and out.nb_x.shape == (2, 68, 8, 6)
    t = c.encode(_kp(2))
    perfect = _perfect_outputs(c, t, 2, 17)
    assert all(float(v) < 1e-6 for v in m.head.loss(perfect, t).values())
    losses = m(x, t)
    assert set(losses) == {"loss_cls", "loss_offset", "loss_nb"}
    sum(losses.values()).backward()
    m.eval()
    k, s = m.predict(x, flip_test=True, flip_index=list(range(17)))
    assert k.shape == (2, 17, 2) and ((s >= 0) & (s <= 1)).all()
    with pytest.raises(TypeError, match="PIPNetLabel"):
        build_model("pipnet", "tiny", codec=RegressionLabel((48, 64)))
    b = build_model("pipnet", "tiny", cls_loss="bce")
    assert b.codec.score == "sigmoid"


# ---------------------------------------------------------------------------- paper configs
# Parameter counts of the paper configs. TFPose: ResNet-50 (23.51M) + a 6+6-layer width-256
# transformer (FFN 1024) + the coordinate MLP; the paper publishes no parameter count, so the
# figure pins the structure. PIPNet: the official Pip_resnet18 is ResNet-18 without its fc
# (11,176,512) + 1x1 convs 512 -> K (x3) and 512 -> K*C (x2): exact for K = 17, C = 4.
def test_paper_parameter_counts():
    def count(m):
        return sum(p.numel() for p in m.parameters())
    assert set(MODELS) >= {"tfpose", "pipnet"}
    k, c = 17, 4
    assert count(build_model("pipnet", "paper")) == 11176512 + 3 * (512 * k + k) + 2 * (512 * k * c + k * c)
    n = count(build_model("tfpose", "paper"))
    assert n == 35229252, n


# ---------------------------------------------------------------------------- configs, learning
@pytest.mark.parametrize("name", ["topdown_tfpose_synthetic", "topdown_pipnet_synthetic"])
def test_configs_build(name):
    task = build_task(os.path.join(ROOT, "configs", name + ".json"))
    cfg = json.load(open(os.path.join(ROOT, "configs", name + ".json")))
    assert task.codec.to_config()["name"] == cfg["codec"]["name"]
    model = task.build_model()
    assert model.codec == task.codec


def _topdown(out_dir, codec, model, steps, lr):
    return {"task": "topdown", "input_size": [48, 64], "keypoints": "coco17", "model": model,
            "codec": codec,
            "data": {"type": "synthetic", "num_images": 64, "val_images": 8, "image_size": 96,
                     "seed": 0},
            "train": {"epochs": 1000, "max_steps": steps, "batch_size": 16, "lr": lr,
                      "warmup_steps": 10, "eval_every": 0, "progress": False, "seed": 0,
                      "log_every": 5, "device": "cpu", "out_dir": str(out_dir)}}


# (codec, model, steps, lr, AP floor) on 64 images; measured AP after training, train seeds
# 0-2: TFPose 0.25-0.37, PIPNet 0.47-0.58 (loss 0.50-0.65 -> 0.20 and 1.68 -> 0.73);
# untrained: 0.
LEARNERS = {
    "tfpose": ({"name": "regression"}, {"name": "tfpose", "config": "tiny"}, 120, 4e-3, 0.08),
    "pipnet": ({"name": "pipnet", "heatmap_size": [6, 8]}, {"name": "pipnet", "config": "tiny"},
               120, 4e-3, 0.15),
}


@pytest.mark.parametrize("kind", sorted(LEARNERS))
def test_learns_through_the_topdown_task(tmp_path, kind):
    codec, model, steps, lr, floor = LEARNERS[kind]
    task = build_task(_topdown(tmp_path, codec, model, steps, lr))
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    assert after > before and after >= floor, (before, after)
    curve = [p["loss"] for p in result["loss_log"]]
    assert sum(curve[-3:]) < 0.8 * sum(curve[:3]), curve


def test_pipnet_decode_is_onnx_exportable(tmp_path):
    """The decode is plain torch (gathers and a constant vote matrix): ONNX Runtime reproduces
    it (pyhpe.apis.export can use it as a CodecDecoder)."""
    ort = pytest.importorskip("onnxruntime")
    from pyhpe.apis.export import CodecDecoder
    c = PIPNetLabel((48, 64), (6, 8), num_nb=4)
    g = torch.Generator().manual_seed(3)
    outs = tuple(torch.randn(2, n, 8, 6, generator=g) for n in (17, 17, 17, 68, 68))

    class Dec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dec = CodecDecoder(c)

        def forward(self, *a):
            return tuple(self.dec(PIPNetOutputs(*a)))

    names = [f"in{i}" for i in range(5)]
    torch.onnx.export(Dec(), outs, str(tmp_path / "d.onnx"), input_names=names,
                      opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: o.numpy() for n, o in zip(names, outs)})
    ref = c.decode(outs)
    assert torch.allclose(torch.from_numpy(got[0]), ref[0], atol=1e-4)
    assert torch.allclose(torch.from_numpy(got[1]), ref[1], atol=1e-6)
