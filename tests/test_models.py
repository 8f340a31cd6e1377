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


def test_paper_configs_have_published_sizes():
    # parameter counts of the paper models (constructed only, no forward)
    n = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    assert 33.5 < n(build_model("simple_baseline", "paper")) < 34.5       # SimpleBaseline-R50: 34.0 M
    assert 28.0 < n(build_model("hrnet", "w32")) < 29.0                   # HRNet-W32: 28.5 M
    assert 4.0 < n(build_model("simple_baseline_3d", "paper")) < 4.5      # Martinez et al.: ~4.3 M
    for name in MODELS:
        assert "paper" in MODELS[name][1]


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")
    with pytest.raises(ValueError, match="no config"):
        build_model("hrnet", "huge")
