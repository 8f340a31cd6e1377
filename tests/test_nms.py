"""Pose NMS ops vs faithful reimplementations of mmpose (oks_nms, soft_oks_nms) and AlphaPose
(pPose_nms pose_nms_body)."""
import numpy as np
import pytest
import torch
from conftest import cpu_and_cuda

from pyhpe.ops import AlphaPoseNMSResult, NMSResult, oks_nms, pose_nms_alphapose, soft_oks_nms
from pyhpe.reference import nms as ref


def random_poses(rng, n, K=17, spread=100.0, jitter=5.0, tie_levels=None, dtype=np.float64):
    """Poses clustered in a spread x spread image: many overlaps near the OKS thresholds.
    tie_levels quantizes the scores so that exact ties are common."""
    centre = rng.random((n, 1, 2)) * spread
    xy = centre + rng.normal(0, jitter, (n, K, 2))
    kpt_scores = rng.random((n, K, 1))
    scores = rng.random(n)
    if tie_levels:
        scores = np.round(scores * tie_levels) / tie_levels
    areas = rng.random(n) * 200 + 50
    kpts = np.concatenate([xy, kpt_scores], -1)
    return kpts.astype(dtype), scores.astype(dtype), areas.astype(dtype)


def with_duplicates(rng, kpts, scores, areas, count):
    """Append exact copies (same pose, score and area) of random rows."""
    if len(kpts) == 0:
        return kpts, scores, areas
    rows = rng.integers(0, len(kpts), count)
    return (np.concatenate([kpts, kpts[rows]]), np.concatenate([scores, scores[rows]]),
            np.concatenate([areas, areas[rows]]))


def T(a, device):
    return torch.as_tensor(a, device=device)


# ------------------------------------------------------------------------------- OKS-NMS
@cpu_and_cuda()
@pytest.mark.parametrize("thr", [0.9, 0.5, 0.2])
@pytest.mark.parametrize("vis_thr", [None, 0.3])
def test_oks_nms_matches_mmpose(device, thr, vis_thr):
    rng = np.random.default_rng(1)
    for trial in range(12):
        n = int(rng.integers(0, 80))
        kpts, scores, areas = random_poses(rng, n, tie_levels=4 if trial % 2 else None)
        kpts, scores, areas = with_duplicates(rng, kpts, scores, areas, trial % 4)
        expect = ref.oks_nms(kpts, scores, areas, thr, vis_thr=vis_thr)
        got = oks_nms(T(kpts, device), T(scores, device), T(areas, device), thr=thr,
                      vis_thr=vis_thr).keep
        assert got.dtype == torch.int64 and got.device.type == device
        np.testing.assert_array_equal(got.cpu().numpy(), expect)
        expect_stable = ref.oks_nms(kpts, scores, areas, thr, vis_thr=vis_thr, stable=True)
        got_stable = oks_nms(T(kpts, device), T(scores, device), T(areas, device), thr=thr,
                             vis_thr=vis_thr, tie_break="stable").keep
        np.testing.assert_array_equal(got_stable.cpu().numpy(), expect_stable)


@cpu_and_cuda()
def test_oks_nms_score_per_joint_and_sigmas(device):
    rng = np.random.default_rng(2)
    K = 5
    sigmas = rng.random(K) * 0.1 + 0.02
    for n in (0, 1, 7, 40):
        kpts, _, areas = random_poses(rng, n, K=K, spread=40)
        joint_scores = np.round(rng.random((n, K)) * 3) / 3
        expect = ref.oks_nms(kpts, joint_scores, areas, 0.6, sigmas=sigmas, score_per_joint=True)
        got = oks_nms(T(kpts, device), T(joint_scores, device), T(areas, device), thr=0.6,
                      sigmas=sigmas, score_per_joint=True).keep
        np.testing.assert_array_equal(got.cpu().numpy(), expect)
        expect = ref.oks_nms(kpts, joint_scores, areas, 0.6, sigmas=sigmas, score_per_joint=True,
                             stable=True)
        got = oks_nms(T(kpts, device), T(joint_scores, device), T(areas, device), thr=0.6,
                      sigmas=sigmas, score_per_joint=True, tie_break="stable").keep
        np.testing.assert_array_equal(got.cpu().numpy(), expect)


