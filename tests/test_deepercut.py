"""DeeperCut: the model (dilated ResNet, deconvolution outputs, paper parameter count), the
codec's targets against a port of pose-tensorflow's, the loss, the image-conditioned pairwise
terms, the incremental ILP on crowded scenes, decoding and learning through the engine."""
import json
import math
import os

import numpy as np
import pytest
import torch

from pyhpe.codecs import build_codec
from pyhpe.codecs.deepercut import (COCO17_SPARSE_GRAPH, COCO17_STAGES, DeeperCutLabel,
                                    DeeperCutOutputs, pairwise_index, pairwise_stats)
from pyhpe.grouping import (check_feasible, deepcut_group, deepcut_group_incremental,
                            regression_pairwise)
from pyhpe.grouping.deepcut import (SWAP_DIRECTION, fit_pairwise_logistic,
                                    labelled_regression_pairwise)
from pyhpe.models import build_model, list_models
from pyhpe.models.deepercut import DeeperCutHead, huber
from pyhpe.tasks import build_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = lambda *a: None  # noqa: E731


# ---------------------------------------------------------------------------- model
def test_registry_and_paper_parameter_count():
    """The backbone is ResNet-101 without its classifier: 42,500,160 parameters (44,549,160
    minus the 2,049,000 of the fc layer); the COCO-17 outputs add 2048 * 9 * 595 + 595 and
    the intermediate supervision 1024 * 9 * 17 + 17."""
    assert "deepercut" in list_models()
    model = build_model("deepercut", "paper", num_keypoints=17)
    backbone = sum(p.numel() for p in model.backbone.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert backbone == 44_549_160 - (2048 * 1000 + 1000) == 42_500_160
    assert total - backbone == 2048 * 9 * 595 + 595 + 1024 * 9 * 17 + 17
    assert total == 53_624_484
    # conv5 is dilated, not strided: output stride 16, 8 after the deconvolutions
    last = model.backbone.stages[-1]
    convs = [m for m in last.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.stride == (1, 1) for m in convs)
    assert all(m.dilation == (2, 2) for m in convs if m.kernel_size == (3, 3))
    assert model.backbone.stride == 16 and model.codec.heatmap_size == (32, 32)
    assert len(model.backbone.stages[2]) == 23 and model.backbone.interm_block == 12


def test_tiny_forward_shapes_and_loss():
    model = build_model("deepercut", "tiny", num_keypoints=5)
    codec = model.codec
    assert codec.heatmap_size == (8, 8) and codec.stride == (8.0, 8.0)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert isinstance(out, DeeperCutOutputs)
    assert out.scoremaps.shape == (2, 5, 8, 8) and out.locref.shape == (2, 10, 8, 8)
    assert out.pairwise.shape == (2, 40, 8, 8) and out.scoremaps_interm.shape == (2, 5, 8, 8)
    kp = torch.tensor([[[[10.0, 12.0], [20, 20], [30, 40], [40, 50], [50, 10]]]]).repeat(2, 1, 1, 1)
    targets = codec.encode(kp, torch.ones(2, 1, 5))
    losses = model(x, targets)
    assert set(losses) == {"loss_part", "loss_part_interm", "loss_locref", "loss_pairwise"}
    sum(losses.values()).backward()
    assert model.head.pairwise_pred.weight.grad.abs().sum() > 0
    # the loss of outputs equal to the targets: only the sigmoid cross-entropy remains
    logits = torch.where(targets["scoremaps"] > 0, 20.0, -20.0)
    perfect = DeeperCutOutputs(logits, targets["locref"], targets["pairwise"], logits)
    losses = model.head.loss(perfect, targets)
    assert all(v < 1e-6 for v in losses.values()), losses
    no_interm = build_model("deepercut", "tiny", num_keypoints=5, intermediate_supervision=False)
    assert no_interm(x).scoremaps_interm is None
    with pytest.raises(ValueError, match="heatmap_size"):
        build_model("deepercut", "tiny", codec=DeeperCutLabel((64, 64), (16, 16)))
    model.eval()
    people, scores = model.predict(x, flip_test=True, flip_index=[0, 2, 1, 4, 3])
    assert len(people) == 2 and all(p.shape[1:] == (5, 2) for p in people)


def test_huber_is_pose_tensorflows():
    """k = 1; the sum over the cells with a non-zero weight divided by their number."""
    pred = torch.tensor([0.0, 0.5, 3.0, 7.0])
    target = torch.tensor([0.0, 0.0, 0.0, 0.0])
    w = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert huber(pred, target, w).item() == pytest.approx((0 + 0.125 + 2.5) / 3)
    assert huber(pred, target, torch.zeros(4)).item() == 0.0


# ---------------------------------------------------------------------------- targets
def official_targets(joints, size, stride, dist_thresh, locref_stdev, stats):
    """pose-tensorflow's ``compute_targets_and_weights`` (dataset/pose_dataset.py), ported
    loop for loop, with two stated changes: cell ``(i, j)`` is input pixel ``(i, j) * stride``
    (pyhpe's integer-centre convention, the official adds half a stride) and a nearer person
    that takes over a cell clears the pairwise offsets of the parts it lacks (the official
    leaves the farther person's there). ``joints``: per person a list of (k, x, y)."""
    K = stats[0].shape[0]
    h, w = size
    scmap = np.zeros((h, w, K))
    locref_map, locref_mask = np.zeros((h, w, 2 * K)), np.zeros((h, w, 2 * K))
    pw_map, pw_mask = np.zeros((h, w, 2 * K * (K - 1))), np.zeros((h, w, 2 * K * (K - 1)))
    for person in joints:
        for k, x, y in person:
            for j in range(h):
                for i in range(w):
                    px, py = i * stride, j * stride
                    dx, dy = x - px, y - py
                    dist = dx ** 2 + dy ** 2
                    if dist > dist_thresh ** 2:
                        continue
                    scale = 1.0 / locref_stdev
                    prev = locref_map[j, i, 2 * k] ** 2 + locref_map[j, i, 2 * k + 1] ** 2
                    if scmap[j, i, k] == 0 or prev > dist * scale ** 2:
                        locref_mask[j, i, 2 * k: 2 * k + 2] = 1
                        locref_map[j, i, 2 * k: 2 * k + 2] = dx * scale, dy * scale
                        for k2 in range(K):
                            if k2 != k:
                                c = pairwise_index(k, k2, K)
                                pw_mask[j, i, 2 * c: 2 * c + 2] = 0
                                pw_map[j, i, 2 * c: 2 * c + 2] = 0
                        for k2, x2, y2 in person:
                            if k2 != k:
                                c = pairwise_index(k, k2, K)
                                mean, std = stats[0][k, k2], stats[1][k, k2]
                                pw_mask[j, i, 2 * c: 2 * c + 2] = 1
                                pw_map[j, i, 2 * c] = (x2 - px - mean[0]) / std[0]
                                pw_map[j, i, 2 * c + 1] = (y2 - py - mean[1]) / std[1]
                    scmap[j, i, k] = 1
    chw = lambda a: np.moveaxis(a, -1, 0)  # noqa: E731
    return {"scoremaps": chw(scmap), "locref": chw(locref_map), "locref_weights": chw(locref_mask),
            "pairwise": chw(pw_map), "pairwise_weights": chw(pw_mask)}


def test_targets_match_pose_tensorflow():
    rng = np.random.default_rng(0)
    K, N = 4, 3
    kp = rng.uniform(0, 48, (1, N, K, 2)).astype(np.float32)
    kp[0, 1] = kp[0, 0] + rng.normal(0, 4, (K, 2))          # two people overlapping
    vis = (rng.random((1, N, K)) > 0.25).astype(np.float32)
    mean = rng.normal(0, 5, (K, K, 2))
    std = rng.uniform(3, 9, (K, K, 2))
    codec = DeeperCutLabel((48, 48), (12, 12), pos_dist_thresh=7.0, locref_stdev=7.2801,
                           pairwise_mean=mean, pairwise_std=std)
    got = codec.encode(torch.from_numpy(kp), torch.from_numpy(vis))
    joints = [[(k, *kp[0, n, k].astype(np.float64)) for k in range(K) if vis[0, n, k]]
              for n in range(N)]
    ref = official_targets(joints, (12, 12), 4.0, 7.0, 7.2801, (mean, std))
    assert ref["scoremaps"].sum() > 10 and ref["pairwise_weights"].sum() > 10
    for name, want in ref.items():
        np.testing.assert_allclose(got[name][0].numpy(), want, atol=2e-5, err_msg=name)
    # single-instance batches and a batch without people
    one = codec.encode(torch.from_numpy(kp[:, 0]), torch.from_numpy(vis[:, 0]))
    assert one["scoremaps"].shape == (1, K, 12, 12) and one["keypoint_weights"].shape == (1, K)
    empty = codec.encode(torch.zeros(2, 0, K, 2), torch.zeros(2, 0, K))
    assert empty["scoremaps"].sum() == 0 and empty["pairwise"].shape == (2, 2 * K * (K - 1), 12, 12)


def test_pairwise_stats_and_codec_config():
    poses = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]],
                      [[5.0, 5.0], [17.0, 5.0], [0.0, 0.0]]])
    vis = np.array([[2, 2, 2], [2, 2, 0]])
    mean, std = pairwise_stats(poses, vis)
    np.testing.assert_allclose(mean[0, 1], [11.0, 0.0])
    np.testing.assert_allclose(std[0, 1], [1.0, 1.0])             # (1, 0) floored at min_std
    np.testing.assert_allclose(mean[0, 2], [0.0, 20.0])
    assert pairwise_index(0, 1, 3) == 0 and pairwise_index(1, 0, 3) == 2
    assert pairwise_index(2, 1, 3) == 5
    codec = build_codec("deepercut", input_size=[64, 64], heatmap_size=[8, 8],
                        pairwise_mean=mean, pairwise_std=std, stages=COCO17_STAGES[:1])
    assert build_codec(**codec.to_config()) == codec
    with pytest.raises(ValueError, match="both"):
        DeeperCutLabel(pairwise_mean=mean)
    with pytest.raises(ValueError, match="pos_dist_thresh"):
        DeeperCutLabel(pos_dist_thresh=0)


