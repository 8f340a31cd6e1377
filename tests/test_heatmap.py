"""Heatmap / SimCC / PAF target generation vs faithful numpy reimplementations of mmpose."""
import numpy as np
import pytest
import torch

import pyhpe
from conftest import cpu_and_cuda
from pyhpe.reference import heatmap as ref

ATOL = 1e-6
ENCODINGS = {
    "msra": pyhpe.ops.msra_heatmaps,
    "udp": pyhpe.ops.udp_heatmaps,
    "unbiased": pyhpe.ops.unbiased_heatmaps,
}
LIMBS = np.array([[0, 1], [1, 2], [2, 3], [0, 4], [4, 5], [1, 5], [3, 3]])


def _instances(rng, B, N, K, W, H, margin=8.0):
    kp = np.stack([rng.uniform(-margin, W + margin, (B, N, K)),
                   rng.uniform(-margin, H + margin, (B, N, K))], axis=-1).astype(np.float32)
    vis = rng.choice(np.array([0.0, 1.0, 1.0, 2.0, 0.3, 0.5], np.float32), (B, N, K))
    return kp, vis


def _t(x, device, dtype=None):
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return t.to(dtype) if dtype is not None else t


def _assert_close(actual, expected, atol=ATOL):
    a = actual.detach().cpu().numpy()
    np.testing.assert_allclose(a, expected, rtol=0, atol=atol)


# ---------------------------------------------------------------------------------------
# Gaussian heatmaps
# ---------------------------------------------------------------------------------------

@cpu_and_cuda()
@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("sigma", [2.0, 1.5, 3.3])
def test_gaussian_matches_mmpose(device, rng, encoding, sigma):
    B, N, K, W, H = 3, 3, 5, 20, 24
    kp, vis = _instances(rng, B, N, K, W, H)
    heatmaps, weights = ENCODINGS[encoding](_t(kp, device), _t(vis, device), (W, H), sigma=sigma)
    exp_maps, exp_weights = ref.gaussian_heatmaps_numpy(kp, vis, (W, H), sigma, encoding)
    assert heatmaps.shape == (B, K, H, W) and weights.shape == (B, N, K)
    assert heatmaps.dtype == torch.float32 and heatmaps.device.type == device
    _assert_close(heatmaps, exp_maps)
    np.testing.assert_array_equal(weights.cpu().numpy(), exp_weights)


@cpu_and_cuda()
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_gaussian_per_instance_and_per_keypoint_sigma(device, rng, encoding):
    B, N, K, W, H = 2, 3, 4, 16, 12
    kp, vis = _instances(rng, B, N, K, W, H)
    per_instance = rng.choice([1.0, 1.5, 2.0, 2.5], (B, N))
    per_keypoint = np.array([1.0, 1.5, 2.0, 3.0])
    fn = ENCODINGS[encoding]
    hm, w = fn(_t(kp, device), _t(vis, device), (W, H), sigma=torch.tensor(per_instance))
    e_hm, e_w = ref.gaussian_heatmaps_numpy(kp, vis, (W, H), per_instance, encoding)
    _assert_close(hm, e_hm)
    np.testing.assert_array_equal(w.cpu().numpy(), e_w)
    hm, w = fn(_t(kp, device), _t(vis, device), (W, H), sigma=per_keypoint.tolist())
    full = np.broadcast_to(per_keypoint, (B, N, K))
    e_hm, e_w = ref.gaussian_heatmaps_numpy(kp, vis, (W, H), full, encoding)
    _assert_close(hm, e_hm)
    np.testing.assert_array_equal(w.cpu().numpy(), e_w)


@cpu_and_cuda()
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_gaussian_edge_keypoints(device, encoding):
    W, H = 12, 10
    # -0.7 (centre rounds to 0), W-1, outside the map but within 3 sigma, far outside, exactly
    # on the +-3 sigma borders, and an invisible one.
    xs = [-0.7, W - 1, -4.0, W + 3.2, -40.0, 5.5, -6.5, W + 5.0, 3.0]
    ys = [-0.7, H - 1, 3.0, H + 4.9, 5.0, -6.0, 2.0, 3.0, 3.0]
    kp = np.array([xs, ys], np.float32).T[None, :, None, :]  # (1, N, 1, 2)
    vis = np.ones(kp.shape[:3], np.float32)
    vis[0, -1, 0] = 0.0
    for sigma in (2.0, 1.5):
        hm, w = ENCODINGS[encoding](_t(kp, device), _t(vis, device), (W, H), sigma=sigma)
        e_hm, e_w = ref.gaussian_heatmaps_numpy(kp, vis, (W, H), sigma, encoding)
        _assert_close(hm, e_hm)
        np.testing.assert_array_equal(w.cpu().numpy(), e_w)
        # each keypoint alone too, so max-combination cannot hide a wrong window
        for n in range(kp.shape[1]):
            one_kp, one_vis = kp[:, n:n + 1], vis[:, n:n + 1]
            hm, w = ENCODINGS[encoding](_t(one_kp, device), _t(one_vis, device), (W, H),
                                        sigma=sigma)
            e_hm, e_w = ref.gaussian_heatmaps_numpy(one_kp, one_vis, (W, H), sigma, encoding)
            _assert_close(hm, e_hm)
            np.testing.assert_array_equal(w.cpu().numpy(), e_w)


def test_msra_known_values():
    hm, w = pyhpe.ops.msra_heatmaps(torch.tensor([[[[3.2, 4.6]]]]), torch.ones(1, 1, 1),
                                    (8, 9), sigma=2.0)
    assert hm[0, 0].argmax().item() == 5 * 8 + 3 and hm[0, 0, 5, 3] == 1.0
    assert torch.isclose(hm[0, 0, 5, 4], torch.tensor(np.exp(-1 / 8), dtype=torch.float32))
    assert w.tolist() == [[[1.0]]]
    # -0.7 rounds to centre 0; far outside gets weight 0 and an empty map
    hm, w = pyhpe.ops.msra_heatmaps(torch.tensor([[[[-0.7, -0.7]], [[-30.0, 2.0]]]]),
                                    torch.ones(1, 2, 1), (8, 9), sigma=2.0)
    assert hm[0, 0, 0, 0] == 1.0 and w[0, :, 0].tolist() == [1.0, 0.0]


