"""DeepCut / DeeperCut multi-person grouping as an integer linear program.

DeepCut (Pishchulin et al., CVPR 2016) casts multi-person pose estimation as a subset
partition and labelling problem (SPLP) over part candidates ``D`` and part classes ``C``:

* ``x[d, c] in {0, 1}``: candidate ``d`` is labelled class ``c`` (all zero: suppressed);
* ``y[d, d'] in {0, 1}``: candidates ``d`` and ``d'`` belong to the same person;
* ``z[d, d', c, c'] = x[d, c] x[d', c'] y[d, d']`` (linearised).

It minimises ``sum alpha[d, c] x[d, c] + sum beta[d, d', c, c'] z[d, d', c, c']`` with
``alpha = log((1 - p) / p)`` of the unary part-class probabilities and ``beta`` the same
logit of the pairwise same-person probabilities, subject to

* uniqueness: ``sum_c x[d, c] <= 1``;
* consistency: ``y[d, d'] <= sum_c x[d, c]`` and ``y[d, d'] <= sum_c x[d', c]``
  (only labelled candidates are joined);
* transitivity: ``y[d, d'] + y[d', d''] - 1 <= y[d, d'']`` (the joins form a partition);
* linearisation: ``z <= x[d, c]``, ``z <= x[d', c']``, ``z <= y[d, d']``,
  ``z >= x[d, c] + x[d', c'] + y[d, d'] - 2``.

DeeperCut (Insafutdinov et al., ECCV 2016) keeps this objective, uses image-conditioned
pairwise terms (offsets between parts regressed by the network, turned into a
logistic-regression probability, :func:`regression_pairwise`) and solves it incrementally
(:func:`deepcut_group_incremental`): first the head and shoulders, then progressively more
parts, the labels and joins of the previous stage kept fixed.

The ILP is solved exactly with :func:`scipy.optimize.milp` (HiGHS).
"""
from __future__ import annotations

import itertools
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    "SPLPSolution", "deepcut_group", "deepcut_group_incremental", "splp_objective",
    "check_feasible", "logit_cost", "geometric_pairwise", "regression_pairwise",
    "DeepCutDecoder", "people_to_keypoints", "DEEPERCUT_STAGES_LSP", "labelled_pair_features",
    "labelled_regression_pairwise", "fit_pairwise_logistic",
]

_EPS = 1e-6


class SPLPSolution(dict):
    """``labels (N,)`` int (-1: suppressed), ``clusters (N,)`` int (-1: suppressed),
    ``people`` (list of dicts ``{class: candidate index or list}``), ``objective`` float."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:  # pragma: no cover
            raise AttributeError(name) from e


def logit_cost(p, eps: float = _EPS) -> np.ndarray:
    """DeepCut's cost ``log((1 - p) / p)`` of a probability (clipped to ``[eps, 1 - eps]``)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log1p(-p) - np.log(p)


def _costs(unary, pairwise, allowed):
    unary = np.asarray(unary, dtype=np.float64)
    if unary.ndim != 2:
        raise ValueError(f"unary must have shape (N, C), got {unary.shape}")
    n, c = unary.shape
    pairwise = np.asarray(pairwise, dtype=np.float64)
    if pairwise.shape != (n, n, c, c):
        raise ValueError(f"pairwise must have shape {(n, n, c, c)}, got {pairwise.shape}")
    alpha = logit_cost(unary)
    beta = logit_cost(pairwise)
    if allowed is None:
        allowed = np.ones((n, c), dtype=bool)
    allowed = np.asarray(allowed, dtype=bool)
    if allowed.shape != (n, c):
        raise ValueError(f"allowed must have shape {(n, c)}, got {allowed.shape}")
    return alpha, beta, allowed