@cpu_and_cuda()
def test_oks_nms_edge_cases(device):
    rng = np.random.default_rng(3)
    kpts, scores, areas = random_poses(rng, 1)
    assert oks_nms(T(kpts, device), T(scores, device), T(areas, device)).keep.tolist() == [0]
    empty = oks_nms(T(kpts[:0], device), T(scores[:0], device), T(areas[:0], device)).keep
    assert empty.shape == (0,) and empty.dtype == torch.int64
    # Identical poses with identical scores: one survives, the one numpy's argsort puts first.
    same = np.repeat(kpts, 6, 0)
    for tie_break, stable in (("numpy", False), ("stable", True)):
        got = oks_nms(T(same, device), T(np.full(6, 0.5), device), T(np.full(6, 100.0), device),
                      tie_break=tie_break).keep
        expect = ref.oks_nms(same, np.full(6, 0.5), np.full(6, 100.0), 0.9, stable=stable)
        np.testing.assert_array_equal(got.cpu().numpy(), expect)
    # thr >= 1 keeps everything (OKS <= 1); no keypoint above vis_thr gives OKS 0.
    kpts, scores, areas = random_poses(rng, 30, spread=10)
    assert sorted(oks_nms(T(kpts, device), T(scores, device), T(areas, device),
                          thr=1.0).keep.tolist()) \
        == list(range(30))
    assert len(oks_nms(T(kpts, device), T(scores, device), T(areas, device), thr=0.5,
                       vis_thr=2.0).keep) == 30


@cpu_and_cuda()
@pytest.mark.parametrize("op", ["hard", "soft"])
def test_batched_images_match_per_image(device, op):
    rng = np.random.default_rng(4)
    sizes = [0, 5, 37, 0, 1, 64, 65, 0]
    parts = [random_poses(rng, n, tie_levels=5) for n in sizes]
    kpts, scores, areas = (np.concatenate([p[i] for p in parts]) for i in range(3))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    if op == "hard":
        expect = ref.oks_nms_batched(kpts, scores, areas, offsets, thr=0.5)
        got, counts = oks_nms(T(kpts, device), T(scores, device), T(areas, device), thr=0.5,
                              image_offsets=T(offsets, device))
    else:
        expect = ref.oks_nms_batched(kpts, scores, areas, offsets, fn=ref.soft_oks_nms, thr=0.3,
                                     max_dets=10, stable=True)
        got, counts = soft_oks_nms(T(kpts, device), T(scores, device), T(areas, device), thr=0.3,
                                   max_dets=10, image_offsets=T(offsets, device))
    np.testing.assert_array_equal(got.cpu().numpy(), expect)
    image_of_keep = np.searchsorted(offsets, expect, side="right") - 1
    np.testing.assert_array_equal(counts.cpu().numpy(), np.bincount(image_of_keep, minlength=8))


@cpu_and_cuda()
@pytest.mark.parametrize("vis_thr", [None, 0.4])
def test_oks_nms_float32_follows_numpy_promotions(device, vis_thr):
    # float32 poses with mmpose's float64 sigmas: float32 distances and mean area, float64 e.
    rng = np.random.default_rng(5)
    for trial in range(8):
        kpts, scores, areas = random_poses(rng, int(rng.integers(1, 90)), spread=60,
                                           tie_levels=3 if trial % 2 else None, dtype=np.float32)
        for thr in (0.9, 0.5):
            expect = ref.oks_nms(kpts, scores, areas, thr, vis_thr=vis_thr)
            got = oks_nms(T(kpts, device), T(scores, device), T(areas, device), thr=thr,
                          vis_thr=vis_thr).keep
            np.testing.assert_array_equal(got.cpu().numpy(), expect)


# --------------------------------------------------------------------------- soft-OKS-NMS
@cpu_and_cuda()
@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_oks_nms_matches_mmpose(device, method):
    rng = np.random.default_rng(6)
    for trial in range(10):
        n = int(rng.integers(0, 70))
        ties = trial % 2 == 1
        kpts, scores, areas = random_poses(rng, n, tie_levels=4 if ties else None)
        if ties:
            kpts, scores, areas = with_duplicates(rng, kpts, scores, areas, 3)
        vis_thr = 0.2 if trial % 3 == 0 else None
        max_dets = [20, 5, 1000][trial % 3]
        # numpy's default argsort orders exact ties its own (unstable) way; without ties the
        # untouched mmpose algorithm applies.
        expect = ref.soft_oks_nms(kpts, scores, areas, 0.3, max_dets=max_dets, vis_thr=vis_thr,
                                  method=method, stable=ties)
        got = soft_oks_nms(T(kpts, device), T(scores, device), T(areas, device), thr=0.3,
                           max_dets=max_dets, method=method, vis_thr=vis_thr).keep
        np.testing.assert_array_equal(got.cpu().numpy(), expect)


