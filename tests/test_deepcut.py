"""DeepCut / DeeperCut ILP grouping: exact against brute force, incremental, end to end."""
import itertools

import numpy as np
import pytest

from pyhpe.grouping import (DeepCutDecoder, check_feasible, deepcut_group,
                            deepcut_group_incremental, geometric_pairwise, logit_cost,
                            regression_pairwise, splp_objective)


def _partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


def brute_force(unary, pairwise, allowed=None):
    n, c = unary.shape
    if allowed is None:
        allowed = np.ones((n, c), dtype=bool)
    choices = [[-1] + [a for a in range(c) if allowed[d, a]] for d in range(n)]
    best = np.inf
    for labels in itertools.product(*choices):
        labels = np.array(labels)
        on = [d for d in range(n) if labels[d] >= 0]
        for part in _partitions(on):
            clusters = np.full(n, -1)
            for k, block in enumerate(part):
                clusters[block] = k
            best = min(best, splp_objective(labels, clusters, unary, pairwise))
    return best


def random_instance(rng, n, c):
    unary = rng.uniform(0.05, 0.95, (n, c))
    half = rng.uniform(0.02, 0.98, (n, n, c, c))
    pairwise = np.empty_like(half)
    for d in range(n):
        for e in range(n):
            src = half[min(d, e), max(d, e)]
            pairwise[d, e] = src if d <= e else src.T
    return unary, pairwise


@pytest.mark.parametrize("seed,n,c", [(0, 4, 2), (1, 5, 2), (2, 6, 2), (3, 5, 3), (4, 3, 4),
                                      (5, 6, 2)])
def test_ilp_equals_brute_force(seed, n, c):
    rng = np.random.default_rng(seed)
    unary, pairwise = random_instance(rng, n, c)
    sol = deepcut_group(np.zeros((n, 2)), unary, pairwise)
    assert check_feasible(sol, c)
    assert sol.objective == pytest.approx(brute_force(unary, pairwise), abs=1e-6)
    assert sol.objective == pytest.approx(splp_objective(sol.labels, sol.clusters, unary,
                                                         pairwise))


def test_ilp_with_allowed_labels_equals_brute_force():
    rng = np.random.default_rng(7)
    n, c = 8, 3
    unary, pairwise = random_instance(rng, n, c)
    cls = np.arange(n) % c
    allowed = np.zeros((n, c), dtype=bool)
    allowed[np.arange(n), cls] = True
    sol = deepcut_group(None, unary, pairwise, allowed=allowed)
    assert check_feasible(sol, c, allowed)
    assert sol.objective == pytest.approx(brute_force(unary, pairwise, allowed), abs=1e-6)
    # the subset DP used for larger scenes agrees with plain enumeration
    assert exhaustive_single_label(unary, pairwise, cls) == pytest.approx(sol.objective)


def test_constraints_satisfied_and_deterministic():
    rng = np.random.default_rng(11)
    unary, pairwise = random_instance(rng, 6, 2)
    a = deepcut_group(None, unary, pairwise)
    b = deepcut_group(None, unary, pairwise)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.clusters, b.clusters)
    assert a.objective == b.objective
    # uniqueness (one label each), consistency (suppressed <=> unclustered), transitivity
    assert np.all((a.labels < 0) == (a.clusters < 0))
    same = (a.clusters[:, None] == a.clusters[None]) & (a.clusters[:, None] >= 0)
    assert np.all((same.astype(int) @ same.astype(int) > 0) == same)
    for person in a.people:
        for cls, cands in person.items():
            assert all(a.labels[d] == cls for d in cands)


def test_costs_follow_the_paper():
    assert logit_cost(0.5) == pytest.approx(0.0)
    assert logit_cost(0.9) == pytest.approx(np.log(0.1 / 0.9))
    # a certain part alone is kept; an unlikely one is suppressed
    sol = deepcut_group(None, np.array([[0.9], [0.1]]), np.full((2, 2, 1, 1), 0.5))
    assert sol.labels.tolist() == [0, -1]


def test_fixed_variables_are_respected():
    rng = np.random.default_rng(3)
    unary, pairwise = random_instance(rng, 5, 2)
    sol = deepcut_group(None, unary, pairwise, fixed_labels=[1, 0, -1, -2, -2],
                        fixed_joins={(0, 1): 0})
    assert sol.labels[:3].tolist() == [1, 0, -1]
    assert sol.clusters[0] != sol.clusters[1]


# ---------------------------------------------------------------- synthetic people
TEMPLATE = np.array([[0.0, 0.0], [-5.0, 6.0], [5.0, 6.0], [0.0, 14.0]])  # head, sho, sho, hip
MEAN = TEMPLATE[None, :, :] - TEMPLATE[:, None, :]  # (K, K, 2): offset from c to c'


