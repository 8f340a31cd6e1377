"""MSRA heatmap / DARK / SimCC codecs: encode vs a loop reference, decode round trips, and the
pyhpe.ops kernels (when built) vs the torch fallbacks."""
import numpy as np
import pytest
import torch

import pyhpe.ops as ops
from pyhpe.codecs import MSRAHeatmap, SimCCLabel
from pyhpe.codecs._fallback import (argmax_decode_torch, dark_decode_torch, gaussian_blur_keep_max,
                                    msra_heatmaps_torch)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mmpose_gaussian_loop(kp, vis, W, H, sigma):
    """mmpose 1.x generate_gaussian_heatmaps, written as its per-keypoint loop (test oracle)."""
    N, K, _ = kp.shape
    hms = np.zeros((K, H, W), np.float32)
    weights = np.ones((N, K), np.float32)
    radius = sigma * 3
    size = 2 * radius + 1
    x = np.arange(0, size, 1, dtype=np.float32)
    y = x[:, None]
    x0 = y0 = size // 2
    for n in range(N):
        for k in range(K):
            if vis[n, k] < 0.5:
                weights[n, k] = 0
                continue
            mu = (kp[n, k] + 0.5).astype(np.int64)
            left, top = (mu - radius).astype(np.int64)
            right, bottom = (mu + radius + 1).astype(np.int64)
            if left >= W or top >= H or right < 0 or bottom < 0:
                weights[n, k] = 0
                continue
            g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
            gx1, gx2 = max(0, -left), min(W, right) - left
            gy1, gy2 = max(0, -top), min(H, bottom) - top
            hx1, hx2 = max(0, left), min(W, right)
            hy1, hy2 = max(0, top), min(H, bottom)
            hms[k, hy1:hy2, hx1:hx2] = np.maximum(hms[k, hy1:hy2, hx1:hx2], g[gy1:gy2, gx1:gx2])
    return hms, weights


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_msra_fallback_matches_loop(sigma):
    rng = np.random.default_rng(0)
    W, H = 24, 32
    kp = rng.uniform(-4, 30, size=(3, 17, 2)).astype(np.float32)
    vis = (rng.random((3, 17)) > 0.2).astype(np.float32)
    ref_h, ref_w = _mmpose_gaussian_loop(kp, vis, W, H, sigma)
    h, w = msra_heatmaps_torch(torch.from_numpy(kp)[None], torch.from_numpy(vis)[None], (W, H), sigma)
    np.testing.assert_allclose(h[0].numpy(), ref_h, atol=1e-6)
    np.testing.assert_array_equal(w[0].numpy(), ref_w)


def test_argmax_decode_quarter_offset_hand():
    hm = torch.zeros(1, 1, 5, 6)
    hm[0, 0, 2, 3] = 1.0
    hm[0, 0, 2, 4] = 0.5  # right neighbour higher -> +0.25 in x
    hm[0, 0, 1, 3] = 0.3  # upper neighbour higher -> -0.25 in y
    c, s = argmax_decode_torch(hm)
    np.testing.assert_allclose(c[0, 0].numpy(), [3.25, 1.75])
    assert s[0, 0] == 1.0
    c, s = argmax_decode_torch(torch.zeros(1, 1, 4, 4))
    np.testing.assert_array_equal(c[0, 0].numpy(), [-1, -1])


@pytest.mark.parametrize("unbiased", [False, True])
def test_msra_round_trip(unbiased):
    rng = np.random.default_rng(1)
    codec = MSRAHeatmap((48, 64), (24, 32), sigma=2.0, unbiased=unbiased)
    kp = torch.from_numpy(rng.uniform(6, 40, size=(4, 1, 17, 2)).astype(np.float32))
    kp[..., 1] += 8
    hm, w = codec.encode(kp, torch.ones(4, 1, 17))
    assert hm.shape == (4, 17, 32, 24) and w.shape == (4, 1, 17)
    # the integer-centred Gaussians carry the rounding error; DARK is exact for an exact
    # Gaussian, so test both on Gaussians placed at the true sub-pixel positions
    kp_hm = kp[:, 0] / 2
    xs, ys = torch.arange(24.0), torch.arange(32.0)
    g = torch.exp(-((xs.view(1, 1, 1, -1) - kp_hm[..., 0, None, None]) ** 2 +
                    (ys.view(1, 1, -1, 1) - kp_hm[..., 1, None, None]) ** 2) / 8)
    coords, scores = codec.decode(g)
    err = (coords - kp[:, 0]).abs()
    # argmax + quarter offset is within half a heatmap pixel (1 input px at stride 2); DARK
    # is sub-pixel (zero padding of the blur near the border leaves a small bias)
    assert err.max() < (0.15 if unbiased else 1.01)
    if unbiased:
        assert err.mean() < 0.03
    assert bool((scores > 0.5).all())


