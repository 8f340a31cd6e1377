"""OpenPose bottom-up grouping ops vs the pure-Python OpenPose port (pyhpe.reference.paf)."""
import numpy as np
import pytest
import torch
from conftest import cpu_and_cuda

import pyhpe.ops as ops
from pyhpe.ops.paf import COCO17_LIMBS, COCO18_LIMBS, COCO18_PAF_CHANNELS, PAFGrouper
from pyhpe.reference import paf as ref

DTYPES = [np.float32, np.float64]


def smooth_noise(rng, shape, dtype, passes=2):
    """Random maps with many local maxima, plateaus excluded by continuous values."""
    x = rng.random(shape)
    for _ in range(passes):
        x = (x + np.roll(x, 1, -1) + np.roll(x, 1, -2)) / 3.0
    return x.astype(dtype)


def random_peaks(rng, B, K, M, H, W, dtype, full=False):
    counts = rng.integers(0, M + 1, size=(B, K)) if not full else np.full((B, K), M)
    peaks = np.zeros((B, K, M, 3), dtype=dtype)
    for b in range(B):
        for k in range(K):
            n = counts[b, k]
            peaks[b, k, :n, 0] = rng.uniform(-1, W, n)
            peaks[b, k, :n, 1] = rng.uniform(-1, H, n)
            peaks[b, k, :n, 2] = rng.uniform(0.05, 1, n)
    return peaks, counts.astype(np.int64)


# ------------------------------------------------------------------------------------------
# find_peaks

@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", ["cpu", "gpu"])
@pytest.mark.parametrize("radius", [3, 1, -1])
def test_find_peaks_matches_openpose(device, dtype, border, radius):
    rng = np.random.default_rng(1)
    hm = smooth_noise(rng, (2, 3, 17, 23), dtype)
    for max_peaks in (64, 5):
        want_p, want_c = ref.find_peaks(hm, 0.3, max_peaks, radius, border)
        got_p, got_c = ops.find_peaks(torch.from_numpy(hm).to(device), threshold=0.3,
                                      max_peaks=max_peaks,
                                      refine=radius >= 0, refine_radius=max(radius, 0),
                                      border=border)
        assert got_c.dtype == torch.int64
        np.testing.assert_array_equal(got_c.cpu().numpy(), want_c)
        np.testing.assert_array_equal(got_p.cpu().numpy(), want_p)
        # The GPU's flag + compaction form gives the same answer.
        got_p, got_c = ops.find_peaks(torch.from_numpy(hm).to(device), threshold=0.3,
                                      max_peaks=max_peaks,
                                      refine=radius >= 0, refine_radius=max(radius, 0),
                                      border=border, two_pass=True)
        np.testing.assert_array_equal(got_c.cpu().numpy(), want_c)
        np.testing.assert_array_equal(got_p.cpu().numpy(), want_p)
    assert want_c.max() > 1


@cpu_and_cuda()
def test_find_peaks_border_rules(device):
    hm = np.zeros((1, 1, 6, 7), dtype=np.float64)
    hm[0, 0, 0, 3] = 0.9   # outer border (not on an inner ring line): never a peak
    hm[0, 0, 3, 1] = 0.8   # first inner ring: non-strict maximum
    hm[0, 0, 3, 2] = 0.8   # interior, ties with its left neighbour: not a strict maximum
    hm[0, 0, 0, 1] = 0.7   # x == 1 on the top border: neighbours outside count as threshold
    t = torch.from_numpy(hm).to(device)
    p, c = ops.find_peaks(t, threshold=0.1, refine=False)
    assert c.tolist() == [[2]]
    assert p[0, 0, :2].cpu().tolist() == [[1.0, 0.0, 0.7], [1.0, 3.0, 0.8]]
    p, c = ops.find_peaks(t, threshold=0.1, refine=False, border="gpu")
    assert c.tolist() == [[0]]  # OpenPose's CUDA rule: strict everywhere, border excluded


@cpu_and_cuda()
def test_find_peaks_refinement_is_centroid(device):
    hm = np.zeros((1, 1, 9, 9))
    hm[0, 0, 4, 4] = 1.0
    hm[0, 0, 4, 5] = 0.5
    hm[0, 0, 2, 2] = -3.0  # non-positive values do not weigh
    p, c = ops.find_peaks(torch.from_numpy(hm).to(device), threshold=0.05)
    assert c.item() == 1
    np.testing.assert_allclose(p[0, 0, 0].cpu().numpy(), [(4 + 2.5) / 1.5, 4.0, 1.0])


# ------------------------------------------------------------------------------------------
# paf_scores

