"""CPN (GlobalNet + RefineNet with OHKM) and MSPN: the multi-level codec, the OHKM loss, the
paper configs' parameter counts and learning through the top-down task."""
import os

import pytest
import torch

from pyhpe.codecs import MSRAHeatmap, build_codec
from pyhpe.codecs.multilevel import CPN_SIGMAS, MultiLevelHeatmap, sigma_from_kernel
from pyhpe.engine import Trainer
from pyhpe.models import build_model
from pyhpe.models.heads.multistage import ohkm_mse_loss
from pyhpe.tasks import build_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = lambda *a: None  # noqa: E731


def test_multilevel_codec_levels_match_msra():
    assert [round(sigma_from_kernel(k), 4) for k in (15, 11, 9, 7)] == list(CPN_SIGMAS)
    codec = build_codec("multilevel", input_size=[48, 64], heatmap_size=[12, 16], sigmas=[2.0, 1.0])
    assert build_codec(**codec.to_config()) == codec
    kp = torch.tensor([[[10.0, 20.0], [30.0, 50.0]]])
    vis = torch.tensor([[1.0, 0.0]])
    t = codec.encode(kp, vis)
    assert t["heatmaps"].shape == (1, 2, 2, 16, 12) and t["keypoint_weights"].tolist() == [[1, 0]]
    for lvl, s in enumerate([2.0, 1.0]):
        ref = MSRAHeatmap((48, 64), (12, 16), s).encode(kp, vis)["heatmaps"]
        assert torch.equal(t["heatmaps"][:, lvl], ref)
    xy, _ = codec.decode(t["heatmaps"][:, -1])
    assert (xy[0, 0] - kp[0, 0]).abs().max() < 2.5


def test_mspn_coarse_to_fine_levels():
    """Unit j of every stage but the last uses target level j, the last stage level j + 1;
    the finest unit of each stage is OHKM, the others L2 weighted 1/4."""
    head = build_model("mspn", "tiny").head
    assert head.codec.num_levels == 5
    assert head.levels == [0, 1, 2, 3, 1, 2, 3, 4]
    assert head.ohkm == [False, False, False, True] * 2
    assert head.loss_weights == [0.25, 0.25, 0.25, 1.0] * 2
    cpn = build_model("cpn", "tiny").head
    assert cpn.levels == [0, 1, 2, 3, 3] and cpn.ohkm == [False] * 4 + [True]
    assert cpn.loss_weights == [0.125] * 4 + [1.0]
    # tf-cpn as released zips the fine-to-coarse GlobalNet outputs with the kernels 15..7
    released = build_model("cpn", "tiny", global_targets="released").head
    assert released.levels == [3, 2, 1, 0, 3]


def test_cpn_official_layout_and_targets():
    """tf-cpn's network.py: GlobalNet laterals conv-BN-ReLU, the top-down merge a biased 1x1
    conv without BN, predictors conv1x1-BN-ReLU + conv3x3-BN; RefineNet 3/2/1/0 bottlenecks
    (256 out, 128 mid, identity skips) on res5/4/3/2, a projecting final bottleneck on the
    1024-channel concatenation; targets: kernels 15/11/9/7 at 256x192, 23/17/13/9 at 384x288."""
    from pyhpe.models.cpn import RefineBottleneck
    m = build_model("cpn", "paper")
    g, r = m.backbone.global_net, m.backbone.refine_net
    assert [len(c) for c in r.cascades] == [3, 2, 1, 0]
    assert all(isinstance(b.skip, torch.nn.Identity) for c in r.cascades for b in c)
    assert isinstance(r.final[0], RefineBottleneck) and r.final[0].body[0][0].in_channels == 1024
    assert not isinstance(r.final[0].skip, torch.nn.Identity)
    assert all(u.bias is not None for u in g.ups) and len(g.ups) == 3
    assert isinstance(g.predicts[0][1][1], torch.nn.BatchNorm2d)
    assert m.codec.sigmas == pytest.approx([sigma_from_kernel(k) for k in (15, 11, 9, 7)], abs=1e-4)
    m384 = build_model("cpn", "paper_384")
    assert m384.codec.sigmas == pytest.approx([sigma_from_kernel(k) for k in (23, 17, 13, 9)], abs=1e-4)
    assert tuple(m384.codec.heatmap_size) == (72, 96)
    out = m384.backbone(torch.randn(1, 3, 384, 288))
    assert len(out) == 5 and all(o.shape == (1, 17, 96, 72) for o in out)


def test_cpn_loss_matches_tf_cpn_formula():
    """The head's loss against tf-cpn's, written out: GlobalNet sum over levels of
    mean((out - label)^2) / L, halved; RefineNet per-keypoint mean over H, W masked by
    visibility, top 8 summed / 8, mean over the batch (all keypoints v = 2, where the
    tf-cpn GlobalNet label mask keeps every target)."""
    torch.manual_seed(0)
    model = build_model("cpn", "tiny")
    x = torch.randn(3, 3, 64, 48)
    t = model.codec.encode(torch.rand(3, 17, 2) * 40, torch.ones(3, 17))
    outs = model.backbone(x)
    losses = model.head.loss(outs, t)
    hm = t["heatmaps"]
    glob = sum(((o - hm[:, i]) ** 2).mean() for i, o in enumerate(outs[:4])) / 4 / 2
    per = ((outs[4] - hm[:, 3]) ** 2).mean((2, 3))
    refine = per.topk(8, dim=1).values.sum(1).div(8).mean()
    assert torch.allclose(losses["loss_heatmap"], glob, rtol=1e-5)
    assert torch.allclose(losses["loss_ohkm"], refine, rtol=1e-5)