def test_msra_encode_unbatched_and_weights():
    codec = MSRAHeatmap((48, 64), (12, 16), sigma=1.0)
    hm, w = codec.encode(np.array([[[-100.0, 5.0], [10.0, 10.0]]]), np.array([[1, 0]]))
    assert hm.shape == (2, 16, 12)
    np.testing.assert_array_equal(w.numpy(), [[0, 0]])
    with pytest.raises(ValueError, match="keypoints"):
        codec.encode(np.zeros((2, 3)))


def test_dark_blur_keeps_max():
    hm = torch.rand(2, 3, 16, 12)
    b = gaussian_blur_keep_max(hm, 5)
    np.testing.assert_allclose(b.amax(dim=(2, 3)).numpy(), hm.amax(dim=(2, 3)).numpy(), rtol=1e-5)


def test_simcc_round_trip_and_weights():
    codec = SimCCLabel((48, 64), sigma=(2.0, 2.0), split_ratio=2.0)
    kp = torch.tensor([[[10.0, 20.0], [47.0, 63.0], [-3.0, 5.0]]])
    lx, ly, w = codec.encode(kp, torch.ones(1, 3))
    assert lx.shape == (1, 3, 96) and ly.shape == (1, 3, 128)
    np.testing.assert_array_equal(w.numpy(), [[1, 1, 0]])
    coords, scores = codec.decode(lx, ly)
    np.testing.assert_allclose(coords[0, :2].numpy(), kp[0, :2].numpy())
    assert coords[0, 2].tolist() == [-1, -1]


@pytest.mark.skipif(not hasattr(ops, "msra_heatmaps"), reason="pyhpe.ops.msra_heatmaps not built")
def test_msra_op_matches_fallback():
    rng = np.random.default_rng(2)
    kp = torch.from_numpy(rng.uniform(-2, 26, size=(2, 3, 17, 2)).astype(np.float32))
    vis = torch.from_numpy((rng.random((2, 3, 17)) > 0.2).astype(np.float32))
    h1, w1 = ops.msra_heatmaps(kp, vis, (24, 32), 2.0)
    h2, w2 = msra_heatmaps_torch(kp, vis, (24, 32), 2.0)
    torch.testing.assert_close(h1.float(), h2, atol=1e-5, rtol=0)
    torch.testing.assert_close(w1.float(), w2)


@pytest.mark.skipif(not hasattr(ops, "argmax_decode"), reason="pyhpe.ops.argmax_decode not built")
def test_argmax_op_matches_fallback():
    hm = torch.rand(2, 17, 16, 12)
    c1, s1 = ops.argmax_decode(hm, quarter_offset=True)
    c2, s2 = argmax_decode_torch(hm, True)
    torch.testing.assert_close(c1.float(), c2)
    torch.testing.assert_close(s1.float(), s2)


@pytest.mark.skipif(not hasattr(ops, "dark_decode"), reason="pyhpe.ops.dark_decode not built")
def test_dark_op_close_to_fallback():
    kp = torch.rand(2, 1, 17, 2) * torch.tensor([20.0, 28.0]) + 2
    hm, _ = msra_heatmaps_torch(kp, torch.ones(2, 1, 17), (24, 32), 2.0)
    c1, _ = ops.dark_decode(hm, kernel=11)
    c2, _ = dark_decode_torch(hm, 11)
    torch.testing.assert_close(c1.float(), c2, atol=1e-3, rtol=0)