@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_samples", [10, None, 3])
def test_paf_scores_matches_openpose(device, dtype, num_samples):
    rng = np.random.default_rng(2)
    B, K, M, H, W = 2, 4, 5, 19, 27
    limbs = [(0, 1), (1, 2), (2, 3), (3, 0), (1, 3)]
    channels = [(1, 0), (2, 3), (4, 5), (9, 8), (6, 7)]
    pafs = (smooth_noise(rng, (B, 10, H, W), dtype) * 2 - 1).astype(dtype)
    peaks, counts = random_peaks(rng, B, K, M, H, W, dtype)
    peaks[0, 1, 0, :2] = peaks[0, 0, 0, :2] + 0.5   # close pair: the distance prior
    peaks[1, 2, 0, :2] = peaks[1, 1, 0, :2]         # coincident pair: invalid
    counts[:, :3] = np.maximum(counts[:, :3], 1)
    for min_fraction, prior in ((0.3, True), (0.6, False), (0.95, True)):
        want = ref.paf_scores(pafs, peaks, counts, limbs, num_samples, 0.02, min_fraction,
                              channels, prior, 0.05)
        got = ops.paf_scores(torch.from_numpy(pafs).to(device), torch.from_numpy(peaks).to(device),
                             torch.from_numpy(counts).to(device), limbs, num_samples=num_samples, inter_threshold=0.02,
                             min_fraction=min_fraction, paf_channels=channels, distance_prior=prior)
        assert got.shape == (B, len(limbs), M, M)
        np.testing.assert_array_equal(got.cpu().numpy(), want)
    valid = want > 0
    assert valid.any() and (~valid).any()
    assert set(np.unique(want[~valid])) == {-1.0}


@cpu_and_cuda()
def test_paf_scores_prior_and_padding(device):
    pafs = torch.zeros(1, 2, 300, 300, dtype=torch.float64, device=device)
    peaks = torch.zeros(1, 2, 3, 3, dtype=torch.float64, device=device)
    peaks[0, 0, 0] = torch.tensor([10.0, 10.0, 1.0])
    peaks[0, 1, 0] = torch.tensor([11.0, 10.0, 1.0])   # 1 px < sqrt(300*300)/150 = 2 px
    peaks[0, 1, 1] = torch.tensor([20.0, 10.0, 1.0])
    counts = torch.tensor([[1, 2]], device=device)
    s = ops.paf_scores(pafs, peaks, counts, [(0, 1)]).cpu()
    assert s[0, 0, 0, 0].item() == pytest.approx(0.05 + 1e-6)
    assert s[0, 0, 0, 1].item() == -1.0
    assert (s[0, 0, 1:] == -1).all() and (s[0, 0, :, 2] == -1).all()
    s = ops.paf_scores(pafs, peaks, counts, [(0, 1)], distance_prior=False).cpu()
    assert s[0, 0, 0, 0].item() == -1.0
    pafs[0, 0] = 1.0  # a field pointing +x everywhere
    s = ops.paf_scores(pafs, peaks, counts, [(0, 1)]).cpu()
    assert s[0, 0, 0, 1].item() == 1.0


# ------------------------------------------------------------------------------------------
# group_poses

def _random_grouping_inputs(rng, B, K, M, limbs, dtype):
    peaks, counts = random_peaks(rng, B, K, M, 40, 40, dtype)
    L = len(limbs)
    scores = rng.uniform(-0.5, 1.0, size=(B, L, M, M)).astype(dtype)
    scores[scores < 0.05] = -1
    return peaks, counts, scores


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method,assembly", [("greedy", "cpu"), ("hungarian", "cpu"),
                                             ("greedy", "gpu")])
