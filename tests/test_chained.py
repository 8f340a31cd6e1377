"""Chained Predictions: the chain order, step-by-step dependence on earlier joints, the
softmax loss, the pinned paper size, the config file and learning through the top-down task."""
import json
import os

import pytest
import torch

from conftest import topdown_config
from pyhpe.codecs import MSRAHeatmap
from pyhpe.engine import Trainer
from pyhpe.models import MODELS, build_model
from pyhpe.models.chained import COCO17_ORDER, MPII16_ORDER, ChainedPredictor
from pyhpe.models.heads.chained import ChainedHead
from pyhpe.tasks import build_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = lambda *a, **k: None  # noqa: E731


def test_registered_and_output_shape():
    assert "chained" in MODELS
    torch.manual_seed(0)
    m = build_model("chained", "tiny").eval()
    assert isinstance(m.backbone, ChainedPredictor) and isinstance(m.head, ChainedHead)
    with torch.no_grad():
        assert m(torch.randn(2, 3, 64, 48)).shape == (2, 17, 16, 12)
    assert len(m.backbone.steps) == 17


def test_chain_orders_follow_the_kinematic_chain():
    assert sorted(COCO17_ORDER) == list(range(17)) and COCO17_ORDER[0] == 0
    assert COCO17_ORDER[5:8] == (6, 8, 10)          # right shoulder, elbow, wrist
    assert sorted(MPII16_ORDER) == list(range(16)) and MPII16_ORDER[0] == 9   # head top
    with pytest.raises(ValueError, match="permutation"):
        build_model("chained", "tiny", num_keypoints=3, order=(0, 1, 1))


def test_a_joint_depends_only_on_earlier_joints_of_the_chain():
    """Perturbing step t's output net changes joints t, t+1, ... (through the hidden state and
    the fed-back maps), never the joints before t."""
    torch.manual_seed(0)
    m = build_model("chained", "tiny", num_keypoints=5, order=(2, 0, 4, 1, 3)).eval()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        a = m(x)
        m.backbone.steps[2].branches[1].weight.normal_()
        b = m(x)
    changed = [not torch.equal(a[:, j], b[:, j]) for j in range(5)]
    # chain positions 0, 1 are joints 2, 0 (unchanged); positions 2, 3, 4: joints 4, 1, 3
    assert changed == [False, True, False, True, True]


def test_softmax_loss_is_cross_entropy_to_the_normalised_target():
    codec = MSRAHeatmap((48, 64), (12, 16), sigma=2.0)
    head = ChainedHead(codec, num_keypoints=3)
    kp = torch.tensor([[[10.0, 20.0], [30.0, 40.0], [5.0, 5.0]]])
    t = codec.encode(kp, torch.ones(1, 3))
    t = {k: torch.as_tensor(v) for k, v in t.items()}
    logits = torch.randn(1, 3, 16, 12)
    q = t["heatmaps"] / t["heatmaps"].sum((-2, -1), keepdim=True)
    ce = -(q.flatten(2) * torch.log_softmax(logits.flatten(2), -1)).sum(-1)
    w = t["keypoint_weights"].float()
    want = (ce * w).sum() / w.sum().clamp_min(1)
    assert torch.allclose(head.loss(logits, t)["loss_softmax"], want, atol=1e-5)
    # the ideal logits (log of the target distribution) minimise it and decode the keypoints
    ideal = q.clamp_min(1e-30).log()
    assert head.loss(ideal, t)["loss_softmax"] < head.loss(logits, t)["loss_softmax"]
    pk, ps = head.predict(ideal)
    assert torch.allclose(torch.as_tensor(pk)[0, :2], kp[0, :2], atol=2.5)
    assert (torch.as_tensor(ps)[0, :2] > 0.5).all()


def test_trains_end_to_end_through_the_chain():
    torch.manual_seed(0)
    m = build_model("chained", "tiny", num_keypoints=4)
    x = torch.randn(2, 3, 64, 48)
    codec = m.codec
    t = codec.encode(torch.rand(2, 4, 2) * 40 + 4, torch.ones(2, 4))
    t = {k: torch.as_tensor(v) for k, v in t.items()}
    losses = m(x, t)
    assert set(losses) == {"loss_softmax"} and torch.isfinite(losses["loss_softmax"])
    losses["loss_softmax"].backward()
    # the first step's output net gets gradient from later joints too (fed-back maps)
    assert m.backbone.steps[1].w_y.weight.grad.abs().sum() > 0
    assert m.backbone.embed[0].weight.grad.abs().sum() > 0
    assert m.backbone.resnet.stem[0].weight.grad.abs().sum() > 0


def test_hidden_update_is_the_papers_equation():
    """h_t = ReLU(BN(W^h_t * h_{t-1} + sum_{i<t} W^y_{i,t} * e(y_i))): one shared e, one
    W^y per pair (i, t) -- step t's W^y reads t embeddings; splitting its weight by input
    block gives the sum over the earlier joints."""
    torch.manual_seed(0)
    bb = build_model("chained", "tiny", num_keypoints=4).backbone.eval()
    E = bb.embed[0].out_channels
    assert [st.w_y.in_channels for st in bb.steps[1:]] == [E, 2 * E, 3 * E]
    step = bb.steps[3]
    h = torch.randn(1, 16, 8, 6)
    ys = [torch.rand(1, 1, 16, 12) for _ in range(3)]
    es = [bb.embed(y) for y in ys]
    with torch.no_grad():
        got = step.update(h, torch.cat(es, 1))
        w = step.w_y.weight
        pair = sum(torch.nn.functional.conv2d(e, w[:, i * E:(i + 1) * E]) for i, e in enumerate(es))
        want = torch.relu(step.norm(step.w_h(h) + pair))
    assert torch.allclose(got, want, atol=1e-5)


def test_codec_is_checked():
    with pytest.raises(ValueError, match="heatmap_size"):
        build_model("chained", "tiny", codec=MSRAHeatmap((48, 64), (7, 9)))


# The paper publishes no parameter count; this implementation's paper config (ResNet-50
# encoder, 256-channel hidden state, 17 untied steps, shared 64-channel e) is pinned.
@pytest.mark.parametrize("k,millions", [(17, 49.145), (16, 48.029)])
def test_paper_param_count_pinned(k, millions):
    with torch.device("meta"):
        m = build_model("chained", "paper", num_keypoints=k)
    assert sum(p.numel() for p in m.parameters()) / 1e6 == pytest.approx(millions, abs=0.001)


def test_config_file_builds():
    cfg = json.load(open(os.path.join(ROOT, "configs", "topdown_chained_synthetic.json")))
    assert build_task(cfg).build_model().backbone.__class__ is ChainedPredictor


def _topdown(out_dir, steps, lr):
    return topdown_config(out_dir, model={"name": "chained", "config": "tiny"}, steps=steps,
                          lr=lr)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learns(tmp_path, seed):
    torch.set_num_threads(1)
    cfg = _topdown(tmp_path, 120, 4e-3)
    cfg["train"]["seed"] = seed
    task = build_task(cfg)
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    hist = [h for h in result["history"] if "loss" in h]
    print("chained", seed, before, after, hist[0]["loss"], hist[-1]["loss"])
    assert after > before and after >= 0.3, (before, after)
    assert hist[-1]["loss"] < hist[0]["loss"]