# ---------------------------------------------------------------------------- pairwise terms
def official_pairwise(pos1, grid1, pos2, grid2, off_fwd, off_bwd, w, x_min, x_max):
    """pose-tensorflow's ``compute_different_part_pairwise`` (multiperson/predict.py) for
    every (candidate of class 1, candidate of class 2) pair."""
    def features(real, pred):
        a = np.arctan2(real[:, 1], real[:, 0])
        b = np.arctan2(pred[:, 1], pred[:, 0])
        d = a - b
        d[d > math.pi] -= 2 * math.pi
        d[d < -math.pi] += 2 * math.pi
        return np.linalg.norm(real - pred, axis=1), np.abs(d)
    i, j = np.meshgrid(np.arange(len(pos1)), np.arange(len(pos2)), indexing="ij")
    i, j = i.ravel(), j.ravel()
    d1, a1 = features(pos2[j] - grid1[i], off_fwd[i])
    d2, a2 = features(pos1[i] - grid2[j], off_bwd[j])
    f = np.stack([d1, a1, d2, a2], 1)
    f = np.hstack([f, np.exp(-f)])
    f = (f - x_min) / (x_max - x_min)
    f = np.hstack([f, np.ones((len(f), 1))])
    return (1 / (1 + np.exp(-f @ w))).reshape(len(pos1), len(pos2))


