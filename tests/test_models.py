"""Forward shapes of every model (tiny configs, CPU) and the registry."""
import pytest
import torch

from pyhpe.models import MODELS, build_model, model_names


pytestmark = pytest.mark.usefixtures("one_torch_thread")


IMG = (2, 3, 64, 48)  # (B, 3, H, W)
EXPECTED = {
    "simple_baseline": (2, 17, 16, 12),
    "hourglass": (2, 17, 16, 12),
    "hrnet": (2, 17, 16, 12),
    "cpm": (2, 18, 8, 6),
    "deeppose": (2, 17, 2),
    "rtmpose": [(2, 17, 96), (2, 17, 128)],
    "vitpose": (2, 17, 16, 12),
    "tokenpose": (2, 17, 16, 12),
    "litepose": (2, 34, 16, 12),
    "openpose": [(2, 38, 8, 6), (2, 18, 8, 6)],
    "simple_baseline_3d": (2, 17, 3),
}


def _shape(y):
    return [tuple(t.shape) for t in y] if isinstance(y, (tuple, list)) else tuple(y.shape)


def test_registry_lists_every_model():
    assert set(model_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tiny_forward_shapes(name):
    torch.manual_seed(0)
    m = build_model(name, "tiny")
    x = torch.randn(2, 17, 2) if name == "simple_baseline_3d" else torch.randn(*IMG)
    m.eval()
    with torch.no_grad():
        y = m(x)
    assert _shape(y) == EXPECTED[name]
    # train-mode forward + backward works too
    m.train()
    y = m(x)
    loss = sum(t.float().square().mean() for t in (y if isinstance(y, (tuple, list)) else [y]))
    loss.backward()
    assert any(p.grad is not None for p in m.parameters())


def test_intermediate_supervision_outputs():
    hg = build_model("hourglass", "tiny").eval()
    cpm = build_model("cpm", "tiny").eval()
    op = build_model("openpose", "tiny").eval()
    x = torch.randn(*IMG)
    with torch.no_grad():
        assert len(hg.forward_stacks(x)) == 2
        assert len(cpm.forward_stages(x)) == 2
        assert len(op.forward_stages(x)) == 2


def test_num_keypoints_and_overrides():
    m = build_model("simple_baseline", "tiny", num_keypoints=16).eval()
    with torch.no_grad():
        assert m(torch.randn(*IMG)).shape == (2, 16, 16, 12)
    m = build_model("rtmpose", "tiny", input_size=(64, 64)).eval()
    with torch.no_grad():
        sx, sy = m(torch.randn(1, 3, 64, 64))
    assert sx.shape == (1, 17, 128) and sy.shape == (1, 17, 128)


def _millions(name, config, **kw):
    # on the meta device: parameter shapes without memory or initialisation time
    with torch.device("meta"):
        m = build_model(name, config, **kw)
    return sum(p.numel() for p in m.parameters()) / 1e6


# (model, config, build overrides, published parameters in M, source). Counted as the
# published models are: 17 COCO keypoints unless the source model had another head.
PUBLISHED = [
    ("hrnet", "w32", {}, 28.5, "HRNet (Sun et al. 2019) Table 1, 256x192"),
    ("hrnet", "w48", {}, 63.6, "HRNet Table 1"),
    ("simple_baseline", "paper", {}, 34.0, "SimpleBaseline-R50, HRNet Table 1 / mmpose"),
    ("simple_baseline", "r101", {}, 53.0, "SimpleBaseline-R101, HRNet Table 1"),
    ("simple_baseline", "r152", {}, 68.6, "SimpleBaseline-R152, HRNet Table 1"),
    ("hourglass", "paper", {}, 25.1, "8-stack Hourglass, HRNet Table 1"),
    ("vitpose", "paper", {}, 90.0, "ViTPose-B: the paper's 86 M ViT-B plus the 4 M classic decoder"),
    ("vitpose", "large", {}, 307.0, "ViTPose-L (ViTPose paper)"),
    ("simple_baseline_3d", "paper", {}, 4.29, "Martinez et al. 2017 lifter"),
    ("openpose", "paper", dict(num_keypoints=18, num_limbs=19), 52.3,
     "OpenPose COCO-18 body model (Cao et al. 2017): its released pose_deploy_linevec.prototxt "
     "(VGG-19 to conv4_2, 6 two-branch stages) counts 52.3 M"),
]
# Configs whose size is known not to match the paper's model.
KNOWN_MISMATCH = [
    ("tokenpose", "paper", {}, 6.2,
     "the 'paper' config (dim 192, depth 12, 3x4 patches over a small CNN stem) has 9.86 M; "
     "TokenPose-S-v2 in the TokenPose paper has 6.2 M"),
    ("litepose", "paper", {}, 2.7,
     "the 'paper' config (called LitePose-S-like) has 1.70 M, the size of LitePose-XS; "
     "the paper's LitePose-S has 2.7 M"),
]
# No parameter count is published for these exact configurations (CPM's COCO 6-stage net,
# DeepPose on ResNet-50, SimCC on ResNet-50 without deconvolutions, a 2-stack hourglass,
# ViTPose-S, whose figure was not checked here): pin today's counts so an
# unintended architecture change is noticed.
UNPUBLISHED = [("cpm", "paper", 28.283), ("deeppose", "paper", 23.578), ("rtmpose", "paper", 25.457),
               ("hourglass", "hg2", 6.555), ("vitpose", "small", 24.290)]


@pytest.mark.parametrize("name,config,kw,published,source", PUBLISHED,
                         ids=[f"{p[0]}-{p[1]}" for p in PUBLISHED])
def test_paper_configs_have_published_sizes(name, config, kw, published, source):
    got = _millions(name, config, **kw)
    assert abs(got - published) <= 0.025 * published, f"{got:.3f} M vs {published} M ({source})"


@pytest.mark.parametrize("name,config,kw,published,reason", KNOWN_MISMATCH,
                         ids=[f"{p[0]}-{p[1]}" for p in KNOWN_MISMATCH])
def test_paper_configs_known_not_to_match(name, config, kw, published, reason):
    got = _millions(name, config, **kw)
    if abs(got - published) > 0.025 * published:
        pytest.xfail(reason)
    assert True   # now matching: move it to PUBLISHED


@pytest.mark.parametrize("name,config,millions", UNPUBLISHED)
def test_unpublished_paper_config_sizes_are_pinned(name, config, millions):
    assert _millions(name, config) == pytest.approx(millions, abs=0.001)


def test_every_model_has_a_paper_config_and_a_size_check():
    checked = {p[0] for p in PUBLISHED + KNOWN_MISMATCH} | {p[0] for p in UNPUBLISHED}
    assert checked == set(MODELS)
    for name in MODELS:
        assert "paper" in MODELS[name][1]


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")
    with pytest.raises(ValueError, match="no config"):
        build_model("hrnet", "huge")