@cpu_and_cuda()
def test_soft_oks_nms_float32_and_edge_cases(device):
    rng = np.random.default_rng(7)
    kpts, scores, areas = random_poses(rng, 50, dtype=np.float32)
    for method in ("gaussian", "linear"):
        expect = ref.soft_oks_nms(kpts, scores, areas, 0.3, method=method)
        got = soft_oks_nms(T(kpts, device), T(scores, device), T(areas, device), method=method).keep
        np.testing.assert_array_equal(got.cpu().numpy(), expect)
    assert soft_oks_nms(T(kpts[:1], device), T(scores[:1], device), T(areas[:1], device)).keep \
        .tolist() == [0]
    assert soft_oks_nms(T(kpts[:0], device), T(scores[:0], device), T(areas[:0], device)).keep \
        .shape == (0,)
    assert soft_oks_nms(T(kpts, device), T(scores, device), T(areas, device),
                        max_dets=0).keep.shape == (0,)
    same = np.repeat(kpts[:1], 5, 0)
    got = soft_oks_nms(T(same, device), T(np.full(5, 0.5, np.float32), device),
                       T(np.full(5, 80.0, np.float32), device)).keep
    expect = ref.soft_oks_nms(same, np.full(5, 0.5, np.float32), np.full(5, 80.0, np.float32),
                              0.3, stable=True)
    np.testing.assert_array_equal(got.cpu().numpy(), expect)


def test_numpy_exp_f32_is_numpy_bitwise():
    # Gaussian rescoring with a small thr magnifies every last-bit difference of the float32
    # exp; mmpose uses numpy's SIMD exp, which is not correctly rounded.
    rng = np.random.default_rng(8)
    kpts, scores, areas = random_poses(rng, 200, spread=30, dtype=np.float32)
    expect = ref.soft_oks_nms(kpts, scores, areas, 0.05, max_dets=200)
    got = soft_oks_nms(torch.tensor(kpts), torch.tensor(scores), torch.tensor(areas), thr=0.05,
                       max_dets=200).keep
    np.testing.assert_array_equal(got.numpy(), expect)


# ------------------------------------------------------------------------ AlphaPose pPose-NMS
def alphapose_inputs(rng, n, K=17, spread=60.0, dtype=np.float32, zero_frac=0.0, dup=0):
    centre = rng.random((n, 1, 2)) * spread
    preds = centre + rng.normal(0, 3, (n, K, 2))
    scores = rng.random((n, K))
    scores[rng.random((n, K)) < zero_frac] = 0
    wh = rng.random((n, 2)) * 80 + 10
    boxes = np.concatenate([centre[:, 0], centre[:, 0] + wh], 1)
    if dup and n:
        rows = rng.integers(0, n, dup)
        preds, scores, boxes = (np.concatenate([a, a[rows]]) for a in (preds, scores, boxes))
    return boxes.astype(dtype), preds.astype(dtype), scores.astype(dtype)


def assert_alphapose_equal(got, expect, atol):
    gp, gs, gi = (t.cpu() for t in got[:3])
    ep, es, ei = expect
    np.testing.assert_array_equal(gi.numpy(), ei.numpy())
    torch.testing.assert_close(gp, ep, atol=atol, rtol=atol, equal_nan=True)
    torch.testing.assert_close(gs, es, atol=atol, rtol=atol, equal_nan=True)


@cpu_and_cuda()
def test_alphapose_matches_reference(device):
    rng = np.random.default_rng(9)
    for trial in range(12):
        n = int(rng.integers(0, 45))
        boxes, preds, scores = alphapose_inputs(rng, n, zero_frac=0.2 if trial % 2 else 0.0,
                                                dup=trial % 3)
        expect = ref.pose_nms_alphapose(torch.tensor(boxes), torch.tensor(preds),
                                        torch.tensor(scores))
        got = pose_nms_alphapose(T(boxes, device), T(preds, device), T(scores, device))
        assert_alphapose_equal(got, expect, 1e-5)