def test_regression_pairwise_matches_pose_tensorflow():
    rng = np.random.default_rng(3)
    n1, n2, K = 3, 4, 2
    grid = rng.uniform(0, 64, (n1 + n2, 2))
    pos = grid + rng.normal(0, 2, (n1 + n2, 2))
    cls = np.array([0] * n1 + [1] * n2)
    off = rng.normal(0, 20, (n1 + n2, K, 2))
    w = rng.normal(0, 1, 9)
    x_min, x_max = rng.uniform(-1, 0, 8), rng.uniform(2, 40, 8)
    got = regression_pairwise(pos, off, w, x_min=x_min, x_max=x_max, origins=grid)
    want = official_pairwise(pos[:n1], grid[:n1], pos[n1:], grid[n1:], off[:n1, 1], off[n1:, 0],
                             w, x_min, x_max)
    np.testing.assert_allclose(got[:n1, n1:, 0, 1], want, rtol=1e-10, atol=1e-12)
    # same part: 1 / (1 + exp(0.2 d - 7.5)) of the refined positions
    d = np.linalg.norm(pos[0] - pos[1])
    assert got[0, 1, 0, 0] == pytest.approx(1 / (1 + np.exp(0.2 * d - 7.5)))
    assert cls.sum() == n2


def test_labelled_pairwise_equals_the_full_model():
    """Only each candidate's own label pair is computed; those entries are the full
    model's (per-pair weights and min-max ranges), the rest carry no term (0.5)."""
    rng = np.random.default_rng(5)
    n, K = 7, 3
    pos = rng.uniform(0, 50, (n, 2))
    grid = pos + rng.normal(0, 1, (n, 2))
    off = rng.normal(0, 15, (n, K, 2))
    cls = rng.integers(0, K, n)
    w = rng.normal(0, 1, (K, K, 9))
    lo, hi = rng.uniform(-1, 0, (K, K, 8)), rng.uniform(5, 30, (K, K, 8))
    full = regression_pairwise(pos, off, w, x_min=lo, x_max=hi, origins=grid, same_part=(7.5, 0.4))
    got = labelled_regression_pairwise(pos, off, cls, w, x_min=lo, x_max=hi, origins=grid,
                                       same_part=(7.5, 0.4))
    d, e = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    np.testing.assert_allclose(got[d, e, cls[d], cls[e]], full[d, e, cls[d], cls[e]], rtol=1e-12)
    mask = np.ones(got.shape, bool)
    mask[d, e, cls[d], cls[e]] = False
    assert (got[mask] == 0.5).all()