def _scene(centres, rng=None, jitter=0.0):
    people = []
    for cx, cy in centres:
        pts = TEMPLATE + np.array([cx, cy])
        if rng is not None:
            pts = pts + rng.normal(0, jitter, pts.shape)
        people.append(pts)
    return np.array(people)


def _heatmaps(people, h=48, w=64, s=1.0):
    yy, xx = np.mgrid[:h, :w]
    k = people.shape[1]
    hm = np.zeros((k, h, w))
    for pts in people:
        for j, (x, y) in enumerate(pts):
            hm[j] = np.maximum(hm[j], np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s)))
    return hm


def _match(pred, gt, tol=1.0):
    assert len(pred) == len(gt)
    used = set()
    for g in gt:
        hit = [i for i, p in enumerate(pred) if i not in used
               and np.all(np.linalg.norm(p[:, :2] - g, axis=1) < tol)]
        assert hit, f"person {g.tolist()} not recovered"
        used.add(hit[0])


def _candidate_instance(people, scores=0.9):
    k = people.shape[1]
    pos = people.reshape(-1, 2)
    cls = np.tile(np.arange(k), len(people))
    n = len(pos)
    allowed = np.zeros((n, k), dtype=bool)
    allowed[np.arange(n), cls] = True
    unary = np.where(allowed, scores, 0.0)
    return pos, cls, allowed, unary


def test_incremental_is_feasible_and_close():
    rng = np.random.default_rng(0)
    people = _scene([(10, 8), (20, 9)], rng, jitter=1.0)  # crowded: 10 px apart
    pos, cls, allowed, unary = _candidate_instance(people)
    pairwise = geometric_pairwise(pos, cls, MEAN, sigma=2.0)
    full = deepcut_group(pos, unary, pairwise, allowed=allowed)
    inc = deepcut_group_incremental(pos, unary, pairwise, cls, [[0, 1, 2], [3]],
                                    allowed=allowed)
    assert check_feasible(inc, 4, allowed)
    assert inc.objective >= full.objective - 1e-9
    assert inc.objective <= full.objective + 0.05 * abs(full.objective)
    np.testing.assert_array_equal(inc.clusters, full.clusters)
    # random instances: feasible, never better than the optimum
    for seed in range(3):
        unary_r, pairwise_r = random_instance(np.random.default_rng(seed), 6, 2)
        cls_r = np.arange(6) % 2
        inc = deepcut_group_incremental(None, unary_r, pairwise_r, cls_r, [[0], [1]])
        opt = deepcut_group(None, unary_r, pairwise_r)
        assert check_feasible(inc, 2)
        assert inc.objective >= opt.objective - 1e-9
        # the stages' candidates keep their earlier labels and joins
        first = deepcut_group(None, unary_r[cls_r == 0], pairwise_r[np.ix_(cls_r == 0,
                                                                          cls_r == 0)])
        np.testing.assert_array_equal(inc.labels[cls_r == 0], first.labels)


@pytest.mark.parametrize("centres", [[(12, 8), (26, 10)], [(10, 6), (22, 8), (34, 20)]])
def test_end_to_end_geometric(centres):
    people = _scene(centres)
    hm = _heatmaps(people)
    dec = DeepCutDecoder(mean_offsets=MEAN, sigma=2.0, threshold=0.3)
    pred = dec(hm)
    _match(pred, people)
    inc = DeepCutDecoder(mean_offsets=MEAN, sigma=2.0, threshold=0.3,
                         stages=[[0, 1, 2], [3]])(hm)
    _match(inc, people)


def test_end_to_end_deepercut_offsets():
    people = _scene([(12, 8), (24, 9), (36, 12)])
    hm = _heatmaps(people)
    k = people.shape[1]
    h, w = hm.shape[1:]
    offsets = np.zeros((k, k, 2, h, w))
    for pts in people:  # perfect offset regression in a 5x5 window around each part
        for j, (x, y) in enumerate(pts):
            xi, yi = int(round(x)), int(round(y))
            for kk in range(k):
                offsets[j, kk, :, yi - 2:yi + 3, xi - 2:xi + 3] = (pts[kk] - pts[j])[:, None,
                                                                                    None]
    pred = DeepCutDecoder(sigma=2.0, threshold=0.3)(hm, offsets)
    _match(pred, people)
    # the pairwise probability of a true pair is high, of a cross pair low
    pos = people.reshape(-1, 2)
    off = np.concatenate([np.stack([pts[None] - pts[:, None]][0]) for pts in people])
    p = regression_pairwise(pos, off, sigma=2.0)
    assert p[0, 1, 0, 1] > 0.9 and p[0, 5, 0, 1] < 0.5
    np.testing.assert_allclose(p, np.swapaxes(np.swapaxes(p, 0, 1), 2, 3))