def splp_objective(labels, clusters, unary, pairwise) -> float:
    """The SPLP objective of a labelling (``-1`` suppressed) and a partition (cluster ids)."""
    alpha = logit_cost(unary)
    beta = logit_cost(pairwise)
    labels = np.asarray(labels)
    clusters = np.asarray(clusters)
    total = 0.0
    on = np.flatnonzero(labels >= 0)
    for d in on:
        total += alpha[d, labels[d]]
    for i, d in enumerate(on):
        for e in on[i + 1:]:
            if clusters[d] == clusters[e]:
                total += beta[d, e, labels[d], labels[e]]
    return float(total)


def check_feasible(solution, n_classes: int, allowed=None) -> bool:
    """Labels in range (or -1), suppressed candidates unclustered, clusters a partition
    of the labelled candidates (always transitive by construction of cluster ids)."""
    labels = np.asarray(solution["labels"])
    clusters = np.asarray(solution["clusters"])
    if labels.shape != clusters.shape:
        return False
    if np.any((labels < -1) | (labels >= n_classes)):
        return False
    if np.any((labels < 0) != (clusters < 0)):
        return False
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        for d, c in enumerate(labels):
            if c >= 0 and not allowed[d, c]:
                return False
    return True


def _solution(labels, clusters, objective) -> SPLPSolution:
    labels = np.asarray(labels, dtype=np.int64)
    clusters = np.asarray(clusters, dtype=np.int64)
    # renumber the clusters 0.. in order of their first candidate
    remap: Dict[int, int] = {}
    out = np.full_like(clusters, -1)
    for d, k in enumerate(clusters):
        if k >= 0:
            out[d] = remap.setdefault(int(k), len(remap))
    people: List[Dict[int, List[int]]] = [dict() for _ in remap]
    for d, k in enumerate(out):
        if k >= 0:
            people[k].setdefault(int(labels[d]), []).append(d)
    return SPLPSolution(labels=labels, clusters=out, people=people, objective=float(objective))