@pytest.mark.parametrize("skeleton", ["coco18", "coco17", "mpi15", "body25"])
def test_group_poses_matches_openpose(device, dtype, method, assembly, skeleton):
    rng = np.random.default_rng(3)
    if skeleton == "coco18":
        limbs, K = COCO18_LIMBS, 18
    elif skeleton == "coco17":
        limbs, K = COCO17_LIMBS, 17
    elif skeleton == "body25":  # K == 25: feet do not count towards min_parts
        limbs, K = [(1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10),
                    (10, 11), (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16),
                    (16, 18), (2, 17), (5, 18), (14, 19), (19, 20), (14, 21), (11, 22),
                    (22, 23), (11, 24)], 25
    else:  # K == 15: OpenPose's MPI rule keeps duplicate one-part people
        limbs, K = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 14), (14, 8),
                    (8, 9), (9, 10), (14, 11), (11, 12), (12, 13)], 15
    for M, min_parts, min_mean, max_persons in ((6, 3, 0.2, None), (4, 1, 0.0, None),
                                                (5, 2, 0.3, 3), (3, 1, 0.0, 0)):
        peaks, counts, scores = _random_grouping_inputs(rng, 3, K, M, limbs, dtype)
        want = ref.group_poses(peaks, counts, scores, limbs, min_parts, min_mean, method,
                               max_persons, assembly=assembly)
        t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        persons, pscores, pcounts, idx = ops.group_poses(
            t(peaks), t(counts), t(scores), limbs, min_parts=min_parts, min_mean_score=min_mean, method=method,
            max_persons=max_persons, assembly=assembly)
        assert persons.device.type == device
        assert pcounts.tolist() == [len(w[1]) for w in want]
        for b, (parts, sc) in enumerate(want):
            n = len(sc)
            np.testing.assert_array_equal(idx[b, :n].cpu().numpy(), parts)
            np.testing.assert_array_equal(pscores[b, :n].cpu().numpy(), sc)
            np.testing.assert_array_equal(persons[b, :n].cpu().numpy(),
                                          ref.keypoints_of(peaks[b], parts))
            assert (persons[b, n:] == 0).all() and (idx[b, n:] == -1).all()
        assert sum(pcounts.tolist()) > 0 or max_persons == 0


def test_hungarian_beats_greedy_on_a_trap():
    # Greedy takes (0, 0) = 0.9 and is left with (1, 1) = 0.1; the optimum is 0.8 + 0.8.
    peaks = torch.zeros(1, 2, 2, 3, dtype=torch.float64)
    peaks[..., 2] = 1.0
    counts = torch.tensor([[2, 2]])
    scores = torch.tensor([[[[0.9, 0.8], [0.8, 0.1]]]], dtype=torch.float64)
    _, _, _, idx = ops.group_poses(peaks, counts, scores, [(0, 1)], min_parts=2,
                                   min_mean_score=0.0, method="greedy")
    assert idx[0].tolist() == [[0, 0], [1, 1]]
    _, _, _, idx = ops.group_poses(peaks, counts, scores, [(0, 1)], min_parts=2,
                                   min_mean_score=0.0, method="hungarian")
    assert sorted(idx[0].tolist()) == [[0, 1], [1, 0]]


# ------------------------------------------------------------------------------------------
# Whole pipeline on rendered scenes

def _match_people(found, truth, tol):
    """Each found person equals exactly one true person, part for part."""
    used = set()
    for person in found:
        d = np.abs(truth - person[None, :, :2]).max(axis=(1, 2))
        best = int(np.argmin(d))
        assert d[best] < tol, f"person not recovered (max error {d[best]:.2f} px)"
        assert best not in used
        used.add(best)
        assert (person[:, 2] > 0.5).all()
    assert len(used) == len(truth)


@cpu_and_cuda()
@pytest.mark.parametrize("skeleton", ["coco18", "coco17"])
@pytest.mark.parametrize("method,assembly", [("greedy", "cpu"), ("hungarian", "cpu"),
                                             ("greedy", "gpu")])
def test_rendered_scenes_are_grouped_back_exactly(device, skeleton, method, assembly):
    rng = np.random.default_rng(4)
    limbs = COCO18_LIMBS if skeleton == "coco18" else COCO17_LIMBS
    channels = COCO18_PAF_CHANNELS if skeleton == "coco18" else None
    people, hm, pf = ref.render_batch(rng, 2, 9, 110, 170, limbs, channels, parts=skeleton)
    bkg = np.maximum(0, 1 - hm.max(axis=1, keepdims=True))  # OpenPose's extra channel
    out = ops.paf_group(torch.from_numpy(np.concatenate([hm, bkg], 1)).to(device),
                        torch.from_numpy(pf).to(device), skeleton, method=method,
                        assembly=assembly)
    assert len(out) == 2
    for b, (keypoints, scores) in enumerate(out):
        assert keypoints.shape == (9, len(people[b][0]), 3) and scores.shape == (9,)
        _match_people(keypoints.numpy(), people[b], tol=0.5)
        assert (scores > 0).all()
    want = ref.openpose_pipeline(hm, pf, limbs, channels, method=method, assembly=assembly)
    for (kp, sc), (wkp, wsc) in zip(out, want):
        np.testing.assert_array_equal(kp.numpy(), wkp)
        np.testing.assert_array_equal(sc.numpy(), wsc)