@cpu_and_cuda()
def test_alphapose_options_edge_cases_and_batch(device):
    rng = np.random.default_rng(10)
    boxes, preds, scores = alphapose_inputs(rng, 30, spread=30)
    kw = dict(gamma=15.0, match_thr=3.0, score_thr=0.5, area_thr=200.0, alpha=0.2)
    expect = ref.pose_nms_alphapose(torch.tensor(boxes), torch.tensor(preds),
                                    torch.tensor(scores), **kw)
    got = pose_nms_alphapose(T(boxes, device), T(preds, device), T(scores, device), **kw)
    assert_alphapose_equal(got, expect, 1e-5)
    # (N, K, 1) scores as AlphaPose passes them; N = 1; N = 0; identical poses.
    got = pose_nms_alphapose(T(boxes, device), T(preds, device), T(scores[..., None], device))
    assert_alphapose_equal(got, ref.pose_nms_alphapose(torch.tensor(boxes), torch.tensor(preds),
                                                       torch.tensor(scores)), 1e-5)
    one = pose_nms_alphapose(T(boxes[:1], device), T(preds[:1], device), T(scores[:1], device))
    assert one[2].tolist() == [0] and torch.allclose(one[0][0].cpu(), torch.tensor(preds[0]))
    none = pose_nms_alphapose(T(boxes[:0], device), T(preds[:0], device), T(scores[:0], device))
    assert none[0].shape == (0, 17, 2) and none[1].shape == (0, 17) and none[2].shape == (0,)
    same = [np.repeat(a[:1], 4, 0) for a in (boxes, preds, scores)]
    got = pose_nms_alphapose(*(T(a, device) for a in same))
    assert got[2].tolist() == [0]
    # A ragged batch equals the per-image calls, with indices offset to the concatenation.
    sizes = [3, 0, 25, 1, 12]
    parts = [alphapose_inputs(rng, n) for n in sizes]
    cat = [np.concatenate([p[i] for p in parts]) for i in range(3)]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    got = pose_nms_alphapose(*(T(a, device) for a in cat), image_offsets=T(offsets, device))
    expect = [ref.pose_nms_alphapose(*(torch.tensor(a) for a in p)) for p in parts]
    ep = torch.cat([e[0] for e in expect])
    es = torch.cat([e[1] for e in expect])
    ei = torch.cat([e[2] + int(o) for e, o in zip(expect, offsets[:-1])])
    assert_alphapose_equal(got[:3], (ep, es, ei), 1e-5)
    assert got[3].tolist() == [len(e[2]) for e in expect]


def test_alphapose_float64_matches_float32_keep():
    rng = np.random.default_rng(11)
    boxes, preds, scores = alphapose_inputs(rng, 40)
    expect = ref.pose_nms_alphapose(torch.tensor(boxes), torch.tensor(preds),
                                    torch.tensor(scores))
    got = pose_nms_alphapose(*(torch.tensor(a, dtype=torch.float64)
                               for a in (boxes, preds, scores)))
    np.testing.assert_array_equal(got[2].numpy(), expect[2].numpy())
    assert got[0].dtype == torch.float64
    torch.testing.assert_close(got[0].float(), expect[0], atol=1e-4, rtol=1e-5)


# ------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(12)
    kpts, scores, areas = (torch.tensor(a) for a in random_poses(rng, 6))
    with pytest.raises(ValueError, match="keypoints"):
        oks_nms(kpts[..., :2], scores, areas)
    with pytest.raises(ValueError, match="scores"):
        oks_nms(kpts, scores[:4], areas)
    with pytest.raises(ValueError, match="score_per_joint"):
        oks_nms(kpts, scores, areas, score_per_joint=True)
    with pytest.raises(ValueError, match="areas"):
        oks_nms(kpts, scores, areas[:5])
    with pytest.raises(ValueError, match="sigmas"):
        oks_nms(kpts, scores, areas, sigmas=[0.1] * 5)
    with pytest.raises(ValueError, match="positive"):
        oks_nms(kpts, scores, areas, sigmas=[0.0] * 17)
    with pytest.raises(ValueError, match="NaN"):
        oks_nms(kpts, scores.clone().fill_(float("nan")), areas)
    with pytest.raises(TypeError, match="dtype"):
        torch.ops.pyhpe.oks_nms(kpts, scores.float(), areas, torch.ones(17, dtype=torch.float64))
    with pytest.raises(ValueError, match="image_offsets"):
        oks_nms(kpts, scores, areas, image_offsets=torch.tensor([0, 2, 5]))
    with pytest.raises(ValueError, match="non-decreasing"):
        oks_nms(kpts, scores, areas, image_offsets=torch.tensor([0, 4, 2, 6]))
    with pytest.raises(ValueError, match="tie_break"):
        oks_nms(kpts, scores, areas, tie_break="random")
    with pytest.raises(ValueError, match="order"):
        torch.ops.pyhpe.oks_nms(kpts, scores, areas, torch.full((17,), 0.1, dtype=torch.float64),
                                0.9, None, torch.tensor([0, 3, 6]),
                                torch.tensor([0, 1, 3, 2, 4, 5]))
    with pytest.raises(ValueError, match="method"):
        soft_oks_nms(kpts, scores, areas, method="cubic")
    with pytest.raises(ValueError, match="max_dets"):
        soft_oks_nms(kpts, scores, areas, max_dets=-1)
    boxes = torch.zeros(6, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="pose_preds"):
        pose_nms_alphapose(boxes, kpts, scores)
    with pytest.raises(ValueError, match="bboxes"):
        pose_nms_alphapose(boxes[:, :3], kpts[..., :2], kpts[..., 2])
    with pytest.raises(ValueError, match="pose_scores"):
        pose_nms_alphapose(boxes, kpts[..., :2], kpts[:3, :, 2])