@cpu_and_cuda()
def test_gaussian_float64(device, rng):
    B, N, K, W, H = 2, 2, 3, 14, 11
    kp, vis = _instances(rng, B, N, K, W, H)
    for encoding, fn in ENCODINGS.items():
        hm, w = fn(_t(kp, device, torch.float64), _t(vis, device, torch.float64), (W, H), sigma=2.0)
        assert hm.dtype == torch.float64 and w.dtype == torch.float64
        e_hm, e_w = ref.gaussian_heatmaps_numpy(kp, vis, (W, H), 2.0, encoding)
        _assert_close(hm, e_hm)
        np.testing.assert_array_equal(w.cpu().numpy(), e_w)


@cpu_and_cuda()
def test_gaussian_unbatched_out_and_channels(device, rng):
    N, K, W, H = 2, 3, 10, 8
    kp, vis = _instances(rng, 1, N, K, W, H)
    for encoding, fn in ENCODINGS.items():
        e_hm, e_w = ref.gaussian_heatmaps_numpy(kp, vis, (W, H), 2.0, encoding)
        hm, w = fn(_t(kp[0], device), _t(vis[0], device), (W, H), sigma=2.0)
        assert hm.shape == (K, H, W) and w.shape == (N, K)
        _assert_close(hm, e_hm[0])
        # out=: contiguous and non-contiguous, with stale values
        out = torch.full((1, K, H, W), 7.0, device=device)
        hm, w = fn(_t(kp, device), _t(vis, device), (W, H), sigma=2.0, out=out)
        assert hm is out
        _assert_close(out, e_hm)
        out_t = torch.full((1, K, W, H), 7.0, device=device).transpose(2, 3)
        hm, w = fn(_t(kp, device), _t(vis, device), (W, H), sigma=2.0, out=out_t)
        _assert_close(out_t, e_hm)
        # (x, y, score) keypoints: only x, y are used
        kp3 = np.concatenate([kp, np.full(kp.shape[:3] + (1,), 5.0, np.float32)], -1)
        hm, _ = fn(_t(kp3, device), _t(vis, device), (W, H), sigma=2.0)
        _assert_close(hm, e_hm)


@cpu_and_cuda()
def test_gaussian_empty_inputs(device):
    for encoding, fn in ENCODINGS.items():
        hm, w = fn(torch.zeros(0, 2, 17, 2, device=device), torch.zeros(0, 2, 17, device=device),
                   (48, 64), sigma=2.0)
        assert hm.shape == (0, 17, 64, 48) and w.shape == (0, 2, 17)
        hm, w = fn(torch.zeros(2, 0, 3, 2, device=device), torch.zeros(2, 0, 3, device=device),
                   (5, 4), sigma=2.0)
        assert hm.shape == (2, 3, 4, 5) and w.shape == (2, 0, 3)
        assert hm.abs().sum() == 0
        hm, w = fn(torch.zeros(2, 1, 0, 2, device=device), torch.zeros(2, 1, 0, device=device),
                   (5, 4), sigma=2.0)
        assert hm.shape == (2, 0, 4, 5) and w.shape == (2, 1, 0)
        hm, w = fn(torch.ones(1, 1, 2, 2, device=device), torch.ones(1, 1, 2, device=device),
                   (0, 0), sigma=2.0)
        # mmpose keeps the weight: left = int(1 - 6) < W = 0 does not count as a miss
        assert hm.shape == (1, 2, 0, 0) and w.tolist() == [[[1.0, 1.0]]]


def test_gaussian_nonfinite_keypoint_gets_zero_weight():
    kp = torch.tensor([[[[float("nan"), 2.0], [1e30, 2.0], [2.0, 2.0]]]])
    hm, w = pyhpe.ops.msra_heatmaps(kp, torch.ones(1, 1, 3), (6, 6), sigma=1.0)
    assert w.tolist() == [[[0.0, 0.0, 1.0]]]
    assert torch.isfinite(hm).all() and hm[0, :2].abs().sum() == 0