def test_fit_pairwise_logistic_recovers_a_model():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, (4000, 8))
    x[:, 4:] = np.exp(-x[:, :4])
    w_true = np.array([-3.0, -1.0, -3.0, -1.0, 0.5, 0, 0.5, 0, 4.0])
    lo, hi = x.min(0), x.max(0)
    p_true = 1 / (1 + np.exp(-(((x - lo) / (hi - lo)) @ w_true[:8] + w_true[8])))
    y = (rng.random(len(x)) < p_true).astype(float)
    w, x_min, x_max = fit_pairwise_logistic(x, y, l2=1e-6)
    np.testing.assert_allclose(x_min, lo)
    np.testing.assert_allclose(x_max, hi)
    p = 1 / (1 + np.exp(-(((x - x_min) / (x_max - x_min)) @ w[:8] + w[8])))
    assert np.abs(p - p_true).mean() < 0.03
    with pytest.raises(ValueError, match="features"):
        fit_pairwise_logistic(np.zeros((3, 4)), np.zeros(3))


def test_codec_learns_the_spatial_model():
    """``fit_pairwise`` on outputs with noisy offsets over crowded images: per-pair models
    that separate same-person pairs from the rest, the backward direction the forward one
    swapped, and decoding with them recovers the people."""
    rng = np.random.default_rng(1)
    scenes = [_crowd([(22, 34), (40, 36), (60, 30)], rng) for _ in range(6)]
    kp = torch.tensor(np.stack(scenes), dtype=torch.float32)
    vis = torch.ones(6, 3, 17)
    mean, std = pairwise_stats(np.concatenate(scenes), np.ones((18, 17)))
    codec = DeeperCutLabel((80, 64), (20, 16), pos_dist_thresh=6.0, pairwise_mean=mean,
                           pairwise_std=std, sparse_graph=COCO17_SPARSE_GRAPH,
                           stages=COCO17_STAGES, same_part=(7.5, 0.5), nms_radius=1)
    out = _gt_like_outputs(codec, kp, vis)
    out = out._replace(pairwise=out.pairwise + 0.15 * torch.randn(out.pairwise.shape,
                                                                  generator=torch.Generator().manual_seed(0)))
    ca, cb, feats, same = codec.pair_samples(out, kp, vis)
    assert len(same) > 1000 and 0.2 < same.mean() < 0.5 and (ca < cb).all()
    assert codec.fit_pairwise(out, kp, vis) == len(same)
    w, lo, hi = codec.pairwise_weights, codec.pairwise_x_min, codec.pairwise_x_max
    assert w.shape == (17, 17, 9) and lo.shape == (17, 17, 8)
    np.testing.assert_allclose(w[7, 5, :8], w[5, 7, :8][SWAP_DIRECTION])
    np.testing.assert_allclose(hi[7, 5], hi[5, 7][SWAP_DIRECTION])
    z = (feats - lo[ca, cb]) / (hi[ca, cb] - lo[ca, cb])
    p = 1 / (1 + np.exp(-((z * w[ca, cb, :8]).sum(1) + w[ca, cb, 8])))
    assert ((p > 0.5) == (same > 0)).mean() > 0.97
    keypoints, scores, _ = codec.decode_instances(DeeperCutOutputs(*[t[:1] for t in out[:3]]))
    pred = keypoints[0].numpy()
    assert pred.shape == (3, 17, 2)
    for q in range(3):
        err = np.abs(pred[np.argsort(pred[:, 0, 0])][q] - scenes[0][q]).max()
        assert err < 1.5, (q, err)
    # one label only (a single person per image): nothing to fit, nothing changes
    single = DeeperCutLabel((80, 64), (20, 16), pos_dist_thresh=6.0)
    one = _gt_like_outputs(single, kp[:, :1], vis[:, :1])
    assert single.fit_pairwise(one, kp[:, :1], vis[:, :1]) == 0 and single.pairwise_weights is None


