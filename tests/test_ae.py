"""Associative Embedding grouping (pyhpe.ops.ae_group) against its numpy oracle
(pyhpe.reference.ae), the oracle against mmpose 1.3.2's recorded outputs, and the
Hungarian rule against the munkres package, scipy and brute force."""
import itertools
import os

import numpy as np
import pytest
import torch

from conftest import cpu_and_cuda
from pyhpe import ops
from pyhpe.reference import ae as ref

DATA = os.path.join(os.path.dirname(__file__), "data", "mmpose_ae.npz")


def crowd(rng, B, K, H, W, people, L, tag_step=2.0, sigma=1.2, dropout=0.2, noise=0.04):
    """Multi-person maps: a Gaussian per (person, keypoint), tags near the person's tag."""
    yy, xx = np.mgrid[0:H, 0:W]
    hm = (rng.random((B, K, H, W)) * noise).astype(np.float32)
    tags = (rng.normal(size=(B, K * L, H, W)) * 0.5).astype(np.float32)
    for b in range(B):
        for p in range(people):
            tag = p * tag_step + rng.normal(size=L) * 0.15
            for k in range(K):
                if rng.random() < dropout:
                    continue
                x, y = rng.uniform(0, W - 1), rng.uniform(0, H - 1)
                g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
                g *= rng.uniform(0.3, 1)
                hm[b, k] = np.maximum(hm[b, k], g)
                m = g > 0.1
                for l in range(L):
                    tags[b, l * K + k][m] = tag[l] + rng.normal(size=int(m.sum())) * 0.1
    return hm, tags


def assert_matches_reference(got, hm, tags, tol=1e-5, **kw):
    kp, ks, inst = ref.ae_group(hm, tags, **kw)
    num = got.num_instances.cpu().numpy()
    B = hm.shape[0]
    for b in range(B):
        n = kp[b].shape[0]
        assert num[b] == n, (b, num[b], n)
        np.testing.assert_allclose(got.keypoints[b, :n].cpu().numpy(), kp[b], atol=tol, rtol=0)
        np.testing.assert_allclose(got.keypoint_scores[b, :n].cpu().numpy(), ks[b], atol=tol,
                                   rtol=0)
        np.testing.assert_allclose(got.instance_scores[b, :n].cpu().numpy(), inst[b], atol=tol,
                                   rtol=0)
        assert not got.keypoints[b, n:].any() and not got.keypoint_scores[b, n:].any()
        assert not got.instance_scores[b, n:].any()


# ------------------------------------------------------------------------------------------
# the oracle against mmpose and the munkres package


def test_reference_matches_mmpose_recordings():
    d = np.load(DATA)
    for i in range(4):
        s, L, topk, nms, kthr, tthr, maxi, udp, shift = d[f"c{i}_options"]
        hm = d[f"s{int(s)}_heatmaps"].astype(np.float32)
        K = hm.shape[1]
        tags = d[f"s{int(s)}_tags"][:, :K * int(L)].astype(np.float32)
        kp, ks, inst = ref.ae_group(hm, tags, keypoint_order=d[f"c{i}_order"].tolist(),
                                    topk=int(topk), nms_kernel=int(nms), keypoint_threshold=kthr,
                                    tag_threshold=tthr,
                                    max_instances=None if maxi < 0 else int(maxi),
                                    refine="dark_udp" if udp else "quarter", center_shift=shift)
        assert [len(k) for k in kp] == d[f"c{i}_counts"].tolist()
        tol = 1e-4 if udp else 0.0  # dark_udp: a 2x2 inverse in another order than LAPACK's
        np.testing.assert_allclose(np.concatenate(kp), d[f"c{i}_keypoints"], atol=tol, rtol=0)
        np.testing.assert_allclose(np.concatenate(ks), d[f"c{i}_keypoint_scores"], atol=tol,
                                   rtol=0)
        np.testing.assert_array_equal(np.concatenate(inst), d[f"c{i}_instance_scores"])


def test_munkres_reproduces_the_munkres_package_on_ties():
    d = np.load(DATA)
    pairs = d["munkres_pairs"].tolist()
    at = 0
    for (r, c), full in zip(d["munkres_shapes"], d["munkres_costs"]):
        got = ref.munkres(full[:r, :c])
        assert [list(p) for p in got] == pairs[at:at + r]
        at += r
    assert at == len(pairs)