def test_gaussian_bad_inputs():
    kp, vis = torch.zeros(2, 1, 3, 2), torch.ones(2, 1, 3)
    with pytest.raises(ValueError, match="keypoints"):
        pyhpe.ops.msra_heatmaps(torch.zeros(2, 3), vis, (4, 4))
    with pytest.raises(ValueError, match="'keypoints' must have shape"):
        pyhpe.ops.msra_heatmaps(torch.zeros(2, 1, 3, 1), vis, (4, 4))
    with pytest.raises(ValueError, match="visibility"):
        pyhpe.ops.msra_heatmaps(kp, torch.ones(2, 1, 4), (4, 4))
    with pytest.raises(TypeError, match="float32 or float64"):
        torch.ops.pyhpe.msra_heatmaps(kp.half(), vis.half(), torch.ones(1, 1, 1), 4, 4)
    with pytest.raises(TypeError, match="dtype of 'keypoints'"):
        torch.ops.pyhpe.udp_heatmaps(kp, vis.double(), torch.ones(1, 1, 1), 4, 4)
    with pytest.raises(ValueError, match="sigma"):
        pyhpe.ops.msra_heatmaps(kp, vis, (4, 4), sigma=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        pyhpe.ops.msra_heatmaps(kp, vis, (4, 4), sigma=torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="broadcast"):
        pyhpe.ops.msra_heatmaps(kp, vis, (4, 4), sigma=torch.ones(5))
    with pytest.raises(ValueError, match="heatmap_size"):
        pyhpe.ops.msra_heatmaps(kp, vis, (4,))
    with pytest.raises(ValueError, match="heatmap_size"):
        pyhpe.ops.msra_heatmaps(kp, vis, (-1, 4))
    with pytest.raises(ValueError, match="'out' must have shape"):
        pyhpe.ops.msra_heatmaps(kp, vis, (4, 4), out=torch.empty(2, 3, 4, 5))
    with pytest.raises(TypeError, match="'out' must have dtype"):
        pyhpe.ops.msra_heatmaps(kp, vis, (4, 4), out=torch.empty(2, 3, 4, 4, dtype=torch.float64))


# ---------------------------------------------------------------------------------------
# SimCC
# ---------------------------------------------------------------------------------------

@cpu_and_cuda()
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("sigma,ratio", [((4.9, 5.66), 2.0), (6.0, 2.0), ((2.5, 3.0), 1.5)])
def test_simcc_matches_mmpose(device, rng, normalize, sigma, ratio):
    B, K, w, h = 6, 7, 48, 61
    kp = np.stack([rng.uniform(-20, w + 20, (B, K)), rng.uniform(-20, h + 20, (B, K))],
                  -1).astype(np.float32)
    # half-way rounding, centres left of / right of the label range but within 3 sigma
    kp[0, :6] = [[0.25, 0.75], [10.25, 3.75], [-0.25, -8.0], [w, h], [-3.0, -2.5],
                 [w + 2.5, h + 3.0]]
    vis = rng.choice(np.array([0.0, 1.0, 1.0, 0.4], np.float32), (B, K))
    x, y, wt = pyhpe.ops.simcc_labels(_t(kp, device), _t(vis, device), (w, h), sigma=sigma,
                                      split_ratio=ratio,
                                      normalize=normalize)
    ex, ey, ew = ref.mmpose_simcc_gaussian(kp, vis, (w, h), sigma, ratio, normalize)
    assert x.shape == ex.shape and y.shape == ey.shape and wt.shape == (B, K)
    _assert_close(x, ex)
    _assert_close(y, ey)
    np.testing.assert_array_equal(wt.cpu().numpy(), ew)
    # out=
    xo = torch.empty_like(x)
    yo = torch.empty(ey.shape[::-1], device=device).permute(2, 1, 0)
    x2, y2, wt2 = pyhpe.ops.simcc_labels(_t(kp, device), _t(vis, device), (w, h), sigma=sigma,
                                         split_ratio=ratio,
                                         normalize=normalize, out=(xo, yo))
    assert x2 is xo and y2 is yo
    _assert_close(xo, ex)
    _assert_close(yo, ey)
    np.testing.assert_array_equal(wt2.cpu().numpy(), ew)


@cpu_and_cuda()
def test_simcc_float64_empty_and_errors(device, rng):
    kp = rng.uniform(0, 40, (3, 5, 2))
    vis = np.ones((3, 5))
    x, y, w = pyhpe.ops.simcc_labels(_t(kp, device), _t(vis, device), (40, 30), sigma=(3.0, 4.0))
    ex, ey, ew = ref.mmpose_simcc_gaussian(kp.astype(np.float32), vis.astype(np.float32),
                                           (40, 30), (3.0, 4.0), 2.0, False)
    assert x.dtype == torch.float64
    _assert_close(x, ex)
    _assert_close(y, ey)
    x, y, w = pyhpe.ops.simcc_labels(torch.zeros(0, 17, 2, device=device),
                                     torch.zeros(0, 17, device=device), (192, 256), sigma=6.0)
    assert x.shape == (0, 17, 384) and y.shape == (0, 17, 512) and w.shape == (0, 17)
    with pytest.raises(ValueError, match="'keypoints' must be"):
        pyhpe.ops.simcc_labels(torch.zeros(2, 3, 4, 2), None, (4, 4), sigma=2.0)
    with pytest.raises(ValueError, match="sigma"):
        pyhpe.ops.simcc_labels(torch.zeros(2, 3, 2), None, (4, 4), sigma=(2.0, -1.0))
    with pytest.raises(ValueError, match="pyhpe.simcc_labels: 'split_ratio'"):
        pyhpe.ops.simcc_labels(torch.zeros(2, 3, 2), None, (4, 4), sigma=2.0, split_ratio=0.0)
    with pytest.raises(ValueError, match="visibility"):
        pyhpe.ops.simcc_labels(torch.zeros(2, 3, 2), torch.ones(2, 4), (4, 4), sigma=2.0)
    with pytest.raises(ValueError, match=r"out\[0\]"):
        pyhpe.ops.simcc_labels(torch.zeros(2, 3, 2), None, (4, 4), sigma=2.0,
                               out=(torch.empty(2, 3, 7), torch.empty(2, 3, 8)))


# ---------------------------------------------------------------------------------------
# PAF
# ---------------------------------------------------------------------------------------

@cpu_and_cuda()
@pytest.mark.parametrize("mode", ["hard", "soft"])
@pytest.mark.parametrize("limb_width", [1.0, 1.5, 2.0])
def test_paf_matches_mmpose(device, rng, mode, limb_width):
    B, N, K, W, H = 3, 4, 6, 22, 17
    kp, _ = _instances(rng, B, N, K, W, H, margin=4.0)
    vis = rng.choice(np.array([0.0, 1.0, 2.0], np.float32), (B, N, K), p=[0.2, 0.6, 0.2])
    kp[0, 0, 1] = kp[0, 0, 0]  # a zero-length limb
    pafs, counts = pyhpe.ops.paf_targets(_t(kp, device), _t(vis, device), LIMBS, (W, H),
                                         limb_width=limb_width, mode=mode)
    e_pafs, e_counts = ref.paf_targets_numpy(kp, vis, LIMBS, (W, H), limb_width, mode)
    L = len(LIMBS)
    assert pafs.shape == (B, 2 * L, H, W) and counts.shape == (B, L, H, W)
    _assert_close(pafs, e_pafs)
    _assert_close(counts, e_counts)
    assert counts.sum() > 0
    out = torch.full((B, 2 * L, H, W), 3.0, device=device)
    pafs2, _ = pyhpe.ops.paf_targets(_t(kp, device), _t(vis, device), LIMBS, (W, H),
                                     limb_width=limb_width,
                                     mode=mode, out=out)
    assert pafs2 is out
    _assert_close(out, e_pafs)


def test_paf_is_mmpose_without_zero_length_limbs(rng):
    B, N, K, W, H = 2, 3, 6, 20, 20
    kp, vis = _instances(rng, B, N, K, W, H, margin=2.0)
    limbs = LIMBS[:-1]
    pafs, counts = pyhpe.ops.paf_targets(torch.from_numpy(kp), torch.from_numpy(vis), limbs,
                                         (W, H), limb_width=1.0)
    e_pafs, e_counts = ref.paf_targets_numpy(kp, vis, limbs, (W, H), 1.0,
                                             skip_zero_length=False)
    _assert_close(pafs, e_pafs)
    _assert_close(counts, e_counts)


def test_paf_known_values():
    # horizontal limb (2, 3) -> (8, 3) on a 12x8 map, width 1: unit vector (1, 0) on row 3,
    # x in [1, 9]; a second person's crossing vertical limb averages with it at (5, 3).
    kp = torch.tensor([[[[2.0, 3.0], [8.0, 3.0]], [[5.0, 0.0], [5.0, 6.0]]]])
    pafs, counts = pyhpe.ops.paf_targets(kp, torch.ones(1, 2, 2), [[0, 1]], (12, 8), limb_width=1.0)
    assert counts[0, 0, 3].tolist() == [0, 1, 1, 1, 1, 2, 1, 1, 1, 1, 0, 0]
    assert pafs[0, 0, 3, 2].item() == 1.0 and pafs[0, 1, 3, 2].item() == 0.0
    assert pafs[0, 0, 3, 5].item() == 0.5 and pafs[0, 1, 3, 5].item() == 0.5
    assert pafs[0, 1, 0:7, 5].tolist() == [1, 1, 1, 0.5, 1, 1, 1]
    # zero-length limb: nothing drawn
    kp = torch.tensor([[[[4.0, 4.0], [4.0, 4.0]]]])
    pafs, counts = pyhpe.ops.paf_targets(kp, torch.ones(1, 1, 2), [[0, 1]], (8, 8))
    assert pafs.abs().sum() == 0 and counts.sum() == 0


@cpu_and_cuda()
def test_paf_unbatched_empty_float64(device, rng):
    kp, vis = _instances(rng, 1, 2, 6, 10, 9, margin=2.0)
    e_pafs, e_counts = ref.paf_targets_numpy(kp, vis, LIMBS, (10, 9), 1.0)
    pafs, counts = pyhpe.ops.paf_targets(_t(kp[0], device), _t(vis[0], device), LIMBS, (10, 9))
    assert pafs.shape == (2 * len(LIMBS), 9, 10)
    _assert_close(pafs, e_pafs[0])
    pafs, counts = pyhpe.ops.paf_targets(_t(kp, device, torch.float64),
                                         _t(vis, device, torch.float64), LIMBS, (10, 9))
    assert pafs.dtype == torch.float64
    _assert_close(pafs, e_pafs)
    pafs, counts = pyhpe.ops.paf_targets(torch.zeros(0, 2, 6, 2, device=device),
                                         torch.zeros(0, 2, 6, device=device), LIMBS, (10, 9))
    assert pafs.shape == (0, 14, 9, 10) and counts.shape == (0, 7, 9, 10)
    pafs, counts = pyhpe.ops.paf_targets(_t(kp, device), _t(vis, device),
                                         torch.zeros(0, 2, dtype=torch.int64), (10, 9))
    assert pafs.shape == (1, 0, 9, 10)
    pafs, counts = pyhpe.ops.paf_targets(torch.zeros(2, 0, 6, 2, device=device),
                                         torch.zeros(2, 0, 6, device=device), LIMBS, (10, 9))
    assert pafs.abs().sum() == 0 and counts.abs().sum() == 0


def test_paf_bad_inputs():
    kp, vis = torch.zeros(1, 2, 4, 2), torch.ones(1, 2, 4)
    with pytest.raises(ValueError, match=r"'limbs' entries must be keypoint indices"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 4]], (8, 8))
    with pytest.raises(ValueError, match=r"'limbs' entries"):
        pyhpe.ops.paf_targets(kp, vis, [[-1, 2]], (8, 8))
    with pytest.raises(ValueError, match=r"'limbs' must have shape \(L, 2\)"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1, 2]], (8, 8))
    with pytest.raises(TypeError, match="integer"):
        pyhpe.ops.paf_targets(kp, vis, [[0.0, 1.0]], (8, 8))
    with pytest.raises(ValueError, match="limb_width"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (8, 8), limb_width=0.0)
    with pytest.raises(ValueError, match="mode"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (8, 8), mode="gaussian")
    with pytest.raises(ValueError, match="mode"):
        torch.ops.pyhpe.paf_targets(kp, vis, torch.tensor([[0, 1]]), 8, 8, 1.0, "gaussian")
    with pytest.raises(ValueError, match="'out' must have shape"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (8, 8), out=torch.empty(1, 1, 8, 8))