# ---------------------------------------------------------------------------- crowded scenes
TEMPLATE = np.array([[0, -20], [-3, -22], [3, -22], [-6, -21], [6, -21], [-8, -12], [8, -12],
                     [-11, -3], [11, -3], [-12, 5], [12, 5], [-5, 4], [5, 4], [-6, 16],
                     [6, 16], [-6, 28], [6, 28]], np.float64)


def _crowd(centres, rng, jitter=1.0):
    return np.stack([TEMPLATE + np.asarray(c) + rng.normal(0, jitter, TEMPLATE.shape)
                     for c in centres])


def _instance(people, rng, noise=1.5, clutter=0):
    """Candidates of every part of every person (+ clutter), their unaries and DeeperCut's
    pairwise terms from offsets regressed with ``noise`` pixels of error."""
    P, K = people.shape[:2]
    pos = people.reshape(-1, 2)
    cls = np.tile(np.arange(K), P)
    off = np.concatenate([people[p][None] - people[p][:, None] for p in range(P)])
    off = off + rng.normal(0, noise, off.shape)
    if clutter:
        pos = np.concatenate([pos, rng.uniform(pos.min(0), pos.max(0), (clutter, 2))])
        cls = np.concatenate([cls, rng.integers(0, K, clutter)])
        off = np.concatenate([off, rng.normal(0, 20, (clutter, K, 2))])
    n = len(cls)
    score = np.concatenate([rng.uniform(0.6, 0.95, P * K), rng.uniform(0.2, 0.5, clutter)])
    unary = np.zeros((n, K))
    unary[np.arange(n), cls] = score
    allowed = unary > 0
    prob = regression_pairwise(pos, off, sigma=3.0, same_part=(7.5, 0.5))
    keep = np.zeros((K, K), bool)
    keep[np.arange(K), np.arange(K)] = True
    for a, b in COCO17_SPARSE_GRAPH:
        keep[a, b] = keep[b, a] = True
    prob = np.where(keep[cls[:, None], cls[None, :]][:, :, None, None], prob, 0.5)
    return pos, cls, unary, allowed, prob


@pytest.mark.parametrize("seed", [0, 1])
def test_incremental_equals_single_shot_on_crowds(seed):
    """Three people with overlapping boxes (12-16 px apart; a person is 24 x 50 px) and
    clutter: the incremental solve (head + shoulders, + elbows and wrists, + the rest) finds
    the single-shot ILP's optimum and both recover the people (lazy transitivity; the next
    test checks it against all triangles stated up front)."""
    rng = np.random.default_rng(seed)
    people = _crowd([(20, 30), (34, 33), (47, 29)], rng)
    pos, cls, unary, allowed, prob = _instance(people, rng, clutter=3)
    full = deepcut_group(pos, unary, prob, allowed=allowed, transitivity="lazy")
    inc = deepcut_group_incremental(pos, unary, prob, cls, COCO17_STAGES, allowed=allowed,
                                    transitivity="lazy")
    assert check_feasible(inc, 17, allowed)
    assert inc.objective == pytest.approx(full.objective, abs=1e-6)
    truth = np.repeat(np.arange(3), 17)
    for sol in (full, inc):
        got = sol.clusters[:51]
        assert (got >= 0).all() and len(set(got)) == 3
        assert all(len(set(got[truth == p])) == 1 for p in range(3))


