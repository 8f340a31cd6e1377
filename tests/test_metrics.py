"""PCK / PCKh / PCP / MPJPE / P-MPJPE against hand-computed values."""
import numpy as np
import pytest

from pyhpe.eval.metrics import (mpjpe, n_mpjpe, normalized_distances, p_mpjpe, pck_accuracy,
                                pckh_accuracy, pcp_accuracy, similarity_transform)


def test_pck_hand_computed():
    gt = np.zeros((2, 3, 2))
    pred = np.array([[[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]],     # distances 0, 5, 10
                     [[1.0, 0.0], [0.0, 0.0], [0.0, 6.0]]])     # distances 1, 0, 6
    mask = np.array([[True, True, True], [True, True, False]])
    norm = np.array([[10.0, 10.0], [10.0, 10.0]])
    acc, avg, cnt = pck_accuracy(pred, gt, mask, thr=0.55, normalize=norm)
    # normalised: [0, .5, 1.0] and [.1, 0, masked]
    np.testing.assert_allclose(acc, [1.0, 1.0, 0.0])
    assert avg == pytest.approx(2 / 3) and cnt == 3
    d = normalized_distances(pred, gt, mask, norm)
    np.testing.assert_allclose(d, [[0, .1], [.5, 0], [1.0, -1]])


def test_pck_threshold_is_strict_and_zero_norm_ignored():
    gt = np.zeros((2, 1, 2))
    pred = np.array([[[5.0, 0.0]], [[0.0, 0.0]]])
    acc, avg, cnt = pck_accuracy(pred, gt, None, thr=0.5, normalize=np.array([[10.0, 10.0], [0.0, 10.0]]))
    assert acc[0] == 0.0 and cnt == 1  # 0.5 is not < 0.5; sample 2 is ignored (zero normaliser)


def test_pckh_uses_head_size():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[2.0, 0.0], [6.0, 0.0]]])
    acc, avg, cnt = pckh_accuracy(pred, gt, np.ones((1, 2), bool), head_size=np.array([10.0]))
    np.testing.assert_allclose(acc, [1.0, 0.0])
    assert avg == 0.5


def test_pcp_strict_and_mean():
    gt = np.array([[[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]])
    pred = gt.copy()
    pred[0, 0] += [4.0, 0.0]   # error 4 (limb 0-1 length 10, bound 5)
    pred[0, 2] += [0.0, 7.0]   # error 7 (limb 1-2 length 10)
    rates, mean = pcp_accuracy(pred, gt, [(0, 1), (1, 2)], alpha=0.5)
    np.testing.assert_allclose(rates, [1.0, 0.0])
    rates_m, _ = pcp_accuracy(pred, gt, [(0, 1), (1, 2)], alpha=0.5, variant="mean")
    np.testing.assert_allclose(rates_m, [1.0, 1.0])  # mean errors 2 and 3.5 <= 5
    assert mean == 0.5


def test_mpjpe_hand_computed():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]])
    assert mpjpe(pred, gt) == pytest.approx(3.5)
    assert mpjpe(pred, gt, mask=np.array([[True, False]])) == pytest.approx(5.0)


def test_p_mpjpe_removes_similarity():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 17, 3))
    th = 0.7
    R = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    pred = 2.5 * gt @ R.T + np.array([1.0, -2.0, 0.5])
    assert mpjpe(pred, gt) > 1.0
    assert p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(similarity_transform(pred[0], gt[0]), gt[0], atol=1e-9)
    assert n_mpjpe(2 * gt, gt) == pytest.approx(0.0, abs=1e-12)


def test_p_mpjpe_no_reflection():
    gt = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    pred = gt * np.array([-1.0, 1, 1])  # a mirror image cannot be aligned by a rotation
    assert p_mpjpe(pred, gt) > 0.1


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="alignment"):
        mpjpe(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), alignment="bad")


def _umeyama_reference(src, dst):
    """One sample, written out (Umeyama 1991, no reflections)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var = (s0 ** 2).sum()
    if var == 0:
        return np.broadcast_to(mu_d, src.shape).copy()
    U, _, Vt = np.linalg.svd(s0.T @ d0)
    Z = np.eye(src.shape[1])
    Z[-1, -1] = np.sign(np.linalg.det(Vt.T @ U.T))
    R = Vt.T @ Z @ U.T
    return np.trace(R @ s0.T @ d0) / var * s0 @ R.T + mu_d


def test_similarity_transform_batched_equals_per_sample():
    rng = np.random.default_rng(11)
    src = rng.normal(size=(50, 17, 3))
    dst = rng.normal(size=(50, 17, 3)) + src @ rng.normal(size=(3, 3))
    src[7] = 1.0  # no spread: maps to the centroid of dst
    batched = similarity_transform(src, dst)
    for i in range(50):
        np.testing.assert_allclose(batched[i], _umeyama_reference(src[i], dst[i]), atol=1e-12)
        np.testing.assert_allclose(similarity_transform(src[i], dst[i]), batched[i], atol=1e-12)
    np.testing.assert_allclose(batched[7], np.broadcast_to(dst[7].mean(0), (17, 3)), atol=1e-12)
    assert similarity_transform(np.zeros((0, 17, 3)), np.zeros((0, 17, 3))).shape == (0, 17, 3)