# ---------------------------------------------------------------------------------------
# reference cross-checks, opcheck, torch.compile
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_vectorized_torch_reference_matches_mmpose(rng, encoding):
    kp, vis = _instances(rng, 2, 3, 4, 15, 13)
    sig = rng.choice([1.5, 2.0], (2, 3))
    hm, w = ref.gaussian_heatmaps_torch(torch.from_numpy(kp), torch.from_numpy(vis), (15, 13),
                                        torch.from_numpy(sig), encoding)
    e_hm, e_w = ref.gaussian_heatmaps_numpy(kp, vis, (15, 13), sig, encoding)
    _assert_close(hm, e_hm)
    np.testing.assert_array_equal(w.numpy(), e_w)


def test_vectorized_torch_simcc_and_paf_match_mmpose(rng):
    kp = rng.uniform(-20, 70, (5, 6, 2)).astype(np.float32)
    vis = rng.choice(np.array([0.0, 1.0, 0.4], np.float32), (5, 6))
    for normalize in (False, True):
        got = ref.simcc_labels_torch(torch.from_numpy(kp), torch.from_numpy(vis), (48, 61),
                                     (4.9, 5.66), 2.0, normalize)
        want = ref.mmpose_simcc_gaussian(kp, vis, (48, 61), (4.9, 5.66), 2.0, normalize)
        for g, w in zip(got, want):
            _assert_close(g, w)
    kp, vis = _instances(rng, 2, 4, 6, 22, 17, margin=4.0)
    for mode in ("hard", "soft"):
        got = ref.paf_targets_torch(torch.from_numpy(kp), torch.from_numpy(vis), LIMBS, (22, 17),
                                    1.5, mode)
        want = ref.paf_targets_numpy(kp, vis, LIMBS, (22, 17), 1.5, mode)
        for g, w in zip(got, want):
            _assert_close(g, w)