@pytest.mark.parametrize("seed,n,c", [(0, 5, 2), (1, 6, 2), (2, 5, 3)])
def test_lazy_transitivity_equals_brute_force(seed, n, c):
    """Triangle inequalities added only when violated: the brute-force optimum over every
    labelling and partition (random costs, where many triangles are violated)."""
    from test_deepcut import brute_force, random_instance
    unary, pairwise = random_instance(np.random.default_rng(seed), n, c)
    sol = deepcut_group(None, unary, pairwise, transitivity="lazy")
    assert check_feasible(sol, c)
    assert sol.objective == pytest.approx(brute_force(unary, pairwise), abs=1e-6)
    with pytest.raises(ValueError, match="transitivity"):
        deepcut_group(None, unary, pairwise, transitivity="some")


def test_lazy_equals_full_on_a_crowd_with_clutter():
    rng = np.random.default_rng(7)
    people = _crowd([(20, 30), (34, 33), (47, 29)], rng)
    pos, cls, unary, allowed, prob = _instance(people, rng, noise=3.0, clutter=4)
    full = deepcut_group(pos, unary, prob, allowed=allowed)
    lazy = deepcut_group(pos, unary, prob, allowed=allowed, transitivity="lazy")
    inc = deepcut_group_incremental(pos, unary, prob, cls, COCO17_STAGES, allowed=allowed,
                                    transitivity="lazy")
    assert lazy.objective == pytest.approx(full.objective, abs=1e-6)
    assert inc.objective == pytest.approx(full.objective, abs=1e-6)


def test_incremental_first_stage_is_exact():
    """The first stage alone is the exact optimum of the head-and-shoulders problem (the
    subset dynamic programme of test_deepcut over every partition), and later stages keep
    its labels and joins."""
    from test_deepcut import exhaustive_single_label
    rng = np.random.default_rng(4)
    people = _crowd([(20, 30), (31, 32)], rng, jitter=2.0)
    pos, cls, unary, allowed, prob = _instance(people, rng, noise=4.0)
    first = np.isin(cls, COCO17_STAGES[0])
    stage = deepcut_group(pos[first], unary[first], prob[np.ix_(first, first)],
                          allowed=allowed[first])
    ref = exhaustive_single_label(unary[first], prob[np.ix_(first, first)], cls[first])
    assert stage.objective == pytest.approx(ref, abs=1e-6)
    inc = deepcut_group_incremental(pos, unary, prob, cls, COCO17_STAGES, allowed=allowed)
    np.testing.assert_array_equal(inc.labels[first], stage.labels)
    a, b = inc.clusters[first], stage.clusters
    assert all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


# ---------------------------------------------------------------------------- decoding
def _gt_like_outputs(codec, kp, vis, sigma=4.0):
    t = codec.encode(kp, vis)
    B, K = t["scoremaps"].shape[:2]
    h, w = t["scoremaps"].shape[-2:]
    d = t["locref"].view(B, K, 2, h, w).norm(dim=2) * codec.locref_stdev
    prob = torch.where(t["scoremaps"] > 0, torch.exp(-d ** 2 / (2 * sigma ** 2)),
                       torch.zeros_like(d)).clamp(1e-4, 1 - 1e-4)
    return DeeperCutOutputs(torch.logit(prob), t["locref"], t["pairwise"])


