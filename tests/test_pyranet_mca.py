"""PyraNet (Pyramid Residual Modules) and Multi-Context Attention: shapes, variants, the
parameter counts, the multi-branch initialisation, the attention and learning through the
top-down task."""
import json
import os

import pytest
import torch

from conftest import topdown_config
from pyhpe.engine import Trainer
from pyhpe.models import MODELS, build_model
from pyhpe.models.mca import HRU, CRFAttention, MultiContextAttention, Residual as McaResidual, _AttHourglass
from pyhpe.models.pyranet import PRM, PyraNet, Residual, _ratios, multi_branch_init
from pyhpe.tasks import build_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = lambda *a, **k: None  # noqa: E731


def _n(m):
    return sum(p.numel() for p in m.parameters())


def test_pyranet_registered_and_stack_outputs():
    assert "pyranet" in MODELS
    torch.manual_seed(0)
    model = build_model("pyranet", "tiny", num_keypoints=17)
    outs = model.backbone(torch.randn(2, 3, 64, 48))
    assert [tuple(o.shape) for o in outs] == [(2, 17, 16, 12)] * 2
    model.eval()
    with torch.no_grad():
        a = model.backbone(torch.randn(1, 3, 64, 48))[-1]
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("variant", "ABCD")
def test_prm_variants(variant):
    torch.manual_seed(0)
    prm = PRM(8, 16, variant, base_width=2, cardinality=3)
    x = torch.randn(2, 8, 11, 9)
    assert prm(x).shape == (2, 16, 11, 9)
    prm.eval()
    with torch.no_grad():  # evaluation is deterministic (no random pooling regions)
        assert torch.equal(prm(x), prm(x))
    assert len(prm.inputs) == (3 if variant == "A" else 1)


def _conv(cin, cout, k=1):
    return cin * cout * k * k + cout  # Torch convolutions carry a bias


def test_prm_matches_official_layers():
    """PRM-B(256, 256, baseWidth 9, cardinality 4) layer by layer as models/layers/PRM.lua
    builds it: main 1x1+3x3, pyramid 1x1 -> 4 x 3x3 -> 1x1, output 1x1, BNs, identity skip."""
    d = 256 // 9
    expected = (2 * 256 + _conv(256, 128) + 2 * 128 + _conv(128, 128, 3)      # main branch
                + 2 * 256 + _conv(256, d) + 2 * d + 4 * _conv(d, d, 3)        # pyramid input, scales
                + 2 * d + _conv(d, 128) + 2 * 128 + _conv(128, 256))          # pyramid out, output
    assert _n(PRM(256, 256, "B", 9, 4)) == expected
    # no_preact (the stem's first PRM) drops the two input BNs; the skip is BN-ReLU-conv
    assert _n(PRM(64, 128, "B", 9, 4, preact=False)) == _n(PRM(64, 128, "B", 9, 4)) - 4 * 64
    assert isinstance(PRM(256, 256, use_conv=True).skip, torch.nn.Sequential)
    # the hourglass: PRMs at depth >= 2 on the skip branch, >= 3 on the down branch, the
    # residual after the inner hourglass with a convolutional skip
    bb = PyraNet(16, num_stacks=1, channels=256, depth=4)
    hg = bb.hgs[0]
    assert isinstance(hg.up1[0], PRM) and isinstance(hg.low1[0], PRM) and hg.low3[0].skip.__class__ is torch.nn.Sequential
    deep = hg.low2.low2  # depth 2: PRM skip branch, plain residuals below
    assert isinstance(deep.up1[0], PRM) and isinstance(deep.low1[0], Residual)
    assert isinstance(deep.low2.up1[0], Residual)


def test_pyramid_ratios_and_init():
    assert _ratios(4) == pytest.approx([2 ** -0.25, 2 ** -0.5, 2 ** -0.75, 0.5])
    torch.manual_seed(0)
    prm = PRM(64, 128, "B", base_width=2, cardinality=4)
    multi_branch_init(prm)
    # the 1x1 convolution taking the sum of the 4 scales (official nBranchIn = C):
    # Var = 2 / (4 * fan_in)
    w = prm.pyr_out[2].weight
    assert w.std().item() == pytest.approx((2 / (4 * 64)) ** 0.5, rel=0.1)  # D = 128 // 2
    w = prm.main[2].weight  # a single input branch: MSRA
    assert w.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.1)
    assert PRM(64, 128, "C", base_width=2, cardinality=4).pyr_out[2].branches_in == 1