def test_cpu_matches_gpu_element_functions(rng, monkeypatch):
    """The CUDA kernels call the per-element functions; run those on the CPU and require the
    per-map CPU loops to match them bit for bit (float32 and float64)."""
    B, N, K, W, H = 3, 4, 6, 21, 17
    kp, vis = _instances(rng, B, N, K, W, H)
    # horizontal, almost horizontal, vertical and integer-aligned limbs (PAF band edges)
    kp[0, 0, 1] = kp[0, 0, 0] + [9.0, 0.0]
    kp[0, 1, 1] = kp[0, 1, 0] + [9.0, 1e-5]
    kp[0, 2, 1] = kp[0, 2, 0] + [0.0, 7.0]
    kp[1, 0, :3] = [[2.0, 3.0], [8.0, 3.0], [8.0, 9.0]]
    vis[:2, :3, :3] = 1.0
    sig = torch.from_numpy(rng.choice([1.5, 2.0, 2.5], (B, N, K)))
    kp2 = torch.from_numpy(rng.uniform(-20, 70, (B, K, 2)).astype(np.float32))
    vis2 = torch.from_numpy(rng.choice(np.array([0.0, 1.0], np.float32), (B, K)))

    def run_all(dtype):
        k, v = torch.from_numpy(kp).to(dtype), torch.from_numpy(vis).to(dtype)
        outs = [fn(k, v, (W, H), sigma=sig) for fn in ENCODINGS.values()]
        outs += [pyhpe.ops.simcc_labels(kp2.to(dtype), vis2.to(dtype), (48, 64), sigma=(4.9, 5.66),
                                        split_ratio=2.0,
                                        normalize=norm) for norm in (False, True)]
        outs += [pyhpe.ops.paf_targets(k, v, LIMBS, (W, H), limb_width=1.5,
                                       mode=mode) for mode in ("hard", "soft")]
        return [t for group in outs for t in group]

    for dtype in (torch.float32, torch.float64):
        fast = run_all(dtype)
        monkeypatch.setenv("PYHPE_HEATMAP_CPU_ELEMENTWISE", "1")
        element = run_all(dtype)
        monkeypatch.delenv("PYHPE_HEATMAP_CPU_ELEMENTWISE")
        for f, e in zip(fast, element):
            assert torch.equal(f, e)


def _opcheck_samples(device="cpu"):
    g = torch.Generator().manual_seed(0)
    kp = (torch.rand(2, 2, 3, 2, generator=g) * 10 - 1).to(device)
    vis = torch.ones(2, 2, 3, device=device)
    sig = torch.full((1, 1, 1), 1.5, dtype=torch.float64, device=device)
    kp2 = (torch.rand(2, 3, 2, generator=g) * 10).to(device)
    vis2 = torch.ones(2, 3, device=device)
    limbs = torch.tensor([[0, 1], [1, 2]], device=device)
    return [
        (torch.ops.pyhpe.msra_heatmaps.default, (kp, vis, sig, 9, 8), {}),
        (torch.ops.pyhpe.udp_heatmaps.default, (kp, vis, sig, 9, 8), {}),
        (torch.ops.pyhpe.unbiased_heatmaps.default, (kp.double(), vis.double(), sig, 9, 8), {}),
        (torch.ops.pyhpe.msra_heatmaps.out, (kp, vis, sig),
         {"out": torch.empty(2, 3, 8, 9, device=device)}),
        (torch.ops.pyhpe.udp_heatmaps.out, (kp, vis, sig),
         {"out": torch.empty(2, 3, 8, 9, device=device)}),
        (torch.ops.pyhpe.unbiased_heatmaps.out, (kp, vis, sig),
         {"out": torch.empty(2, 3, 8, 9, device=device)}),
        (torch.ops.pyhpe.simcc_labels.default, (kp2, vis2, 10, 8, 2.0, 2.5, 2.0, True), {}),
        (torch.ops.pyhpe.simcc_labels.out, (kp2, vis2, 2.0, 2.5, 2.0, False),
         {"x_out": torch.empty(2, 3, 20, device=device),
          "y_out": torch.empty(2, 3, 16, device=device)}),
        (torch.ops.pyhpe.paf_targets.default, (kp, vis, limbs, 9, 8, 1.0, "hard"), {}),
        (torch.ops.pyhpe.paf_targets.default, (kp, vis, limbs, 9, 8, 1.5, "soft"), {}),
        (torch.ops.pyhpe.paf_targets.out, (kp, vis, limbs, 1.0, "hard"),
         {"out": torch.empty(2, 4, 8, 9, device=device)}),
    ]


@cpu_and_cuda()
def test_opcheck(device):
    utils = ("test_schema", "test_autograd_registration", "test_faketensor",
             "test_aot_dispatch_dynamic")
    for op, args, kwargs in _opcheck_samples(device):
        torch.library.opcheck(op, args, kwargs, test_utils=utils)