def deepcut_group(candidates, unary, pairwise, *, allowed=None, fixed_labels=None,
                  fixed_joins=None, time_limit: Optional[float] = None,
                  transitivity: str = "full") -> SPLPSolution:
    """Solve DeepCut's SPLP exactly with :func:`scipy.optimize.milp`.

    ``candidates (N, >=2)`` positions (only their count is used here; they travel with the
    result for the decoder), ``unary (N, C)`` part-class probabilities, ``pairwise
    (N, N, C, C)`` same-person probabilities (symmetric: ``pairwise[d, e, c, k] ==
    pairwise[e, d, k, c]``; the ``d < e`` half is used). ``allowed (N, C)`` bool restricts
    the labels of each candidate (DeeperCut: a candidate only takes its detector's class).
    ``fixed_labels (N,)`` (-2: free, -1: suppressed, c: class) and ``fixed_joins`` (dict
    ``(d, e) -> 0/1``) fix variables (the incremental scheme). ``transitivity``: 'full'
    states every triangle inequality up front; 'lazy' solves without them and adds the
    violated ones until the joins are transitive (the same optimum, far smaller ILPs on
    many candidates). ``time_limit`` (s) bounds the whole solve; a solve cut short returns
    the best solution found, its clusters the connected components of its joins (always a
    partition). Returns an
    :class:`SPLPSolution`; the objective is :func:`splp_objective` of it.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    alpha, beta, allowed = _costs(unary, pairwise, allowed)
    n, c = alpha.shape
    if n == 0:
        return _solution([], [], 0.0)
    # variables: x (n*c), y (pairs), z (pairs * c * c over allowed label pairs)
    xi = np.arange(n * c).reshape(n, c)
    pairs = [(d, e) for d in range(n) for e in range(d + 1, n)]
    yi = {p: n * c + i for i, p in enumerate(pairs)}
    nv = n * c + len(pairs)
    zlist = []
    for (d, e) in pairs:
        for a in range(c):
            if not allowed[d, a]:
                continue
            for b in range(c):
                if allowed[e, b] and beta[d, e, a, b] != 0.0:
                    zlist.append((d, e, a, b, nv))
                    nv += 1
    cost = np.zeros(nv)
    cost[: n * c] = alpha.ravel()
    for d, e, a, b, v in zlist:
        cost[v] = beta[d, e, a, b]
    lb = np.zeros(nv)
    ub = np.ones(nv)
    ub[: n * c] = allowed.ravel().astype(np.float64)

    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0

    def add(entries, low, high):
        nonlocal r
        for col, val in entries:
            rows.append(r)
            cols.append(col)
            vals.append(val)
        lo.append(low)
        hi.append(high)
        r += 1

    for d in range(n):  # uniqueness
        add([(xi[d, a], 1.0) for a in range(c)], -np.inf, 1.0)
    for (d, e) in pairs:  # consistency
        v = yi[(d, e)]
        add([(v, 1.0)] + [(xi[d, a], -1.0) for a in range(c)], -np.inf, 0.0)
        add([(v, 1.0)] + [(xi[e, a], -1.0) for a in range(c)], -np.inf, 0.0)
    if transitivity not in ("full", "lazy"):
        raise ValueError(f"deepcut_group: transitivity must be 'full' or 'lazy', got {transitivity!r}")
    if n >= 3 and transitivity == "full":  # every triangle, each of its three edges
        for d, e, f in itertools.combinations(range(n), 3):
            a_, b_, c_ = yi[(d, e)], yi[(e, f)], yi[(d, f)]
            add([(a_, 1.0), (b_, 1.0), (c_, -1.0)], -np.inf, 1.0)
            add([(a_, 1.0), (c_, 1.0), (b_, -1.0)], -np.inf, 1.0)
            add([(b_, 1.0), (c_, 1.0), (a_, -1.0)], -np.inf, 1.0)
    # linearisation of z = x x' y; a minimisation only needs the bounds that its cost
    # pushes against: z <= x, x', y for a negative cost, z >= x + x' + y - 2 for a positive
    # one (the optimum is the same as with all four)
    for d, e, a, b, v in zlist:
        y = yi[(d, e)]
        if beta[d, e, a, b] < 0:
            add([(v, 1.0), (xi[d, a], -1.0)], -np.inf, 0.0)
            add([(v, 1.0), (xi[e, b], -1.0)], -np.inf, 0.0)
            add([(v, 1.0), (y, -1.0)], -np.inf, 0.0)
        else:
            add([(v, 1.0), (xi[d, a], -1.0), (xi[e, b], -1.0), (y, -1.0)], -2.0, np.inf)

    if fixed_labels is not None:
        fixed_labels = np.asarray(fixed_labels, dtype=np.int64)
        for d, f in enumerate(fixed_labels):
            if f == -2:
                continue
            for a in range(c):
                val = 1.0 if a == f else 0.0
                lb[xi[d, a]] = ub[xi[d, a]] = val
    if fixed_joins:
        for (d, e), val in fixed_joins.items():
            key = (min(d, e), max(d, e))
            lb[yi[key]] = ub[yi[key]] = float(val)

    import time
    deadline = None if time_limit is None else time.monotonic() + float(time_limit)
    ymat = np.full((n, n), -1, dtype=np.int64)
    for (d, e), v in yi.items():
        ymat[d, e] = ymat[e, d] = v
    res = None
    while True:
        options = {"disp": False}
        if deadline is not None:
            left = deadline - time.monotonic()
            if res is not None and left <= 0:
                break   # out of time: the components of the last joins (a partition)
            options["time_limit"] = max(left, 1e-3)
        a_mat = coo_matrix((vals, (rows, cols)), shape=(r, nv)).tocsr()
        res = milp(cost, constraints=LinearConstraint(a_mat, lo, hi), integrality=np.ones(nv),
                   bounds=Bounds(lb, ub), options=options)
        if res.x is None:
            raise RuntimeError(f"deepcut_group: the ILP solver failed: {res.message}")
        if transitivity == "full" or n < 3:
            break
        # lazy transitivity (cutting planes, as the official multicut ILP's callback): add
        # the triangle inequalities the solution violates and solve again, until none is
        joined = np.zeros((n, n), dtype=np.int64)
        on = ymat >= 0
        joined[on] = np.round(res.x[ymat[on]]).astype(np.int64)
        paths = (joined @ joined) > 0
        np.fill_diagonal(paths, False)
        bad_d, bad_f = np.nonzero(paths & (joined == 0) & (np.arange(n)[:, None] < np.arange(n)))
        if len(bad_d) == 0:
            break
        for d, f in zip(bad_d.tolist(), bad_f.tolist()):
            for e in np.flatnonzero(joined[d] & joined[f]).tolist():
                add([(ymat[d, e], 1.0), (ymat[e, f], 1.0), (ymat[d, f], -1.0)], -np.inf, 1.0)
    sol = np.round(res.x).astype(np.int64)
    xs = sol[: n * c].reshape(n, c)
    labels = np.where(xs.any(1), xs.argmax(1), -1)
    # clusters: connected components of the joins (transitive, so they are cliques)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (d, e) in pairs:
        if sol[yi[(d, e)]]:
            parent[find(d)] = find(e)
    clusters = np.array([find(d) if labels[d] >= 0 else -1 for d in range(n)])
    return _solution(labels, clusters, splp_objective(labels, clusters, unary, pairwise))


# DeeperCut's stages on the 14 LSP joints (0 r_ankle, 1 r_knee, 2 r_hip, 3 l_hip, 4 l_knee,
# 5 l_ankle, 6 r_wrist, 7 r_elbow, 8 r_shoulder, 9 l_shoulder, 10 l_elbow, 11 l_wrist,
# 12 neck, 13 head top): head and shoulders, then elbows and wrists, then the lower body.
DEEPERCUT_STAGES_LSP = ((12, 13, 8, 9), (7, 10, 6, 11), (2, 3, 1, 4, 0, 5))


def deepcut_group_incremental(candidates, unary, pairwise, candidate_class,
                              stages: Sequence[Sequence[int]] = DEEPERCUT_STAGES_LSP, *,
                              fix_joins: bool = True, **kwargs) -> SPLPSolution:
    """DeeperCut's incremental optimisation.

    ``candidate_class (N,)`` the detector (part class) each candidate came from; ``stages``
    a list of groups of part classes (e.g. ``[[head, neck, l_sho, r_sho], [l_elb, r_elb,
    l_wri, r_wri], [...]]``). Stage ``s`` solves the SPLP over the candidates of the classes
    of stages ``0..s``, the labels and pairwise joins of the earlier candidates fixed to the
    previous stage's solution (with ``fix_joins=False`` only their labels are fixed and
    the partition is solved again). Candidates of classes in no stage are suppressed.
    """
    cand_cls = np.asarray(candidate_class, dtype=np.int64)
    unary = np.asarray(unary, dtype=np.float64)
    pairwise = np.asarray(pairwise, dtype=np.float64)
    n = len(cand_cls)
    labels = np.full(n, -1, dtype=np.int64)
    clusters = np.full(n, -1, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    seen_classes: List[int] = []
    allowed_all = kwargs.pop("allowed", None)
    for stage in stages:
        seen_classes.extend(int(k) for k in stage)
        active = np.flatnonzero(np.isin(cand_cls, seen_classes))
        if len(active) == 0:
            continue
        sub_u = unary[active]
        sub_p = pairwise[np.ix_(active, active)]
        sub_allowed = None if allowed_all is None else np.asarray(allowed_all)[active]
        fixed = np.full(len(active), -2, dtype=np.int64)
        joins = {}
        for i, d in enumerate(active):
            if done[d]:
                fixed[i] = labels[d]
                for j in range(i + 1, len(active)):
                    e = active[j]
                    if done[e] and fix_joins:
                        joins[(i, j)] = int(labels[d] >= 0 and clusters[d] == clusters[e])
        sol = deepcut_group(None, sub_u, sub_p, allowed=sub_allowed, fixed_labels=fixed,
                            fixed_joins=joins, **kwargs)
        labels[active] = sol["labels"]
        clusters[active] = sol["clusters"]
        done[active] = True
    return _solution(labels, clusters, splp_objective(labels, clusters, unary, pairwise))


def geometric_pairwise(positions, candidate_class, mean_offsets, sigma, *, bias: float = 4.0,
                       scale: float = 1.0) -> np.ndarray:
    """DeepCut's geometric pairwise probabilities ``(N, N, C, C)``.

    A logistic model on the deviation of the displacement ``p_e - p_d`` from the mean
    offset ``mean_offsets[c, c']`` (``(C, C, 2)``) between the two part classes:
    ``p = sigmoid(bias - scale * ||p_e - p_d - mu[c, c']|| / sigma)``. For the same class
    the mean offset is zero (two detections of one part of one person are close).
    The probability depends on the label pair, not on ``candidate_class`` (kept for API
    symmetry with :func:`regression_pairwise`). ``sigma``: a scalar or ``(C, C)``.
    """
    pos = np.asarray(positions, dtype=np.float64)[:, :2]
    mu = np.asarray(mean_offsets, dtype=np.float64)
    disp = pos[None, :, None, None, :] - pos[:, None, None, None, :]  # (N, N, 1, 1, 2)
    dev = np.linalg.norm(disp - mu[None, None], axis=-1)  # (N, N, C, C)
    sigma = np.asarray(sigma, dtype=np.float64)  # a scalar or one per class pair (C, C)
    return 1.0 / (1.0 + np.exp(-(bias - scale * dev / sigma)))


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def regression_pairwise(positions, offsets, weights=None, *, sigma: float = 1.0,
                        x_min=None, x_max=None, same_part=(7.5, 0.2),
                        origins=None) -> np.ndarray:
    """DeeperCut's image-conditioned pairwise probabilities ``(N, N, C, C)``.

    ``offsets (N, C, 2)``: at each candidate ``d`` the network's regressed offset to every
    part class (read from the offset maps at ``d``'s location). For a pair ``(d, e)``
    labelled ``(c, c')``, ``c != c'``, the features are, forward, the distance and the
    absolute angle between the observed displacement ``p_e - p_d`` and the predicted one
    ``o_d[c']``, and the same backward (``p_d - p_e`` against ``o_e[c]``); with their
    ``exp(-f)`` and a bias they feed a logistic regression,
    ``p = sigmoid(w . [f, exp(-f), 1])`` (``f`` min-max normalised by ``x_min`` /
    ``x_max`` when given, as the official model). ``weights`` ``(9,)`` or ``(C, C, 9)``;
    the default ``[-0.5/sigma, 0, -0.5/sigma, 0, 0, 0, 0, 0, 4]`` is a hand-set model that
    trusts the regressed offsets to about ``sigma`` pixels. Two candidates of the same
    class: ``p = 1 / (1 + exp(b * dist - a))`` with ``same_part = (a, b)`` (DeeperCut: 7.5,
    0.2). ``origins (N, 2)``: where each candidate's offsets start (pose-tensorflow: the
    score-map cell, before location refinement; default ``positions``): the observed
    forward displacement is ``p_e - origin_d``.
    """
    pos = np.asarray(positions, dtype=np.float64)[:, :2]
    org = pos if origins is None else np.asarray(origins, dtype=np.float64)[:, :2]
    off = np.asarray(offsets, dtype=np.float64)
    n, c = off.shape[:2]
    if weights is None:
        weights = _default_weights(sigma)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (c, c, 9))
    real = pos[None, :, :] - org[:, None, :]  # (N, N, 2): p_e - origin_d
    # forward: d predicts class c' -> (N, N, C')
    dev = real[:, :, None, :] - off[:, None, :, :]
    dist_f = np.linalg.norm(dev, axis=-1)
    ang_f = np.abs(_wrap(np.arctan2(real[..., 1], real[..., 0])[:, :, None]
                         - np.arctan2(off[..., 1], off[..., 0])[:, None, :]))
    f1 = np.broadcast_to(dist_f[:, :, None, :], (n, n, c, c))
    a1 = np.broadcast_to(ang_f[:, :, None, :], (n, n, c, c))
    # backward: e predicts class c of d (the forward term of (e, d) with labels (c', c))
    f2 = np.swapaxes(np.swapaxes(f1, 0, 1), 2, 3)
    a2 = np.swapaxes(np.swapaxes(a1, 0, 1), 2, 3)
    feats = np.stack([f1, a1, f2, a2], axis=-1)
    feats = np.concatenate([feats, np.exp(-feats)], axis=-1)
    if x_min is not None and x_max is not None:
        feats = (feats - np.asarray(x_min)) / (np.asarray(x_max) - np.asarray(x_min))
    logit = np.einsum("deabf,abf->deab", feats, w[..., :8]) + w[..., 8]
    prob = 1.0 / (1.0 + np.exp(-logit))
    a, b = same_part
    dist = np.linalg.norm(pos[None, :, :] - pos[:, None, :], axis=-1)
    same = 1.0 / (1.0 + np.exp(b * dist - a))
    idx = np.arange(c)
    prob[:, :, idx, idx] = same[:, :, None]
    return prob


def _default_weights(sigma: float) -> np.ndarray:
    return np.array([-0.5 / sigma, 0, -0.5 / sigma, 0, 0, 0, 0, 0, 4.0])


def _angle_dist(real, pred):
    """pose-tensorflow's ``compute_features``: ``|real - pred|`` and the absolute wrapped
    angle between them."""
    dist = np.linalg.norm(real - pred, axis=-1)
    ang = np.abs(_wrap(np.arctan2(real[..., 1], real[..., 0]) - np.arctan2(pred[..., 1], pred[..., 0])))
    return dist, ang


def labelled_pair_features(positions, offsets, candidate_class, origins=None) -> np.ndarray:
    """DeeperCut's pairwise features ``(N, N, 8)`` of every candidate pair ``(d, e)`` for
    its detectors' labels ``(c, c') = (cls[d], cls[e])`` only: [dist_f, angle_f, dist_b,
    angle_b] of the observed ``p_e - origin_d`` against ``o_d[c']`` and ``p_d - origin_e``
    against ``o_e[c]``, and their ``exp(-f)`` (what :func:`regression_pairwise` computes
    for every label pair, without its ``N^2 C^2`` memory)."""
    pos = np.asarray(positions, dtype=np.float64)[:, :2]
    org = pos if origins is None else np.asarray(origins, dtype=np.float64)[:, :2]
    off = np.asarray(offsets, dtype=np.float64)
    cls = np.asarray(candidate_class, dtype=np.int64)
    real = pos[None, :, :] - org[:, None, :]               # (d, e): p_e - origin_d
    pred = off[:, cls, :]                                   # (d, e): o_d[cls[e]]
    dist_f, ang_f = _angle_dist(real, pred)
    feats = np.stack([dist_f, ang_f, dist_f.T, ang_f.T], axis=-1)
    return np.concatenate([feats, np.exp(-feats)], axis=-1)


def labelled_regression_pairwise(positions, offsets, candidate_class, weights=None, *,
                                 sigma: float = 1.0, x_min=None, x_max=None,
                                 same_part=(7.5, 0.2), origins=None) -> np.ndarray:
    """:func:`regression_pairwise` where each candidate only takes its detector's label
    (DeeperCut): ``(N, N, C, C)`` with the entries ``[d, e, cls[d], cls[e]]`` set and every
    other label pair 0.5 (no term; those labels are not allowed). ``weights``, ``x_min``,
    ``x_max``: one model ``(9,)`` / ``(8,)`` or one per class pair ``(C, C, 9)`` /
    ``(C, C, 8)``; the same-part term as there."""
    off = np.asarray(offsets, dtype=np.float64)
    cls = np.asarray(candidate_class, dtype=np.int64)
    n, c = off.shape[:2]
    feats = labelled_pair_features(positions, off, cls, origins)
    ca, cb = cls[:, None], cls[None, :]
    if x_min is not None and x_max is not None:
        lo = np.broadcast_to(np.asarray(x_min, np.float64), (c, c, 8))[ca, cb]
        hi = np.broadcast_to(np.asarray(x_max, np.float64), (c, c, 8))[ca, cb]
        feats = (feats - lo) / (hi - lo)
    if weights is None:
        weights = _default_weights(sigma)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (c, c, 9))[ca, cb]
    logit = (feats * w[..., :8]).sum(-1) + w[..., 8]
    prob = 1.0 / (1.0 + np.exp(-logit))
    pos = np.asarray(positions, dtype=np.float64)[:, :2]
    a, b = same_part
    dist = np.linalg.norm(pos[None, :, :] - pos[:, None, :], axis=-1)
    prob = np.where(ca == cb, 1.0 / (1.0 + np.exp(b * dist - a)), prob)
    out = np.full((n, n, c, c), 0.5)
    out[np.arange(n)[:, None], np.arange(n)[None, :], ca, cb] = prob
    return out


#: how the features of the pair (e, d) follow from those of (d, e): forward <-> backward
SWAP_DIRECTION = np.array([2, 3, 0, 1, 6, 7, 4, 5])


def fit_pairwise_logistic(features, labels, *, l2: float = 1e-2, iters: int = 50):
    """The official spatial model of one part pair: a logistic regression of ``labels (M,)``
    (1: same person) on ``features (M, 8)`` min-max normalised (``x_min``, ``x_max`` of the
    training features), fitted by Newton's method with an L2 penalty ``l2`` on the weights
    (not the bias). Returns ``(w (9,), x_min (8,), x_max (8,))`` for
    :func:`regression_pairwise` / :func:`labelled_regression_pairwise`."""
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    if x.ndim != 2 or x.shape[1] != 8 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"fit_pairwise_logistic: features (M, 8) and labels (M,), got "
                         f"{x.shape} and {y.shape}")
    x_min, x_max = x.min(0), x.max(0)
    x_max = np.where(x_max - x_min > 1e-9, x_max, x_min + 1.0)
    z = np.hstack([(x - x_min) / (x_max - x_min), np.ones((len(x), 1))])
    w = np.zeros(9)
    reg = np.full(9, float(l2))
    reg[8] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - y) / len(y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(y) + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w, x_min, x_max


def people_to_keypoints(solution, positions, scores, num_classes: int) -> np.ndarray:
    """``(P, C, 3)`` [x, y, score] of the people of a solution: per class the candidate with
    the highest score (zero where the person has none), people sorted by total score."""
    pos = np.asarray(positions, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    out = np.zeros((len(solution["people"]), num_classes, 3))
    for p, person in enumerate(solution["people"]):
        for cls, cands in person.items():
            best = max(cands, key=lambda d: scores[d])
            out[p, cls] = [pos[best, 0], pos[best, 1], scores[best]]
    order = np.argsort(-out[..., 2].sum(1), kind="stable")
    return out[order]


class DeepCutDecoder:
    """Bottom-up decoder: heatmaps ``(K, H, W)`` (and optionally DeeperCut offset maps
    ``(K, K, 2, H, W)``: at each pixel the offset to every part) -> people ``(P, K, 3)``.

    Candidates are :func:`pyhpe.ops.find_peaks` peaks of each heatmap (``allowed`` to take
    only their heatmap's class, the peak value as unary probability); pairwise terms are
    :func:`regression_pairwise` of the offsets at the candidates when offsets are given,
    else :func:`geometric_pairwise` with ``mean_offsets (K, K, 2)`` and ``sigma``. With
    ``stages`` the incremental scheme is used.
    """

    def __init__(self, *, threshold: float = 0.1, max_peaks: int = 8, mean_offsets=None,
                 sigma: float = 2.0, bias: float = 4.0, weights=None, same_part=(7.5, 0.2),
                 stages=None, time_limit: Optional[float] = None, stride: float = 1.0):
        self.threshold = threshold
        self.max_peaks = max_peaks
        self.mean_offsets = mean_offsets
        self.sigma = sigma
        self.bias = bias
        self.weights = weights
        self.same_part = same_part
        self.stages = stages
        self.time_limit = time_limit
        self.stride = stride

    def candidates(self, heatmaps):
        import torch
        from pyhpe.ops import find_peaks
        hm = torch.as_tensor(np.asarray(heatmaps, dtype=np.float32))[None]
        peaks, counts = find_peaks(hm, threshold=self.threshold, max_peaks=self.max_peaks)
        pos, score, cls = [], [], []
        for k in range(hm.shape[1]):
            for m in range(int(counts[0, k])):
                x, y, s = peaks[0, k, m].tolist()
                pos.append((x, y))
                score.append(s)
                cls.append(k)
        return (np.asarray(pos, dtype=np.float64).reshape(-1, 2), np.asarray(score),
                np.asarray(cls, dtype=np.int64))

    def __call__(self, heatmaps, offsets=None):
        """``(K, H, W)`` -> ``(P, K, 3)``; a batch ``(B, K, H, W)`` (offsets ``(B, K, K, 2,
        H, W)``) -> a list of them."""
        if hasattr(heatmaps, "detach"):
            heatmaps = heatmaps.detach().cpu().numpy()
        if offsets is not None and hasattr(offsets, "detach"):
            offsets = offsets.detach().cpu().numpy()
        heatmaps = np.asarray(heatmaps, dtype=np.float64)
        if heatmaps.ndim == 4:
            return [self(heatmaps[b], None if offsets is None else offsets[b])
                    for b in range(heatmaps.shape[0])]
        k = heatmaps.shape[0]
        pos, score, cls = self.candidates(heatmaps)
        n = len(cls)
        if n == 0:
            return np.zeros((0, k, 3))
        allowed = np.zeros((n, k), dtype=bool)
        allowed[np.arange(n), cls] = True
        unary = np.zeros((n, k))
        unary[np.arange(n), cls] = np.clip(score, 0.0, 1.0)
        if offsets is not None:
            offsets = np.asarray(offsets, dtype=np.float64)
            h, w = heatmaps.shape[1:]
            xi = np.clip(np.round(pos[:, 0]).astype(int), 0, w - 1)
            yi = np.clip(np.round(pos[:, 1]).astype(int), 0, h - 1)
            off = offsets[cls, :, :, yi, xi]  # (N, K, 2)
            pairwise = regression_pairwise(pos, off, self.weights, sigma=self.sigma,
                                           same_part=self.same_part)
        else:
            if self.mean_offsets is None:
                raise ValueError("DeepCutDecoder: give offsets or mean_offsets")
            pairwise = geometric_pairwise(pos, cls, self.mean_offsets, self.sigma,
                                          bias=self.bias)
        if self.stages is not None:
            sol = deepcut_group_incremental(pos, unary, pairwise, cls, self.stages,
                                            allowed=allowed, time_limit=self.time_limit)
        else:
            sol = deepcut_group(pos, unary, pairwise, allowed=allowed,
                                time_limit=self.time_limit)
        people = people_to_keypoints(sol, pos, score, k)
        people[..., :2] *= self.stride
        return people