# The paper's 8-stack PyraNet (PRM-B): 28.1M parameters (Yang et al. 2017, Sec. 5, the
# model-size comparison with the 23.7M 8-stack hourglass); the official experiment's
# widths (baseWidth 9, cardinality 4, 256 features, 16 MPII joints) give 28.13M.
@pytest.mark.parametrize("name,config,paper_m", [("pyranet", "paper", 28.1)])
def test_paper_param_counts(name, config, paper_m):
    n = _n(build_model(name, config, num_keypoints=16)) / 1e6
    assert abs(n - paper_m) / paper_m < 0.01, n


# No published parameter count for the multi-context attention network: the count of the
# released 8-stack network (hg-attention.lua, 16 joints) is pinned against accidental
# changes; the multi-resolution attention adds one 3x3 unary and one 1x1 pairwise
# convolution per extra resolution and stack.
def test_mca_param_count_pinned():
    n = _n(build_model("mca", "paper", num_keypoints=16))
    assert n / 1e6 == pytest.approx(58.303, abs=0.001), n
    extra = _n(build_model("mca", "paper_mr", num_keypoints=16)) - n
    assert extra == 8 * 3 * (_conv(256, 1, 3) + _conv(1, 1, 1))


@pytest.mark.parametrize("name,cls", [("pyranet", PyraNet), ("mca", MultiContextAttention)])
def test_config_files_build(name, cls):
    cfg = json.load(open(os.path.join(ROOT, "configs", f"topdown_{name}_synthetic.json")))
    assert build_task(cfg).build_model().backbone.__class__ is cls


def test_mca_stacks_attention_and_hru():
    torch.manual_seed(0)
    model = build_model("mca", "tiny", num_keypoints=5, num_stacks=4)
    bb = model.backbone
    assert bb.num_holistic == 2 and isinstance(bb.outs[1], torch.nn.Conv2d) and len(bb.outs[2]) == 5
    assert bb.lin2[3][0].out_channels == 32 and bb.lin2[2][0].out_channels == 16  # last stack: 2C
    outs = bb(torch.randn(2, 3, 64, 48))
    assert [tuple(o.shape) for o in outs] == [(2, 5, 16, 12)] * 4
    hru = HRU(8, 8)
    assert hru(torch.randn(1, 8, 7, 5)).shape == (1, 8, 7, 5)
    # side branch: BN, ReLU, pool, 3x3 cin->cout, BN, ReLU, 3x3 (ResidualPool.lua)
    assert _n(hru) - _n(McaResidual(8, 8)) == 2 * 8 + _conv(8, 8, 3) + 2 * 8 + _conv(8, 8, 3)
    # the depth-4 hourglass's skip branch: a residual then two HRUs (repResidual(3))
    up = _AttHourglass(4, 8, 1).up1
    assert [type(m) for m in up] == [McaResidual, HRU, HRU]
    att = CRFAttention(8, iters=3, kernel=3)
    f = torch.randn(2, 8, 8, 6)
    out, q = att(f)
    assert q.shape == (2, 1, 8, 6) and (q > 0).all() and (q < 1).all()
    assert torch.allclose(out, f * q)
    # mean field as AttentionIter.lua: Q1 = sig(U + W*U), Qt = sig(U + W*Q_{t-1})
    u = att.unary(f)
    q_ref = torch.sigmoid(u + att.pairwise(u))
    for _ in range(2):
        q_ref = torch.sigmoid(u + att.pairwise(q_ref))
    assert torch.allclose(q, q_ref, atol=1e-6)
    # multi-resolution attention: the average of the full-resolution map and the upsampled
    # maps of the decoder features
    d = torch.randn(2, 16, 8, 6)
    q_mr = bb.holistic_map(0, torch.randn(2, 16, 16, 12), [d])
    assert q_mr.shape == (2, 1, 16, 12) and (q_mr > 0).all() and (q_mr < 1).all()


def _topdown(out_dir, model, steps, lr):
    return topdown_config(out_dir, model=model, steps=steps, lr=lr)


# Measured held-out AP after 120 steps on 64 synthetic images (train seeds 0-2; untrained
# 0): PyraNet 0.47 / 0.51 / 0.47, MCA 0.65 / 0.64 / 0.68.
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,steps,lr,floor", [("pyranet", 120, 4e-3, 0.2), ("mca", 120, 4e-3, 0.2)])
def test_learns(tmp_path, name, steps, lr, floor, seed):
    torch.set_num_threads(1)
    cfg = _topdown(tmp_path, {"name": name, "config": "tiny"}, steps, lr)
    cfg["train"]["seed"] = seed
    task = build_task(cfg)
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    hist = [h for h in result["history"] if "loss" in h]
    print(name, before, after, hist[0]["loss"] if hist else None, hist[-1]["loss"] if hist else None)
    assert after > before and after >= floor, (before, after)
    assert hist[-1]["loss"] < hist[0]["loss"]