def test_torch_compile_smoke():
    kp = torch.rand(2, 1, 4, 2) * 10
    vis = torch.ones(2, 1, 4)

    def targets(kp, vis):
        hm, w = pyhpe.ops.msra_heatmaps(kp, vis, (12, 10), sigma=2.0)
        hu, _ = pyhpe.ops.udp_heatmaps(kp, vis, (12, 10), sigma=2.0)
        hb, _ = pyhpe.ops.unbiased_heatmaps(kp, vis, (12, 10), sigma=2.0)
        x, y, sw = pyhpe.ops.simcc_labels(kp[:, 0], vis[:, 0], (12, 10), sigma=(2.0, 2.0))
        pafs, counts = pyhpe.ops.paf_targets(kp, vis, [[0, 1], [2, 3]], (12, 10))
        return hm * w[:, 0, :, None, None] + hu + hb, x.sum() + y.sum() + sw.sum(), pafs, counts

    compiled = torch.compile(targets, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(kp, vis), targets(kp, vis)):
        torch.testing.assert_close(got, want)


def test_torch_compile_out_variants():
    kp = torch.rand(2, 2, 4, 2) * 10
    vis = torch.ones(2, 2, 4)

    def targets(kp, vis, hm_out, paf_out):
        _, w = pyhpe.ops.msra_heatmaps(kp, vis, (12, 10), sigma=2.0, out=hm_out)
        _, counts = pyhpe.ops.paf_targets(kp, vis, [[0, 1], [2, 3]], (12, 10), out=paf_out)
        return w, counts

    compiled = torch.compile(targets, fullgraph=True, backend="aot_eager")
    hm1, paf1 = torch.zeros(2, 4, 10, 12), torch.zeros(2, 4, 10, 12)
    hm2, paf2 = torch.zeros(2, 4, 10, 12), torch.zeros(2, 4, 10, 12)
    for got, want in zip(compiled(kp, vis, hm1, paf1), targets(kp, vis, hm2, paf2)):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(hm1, hm2)
    torch.testing.assert_close(paf1, paf2)
    assert hm1.max() > 0


# ---------------------------------------------------------------------------------------
# hostile inputs: tiny sigmas, huge sizes, option types, autograd
# ---------------------------------------------------------------------------------------

@cpu_and_cuda()
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sigma", [1e-30, 1e-200, 0.0])
def test_tiny_sigma_draws_the_delta_limit(device, dtype, sigma):
    # sigma = 0 only reaches the op directly (the wrappers refuse it)
    kp = torch.tensor([[[[3.0, 2.0], [1.25, 4.0]]]], dtype=dtype, device=device)
    vis = torch.ones(1, 1, 2, dtype=dtype, device=device)
    sig = torch.full((1, 1, 1), sigma, dtype=torch.float64, device=device)
    for encoding in ENCODINGS:
        hm, w = getattr(torch.ops.pyhpe, f"{encoding}_heatmaps")(kp, vis, sig, 6, 5)
        assert torch.isfinite(hm).all(), encoding
        exp = torch.zeros(2, 5, 6, dtype=dtype)
        if encoding != "unbiased":  # the centre pixel int(kp + 0.5) holds 1 (UDP: at 0.0 offset)
            exp[0, 2, 3] = 1.0
            if encoding == "msra":
                exp[1, 4, 1] = 1.0
        else:
            exp[0, 2, 3] = 1.0  # the keypoint sits exactly on a pixel
        assert torch.equal(hm[0].cpu(), exp), encoding
    if sigma > 0:
        hm, _ = pyhpe.ops.msra_heatmaps(kp, vis, (6, 5), sigma=sigma)
        assert hm.max() == 1 and hm.sum() == 2
    kp2, vis2 = kp[:, 0], vis[:, 0]
    x, y, _ = torch.ops.pyhpe.simcc_labels(kp2, vis2, 6, 5, max(sigma, 1e-300),
                                           max(sigma, 1e-300), 2.0, False)
    assert torch.isfinite(x).all() and torch.isfinite(y).all()
    assert x[0, 0].argmax() == 6 and x[0, 0].sum() == 1 and y[0, 0].sum() == 1
    limbs = torch.tensor([[0, 1]], device=device)
    pafs, counts = torch.ops.pyhpe.paf_targets(kp, vis, limbs, 6, 5, max(sigma, 1e-300), "soft")
    assert torch.isfinite(pafs).all() and torch.isfinite(counts).all()


def test_simcc_normalize_refuses_sigma_whose_peak_overflows():
    kp, vis = torch.rand(2, 3, 2) * 8, torch.ones(2, 3)
    x, _, _ = pyhpe.ops.simcc_labels(kp, vis, (8, 8), sigma=1e-30, normalize=True)
    assert torch.isfinite(x).all()
    with pytest.raises(ValueError, match=r"pyhpe.simcc_labels: 'sigma' is too small for "
                                         r"normalize=True"):
        pyhpe.ops.simcc_labels(kp, vis, (8, 8), sigma=1e-40, normalize=True)
    with pytest.raises(ValueError, match="'sigma' is too small"):
        torch.ops.pyhpe.simcc_labels.out(kp, vis, 1e-40, 1.0, 2.0, True,
                                         x_out=torch.empty(2, 3, 16), y_out=torch.empty(2, 3, 16))
    x, _, _ = pyhpe.ops.simcc_labels(kp.double(), vis.double(), (8, 8), sigma=1e-40, normalize=True)
    assert torch.isfinite(x).all()  # float64 holds that peak