def test_regression_pairwise_features():
    pos = np.array([[0.0, 0.0], [3.0, 4.0], [30.0, 0.0]])
    off = np.zeros((3, 2, 2))
    off[0, 1] = [3.0, 4.0]  # candidate 0 (class 0) predicts class 1 at (3, 4)
    off[1, 0] = [-3.0, -4.0]
    off[2, 1] = [3.0, 4.0]
    p = regression_pairwise(pos, off, sigma=1.0)
    assert p[0, 1, 0, 1] == pytest.approx(1 / (1 + np.exp(-4.0)))  # perfect: bias only
    assert p[2, 1, 0, 1] < 1e-3  # the prediction from candidate 2 is far off
    # same class: DeeperCut's distance logistic
    assert p[0, 2, 0, 0] == pytest.approx(1 / (1 + np.exp(0.2 * 30 - 7.5)))
    # per-pair weights and min-max normalisation are accepted
    w = np.zeros((2, 2, 9))
    w[..., 8] = 1.0
    p2 = regression_pairwise(pos, off, w, x_min=np.zeros(8), x_max=np.ones(8))
    assert p2[0, 1, 0, 1] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_incremental_relabel_only_and_lsp_stages():
    from pyhpe.grouping import DEEPERCUT_STAGES_LSP
    assert sorted(k for s in DEEPERCUT_STAGES_LSP for k in s) == list(range(14))
    assert set(DEEPERCUT_STAGES_LSP[0]) == {8, 9, 12, 13}  # head, neck, shoulders first
    unary, pairwise = random_instance(np.random.default_rng(5), 5, 3)
    cls = np.arange(5) % 3
    sol = deepcut_group_incremental(None, unary, pairwise, cls, [[0], [1], [2]],
                                    fix_joins=False)
    assert check_feasible(sol, 3)
    assert sol.objective >= deepcut_group(None, unary, pairwise).objective - 1e-9


def test_decoder_batch_and_tensors():
    import torch
    people = _scene([(12, 8), (26, 10)])
    hm = torch.as_tensor(_heatmaps(people), dtype=torch.float32)[None].repeat(2, 1, 1, 1)
    out = DeepCutDecoder(mean_offsets=MEAN, sigma=2.0, threshold=0.3, stride=2.0)(hm)
    assert isinstance(out, list) and len(out) == 2
    _match(out[0] / np.array([2.0, 2.0, 1.0]), people)
    np.testing.assert_array_equal(out[0], out[1])
    empty = DeepCutDecoder(mean_offsets=MEAN)(np.zeros((4, 16, 16)))
    assert empty.shape == (0, 4, 3)


def exhaustive_single_label(unary, pairwise, cls):
    """The optimum over every partition when each candidate has one allowed class: a DP
    over subsets (each block either one person, or suppressed singletons)."""
    n = len(cls)
    alpha = logit_cost(unary[np.arange(n), cls])
    beta = logit_cost(pairwise[np.arange(n)[:, None], np.arange(n)[None], cls[:, None],
                               cls[None, :]])
    block = np.zeros(1 << n)
    for mask in range(1, 1 << n):
        members = [d for d in range(n) if mask >> d & 1]
        if len(members) == 1:
            block[mask] = min(alpha[members[0]], 0.0)  # kept alone, or suppressed
        else:
            idx = np.array(members)
            block[mask] = alpha[idx].sum() + np.triu(beta[np.ix_(idx, idx)], 1).sum()
    best = np.zeros(1 << n)
    for mask in range(1, 1 << n):
        low = mask & -mask
        rest = mask ^ low
        sub = rest
        value = np.inf
        while True:
            value = min(value, block[sub | low] + best[rest ^ sub])
            if sub == 0:
                break
            sub = (sub - 1) & rest
        best[mask] = value
    return best[(1 << n) - 1]


@pytest.mark.parametrize("seed", [0, 1])
def test_ilp_optimal_on_crowded_ten_candidates(seed):
    rng = np.random.default_rng(seed)
    people = _scene([(10, 8), (19, 9)], rng, jitter=1.5)  # 8 true parts, 2 clutter peaks
    pos = np.concatenate([people.reshape(-1, 2), rng.uniform(5, 30, (2, 2))])
    cls = np.concatenate([np.tile(np.arange(4), 2), rng.integers(0, 4, 2)])
    n = len(cls)
    allowed = np.zeros((n, 4), dtype=bool)
    allowed[np.arange(n), cls] = True
    unary = np.where(allowed, rng.uniform(0.3, 0.95, (n, 1)), 0.0)
    pairwise = geometric_pairwise(pos, cls, MEAN, sigma=2.0)
    sol = deepcut_group(pos, unary, pairwise, allowed=allowed)
    assert check_feasible(sol, 4, allowed)
    assert sol.objective == pytest.approx(exhaustive_single_label(unary, pairwise, cls),
                                          abs=1e-6)