# --------------------------------------------------------------------- opcheck and compile
def test_opcheck():
    rng = np.random.default_rng(13)
    kpts, scores, areas = (torch.tensor(a) for a in random_poses(rng, 12, spread=30))
    sig = torch.full((17,), 0.08, dtype=torch.float64)
    offsets = torch.tensor([0, 5, 5, 12])
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(torch.ops.pyhpe.oks_nms.default,
                          (kpts, scores, areas, sig, 0.5, None, offsets, None), test_utils=utils)
    torch.library.opcheck(torch.ops.pyhpe.soft_oks_nms.default,
                          (kpts, scores, areas, sig, 0.3, 5, "linear", 0.2, offsets, None),
                          test_utils=utils)
    boxes, preds, pscores = (torch.tensor(a) for a in alphapose_inputs(rng, 12))
    torch.library.opcheck(torch.ops.pyhpe.pose_nms_alphapose.default,
                          (boxes, preds, pscores, torch.tensor([0, 7, 12]), 1.0, 1.7, 2.65,
                           22.48, 0.3, 5.0, 0.1, 0.0), test_utils=utils)


def test_torch_compile_smoke():
    rng = np.random.default_rng(14)
    kpts, scores, areas = (torch.tensor(a) for a in random_poses(rng, 20))

    @torch.compile(fullgraph=True, backend="aot_eager")
    def run(k, s, a):
        keep = oks_nms(k, s, a, thr=0.5, tie_break="stable", validate=False).keep
        soft = soft_oks_nms(k, s, a, validate=False).keep
        return keep, soft

    keep, soft = run(kpts, scores, areas)
    np.testing.assert_array_equal(keep.numpy(), ref.oks_nms(kpts.numpy(), scores.numpy(),
                                                            areas.numpy(), 0.5, stable=True))
    np.testing.assert_array_equal(soft.numpy(), ref.soft_oks_nms(kpts.numpy(), scores.numpy(),
                                                                 areas.numpy(), 0.3, stable=True))


@cpu_and_cuda()
@pytest.mark.parametrize("K", [5, 17, 133])
def test_soft_oks_nms_score_per_joint(device, K):
    # The per-joint mean must be numpy's (pairwise summation) to the bit: it is rescored.
    rng = np.random.default_rng(15)
    for dtype in (np.float64, np.float32):
        n = 40
        kpts = np.concatenate([rng.random((n, K, 2)) * 30, rng.random((n, K, 1))], -1)
        joint_scores = rng.random((n, K))
        areas = rng.random(n) * 100 + 50
        sigmas = rng.random(K) * 0.1 + 0.02
        kpts, joint_scores, areas = (x.astype(dtype) for x in (kpts, joint_scores, areas))
        expect = ref.soft_oks_nms(kpts, joint_scores, areas, 0.3, max_dets=n, sigmas=sigmas,
                                  score_per_joint=True)
        got = soft_oks_nms(T(kpts, device), T(joint_scores, device), T(areas, device), thr=0.3,
                           max_dets=n,
                           sigmas=sigmas, score_per_joint=True).keep
        np.testing.assert_array_equal(got.cpu().numpy(), expect)