def test_gpu_assembly_merges_people_grown_from_both_ends():
    # Chain 0-1-2-3 with limbs listed (0, 1), (2, 3), (1, 2): the CPU assembly starts a second
    # person at limb (2, 3) and cannot join them; the GPU assembly merges them at (1, 2).
    limbs = [(0, 1), (2, 3), (1, 2)]
    peaks = torch.zeros(1, 4, 1, 3, dtype=torch.float64)
    peaks[..., 2] = 1.0
    counts = torch.ones(1, 4, dtype=torch.int64)
    scores = torch.full((1, 3, 1, 1), 0.9, dtype=torch.float64)
    _, s_cpu, n_cpu, idx = ops.group_poses(peaks, counts, scores, limbs, min_parts=1,
                                           min_mean_score=0.0)
    assert n_cpu.tolist() == [2]
    _, s_gpu, n_gpu, idx = ops.group_poses(peaks, counts, scores, limbs, min_parts=1,
                                           min_mean_score=0.0,
                                           assembly="gpu")
    assert n_gpu.tolist() == [1] and idx[0, 0].tolist() == [0, 0, 0, 0]
    assert s_gpu[0, 0].item() == pytest.approx((4 * 1.0 + 3 * 0.9) / (4 + 3))


def test_custom_skeleton_and_unbatched():
    rng = np.random.default_rng(5)
    limbs = [(1, 0), (1, 2), (2, 3)]
    people = rng.uniform(10, 50, size=(1, 4, 2))
    people[0] = [[20, 10], [20, 25], [35, 30], [45, 45]]
    hm, pf = ref.render_scene(people, 60, 60, limbs, dtype=np.float64)
    out = ops.paf_group(torch.from_numpy(hm), torch.from_numpy(pf), limbs)
    assert len(out) == 1
    _match_people(out[0][0].numpy(), people, tol=0.5)
    grouper = PAFGrouper(limbs, min_parts=4)
    kp, sc = grouper(torch.from_numpy(hm)[None], torch.from_numpy(pf)[None])[0]
    np.testing.assert_array_equal(kp.numpy(), out[0][0].numpy())
    assert "skeleton=3 limbs" in repr(grouper)


# ------------------------------------------------------------------------------------------
# Edge cases and errors

@cpu_and_cuda()
def test_empty_inputs(device):
    p, c = ops.find_peaks(torch.zeros(0, 18, 8, 8, device=device))
    assert p.shape == (0, 18, 64, 3) and c.shape == (0, 18)
    p, c = ops.find_peaks(torch.zeros(2, 3, 8, 8, device=device), max_peaks=0)
    assert p.shape == (2, 3, 0, 3) and (c == 0).all()
    p, c = ops.find_peaks(torch.zeros(1, 18, 8, 8, device=device))
    assert (c == 0).all()
    s = ops.paf_scores(torch.zeros(1, 38, 8, 8, device=device), p, c, COCO18_LIMBS,
                       paf_channels=COCO18_PAF_CHANNELS)
    assert s.shape == (1, 19, 64, 64) and (s == -1).all()
    persons, ps, pc, _ = ops.group_poses(p, c, s, COCO18_LIMBS)
    assert persons.shape == (1, 0, 18, 3) and ps.shape == (1, 0) and pc.tolist() == [0]
    assert ops.paf_group(torch.zeros(0, 18, 8, 8), torch.zeros(0, 38, 8, 8)) == []