def test_munkres_is_optimal():
    from scipy.optimize import linear_sum_assignment
    rng = np.random.default_rng(0)
    for t in range(100):
        r = int(rng.integers(1, 7))
        c = int(rng.integers(r, 8))
        if t % 2:
            m = rng.integers(0, 4, size=(r, c)) * 100.0 - rng.random((r, 1)).round(2)
        else:
            m = rng.random((r, c))
        pairs = ref.munkres(m)
        assert [p[0] for p in pairs] == list(range(r))
        assert len({p[1] for p in pairs}) == r
        cost = sum(m[i, j] for i, j in pairs)
        rows, cols = linear_sum_assignment(m)
        assert cost == pytest.approx(m[rows, cols].sum(), abs=1e-9)
        if c <= 6:
            brute = min(sum(m[i, p[i]] for i in range(r))
                        for p in itertools.permutations(range(c), r))
            assert cost == pytest.approx(brute, abs=1e-9)


def test_greedy_rule():
    cost = np.array([[100., 0., 200.], [0., 100., 300.]])
    dist = np.array([[1.2, 0.3, 2.0], [0.1, 0.9, 3.0]])
    # (0, 1) and (1, 0) both cost 0: the lower row first; nothing else is under 1.0
    assert ref.greedy_match(cost, dist, 1.0) == [(0, 1), (1, 0)]
    assert ref.greedy_match(cost, dist, 0.2) == [(1, 0)]


# ------------------------------------------------------------------------------------------
# the op against the oracle

OPTION_GRID = list(itertools.product(
    ["hungarian", "greedy"], ["none", "quarter", "dark_udp"], [1, 2], [True, False],
    [None, 3], [0.0, 0.5], [False, True]))


@cpu_and_cuda()
@pytest.mark.parametrize("matching,refine", list(itertools.product(
    ["hungarian", "greedy"], ["none", "quarter", "dark_udp"])))
def test_op_matches_reference_every_option(device, matching, refine):
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    K = 4
    scenes = {L: crowd(rng, 2, K, 14, 18, 6, L, tag_step=0.8) for L in (1, 2)}
    for (_, _, L, fill, maxi, shift, permute) in [c for c in OPTION_GRID
                                                  if c[:2] == (matching, refine)]:
        hm, tags = scenes[L]
        kw = dict(keypoint_order=[2, 0, 3, 1] if permute else None, topk=6, max_instances=maxi,
                  matching=matching, refine=refine, center_shift=shift, fill_missing=fill)
        got = ops.ae_group(torch.from_numpy(hm).to(device), torch.from_numpy(tags).to(device), **kw)
        assert got.keypoints.shape == (2, 3 if maxi else K * 6, K, 2)
        assert_matches_reference(got, hm, tags, tol=1e-4 if refine == "dark_udp" else 1e-6, **kw)


@cpu_and_cuda()
@pytest.mark.parametrize("L", [1, 2])
def test_op_matches_reference_thirty_people(device, L):
    rng = np.random.default_rng(2 + L)
    hm, tags = crowd(rng, 2, 17, 64, 64, 30, L, tag_step=1.1, sigma=1.0)
    order = [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16]
    for matching in ("hungarian", "greedy"):
        kw = dict(keypoint_order=order, topk=30, matching=matching, max_instances=30)
        got = ops.ae_group(torch.from_numpy(hm).to(device), torch.from_numpy(tags).to(device), **kw)
        assert got.num_instances.tolist() == [30, 30]
        assert_matches_reference(got, hm, tags, **kw)


@cpu_and_cuda()
def test_op_matches_mmpose_recordings(device):
    d = np.load(DATA)
    for i in range(4):
        s, L, topk, nms, kthr, tthr, maxi, udp, shift = d[f"c{i}_options"]
        hm = torch.from_numpy(d[f"s{int(s)}_heatmaps"].astype(np.float32)).to(device)
        K = hm.shape[1]
        tags = torch.from_numpy(d[f"s{int(s)}_tags"][:, :K * int(L)].astype(np.float32)).to(device)
        got = ops.ae_group(hm, tags, keypoint_order=d[f"c{i}_order"].tolist(), topk=int(topk),
                           nms_kernel=int(nms), keypoint_threshold=kthr, tag_threshold=tthr,
                           max_instances=None if maxi < 0 else int(maxi),
                           refine="dark_udp" if udp else "quarter", center_shift=shift)
        counts = d[f"c{i}_counts"].tolist()
        assert got.num_instances.tolist() == counts
        per = got.per_image()
        kp = torch.cat([p.keypoints for p in per])
        tol = 1e-4 if udp else 1e-6
        np.testing.assert_allclose(kp[..., :2].numpy(), d[f"c{i}_keypoints"], atol=tol, rtol=0)
        np.testing.assert_allclose(kp[..., 2].numpy(), d[f"c{i}_keypoint_scores"], atol=tol, rtol=0)
        np.testing.assert_allclose(torch.cat([p.scores for p in per]).numpy(),
                                   d[f"c{i}_instance_scores"], atol=1e-6, rtol=0)