# ------------------------------------------------------------------------- hostile options
def _poses(n=6):
    rng = np.random.default_rng(20)
    return tuple(torch.tensor(a) for a in random_poses(rng, n))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nms_thresholds_must_be_finite(value):
    kpts, scores, areas = _poses()
    sig = torch.full((17,), 0.08, dtype=torch.float64)
    with pytest.raises(ValueError, match="pyhpe.oks_nms: 'thr' must be finite"):
        oks_nms(kpts, scores, areas, thr=value)
    with pytest.raises(ValueError, match="pyhpe.oks_nms: 'vis_thr' must be finite"):
        oks_nms(kpts, scores, areas, thr=0.5, vis_thr=value)
    with pytest.raises(ValueError, match="pyhpe.soft_oks_nms: 'thr' must be finite"):
        soft_oks_nms(kpts, scores, areas, thr=value, method="linear")
    with pytest.raises(ValueError, match="pyhpe.soft_oks_nms: 'vis_thr' must be finite"):
        soft_oks_nms(kpts, scores, areas, vis_thr=value)
    # The ops themselves check too.
    with pytest.raises(ValueError, match="pyhpe.oks_nms: 'thr' must be finite"):
        torch.ops.pyhpe.oks_nms(kpts, scores, areas, sig, value)
    with pytest.raises(ValueError, match="pyhpe.soft_oks_nms: 'thr' must be finite"):
        torch.ops.pyhpe.soft_oks_nms(kpts, scores, areas, sig, value, 20, "linear")
    with pytest.raises(ValueError, match="pyhpe.soft_oks_nms: 'vis_thr' must be finite"):
        torch.ops.pyhpe.soft_oks_nms(kpts, scores, areas, sig, 0.3, 20, "linear", value)


def test_soft_oks_nms_option_checks():
    kpts, scores, areas = _poses()
    sig = torch.full((17,), 0.08, dtype=torch.float64)
    for thr in (0.0, -0.5):
        with pytest.raises(ValueError, match="pyhpe.soft_oks_nms: 'thr' must be > 0 for "
                                             "method='gaussian'"):
            soft_oks_nms(kpts, scores, areas, thr=thr)
        with pytest.raises(ValueError, match="'thr' must be > 0 for method='gaussian'"):
            torch.ops.pyhpe.soft_oks_nms(kpts, scores, areas, sig, thr, 20, "gaussian")
    # Linear rescoring is defined for any finite thr (o >= thr).
    assert soft_oks_nms(kpts, scores, areas, thr=0.0, method="linear").keep.shape == (6,)
    for value, error in ((4.5, ValueError), ("20", TypeError), (None, TypeError),
                         (-1, ValueError)):
        with pytest.raises(error, match="pyhpe.soft_oks_nms: 'max_dets'"):
            soft_oks_nms(kpts, scores, areas, max_dets=value)
    with pytest.raises(TypeError, match="pyhpe.oks_nms: 'thr'"):
        oks_nms(kpts, scores, areas, thr="0.9")
    # Integral floats are integers.
    assert soft_oks_nms(kpts, scores, areas, max_dets=3.0).keep.shape == (3,)


def test_alphapose_rejects_inverted_boxes_and_bad_constants():
    rng = np.random.default_rng(21)
    boxes, preds, scores = (torch.tensor(a) for a in alphapose_inputs(rng, 8))
    inverted = boxes.clone()
    inverted[3, [0, 2]] = inverted[3, [2, 0]]
    with pytest.raises(ValueError, match="pyhpe.pose_nms_alphapose: 'bboxes' must be .* "
                                         "inverted box"):
        pose_nms_alphapose(inverted, preds, scores)
    flipped_y = boxes.clone()
    flipped_y[5, [1, 3]] = flipped_y[5, [3, 1]]
    with pytest.raises(ValueError, match="'bboxes' must be"):
        torch.ops.pyhpe.pose_nms_alphapose(flipped_y, preds, scores)
    for name, value in (("alpha", -0.1), ("delta1", 0.0), ("delta2", -1.0)):
        with pytest.raises(ValueError, match=f"pyhpe.pose_nms_alphapose: '{name}' must be"):
            pose_nms_alphapose(boxes, preds, scores, **{name: value})
    with pytest.raises(ValueError, match="pyhpe.pose_nms_alphapose: 'alpha' must be >= 0"):
        torch.ops.pyhpe.pose_nms_alphapose(boxes, preds, scores, None, 1.0, 1.7, 2.65, 22.48,
                                           0.3, 5.0, -0.1, 0.0)
    for name in ("gamma", "mu", "score_thr", "match_thr", "area_thr", "alpha"):
        with pytest.raises(ValueError, match=f"pyhpe.pose_nms_alphapose: '{name}' must be "
                                             "finite"):
            pose_nms_alphapose(boxes, preds, scores, **{name: float("nan")})
    with pytest.raises(TypeError, match="pyhpe.pose_nms_alphapose: 'gamma'"):
        pose_nms_alphapose(boxes, preds, scores, gamma="22")