def test_huge_sizes_are_refused_before_allocating():
    kp, vis = torch.rand(2, 1, 3, 2), torch.ones(2, 1, 3)
    for encoding, fn in ENCODINGS.items():
        with pytest.raises(ValueError, match=rf"pyhpe.{encoding}_heatmaps: 'heatmap_size' \(W, H\) "
                                             r"must be in \[0, 65536\] each, got \(100000, "
                                             r"100000\)"):
            fn(kp, vis, (100000, 100000))
    with pytest.raises(ValueError, match=r"pyhpe.paf_targets: 'heatmap_size'"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (100000, 100000))
    with pytest.raises(ValueError, match=r"pyhpe.simcc_labels: 'input_size'"):
        pyhpe.ops.simcc_labels(kp[:, 0], vis[:, 0], (2**62, 8))
    with pytest.raises(ValueError, match=r"pyhpe.simcc_labels: 'input_size' w = 10000000 with "
                                         r"split_ratio 2 asks for"):
        pyhpe.ops.simcc_labels(kp[:, 0], vis[:, 0], (10_000_000, 8))
    with pytest.raises(ValueError, match="'heatmap_size' must fit in int64"):
        pyhpe.ops.msra_heatmaps(kp, vis, (2**64, 4))
    # element counts are checked with overflow-safe products (an expanded batch has no memory)
    big = torch.zeros(1, 1, 1, 2).expand(2**40, 1, 1, 2)
    big_vis = torch.ones(1, 1, 1).expand(2**40, 1, 1)
    with pytest.raises(ValueError, match="pyhpe.unbiased_heatmaps: the requested 'heatmaps' of "
                                         "shape .* has more elements than int64 can count"):
        torch.ops.pyhpe.unbiased_heatmaps(big, big_vis, torch.ones(1, 1, 1, dtype=torch.float64),
                                          65536, 65536)
    with pytest.raises(ValueError, match="pyhpe.paf_targets: the requested 'pafs'"):
        torch.ops.pyhpe.paf_targets(big, big_vis, torch.tensor([[0, 0]]), 65536, 65536, 1.0,
                                    "hard")


def test_sizes_and_options_must_be_integers_and_numbers():
    kp, vis = torch.rand(2, 1, 3, 2) * 8, torch.ones(2, 1, 3)
    with pytest.raises(ValueError, match=r"pyhpe.msra_heatmaps: 'heatmap_size' must be an "
                                         r"integer, got 48.9"):
        pyhpe.ops.msra_heatmaps(kp, vis, (48.9, 64))
    with pytest.raises(TypeError, match="pyhpe.udp_heatmaps: 'heatmap_size' must be an integer"):
        pyhpe.ops.udp_heatmaps(kp, vis, ("48", 64))
    with pytest.raises(TypeError, match=r"pyhpe.msra_heatmaps: 'heatmap_size' must be \(W, H\)"):
        pyhpe.ops.msra_heatmaps(kp, vis, 48)
    a, _ = pyhpe.ops.msra_heatmaps(kp, vis, (12.0, 10.0))
    b, _ = pyhpe.ops.msra_heatmaps(kp, vis, (np.int64(12), 10))
    assert torch.equal(a, b) and a.shape == (2, 3, 10, 12)
    with pytest.raises(TypeError, match="pyhpe.msra_heatmaps: 'sigma' must be a float or a "
                                        "tensor"):
        pyhpe.ops.msra_heatmaps(kp, vis, (12, 10), sigma="2")
    with pytest.raises(TypeError, match="pyhpe.unbiased_heatmaps: 'sigma' must be a float or a "
                                        "tensor"):
        pyhpe.ops.unbiased_heatmaps(kp, vis, (12, 10), sigma=[object()])
    with pytest.raises(TypeError, match="pyhpe.msra_heatmaps: 'sigma' must hold real numbers"):
        pyhpe.ops.msra_heatmaps(kp, vis, (12, 10), sigma=torch.tensor([True]))
    kp2, vis2 = kp[:, 0], vis[:, 0]
    with pytest.raises(ValueError, match=r"pyhpe.simcc_labels: 'input_size' must be an integer, "
                                         r"got 48.9"):
        pyhpe.ops.simcc_labels(kp2, vis2, (48.9, 64))
    with pytest.raises(TypeError, match=r"pyhpe.simcc_labels: 'sigma\[1\]' must be a number"):
        pyhpe.ops.simcc_labels(kp2, vis2, (12, 10), sigma=(2.0, "x"))
    with pytest.raises(TypeError, match="pyhpe.simcc_labels: 'sigma' must be a number"):
        pyhpe.ops.simcc_labels(kp2, vis2, (12, 10), sigma="abc")
    with pytest.raises(TypeError, match="pyhpe.simcc_labels: 'split_ratio' must be a "
                                        "number"):
        pyhpe.ops.simcc_labels(kp2, vis2, (12, 10), sigma=2.0, split_ratio="2")
    with pytest.raises(TypeError, match="pyhpe.paf_targets: 'limb_width' must be a number"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (12, 10), limb_width="1")
    with pytest.raises(ValueError, match=r"pyhpe.paf_targets: 'heatmap_size' must be an "
                                         r"integer, got 11.5"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (11.5, 10))
    with pytest.raises(TypeError, match="pyhpe.msra_heatmaps: 'keypoints' must be a tensor or "
                                        "an array of numbers"):
        pyhpe.ops.msra_heatmaps([["a", "b"]], None, (12, 10))
    with pytest.raises(TypeError, match="pyhpe.simcc_labels: 'visibility' must be a tensor"):
        pyhpe.ops.simcc_labels(kp2, "all", (12, 10))
    with pytest.raises(TypeError, match="pyhpe.paf_targets: 'limbs' must be a tensor"):
        pyhpe.ops.paf_targets(kp, vis, [["a", "b"]], (12, 10))