@cpu_and_cuda()
def test_exact_ties_follow_the_reference(device):
    # Every person's tag is exactly constant and people share tags pairwise, heatmap peaks
    # have equal values: rounded costs tie everywhere, equal keys collide, top-k ties.
    K, H, W = 3, 12, 12
    hm = np.zeros((1, K, H, W), np.float32)
    tags = np.zeros((1, K * 2, H, W), np.float32)
    spots = [(1, 1), (5, 2), (9, 3), (2, 8), (7, 9), (10, 10)]
    for p, (x, y) in enumerate(spots):
        for k in range(K):
            xx, yy = (x + k) % W, (y + 2 * k) % H
            hm[0, k, yy, xx] = 0.5 if p % 2 else 0.75
            tags[0, k, yy, xx] = float(p // 2)
            tags[0, K + k, yy, xx] = 0.25 * (p % 3)
    for matching in ("hungarian", "greedy"):
        for L in (1, 2):
            kw = dict(topk=6, matching=matching, tag_threshold=1.0)
            t = tags[:, :K * L]
            got = ops.ae_group(torch.from_numpy(hm).to(device), torch.from_numpy(t).to(device),
                               **kw)
            assert_matches_reference(got, hm, t, **kw)


@cpu_and_cuda()
def test_negative_threshold_and_plateaus(device):
    # keypoint_threshold < 0 makes suppressed pixels (value 0) candidates, ranked in pixel
    # order; flat plateaus keep every pixel of the plateau.
    rng = np.random.default_rng(5)
    hm = np.zeros((1, 2, 8, 9), np.float32)
    hm[0, 0, 2:4, 2:5] = 0.6
    hm[0, 1] = -rng.random((8, 9)).astype(np.float32)
    tags = rng.normal(size=(1, 2, 8, 9)).astype(np.float32)
    for thr in (-0.5, 0.1):
        kw = dict(topk=9, keypoint_threshold=thr, tag_threshold=0.7)
        got = ops.ae_group(torch.from_numpy(hm).to(device), torch.from_numpy(tags).to(device), **kw)
        assert_matches_reference(got, hm, tags, **kw)


# ------------------------------------------------------------------------------------------
# contract: errors, empty inputs, dtypes, torch.library


def _maps(B=1, K=3, H=10, W=11, L=1):
    rng = np.random.default_rng(0)
    hm, tags = crowd(rng, B, K, H, W, 3, L)
    return torch.from_numpy(hm), torch.from_numpy(tags)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(topk=111), ValueError, "topk"),
    (dict(topk=0), ValueError, "topk"),
    (dict(nms_kernel=4), ValueError, "nms_kernel"),
    (dict(blur_kernel=2), ValueError, "blur_kernel"),
    (dict(matching="munkres"), ValueError, "matching"),
    (dict(refine="dark"), ValueError, "refine"),
    (dict(keypoint_order=[0, 0, 1]), ValueError, "keypoint_order"),
    (dict(keypoint_order=[0, 1]), ValueError, "keypoint_order"),
    (dict(keypoint_threshold=float("nan")), ValueError, "keypoint_threshold"),
    (dict(tag_threshold=float("inf")), ValueError, "tag_threshold"),
    (dict(center_shift="a"), TypeError, "center_shift"),
    (dict(max_instances=-1), ValueError, "max_instances"),
    (dict(max_instances=2 ** 40), ValueError, "max_instances"),
    (dict(fill_missing=1), TypeError, "fill_missing"),
])
def test_bad_options(kwargs, exc, match):
    hm, tags = _maps()
    with pytest.raises(exc, match=rf"^pyhpe\.ae_group: .*{match}"):
        ops.ae_group(hm, tags, **kwargs)