def test_alphapose_zero_size_boxes_match_reference_without_nan():
    # ref_dist = 0 is defined: no PCK match, and the merge keeps coincident keypoints only.
    rng = np.random.default_rng(22)
    boxes, preds, scores = alphapose_inputs(rng, 20, spread=20, dup=4)
    boxes[:, 2:] = boxes[:, :2]
    expect = ref.pose_nms_alphapose(torch.tensor(boxes), torch.tensor(preds),
                                    torch.tensor(scores))
    got = pose_nms_alphapose(torch.tensor(boxes), torch.tensor(preds), torch.tensor(scores))
    assert_alphapose_equal(got, expect, 1e-5)
    assert not torch.isnan(got[0]).any() and not torch.isnan(got[1]).any()


# --------------------------------------------------------------------------------- autograd
def test_requires_grad_inputs_are_rejected():
    kpts, scores, areas = _poses()
    sig = torch.full((17,), 0.08, dtype=torch.float64)
    for name, args in (("keypoints", (kpts.clone().requires_grad_(), scores, areas)),
                       ("scores", (kpts, scores.clone().requires_grad_(), areas)),
                       ("areas", (kpts, scores, areas.clone().requires_grad_()))):
        for fn, op in ((oks_nms, "oks_nms"), (soft_oks_nms, "soft_oks_nms")):
            with pytest.raises(RuntimeError, match=f"pyhpe.{op}: is not differentiable, but "
                                                   f"'{name}' requires grad"):
                fn(*args)
    with pytest.raises(RuntimeError, match="'sigmas' requires grad"):
        torch.ops.pyhpe.oks_nms(kpts, scores, areas, sig.clone().requires_grad_())
    rng = np.random.default_rng(23)
    boxes, preds, pscores = (torch.tensor(a) for a in alphapose_inputs(rng, 10))
    with pytest.raises(RuntimeError, match="pyhpe.pose_nms_alphapose: is not differentiable, "
                                           "but 'pose_preds' requires grad"):
        pose_nms_alphapose(boxes, preds.requires_grad_(), pscores)
    # Under no_grad the same inputs run and nothing requires grad.
    with torch.no_grad():
        keep = oks_nms(kpts.clone().requires_grad_(), scores, areas).keep
        soft = soft_oks_nms(kpts, scores.clone().requires_grad_(), areas).keep
        merged = pose_nms_alphapose(boxes, preds, pscores)
    assert torch.equal(keep, oks_nms(kpts, scores, areas).keep)
    assert torch.equal(soft, soft_oks_nms(kpts, scores, areas).keep)
    assert not any(t.requires_grad for t in (keep, soft, *merged))
    expect = pose_nms_alphapose(boxes, preds.detach(), pscores)
    for g, e in zip(merged, expect):
        assert torch.equal(g, e) and not e.requires_grad


def test_opcheck_with_grad_requiring_inputs():
    rng = np.random.default_rng(24)
    kpts, scores, areas = (torch.tensor(a) for a in random_poses(rng, 10, spread=30))
    sig = torch.full((17,), 0.08, dtype=torch.float64)
    with torch.no_grad():
        torch.library.opcheck(torch.ops.pyhpe.oks_nms.default,
                              (kpts.requires_grad_(), scores, areas, sig, 0.5),
                              test_utils=("test_schema", "test_autograd_registration"))


# ----------------------------------------------------------------------------------- scale
def _large_crowd(n, canvas, seed=0):
    """n = 5 * people poses: each person detected 5 times with 3 px noise, people spread over
    a canvas x canvas image."""
    rng = np.random.default_rng(seed)
    people, K = n // 5, 17
    centres = rng.random((people, 1, 2)) * canvas
    xy = np.repeat(centres + rng.normal(0, 30, (people, K, 2)), 5, 0) + rng.normal(0, 3, (n, K, 2))
    kpts = np.concatenate([xy, rng.random((n, K, 1))], -1)
    return kpts, rng.random(n), np.repeat(rng.random(people) * 8000 + 2000, 5)