def test_ohkm_keeps_the_hardest_keypoints():
    pred = torch.zeros(1, 4, 2, 2)
    target = torch.zeros(1, 4, 2, 2)
    target[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])   # per-keypoint loss t^2 / 4
    per = torch.tensor([1.0, 4.0, 9.0, 16.0]) / 4
    assert torch.isclose(ohkm_mse_loss(pred, target, None, topk=2), (per[2] + per[3]) / 2)
    w = torch.tensor([[1.0, 1.0, 1.0, 0.0]])                  # an invisible keypoint costs 0
    assert torch.isclose(ohkm_mse_loss(pred, target, w, topk=2), (per[1] + per[2]) / 2)


# paper configs: (model, config, parameters (M), reference). CPN-50 at 256x192: 27.0M in the
# HRNet paper's COCO table (Sun et al. 2019, Table 1); the CPN paper gives no count.
# The MSPN paper gives no count; mmpose's model-complexity table (docs/en/
# inference_speed_summary.md, mmpose 0.20, 256x192, K=17) lists MSPN-50 25.11M, 2xMSPN-50
# 56.8M, 3xMSPN-50 88.49M, 4xMSPN-50 120.18M.
# The count does not depend on the input size: CPN-50 at 384x288 (tf-cpn
# models/COCO.res50.384x288.CPN) has the same 27.0M.
PAPER = [("cpn", "paper", 27.0, 0.05), ("cpn", "paper_384", 27.0, 0.05), ("mspn", "mspn50", 25.11, 0.01),
         ("mspn", "paper", 56.80, 0.01), ("mspn", "3xmspn50", 88.49, 0.01),
         ("mspn", "4xmspn50", 120.18, 0.01)]


@pytest.mark.parametrize("name,config,millions,tol", PAPER, ids=[f"{p[0]}-{p[1]}" for p in PAPER])
def test_paper_parameter_counts(name, config, millions, tol):
    model = build_model(name, config)
    n = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(n - millions) <= tol, n


@pytest.mark.parametrize("name,outputs", [("cpn", 5), ("mspn", 8)])
def test_tiny_forward_loss_and_predict(name, outputs):
    model = build_model(name, "tiny")
    x = torch.randn(2, 3, 64, 48)
    outs = model(x)
    assert len(outs) == outputs and all(o.shape == (2, 17, 16, 12) for o in outs)
    t = model.codec.encode(torch.rand(2, 17, 2) * 40, torch.ones(2, 17))
    losses = model(x, t)
    assert set(losses) == {"loss_heatmap", "loss_ohkm"}
    sum(losses.values()).backward()
    model.eval()
    kp, sc = model.predict(x, flip_test=True, flip_index=list(range(17)))
    assert kp.shape == (2, 17, 2) and sc.shape == (2, 17)
    with pytest.raises(ValueError, match="heatmap_size"):
        build_model(name, "tiny", codec=MultiLevelHeatmap((48, 64), (24, 32)))


def _topdown(out_dir, model, codec, steps, lr):
    return {"task": "topdown", "input_size": [48, 64], "keypoints": "coco17",
            "model": model, "codec": codec,
            "data": {"type": "synthetic", "num_images": 64, "val_images": 8, "image_size": 96,
                     "seed": 0},
            "train": {"epochs": 1000, "max_steps": steps, "batch_size": 16, "lr": lr,
                      "warmup_steps": 10, "eval_every": 0, "progress": False, "seed": 0,
                      "log_every": 5, "device": "cpu", "out_dir": str(out_dir)}}


MULTI = {"name": "multilevel", "heatmap_size": [12, 16], "sigmas": [2.0, 1.7, 1.4, 1.1],
         "decode": "dark", "blur_kernel_size": 5}
# (model, codec sigmas, steps, lr, AP floor) on 64 images; measured held-out AP after
# training (train seeds 0-2): CPN 0.30 / 0.26 / 0.15, MSPN 0.52 / 0.47 / 0.46; untrained 0.
LEARNERS = {"cpn": ({"name": "cpn", "config": "tiny"}, [2.0, 1.7, 1.4, 1.1], 120, 4e-3, 0.05),
            "mspn": ({"name": "mspn", "config": "tiny"}, [2.0, 1.7, 1.4, 1.2, 1.0], 120, 4e-3, 0.08)}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", sorted(LEARNERS))
def test_learns_through_the_topdown_task(tmp_path, kind, seed):
    model, sigmas, steps, lr, floor = LEARNERS[kind]
    cfg = _topdown(tmp_path, model, dict(MULTI, sigmas=sigmas), steps, lr)
    cfg["train"]["seed"] = seed
    task = build_task(cfg)
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    curve = [p["loss"] for p in result["loss_log"]]
    assert sum(curve[-3:]) < 0.8 * sum(curve[:3]), curve
    print(kind, seed, before, after, curve[0], curve[-1])
    assert after > before and after >= floor, (before, after)
    assert {"loss_heatmap", "loss_ohkm"} <= set(result["history"][-1])


def test_shipped_config_builds():
    for name in ("cpn", "mspn"):
        task = build_task(os.path.join(ROOT, "configs", f"topdown_{name}_synthetic.json"))
        assert isinstance(task.codec, MultiLevelHeatmap)
        assert sum(p.numel() for p in task.build_model().parameters()) > 0


def test_multilevel_codec_is_refused_by_single_map_models():
    from pyhpe.codecs import build_codec
    from pyhpe.models import build_model
    codec = build_codec("multilevel", input_size=(48, 64), heatmap_size=(12, 16),
                        sigmas=[2.0, 1.0])
    with pytest.raises(ValueError, match="multi-level models"):
        build_model("simple_baseline", "tiny", codec=codec)