@pytest.mark.parametrize("stages", [None, COCO17_STAGES])
def test_decode_ground_truth_like_maps(stages):
    """Targets made into outputs (score = a Gaussian of the distance to the part) decode to
    the people, each part within a pixel, missing parts missing."""
    rng = np.random.default_rng(0)
    people = _crowd([(22, 34), (52, 36), (84, 30)], rng)
    vis = np.ones((1, 3, 17), np.float32)
    vis[0, 1, [9, 15]] = 0                                 # a hidden wrist and ankle
    kp = torch.tensor(people[None], dtype=torch.float32)
    mean, std = pairwise_stats(people, vis[0])
    codec = DeeperCutLabel((112, 80), (28, 20), pos_dist_thresh=6.0, pairwise_mean=mean,
                           pairwise_std=std, stages=stages, sparse_graph=COCO17_SPARSE_GRAPH,
                           same_part=(7.5, 0.5), nms_radius=1)
    out = _gt_like_outputs(codec, kp, torch.from_numpy(vis))
    keypoints, scores, person_scores = codec.decode_instances(out)
    assert len(keypoints) == 1 and keypoints[0].shape == (3, 17, 2)
    found = scores[0].numpy() > 0
    pred = keypoints[0].numpy()
    order = np.argsort(pred[:, 0, 0])                      # left to right
    for p, q in enumerate(order):
        np.testing.assert_array_equal(found[q], vis[0, p] > 0)
        err = np.abs(pred[q] - people[p])[found[q]]
        assert err.max() < 1.0, (p, err.max())
    assert (person_scores[0].numpy() > 0.5).all()
    # a model's predict goes through the same decoding
    kps, sc = codec.decode(out)
    assert kps[0].shape == (3, 17, 2)
    # nothing above the threshold: no people
    empty = out._replace(scoremaps=torch.full_like(out.scoremaps, -9.0))
    assert codec.decode_instances(empty)[0][0].shape == (0, 17, 2)


def _mirror(kp, vis, width, flip):
    out = kp[..., flip, :].clone()
    out[..., 0] = width - 1 - out[..., 0]
    return out, vis[..., flip]


def test_flip_back_at_stride_one_is_exact():
    """At stride 1 mirroring needs no sub-cell shift: the targets of the mirrored people,
    flipped back, are the targets of the people (part maps, x-negated location refinement,
    the mirrored pairs' offsets re-normalised by each pair's statistics)."""
    from pyhpe.keypoints import COCO17
    flip = COCO17.flip_index()
    rng = np.random.default_rng(2)
    people = _crowd([(14, 30), (40, 28)], rng)
    kp = torch.tensor(people[None], dtype=torch.float32)
    vis = torch.ones(1, 2, 17)
    vis[0, 0, 3] = 0
    mean, std = pairwise_stats(people, np.ones((2, 17)))
    mean += rng.normal(0, 2, mean.shape)                       # asymmetric statistics
    codec = DeeperCutLabel((56, 64), (56, 64), pos_dist_thresh=2.5, pairwise_mean=mean,
                           pairwise_std=std)
    t = codec.encode(kp, vis)
    tm = codec.encode(*_mirror(kp, vis, 56, flip))
    mirrored = DeeperCutOutputs(tm["scoremaps"], tm["locref"], tm["pairwise"], tm["scoremaps"])
    back = codec.flip_back(mirrored, flip)
    torch.testing.assert_close(back.scoremaps, t["scoremaps"])
    torch.testing.assert_close(back.scoremaps_interm, t["scoremaps"])
    torch.testing.assert_close(back.locref, t["locref"], atol=1e-5, rtol=0)
    on = t["pairwise_weights"] > 0
    assert on.sum() > 100
    torch.testing.assert_close(back.pairwise[on], t["pairwise"][on], atol=1e-4, rtol=0)


def test_flip_test_decodes_the_people():
    """At stride 4: the mirrored image's outputs flipped back decode to the people, alone
    and averaged with the unflipped outputs."""
    from pyhpe.keypoints import COCO17
    flip = COCO17.flip_index()
    rng = np.random.default_rng(0)
    people = _crowd([(22, 34), (52, 36), (84, 30)], rng)
    kp = torch.tensor(people[None], dtype=torch.float32)
    vis = torch.ones(1, 3, 17)
    mean, std = pairwise_stats(people, np.ones((3, 17)))
    codec = DeeperCutLabel((112, 80), (28, 20), pos_dist_thresh=6.0, pairwise_mean=mean,
                           pairwise_std=std, stages=COCO17_STAGES, sparse_graph=COCO17_SPARSE_GRAPH,
                           same_part=(7.5, 0.5), nms_radius=1)
    out = _gt_like_outputs(codec, kp, vis)
    mirrored = _gt_like_outputs(codec, *_mirror(kp, vis, 112, flip))
    for fused in (codec.flip_back(mirrored, flip),
                  codec.average(out, codec.flip_back(mirrored, flip))):
        pred = codec.decode_instances(fused)[0][0].numpy()
        assert pred.shape == (3, 17, 2)
        pred = pred[np.argsort(pred[:, 0, 0])]
        assert np.abs(pred - people).max() < 1.5, np.abs(pred - people).max()