@pytest.mark.slow
def test_20000_poses_in_one_image_finish_quickly():
    import time
    kpts, scores, areas = (torch.tensor(a) for a in _large_crowd(20000, 4000.0))
    start = time.perf_counter()
    soft = soft_oks_nms(kpts, scores, areas, thr=0.3, max_dets=20000).keep
    soft_s = time.perf_counter() - start
    boxes = torch.cat([kpts[..., :2].amin(1), kpts[..., :2].amax(1)], 1).float()
    start = time.perf_counter()
    merged = pose_nms_alphapose(boxes, kpts[..., :2].float(), kpts[..., 2].float())
    alpha_s = time.perf_counter() - start
    assert soft.shape == (20000,) and len(merged[2]) > 0
    # About a second each on 2 busy cores (the full-sort soft-NMS took minutes); generous
    # bounds for loaded CI machines.
    assert soft_s < 30 and alpha_s < 30, (soft_s, alpha_s)


def test_indexed_soft_nms_matches_reference_on_a_larger_crowd():
    # Large images take the ordered-set + grid path; ties send it back to the array form.
    for seed, ties in ((0, False), (1, True)):
        kpts, scores, areas = _large_crowd(400, 600.0, seed)
        if ties:
            scores = np.round(scores * 8) / 8
        for method in ("gaussian", "linear"):
            expect = ref.soft_oks_nms(kpts, scores, areas, 0.3, max_dets=400, method=method,
                                      stable=ties)
            got = soft_oks_nms(torch.tensor(kpts), torch.tensor(scores), torch.tensor(areas),
                               thr=0.3, max_dets=400, method=method).keep
            np.testing.assert_array_equal(got.numpy(), expect)
        boxes = np.concatenate([kpts[..., :2].min(1), kpts[..., :2].max(1)], 1) / 8
        preds = kpts[..., :2] / 8
        expect = ref.pose_nms_alphapose(torch.tensor(boxes, dtype=torch.float32),
                                        torch.tensor(preds, dtype=torch.float32),
                                        torch.tensor(kpts[..., 2], dtype=torch.float32))
        got = pose_nms_alphapose(torch.tensor(boxes, dtype=torch.float32),
                                 torch.tensor(preds, dtype=torch.float32),
                                 torch.tensor(kpts[..., 2], dtype=torch.float32))
        assert_alphapose_equal(got, expect, 1e-5)


def test_indexed_soft_nms_hands_over_when_rescoring_creates_ties():
    # Exact copies have OKS 1, so linear rescoring sends their scores to exactly 0, where a
    # pose with score 0 already is: equal scores appear mid-run.
    kpts, scores, areas = _large_crowd(300, 500.0, 3)
    rows = np.arange(20, 30)
    kpts = np.concatenate([kpts, kpts[rows]])
    areas = np.concatenate([areas, areas[rows]])
    scores = np.concatenate([scores, np.random.default_rng(4).random(len(rows))])
    scores[5] = 0.0
    assert len(np.unique(scores)) == len(scores)
    expect = ref.soft_oks_nms(kpts, scores, areas, 0.3, max_dets=len(kpts), method="linear",
                              stable=True)
    got = soft_oks_nms(torch.tensor(kpts), torch.tensor(scores), torch.tensor(areas), thr=0.3,
                       max_dets=len(kpts), method="linear").keep
    np.testing.assert_array_equal(got.numpy(), expect)


def test_oks_nms_huge_mask_is_a_size_error():
    # One image of 380,000 poses needs a 18 GB suppression mask: reported, not allocated.
    n = 380_000
    kpts = torch.zeros(n, 1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"pyhpe.oks_nms: the suppression mask needs \d+ bytes "
                                         r".* largest image has 380000 poses.*'image_offsets'"):
        oks_nms(kpts, torch.rand(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64),
                sigmas=[0.1], tie_break="stable", validate=False)


def test_results_are_named_and_options_keyword_only():
    kpts, scores, areas = _poses()
    result = oks_nms(kpts, scores, areas, thr=0.5)
    assert isinstance(result, NMSResult) and result.counts.tolist() == [len(result.keep)]
    assert isinstance(soft_oks_nms(kpts, scores, areas, max_dets=3), NMSResult)
    with pytest.raises(TypeError):
        oks_nms(kpts, scores, areas, 0.5)
    rng = np.random.default_rng(30)
    boxes, preds, pscores = (torch.tensor(a) for a in alphapose_inputs(rng, 10))
    merged = pose_nms_alphapose(boxes, preds, pscores)
    assert isinstance(merged, AlphaPoseNMSResult)
    assert merged.keypoints.shape[0] == merged.indices.shape[0] == int(merged.counts.sum())