def test_bad_inputs():
    hm, tags = _maps()
    for bad_hm, bad_tags, match in [
        (hm[0], tags, "heatmaps"), (hm, tags[:, :2], "tags"), (hm, tags[..., :5], "tags"),
        (hm, tags[:1, :, :, :, None], "tags")]:
        with pytest.raises(ValueError, match=rf"^pyhpe\.ae_group: .*{match}"):
            ops.ae_group(bad_hm, bad_tags)
    for v in (float("nan"), float("inf")):
        h = hm.clone()
        h[0, 1, 2, 3] = v
        with pytest.raises(ValueError, match=r"^pyhpe\.ae_group: 'heatmaps' contains NaN"):
            ops.ae_group(h, tags)
        t = tags.clone()
        t[0, 0, 0, 0] = v
        with pytest.raises(ValueError, match=r"^pyhpe\.ae_group: 'tags' contains NaN"):
            ops.ae_group(hm, t)
    with pytest.raises(ValueError, match=r"^pyhpe\.ae_group: K \* topk"):
        ops.ae_group(torch.zeros(1, 300, 8, 8), torch.zeros(1, 300, 8, 8), topk=64)
    with pytest.raises(ValueError, match=r"^pyhpe\.ae_group: 'tags' has L = 65"):
        ops.ae_group(torch.zeros(1, 1, 8, 8), torch.zeros(1, 65, 8, 8))
    with pytest.raises(TypeError, match=r"pyhpe\.ae_group: 'heatmaps'"):
        torch.ops.pyhpe.ae_group(torch.zeros(1, 1, 4, 4, dtype=torch.int64),
                                 torch.zeros(1, 1, 4, 4), [0])


def test_not_differentiable():
    hm, tags = _maps()
    with pytest.raises(RuntimeError, match=r"pyhpe\.ae_group: is not differentiable"):
        ops.ae_group(hm.requires_grad_(), tags)
    with torch.no_grad():
        assert ops.ae_group(hm, tags).num_instances.item() > 0


def test_empty_inputs():
    got = ops.ae_group(torch.zeros(0, 3, 8, 8), torch.zeros(0, 6, 8, 8), topk=4)
    assert got.keypoints.shape == (0, 12, 3, 2) and got.num_instances.shape == (0,)
    got = ops.ae_group(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), topk=4, max_instances=5)
    assert got.num_instances.tolist() == [0, 0] and got.keypoints.shape == (2, 5, 3, 2)
    assert not got.keypoints.any()
    got = ops.ae_group(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), max_instances=0, topk=4)
    assert got.keypoints.shape == (1, 0, 3, 2) and got.num_instances.tolist() == [0]


def test_dtypes_and_layouts():
    hm, tags = _maps(B=2, L=2)
    want = ops.ae_group(hm, tags, topk=5)
    got = ops.ae_group(hm.double(), tags.double(), topk=5)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    got = ops.ae_group(hm.transpose(2, 3).contiguous().transpose(2, 3), tags.numpy(), topk=5)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    assert got.keypoints.dtype == torch.float32 and got.num_instances.dtype == torch.int64


@cpu_and_cuda()
def test_opcheck(device):
    hm, tags = _maps(B=2, L=2)
    args = (hm.to(device), tags.to(device), [2, 0, 1], 5, 5, 0.1, 1.0, None, "hungarian",
            "quarter", 3, 0.0, True)
    torch.library.opcheck(torch.ops.pyhpe.ae_group.default, args,
                          test_utils=("test_schema", "test_autograd_registration",
                                      "test_faketensor", "test_aot_dispatch_dynamic"))


def test_torch_compile():
    hm, tags = _maps(B=2, L=2)

    def f(h, t):
        return ops.ae_group(h, t, topk=5, max_instances=4, refine="dark_udp")

    got = torch.compile(f, fullgraph=True, backend="aot_eager")(hm, tags)
    want = f(hm, tags)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_on_noise():
    rng = np.random.default_rng(9)
    hm = torch.from_numpy(rng.random((3, 5, 33, 29)).astype(np.float32))
    tags = torch.from_numpy(rng.normal(size=(3, 10, 33, 29)).astype(np.float32))
    for refine in ("quarter", "dark_udp"):
        for matching in ("hungarian", "greedy"):
            kw = dict(topk=12, refine=refine, matching=matching, keypoint_threshold=0.5)
            want = ops.ae_group(hm, tags, **kw)
            got = ops.ae_group(hm.cuda(), tags.cuda(), **kw)
            for g, w in zip(got, want):
                torch.testing.assert_close(g.cpu(), w, rtol=0, atol=1e-5)


def test_many_keypoints_use_numpys_pairwise_sums():
    # K > 128: instance scores are np.mean over K values, numpy's pairwise halving.
    rng = np.random.default_rng(3)
    hm = rng.random((1, 140, 10, 10)).astype(np.float32)
    tags = rng.normal(size=(1, 140, 10, 10)).astype(np.float32)
    kw = dict(topk=2, keypoint_threshold=0.5)
    got = ops.ae_group(torch.from_numpy(hm), torch.from_numpy(tags), **kw)
    _, _, inst = ref.ae_group(hm, tags, **kw)
    n = got.num_instances.item()
    assert n == len(inst[0]) > 0
    np.testing.assert_array_equal(got.instance_scores[0, :n].numpy(), inst[0])
    assert_matches_reference(got, hm, tags, **kw)
