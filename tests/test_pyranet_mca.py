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
from pyhpe.models.mca import HRU, CRFAttention, MultiContextAttention
from pyhpe.models.pyranet import PRM, PyraNet, _ratios, multi_branch_init
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


def test_pyramid_ratios_and_init():
    assert _ratios(4) == pytest.approx([2 ** -0.25, 2 ** -0.5, 2 ** -0.75, 0.5])
    torch.manual_seed(0)
    prm = PRM(64, 64, "B", base_width=4, cardinality=4)
    multi_branch_init(prm)
    w = prm.scales[0].conv.weight  # summed with 3 other scales: Var = 2 / (4 * fan_in)
    assert w.std().item() == pytest.approx((2 / (4 * 16 * 9)) ** 0.5, rel=0.1)
    w = prm.inputs[0][2].weight  # a single branch: MSRA
    assert w.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.1)


# The paper's 8-stack PyraNet (PRM-B): 28.1M parameters (Yang et al. 2017, Table 1 / Sec. 5).
@pytest.mark.parametrize("name,config,paper_m", [("pyranet", "paper", 28.1)])
def test_paper_param_counts(name, config, paper_m):
    n = _n(build_model(name, config, num_keypoints=16)) / 1e6
    assert abs(n - paper_m) / paper_m < 0.02, n


# No published parameter count for the 8-stack multi-context attention network: the count
# of this implementation (16 joints) is pinned against accidental changes.
def test_mca_param_count_pinned():
    n = _n(build_model("mca", "paper", num_keypoints=16)) / 1e6
    assert n == pytest.approx(38.765, abs=0.01), n


@pytest.mark.parametrize("name,cls", [("pyranet", PyraNet), ("mca", MultiContextAttention)])
def test_config_files_build(name, cls):
    cfg = json.load(open(os.path.join(ROOT, "configs", f"topdown_{name}_synthetic.json")))
    assert build_task(cfg).build_model().backbone.__class__ is cls


def test_mca_stacks_attention_and_hru():
    torch.manual_seed(0)
    model = build_model("mca", "tiny", num_keypoints=5, num_stacks=4)
    bb = model.backbone
    assert len(bb.holistic) == 2 and len(bb.parts) == 2 and len(bb.parts[0]) == 5
    outs = bb(torch.randn(2, 3, 64, 48))
    assert [tuple(o.shape) for o in outs] == [(2, 5, 16, 12)] * 4
    hru = HRU(8, 8)
    assert hru(torch.randn(1, 8, 7, 5)).shape == (1, 8, 7, 5)
    att = CRFAttention(8, iters=3, kernel=3, resolutions=2)
    f, half = torch.randn(2, 8, 8, 6), torch.randn(2, 8, 4, 3)
    out, q = att([f, half])
    assert q.shape == (2, 1, 8, 6) and (q > 0).all() and (q < 1).all()
    assert torch.allclose(out, f * q)
    # mean-field: with a zero pairwise kernel the refined map is the unary's sigmoid
    nn_init = torch.nn.init
    att.eval()
    nn_init.zeros_(att.pairwise.weight), nn_init.zeros_(att.pairwise.bias)
    u = att.unary[0](f) + torch.nn.functional.interpolate(att.unary[1](half), size=(8, 6),
                                                          mode="bilinear", align_corners=False)
    assert torch.allclose(att.attention([f, half]), torch.sigmoid(u), atol=1e-6)


def _topdown(out_dir, model, steps, lr):
    return topdown_config(out_dir, model=model, steps=steps, lr=lr)


@pytest.mark.parametrize("name,steps,lr,floor", [("pyranet", 120, 4e-3, 0.2), ("mca", 120, 4e-3, 0.25)])
def test_learns(tmp_path, name, steps, lr, floor):
    torch.set_num_threads(1)
    task = build_task(_topdown(tmp_path, {"name": name, "config": "tiny"}, steps, lr))
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    hist = [h for h in result["history"] if "loss" in h]
    print(name, before, after, hist[0]["loss"] if hist else None, hist[-1]["loss"] if hist else None)
    assert after > before and after >= floor, (before, after)
    assert hist[-1]["loss"] < hist[0]["loss"]