@cpu_and_cuda()
def test_targets_are_not_differentiable(device):
    kp = (torch.rand(2, 1, 3, 2, device=device) * 8).requires_grad_(True)
    vis = torch.ones(2, 1, 3, device=device)
    sig = torch.ones(1, 1, 1, dtype=torch.float64, device=device)
    limbs = torch.tensor([[0, 1]], device=device)
    cases = [
        ("msra_heatmaps", "keypoints", lambda: pyhpe.ops.msra_heatmaps(kp, vis, (6, 5))),
        ("udp_heatmaps", "keypoints", lambda: pyhpe.ops.udp_heatmaps(kp, vis, (6, 5))),
        ("unbiased_heatmaps", "keypoints", lambda: pyhpe.ops.unbiased_heatmaps(kp, vis, (6, 5))),
        ("msra_heatmaps", "visibility",
         lambda: pyhpe.ops.msra_heatmaps(kp.detach(), vis.clone().requires_grad_(True), (6, 5))),
        ("udp_heatmaps", "sigma",
         lambda: torch.ops.pyhpe.udp_heatmaps(kp.detach(), vis,
                                              sig.clone().requires_grad_(True), 6, 5)),
        ("simcc_labels", "keypoints", lambda: pyhpe.ops.simcc_labels(kp[:, 0], vis[:, 0], (6, 5))),
        ("paf_targets", "keypoints", lambda: pyhpe.ops.paf_targets(kp, vis, limbs, (6, 5))),
        ("unbiased_heatmaps", "keypoints",
         lambda: torch.ops.pyhpe.unbiased_heatmaps.out(kp, vis, sig,
                                                       out=torch.empty(2, 3, 5, 6, device=device))),
        ("simcc_labels", "keypoints",
         lambda: torch.ops.pyhpe.simcc_labels.out(kp[:, 0], vis[:, 0], 2.0, 2.0, 2.0, False,
                                                  x_out=torch.empty(2, 3, 12, device=device),
                                                  y_out=torch.empty(2, 3, 10, device=device))),
    ]
    for name, arg, call in cases:
        with pytest.raises(RuntimeError, match=f"pyhpe.{name}: is not differentiable, but "
                                               f"'{arg}' requires grad"):
            call()
        with torch.no_grad():
            outs = call()
        assert not any(t.requires_grad for t in outs)


@cpu_and_cuda()
def test_out_must_not_require_grad(device):
    kp, vis = torch.rand(2, 1, 3, 2, device=device) * 8, torch.ones(2, 1, 3, device=device)
    leaf = torch.zeros(2, 3, 5, 6, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="pyhpe.msra_heatmaps: 'out' requires grad"):
        pyhpe.ops.msra_heatmaps(kp, vis, (6, 5), out=leaf)
    with pytest.raises(RuntimeError, match="pyhpe.msra_heatmaps: 'out' requires grad"):
        torch.ops.pyhpe.msra_heatmaps.out(kp, vis, torch.ones(1, 1, 1, dtype=torch.float64,
                                                              device=device), out=leaf)
    assert leaf.abs().sum() == 0  # nothing was written
    with pytest.raises(RuntimeError, match=r"pyhpe.simcc_labels: 'out\[1\]' requires grad"):
        pyhpe.ops.simcc_labels(kp[:, 0], vis[:, 0], (6, 5), sigma=2.0,
                               out=(torch.zeros(2, 3, 12, device=device),
                                    torch.zeros(2, 3, 10, device=device, requires_grad=True)))
    with pytest.raises(RuntimeError, match="pyhpe.paf_targets: 'out' requires grad"):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (6, 5),
                              out=torch.zeros(2, 2, 5, 6, device=device, requires_grad=True))
    with pytest.raises(RuntimeError, match="pyhpe.paf_targets: 'out' requires grad"):
        torch.ops.pyhpe.paf_targets.out(kp, vis, torch.tensor([[0, 1]], device=device), 1.0,
                                        "hard", out=torch.zeros(2, 2, 5, 6, device=device,
                                                                requires_grad=True))
    # a plain out tensor is written and its version counter moves, as for torch's out= ops
    out = torch.zeros(2, 3, 5, 6, device=device)
    before = out._version
    pyhpe.ops.msra_heatmaps(kp, vis, (6, 5), out=out)
    assert out._version > before and out.max() > 0


def test_results_are_named_and_options_keyword_only():
    kp, vis = torch.rand(2, 1, 3, 2) * 8, torch.ones(2, 1, 3)
    for fn in ENCODINGS.values():
        targets = fn(kp, vis, (6, 5), sigma=1.5)
        assert isinstance(targets, pyhpe.ops.HeatmapTargets)
        assert targets.heatmaps.shape == (2, 3, 5, 6) and targets.keypoint_weights.shape == (2, 1,
                                                                                             3)
        with pytest.raises(TypeError):
            fn(kp, vis, (6, 5), 1.5)
    simcc = pyhpe.ops.simcc_labels(kp[:, 0], vis[:, 0], (6, 5), split_ratio=2.0)
    assert isinstance(simcc, pyhpe.ops.SimCCTargets) and simcc.x_labels.shape == (2, 3, 12)
    pafs = pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (6, 5), limb_width=1.0)
    assert isinstance(pafs, pyhpe.ops.PAFTargets) and pafs.counts.shape == (2, 1, 5, 6)
    with pytest.raises(TypeError):
        pyhpe.ops.paf_targets(kp, vis, [[0, 1]], (6, 5), 1.0)


@cpu_and_cuda()
def test_paf_limbs_from_the_host_or_the_device_agree(device):
    """Limbs may be a list, a CPU tensor (checked on the host, copied to the device
    asynchronously: no synchronisation in a GPU training step) or a tensor on the keypoints'
    device; the fields are the same, and bad limbs are refused whichever way they come."""
    g = torch.Generator().manual_seed(3)
    kp = (torch.rand(2, 3, 4, 2, generator=g) * 12).to(device)
    vis = torch.ones(2, 3, 4, device=device)
    pairs = [[0, 1], [1, 2], [2, 3]]
    want = pyhpe.ops.paf_targets(kp, vis, torch.tensor(pairs, device=device), (12, 10))
    for limbs in (pairs, torch.tensor(pairs), torch.tensor(pairs, dtype=torch.int32)):
        got = pyhpe.ops.paf_targets(kp, vis, limbs, (12, 10))
        assert got.pafs.device == kp.device
        assert torch.equal(got.pafs, want.pafs) and torch.equal(got.counts, want.counts)
    for limbs in ([[0, 4]], torch.tensor([[0, 4]]), torch.tensor([[0, 4]], device=device)):
        with pytest.raises(ValueError, match=r"'limbs' entries must be keypoint indices"):
            pyhpe.ops.paf_targets(kp, vis, limbs, (12, 10))