# ---------------------------------------------------------------------------- task, learning
def _bottomup(out_dir, steps=150, **over):
    cfg = {"task": "bottomup_deepercut", "input_size": [64, 64],
           "model": {"name": "deepercut", "config": "tiny"},
           "codec": {"name": "deepercut", "heatmap_size": [8, 8], "pos_dist_thresh": 8.0,
                     "same_part": [7.5, 0.5], "nms_radius": 1, "max_peaks": 2, "threshold": 0.3,
                     "max_candidates": 24},
           "data": {"type": "synthetic", "num_images": 48, "val_images": 8, "image_size": 64,
                    "max_persons": 1, "occlusion": 0.0, "seed": 0},
           "train": {"epochs": 1000, "max_steps": steps, "batch_size": 8, "lr": 4e-3,
                     "warmup_steps": 10, "eval_every": 0, "progress": False, "seed": 0,
                     "ema": False, "device": "cpu", "out_dir": str(out_dir)}}
    cfg.update(over)
    return cfg


def test_task_fills_stats_stages_and_graph(tmp_path):
    task = build_task(_bottomup(tmp_path))
    assert task.codec.stages == [tuple(s) for s in COCO17_STAGES]
    assert task.codec.pairwise_mean is None
    task.datasets()
    mean = task.codec.pairwise_mean
    assert mean.shape == (17, 17, 2)
    assert mean[0, 15, 1] > 10                      # ankles are below the nose
    assert isinstance(task.build_model().head, DeeperCutHead)
    cfg = json.load(open(os.path.join(ROOT, "configs", "bottomup_deepercut_synthetic.json")))
    shipped = build_task(cfg)
    assert shipped.name == "bottomup_deepercut"
    assert isinstance(shipped.build_model().head, DeeperCutHead)


# measured (seed 0, 150 steps, ~11 s on one idle thread): AP 0.0 -> 0.097, AP50 0.73. Longer,
# on crowds (tiny, 96 px, up to 2 figures, 200 images, 800 steps): AP 0.254 / AP50 0.698 with
# the hand-set pairwise model, 0.276 / 0.740 with the spatial model fitted on 96 images
DEEPERCUT_MIN_AP50 = 0.3


def test_deepercut_learns(tmp_path):
    """Through the bottom-up task and the engine: the loss falls, AP and AP50 rise from 0."""
    from pyhpe.engine import Trainer
    task = build_task(_bottomup(tmp_path))
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()
    result = trainer.fit()
    after = result["metrics"]
    print("deepercut AP", before["AP"], after["AP"], "AP50", after["AP50"])
    assert {"loss_part", "loss_part_interm", "loss_locref", "loss_pairwise"} <= set(result["history"][-1])
    assert before["AP"] == 0.0 and after["AP"] > 0.02 and after["AP50"] >= DEEPERCUT_MIN_AP50, after
    curve = [p["loss"] for p in result["loss_log"]]
    assert np.mean(curve[-3:]) < 0.4 * np.mean(curve[:3]), curve


def test_trains_on_real_coco_format_data(tmp_path):
    """OCHuman images (COCO-17, keypoints from the file's category): two steps and an
    evaluation run, the pairwise statistics come from the file's poses."""
    ann = os.path.join(ROOT, "tests", "data", "ochuman_sample.json")
    images = os.path.join(ROOT, "tests", "data", "ochuman")
    data = {"type": "coco", "train_ann": ann, "train_images": images, "val_ann": ann,
            "val_images": images}
    task = build_task(_bottomup(tmp_path, steps=2, data=data, keypoints="auto",
                                pairwise_fit_images=2))
    result = task.fit(log=QUIET)
    assert result["step"] == 2 and 0.0 <= result["metrics"]["AP"] <= 1.0
    assert task.codec.pairwise_mean.shape == (17, 17, 2)