def test_bad_inputs():
    hm = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="'heatmaps' must have shape"):
        ops.find_peaks(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="'heatmaps' must be float32 or float64"):
        torch.ops.pyhpe.find_peaks(torch.zeros(1, 1, 4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="'border' must be 'cpu' or 'gpu'"):
        ops.find_peaks(hm, border="edge")
    p, c = ops.find_peaks(hm)
    with pytest.raises(ValueError, match="'limbs' entries must be part indices"):
        ops.paf_scores(torch.rand(1, 2, 8, 8), p, c, [(0, 3)])
    with pytest.raises(ValueError, match="'paf_channels' entries must be channels"):
        ops.paf_scores(torch.rand(1, 2, 8, 8), p, c, [(0, 1)], paf_channels=[(0, 2)])
    with pytest.raises(ValueError, match="'limbs' must have shape"):
        ops.paf_scores(torch.rand(1, 2, 8, 8), p, c, [0, 1])
    with pytest.raises(TypeError, match="'peaks' must have the dtype of 'pafs'"):
        torch.ops.pyhpe.paf_scores(torch.rand(1, 2, 8, 8, dtype=torch.float64), p, c,
                                   torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="'counts' must have shape"):
        ops.paf_scores(torch.rand(1, 2, 8, 8), p, c[0], [(0, 1)])
    s = ops.paf_scores(torch.rand(1, 2, 8, 8), p, c, [(0, 1)])
    with pytest.raises(ValueError, match="'method' must be 'greedy' or 'hungarian'"):
        ops.group_poses(p, c, s, [(0, 1)], method="auction")
    with pytest.raises(ValueError, match="'assembly' must be 'cpu' or 'gpu'"):
        ops.group_poses(p, c, s, [(0, 1)], assembly="tpu")
    with pytest.raises(ValueError, match="'method' must be 'greedy'"):
        ops.group_poses(p, c, s, [(0, 1)], method="hungarian", assembly="gpu")
    with pytest.raises(ValueError, match="'scores' must have shape"):
        ops.group_poses(p, c, s[:, :, :3], [(0, 1)])
    with pytest.raises(ValueError, match="'counts' must lie in"):
        ops.group_poses(p, c + 100, s, [(0, 1)])
    with pytest.raises(ValueError, match="unknown skeleton"):
        ops.paf_group(hm, torch.rand(1, 2, 8, 8), "body25")
    with pytest.raises(ValueError, match="'min_fraction' must be finite"):
        ops.paf_scores(torch.rand(1, 2, 8, 8), p, c, [(0, 1)], min_fraction=float("nan"))
    with pytest.raises(ValueError, match="'inter_threshold' must be finite"):
        ops.paf_scores(torch.rand(1, 2, 8, 8), p, c, [(0, 1)], inter_threshold=float("inf"))
    with pytest.raises(ValueError, match=r"'num_samples' must lie in \[1, 65536\], got 0"):
        ops.paf_scores(torch.rand(1, 2, 8, 8), p, c, [(0, 1)], num_samples=0)


# ------------------------------------------------------------------------------------------
# Hostile inputs: integer options, sizes, non-finite values

def _scores_inputs():
    hm = torch.rand(1, 3, 8, 8)
    p, c = ops.find_peaks(hm)
    return hm, torch.rand(1, 2, 8, 8), p, c


@pytest.mark.parametrize("value", [2 ** 31, 2 ** 32, 2 ** 63 - 1, -2])
def test_find_peaks_integer_options_range_checked(value):
    hm = torch.rand(1, 1, 6, 6)
    for name in ("max_peaks", "refine_radius"):
        with pytest.raises(ValueError, match=f"pyhpe.find_peaks: '{name}' must lie in"):
            ops.find_peaks(hm, **{name: value})
    # The op itself checks before narrowing to int (refine_radius -1 means no refinement).
    with pytest.raises(ValueError, match="'max_peaks' must lie in"):
        torch.ops.pyhpe.find_peaks(hm, 0.05, value, 3, "cpu", False)
    with pytest.raises(ValueError, match="'refine_radius' must lie in"):
        torch.ops.pyhpe.find_peaks(hm, 0.05, 8, value, "cpu", False)


def test_find_peaks_huge_radius_is_clipped_to_the_map():
    rng = np.random.default_rng(11)
    hm = smooth_noise(rng, (1, 2, 9, 11), np.float64)
    want_p, want_c = ref.find_peaks(hm, 0.3, 16, 20)  # a window beyond the map
    for radius in (20, 2 ** 31 - 1):
        got_p, got_c = ops.find_peaks(torch.from_numpy(hm), threshold=0.3, max_peaks=16,
                                      refine_radius=radius)
        np.testing.assert_array_equal(got_c.numpy(), want_c)
        np.testing.assert_array_equal(got_p.numpy(), want_p)


@pytest.mark.parametrize("name,value,error", [
    ("max_peaks", 48.9, ValueError), ("max_peaks", "64", TypeError),
    ("max_peaks", None, TypeError), ("max_peaks", True, TypeError),
    ("refine_radius", 2.5, ValueError), ("refine_radius", [3], TypeError),
    ("threshold", "0.1", TypeError), ("threshold", float("nan"), ValueError)])
def test_find_peaks_option_types(name, value, error):
    with pytest.raises(error, match=f"pyhpe.find_peaks: '{name}'"):
        ops.find_peaks(torch.rand(1, 1, 6, 6), **{name: value})


def test_integral_floats_are_accepted_not_truncated():
    hm = torch.rand(1, 2, 7, 7)
    want = ops.find_peaks(hm, threshold=0.1, max_peaks=5, refine_radius=2)
    got = ops.find_peaks(hm, threshold=0.1, max_peaks=5.0, refine_radius=2.0)
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def test_find_peaks_huge_output_is_a_size_error():
    hm = torch.rand(64, 64, 4, 4)
    with pytest.raises(ValueError, match="output peaks .* would exceed .* lower 'max_peaks'"):
        ops.find_peaks(hm, max_peaks=2 ** 31 - 1)


@pytest.mark.parametrize("two_pass", [False, True])
def test_find_peaks_infinite_and_nan_pixels(two_pass):
    hm = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    hm[0, 0, 4, 4] = float("inf")
    hm[0, 0, 4, 5] = 0.5
    hm[0, 0, 1, 6] = float("nan")   # never a peak, never weighs
    hm[0, 0, 6, 2] = 0.8
    hm[0, 0, 6, 3] = float("nan")  # compares false: (6, 2) is no strict maximum
    hm[0, 0, 2, 2] = 0.7           # a NaN two pixels away is only outside the centroid
    hm[0, 0, 1, 4] = float("nan")
    p, c = ops.find_peaks(hm, threshold=0.1, two_pass=two_pass)
    assert c.item() == 2
    # +inf in the window: the centroid is undefined, the peak keeps its integer position
    # (both peaks here have the inf pixel in their 7x7 window).
    assert p[0, 0, 0].tolist() == [2.0, 2.0, 0.7]
    assert p[0, 0, 1].tolist() == [4.0, 4.0, float("inf")]
    assert torch.isfinite(p[0, 0, :, :2]).all()
    want_p, want_c = ref.find_peaks(hm.numpy(), 0.1, 64, 3)
    np.testing.assert_array_equal(p.numpy(), want_p)
    # A negative threshold with no positive value in the window: integer position too.
    neg = torch.full((1, 1, 7, 7), -1.0, dtype=torch.float64)
    neg[0, 0, 3, 3] = -0.5
    p, c = ops.find_peaks(neg, threshold=-0.9)
    assert c.item() == 1 and p[0, 0, 0].tolist() == [3.0, 3.0, -0.5]


@pytest.mark.parametrize("value", [2 ** 16 + 1, 2 ** 31, 2 ** 32, -1])
def test_paf_scores_num_samples_range_checked(value):
    hm, pafs, p, c = _scores_inputs()
    with pytest.raises(ValueError, match="pyhpe.paf_scores: 'num_samples' must lie in"):
        ops.paf_scores(pafs, p, c, [(0, 1)], num_samples=value)
    with pytest.raises(ValueError, match="pyhpe.paf_scores: 'num_samples' must lie in"):
        torch.ops.pyhpe.paf_scores(pafs, p, c, torch.tensor([[0, 1]]), torch.tensor([[0, 1]]),
                                   value, 0.05, 0.95, True, 0.05)


@pytest.mark.parametrize("name,value,error", [
    ("num_samples", 10.5, ValueError), ("num_samples", "10", TypeError),
    ("min_fraction", -0.1, ValueError), ("min_fraction", 1.5, ValueError),
    ("min_fraction", "high", TypeError), ("prior_score", float("inf"), ValueError),
    ("inter_threshold", None, TypeError)])
def test_paf_scores_option_checks(name, value, error):
    hm, pafs, p, c = _scores_inputs()
    with pytest.raises(error, match=f"pyhpe.paf_scores: '{name}'"):
        ops.paf_scores(pafs, p, c, [(0, 1)], **{name: value})


def test_paf_scores_min_fraction_zero_never_gives_nan():
    # min_fraction = 0 accepts a pair once one sample counts, so the mean is never 0 / 0.
    rng = np.random.default_rng(12)
    pafs = (smooth_noise(rng, (1, 2, 16, 16), np.float64) * 2 - 1)
    peaks, counts = random_peaks(rng, 1, 2, 6, 16, 16, np.float64, full=True)
    got = ops.paf_scores(torch.from_numpy(pafs), torch.from_numpy(peaks),
                         torch.from_numpy(counts), [(0, 1)], min_fraction=0.0)
    assert not torch.isnan(got).any()
    want = ref.paf_scores(pafs, peaks, counts, [(0, 1)], 10, 0.05, 0.0)
    np.testing.assert_array_equal(got.numpy(), want)


def test_paf_scores_counts_checked():
    hm, pafs, p, c = _scores_inputs()
    for bad in (c + 100, c - 100):
        with pytest.raises(ValueError, match=r"pyhpe.paf_scores: 'counts' must lie in \[0, M"):
            ops.paf_scores(pafs, p, bad, [(0, 1)])
    with pytest.raises(TypeError, match="pyhpe.paf_scores: 'counts' must be int64 or int32"):
        ops.paf_scores(pafs, p, c.double(), [(0, 1)])


def test_paf_scores_limbs_shapes():
    hm, pafs, p, c = _scores_inputs()
    with pytest.raises(ValueError, match=r"pyhpe.paf_scores: 'limbs' must have shape \(L, 2\)"):
        ops.paf_scores(pafs, p, c, torch.zeros(3, 0, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"pyhpe.paf_scores: 'limbs' must have shape \(L, 2\)"):
        ops.paf_scores(pafs, p, c, np.zeros((2, 0), dtype=np.int64))
    with pytest.raises(TypeError, match="pyhpe.paf_scores: 'limbs' must hold integer"):
        ops.paf_scores(pafs, p, c, [(0.0, 1.5)])
    with pytest.raises(ValueError, match=r"pyhpe.paf_scores: 'limbs' must have shape"):
        torch.ops.pyhpe.paf_scores(pafs, p, c, torch.zeros(3, 0, dtype=torch.int64),
                                   torch.zeros(3, 2, dtype=torch.int64), 10, 0.05, 0.95, True,
                                   0.05)
    # Zero limbs is an empty result, not an error.
    assert ops.paf_scores(pafs, p, c, torch.zeros(0, 2, dtype=torch.int64)).shape == \
        (1, 0, 64, 64)


def test_paf_scores_huge_output_is_a_size_error():
    pafs = torch.rand(1, 2, 4, 4)
    peaks = torch.zeros(1, 2, 2 ** 16, 3)
    counts = torch.zeros(1, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"output scores .* would exceed .* lower 'peaks'"):
        ops.paf_scores(pafs, peaks, counts, [(0, 1)])


def test_group_options_checked():
    hm, pafs, p, c = _scores_inputs()
    s = ops.paf_scores(pafs, p, c, [(0, 1)])
    for name, value, error in (("min_parts", -1, ValueError), ("min_parts", 2 ** 31, ValueError),
                               ("min_parts", 2.5, ValueError), ("max_persons", -3, ValueError),
                               ("max_persons", "all", TypeError),
                               ("min_mean_score", float("nan"), ValueError)):
        with pytest.raises(error, match=f"pyhpe.group_poses: '{name}'"):
            ops.group_poses(p, c, s, [(0, 1)], **{name: value})
    with pytest.raises(ValueError, match="'min_parts' must lie in"):
        torch.ops.pyhpe.group_poses(p, c, s, torch.tensor([[0, 1]]),
                                        torch.zeros(1, dtype=torch.bool), 2 ** 32, 0.2,
                                        "greedy", -1, True, "cpu")


def test_paf_group_skeleton_errors_name_it():
    hm, pafs = torch.rand(1, 3, 8, 8), torch.rand(1, 2, 8, 8)
    with pytest.raises(ValueError, match="paf_group: 'skeleton' must hold at least one"):
        ops.paf_group(hm, pafs, [])
    with pytest.raises(ValueError, match=r"paf_group: 'skeleton' must have shape \(L, 2\)"):
        ops.paf_group(hm, pafs, [(0, 1, 2)])
    with pytest.raises(ValueError, match="paf_group: 'skeleton' part indices must be >= 0"):
        ops.paf_group(hm, pafs, [(0, -1)])
    with pytest.raises(ValueError, match="paf_group: 'skeleton' must hold at least one"):
        PAFGrouper([])
    with pytest.raises(TypeError, match="paf_group: 'num_parts'"):
        ops.paf_group(hm, pafs, [(0, 1)], num_parts="3")


# ------------------------------------------------------------------------------------------
# Autograd: none of the ops is differentiable

def test_requires_grad_inputs_are_rejected_and_outputs_never_require_grad():
    hm = torch.rand(1, 3, 8, 8, requires_grad=True)
    pafs = torch.rand(1, 2, 8, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="pyhpe.find_peaks: is not differentiable, but "
                                           "'heatmaps' requires grad"):
        ops.find_peaks(hm)
    p, c = ops.find_peaks(hm.detach())
    assert not p.requires_grad
    with pytest.raises(RuntimeError, match="pyhpe.paf_scores: is not differentiable, but "
                                           "'pafs' requires grad"):
        ops.paf_scores(pafs, p, c, [(0, 1)])
    with pytest.raises(RuntimeError, match="pyhpe.paf_scores: is not differentiable, but "
                                           "'peaks' requires grad"):
        ops.paf_scores(pafs.detach(), p.clone().requires_grad_(), c, [(0, 1)])
    s = ops.paf_scores(pafs.detach(), p, c, [(0, 1)])
    with pytest.raises(RuntimeError, match="pyhpe.group_poses: is not differentiable, but "
                                           "'scores' requires grad"):
        ops.group_poses(p, c, s.clone().requires_grad_(), [(0, 1)])
    with torch.no_grad():
        p2, c2 = ops.find_peaks(hm)
        s2 = ops.paf_scores(pafs, p2, c2, [(0, 1)])
        persons = ops.group_poses(p2, c2, s2.requires_grad_(), [(0, 1)], min_parts=1)
    assert torch.equal(p2, p) and torch.equal(s2, s)
    assert not any(t.requires_grad for t in (p2, c2, s2.detach(), *persons))
    groups = ops.paf_group(hm.detach(), pafs.detach(), [(0, 1)], min_parts=1)
    assert all(not k.requires_grad for k, _ in groups)


# ------------------------------------------------------------------------------------------
# torch.library integration

@cpu_and_cuda()
def test_opcheck(device):
    rng = np.random.default_rng(6)
    hm = torch.from_numpy(smooth_noise(rng, (2, 3, 12, 14), np.float64)).to(device)
    p, c = ops.find_peaks(hm, threshold=0.4, max_peaks=8)
    limbs = torch.tensor([[0, 1], [1, 2]], device=device)
    channels = torch.tensor([[0, 1], [2, 3]], device=device)
    pafs = torch.from_numpy(smooth_noise(rng, (2, 4, 12, 14), np.float64) * 2 - 1).to(device)
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(torch.ops.pyhpe.find_peaks.default, (hm, 0.4, 8, 3, "cpu", False),
                          test_utils=utils + ("test_aot_dispatch_dynamic",))
    args = (pafs, p, c, limbs, channels, 10, 0.05, 0.3, True, 0.05)
    torch.library.opcheck(torch.ops.pyhpe.paf_scores.default, args,
                          test_utils=utils + ("test_aot_dispatch_dynamic",))
    s = torch.ops.pyhpe.paf_scores(*args)
    redundant = torch.zeros(2, dtype=torch.bool, device=device)
    # The number of people is data-dependent: fake tensors give it an unbacked size.
    torch.library.opcheck(torch.ops.pyhpe.group_poses.default,
                          (p, c, s, limbs, redundant, 1, 0.0, "greedy", -1, True, "gpu"),
                          test_utils=("test_schema", "test_autograd_registration"))


def test_torch_compile_smoke():
    rng = np.random.default_rng(7)
    hm = torch.from_numpy(smooth_noise(rng, (1, 3, 12, 14), np.float32))
    pafs = torch.from_numpy(smooth_noise(rng, (1, 4, 12, 14), np.float32))
    limbs = torch.tensor([[0, 1], [1, 2]])

    def f(h, q):
        p, c = ops.find_peaks(h, threshold=0.4, max_peaks=8)
        return p, c, ops.paf_scores(q, p, c, limbs, min_fraction=0.3)

    got = torch.compile(f, fullgraph=True, backend="aot_eager")(hm, pafs)
    want = f(hm, pafs)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_results_are_named_and_options_keyword_only():
    hm = torch.zeros(2, 3, 12, 12)
    hm[:, 0, 3, 3] = hm[:, 1, 3, 8] = hm[:, 2, 8, 8] = 1.0
    pafs = torch.zeros(2, 4, 12, 12)
    pafs[:, 0, 3, 3:9] = 1.0  # limb 0 -> 1 along +x
    pafs[:, 3, 3:9, 8] = 1.0  # limb 1 -> 2 along +y
    peaks = ops.find_peaks(hm, threshold=0.1, max_peaks=4)
    assert isinstance(peaks, ops.Peaks) and peaks.counts.tolist() == [[1, 1, 1]] * 2
    with pytest.raises(TypeError):
        ops.find_peaks(hm, 0.1)
    limbs = [(0, 1), (1, 2)]
    scores = ops.paf_scores(pafs, peaks.peaks, peaks.counts, limbs, num_samples=5)
    grouped = ops.group_poses(peaks.peaks, peaks.counts, scores, limbs, min_parts=2)
    assert isinstance(grouped, ops.GroupedPoses) and grouped.counts.tolist() == [1, 1]
    assert grouped.peak_indices[0, 0].tolist() == [0, 0, 0]
    people = ops.paf_group(hm, pafs, limbs, num_samples=5, min_parts=2)
    assert len(people) == 2 and all(isinstance(p, ops.Poses) for p in people)
    torch.testing.assert_close(people[0].keypoints, grouped.per_image()[0].keypoints)
    assert people[0].scores.shape == (1,)
