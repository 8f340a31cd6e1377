"""DeeperCut codec (Insafutdinov et al., ECCV 2016; the official pose-tensorflow targets).

Targets of a collated multi-person batch, at the stride of the score maps (map cell ``(i, j)``
is input pixel ``(i * sx, j * sy)``, pyhpe's integer-centre convention):

* ``scoremaps (B, K, h, w)``: 1 where a cell lies within ``pos_dist_thresh`` input pixels of a
  visible part ``k`` of some person (a disk, not a Gaussian; trained with sigmoid
  cross-entropy), else 0;
* ``locref (B, 2K, h, w)`` (x, y per part) and ``locref_weights``: at the positive cells, the
  offset from the cell to the part of the *nearest* person, divided by ``locref_stdev``;
* ``pairwise (B, 2K(K-1), h, w)`` and ``pairwise_weights``: at the positive cells of part
  ``k``, the offset from the cell to every other visible part ``k'`` of the same person,
  normalised by the per-pair statistics ``(d - mean[k, k']) / std[k, k']``; channel pair
  ``(k, k')`` is ``(K - 1) * k + k' - [k < k']`` (pose-tensorflow's ``get_pairwise_index``).

Decoding (:meth:`DeeperCutLabel.decode_instances`) is DeeperCut's inference: part candidates
are the local maxima of the sigmoid score maps above ``threshold`` (at most ``max_peaks`` per
part), placed at ``cell * stride + locref * locref_stdev``; the regressed offsets at each
candidate's cell give the image-conditioned pairwise terms
(:func:`pyhpe.grouping.regression_pairwise`, distance and angle between the predicted and the
observed displacement, forward and backward, in a logistic model); the subset partition and
labelling ILP is solved with HiGHS, incrementally over ``stages`` of parts
(:func:`pyhpe.grouping.deepcut_group_incremental`) or in one shot.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .base import Codec, as_size, check_flip_index, flip_maps, keypoints_and_visibility


class DeeperCutOutputs(NamedTuple):
    """DeeperCut's network outputs: score-map logits ``(B, K, h, w)``, location refinement
    ``(B, 2K, h, w)`` (in units of ``locref_stdev``), pairwise offsets ``(B, 2K(K-1), h, w)``
    (normalised by the pair statistics) and, when the model has intermediate supervision,
    the intermediate score-map logits ``(B, K, h, w)``."""
    scoremaps: Tensor
    locref: Tensor
    pairwise: Tensor
    scoremaps_interm: Optional[Tensor] = None


def pairwise_index(k: int, k_end: int, num_keypoints: int) -> int:
    """Channel pair of the offset from part ``k`` to part ``k_end`` (``k != k_end``)."""
    return (num_keypoints - 1) * k + k_end - int(k < k_end)


def pairwise_stats(keypoints: np.ndarray, visibility: np.ndarray, min_std: float = 1.0
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation ``(K, K, 2)`` of the offsets ``p[k'] - p[k]`` between the
    visible parts of the same person over ``(N, K, 2)`` poses (pose-tensorflow's
    ``pairwise_stats.py``); pairs never seen together get mean 0 and the pooled std."""
    kp = np.asarray(keypoints, np.float64)
    vis = np.asarray(visibility) > 0
    K = kp.shape[1]
    diff = kp[:, None, :, :] - kp[:, :, None, :]             # (N, k, k', 2): p[k'] - p[k]
    both = (vis[:, :, None] & vis[:, None, :])[..., None]
    cnt = both.sum(0)
    mean = np.where(cnt > 0, (diff * both).sum(0) / np.maximum(cnt, 1), 0.0)
    var = np.where(cnt > 0, (((diff - mean) ** 2) * both).sum(0) / np.maximum(cnt, 1), 0.0)
    std = np.sqrt(var)
    seen = cnt[..., 0] > 1
    pooled = float(std[seen].mean()) if seen.any() else 1.0
    std = np.where(seen[..., None], std, pooled)
    std = np.maximum(std, min_std)
    idx = np.arange(K)
    mean[idx, idx], std[idx, idx] = 0.0, 1.0
    return mean, std


class DeeperCutLabel(Codec):
    """DeeperCut targets and inference (see the module docstring).

    ``pos_dist_thresh`` (input pixels; the official COCO model 17), ``locref_stdev`` (7.2801),
    ``pairwise_mean`` / ``pairwise_std`` ``(K, K, 2)`` (None: mean 0, std
    ``max(input_size) / 4``; the bottom-up task fills them from the training poses).
    Decoding: ``threshold`` (det_min_score 0.2) and ``max_peaks`` per part,
    ``nms_radius`` (map cells), ``max_candidates`` (None: no limit); ``sigma``,
    ``pairwise_weights`` (``(9,)`` or ``(K, K, 9)`` logistic weights over [dist_f, angle_f,
    dist_b, angle_b, their exp(-.), 1], the features min-max normalised by
    ``pairwise_x_min`` / ``pairwise_x_max`` when given; default a hand-set model trusting the
    offsets to about ``sigma`` input pixels, default the stride; :meth:`fit_pairwise` learns
    them per part pair from a trained network's outputs, as the official spatial model),
    ``same_part`` ``(a, b)`` of the same-part term ``1 / (1 + exp(b d - a))``;
    ``sparse_graph`` (pairs of parts with pairwise terms; others get p = 0.5, i.e. no term,
    as pose-tensorflow's ``sparse_graph``);
    ``stages`` (lists of parts for the incremental solver, None: one ILP); people with fewer
    than ``min_parts`` parts are dropped; ``time_limit`` (s) per ILP; ``transitivity``
    ('lazy': triangle inequalities added as violated, 'full': all up front; see
    :func:`pyhpe.grouping.deepcut_group`).
    """

    groups_people = True

    name = "deepercut"

    def __init__(self, input_size=(256, 256), heatmap_size=(32, 32), pos_dist_thresh: float = 17.0,
                 locref_stdev: float = 7.2801, pairwise_mean=None, pairwise_std=None,
                 threshold: float = 0.2, max_peaks: int = 4, nms_radius: int = 2,
                 max_candidates: Optional[int] = None, sigma: Optional[float] = None,
                 pairwise_weights=None, pairwise_x_min=None, pairwise_x_max=None,
                 same_part=(7.5, 0.2), sparse_graph=None, stages=None,
                 min_parts: int = 3, max_persons: Optional[int] = 20,
                 time_limit: Optional[float] = 10.0, transitivity: str = "lazy"):
        self.input_size = as_size(input_size, "input_size", "DeeperCutLabel")
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", "DeeperCutLabel")
        for name, v in (("pos_dist_thresh", pos_dist_thresh), ("locref_stdev", locref_stdev)):
            if not float(v) > 0:
                raise ValueError(f"DeeperCutLabel: '{name}' must be > 0, got {v}")
        self.pos_dist_thresh, self.locref_stdev = float(pos_dist_thresh), float(locref_stdev)
        self.pairwise_mean = None if pairwise_mean is None else np.asarray(pairwise_mean, np.float64)
        self.pairwise_std = None if pairwise_std is None else np.asarray(pairwise_std, np.float64)
        if (self.pairwise_mean is None) != (self.pairwise_std is None):
            raise ValueError("DeeperCutLabel: give both 'pairwise_mean' and 'pairwise_std' (or neither)")
        if self.pairwise_std is not None:
            if self.pairwise_mean.shape != self.pairwise_std.shape or self.pairwise_std.ndim != 3 \
                    or self.pairwise_std.shape[0] != self.pairwise_std.shape[1] \
                    or self.pairwise_std.shape[2] != 2:
                raise ValueError("DeeperCutLabel: 'pairwise_mean' and 'pairwise_std' must both be "
                                 f"(K, K, 2), got {self.pairwise_mean.shape} and {self.pairwise_std.shape}")
            if not (self.pairwise_std > 0).all():
                raise ValueError("DeeperCutLabel: 'pairwise_std' must be > 0")
        self.threshold, self.max_peaks = float(threshold), int(max_peaks)
        self.nms_radius = int(nms_radius)
        self.max_candidates = None if max_candidates is None else int(max_candidates)
        if self.nms_radius < 0 or self.max_peaks < 1:
            raise ValueError(f"DeeperCutLabel: 'nms_radius' must be >= 0 and 'max_peaks' >= 1, got "
                             f"{nms_radius} and {max_peaks}")
        self.sigma = None if sigma is None else float(sigma)
        arr = lambda a: None if a is None else np.asarray(a, np.float64)  # noqa: E731
        self.pairwise_weights = arr(pairwise_weights)
        self.pairwise_x_min, self.pairwise_x_max = arr(pairwise_x_min), arr(pairwise_x_max)
        if (self.pairwise_x_min is None) != (self.pairwise_x_max is None):
            raise ValueError("DeeperCutLabel: give both 'pairwise_x_min' and 'pairwise_x_max' (or neither)")
        self.same_part = tuple(float(v) for v in same_part)
        self.sparse_graph = None if sparse_graph is None else [tuple(int(v) for v in p) for p in sparse_graph]
        self.stages = None if stages is None else [tuple(int(v) for v in s) for s in stages]
        self.min_parts = int(min_parts)
        self.max_persons = None if max_persons is None else int(max_persons)
        self.time_limit = None if time_limit is None else float(time_limit)
        if transitivity not in ("full", "lazy"):
            raise ValueError(f"DeeperCutLabel: 'transitivity' must be 'full' or 'lazy', got {transitivity!r}")
        self.transitivity = transitivity

    @property
    def stride(self) -> Tuple[float, float]:
        return (self.input_size[0] / self.heatmap_size[0], self.input_size[1] / self.heatmap_size[1])

    def set_pairwise_stats(self, mean, std) -> None:
        """Set the per-pair offset statistics ``(K, K, 2)`` (e.g. :func:`pairwise_stats`)."""
        self.pairwise_mean = np.asarray(mean, np.float64)
        self.pairwise_std = np.asarray(std, np.float64)

    def _stats(self, K: int, device) -> Tuple[Tensor, Tensor]:
        if self.pairwise_mean is None:
            mean = torch.zeros(K, K, 2)
            std = torch.full((K, K, 2), max(self.input_size) / 4.0)
        else:
            if self.pairwise_mean.shape[0] != K:
                raise ValueError(f"DeeperCutLabel: pairwise statistics of {self.pairwise_mean.shape[0]} "
                                 f"parts for {K} keypoints")
            mean = torch.as_tensor(self.pairwise_mean, dtype=torch.float32)
            std = torch.as_tensor(self.pairwise_std, dtype=torch.float32)
        return mean.to(device), std.to(device)

    @staticmethod
    def _off_diagonal(K: int, device) -> Tensor:
        """``(K, K-1)`` indices of the other parts of each part, in channel-pair order."""
        idx = torch.arange(K, device=device)
        return torch.stack([idx[idx != k] for k in range(K)]) if K > 1 else idx.new_zeros(K, 0)

    # ------------------------------------------------------------------------------ encode
    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        """``(B, N, K, 2)`` (or ``(B, K, 2)``) input-pixel keypoints -> ``scoremaps``,
        ``locref``, ``locref_weights``, ``pairwise``, ``pairwise_weights`` and
        ``keypoint_weights`` (the visibility)."""
        kp, vis = keypoints_and_visibility(keypoints, visibility, "DeeperCutLabel.encode")
        single = kp.dim() == 3
        if single:
            kp, vis = kp.unsqueeze(1), vis.unsqueeze(1)
        B, N, K = vis.shape
        w, h = self.heatmap_size
        sx, sy = self.stride
        dev = kp.device
        gx = torch.arange(w, device=dev, dtype=torch.float32) * sx
        gy = torch.arange(h, device=dev, dtype=torch.float32) * sy
        dx = kp[..., 0, None, None] - gx.view(1, 1, 1, 1, w)            # (B, N, K, 1, w)
        dy = kp[..., 1, None, None] - gy.view(1, 1, 1, h, 1)            # (B, N, K, h, 1)
        d2 = dx ** 2 + dy ** 2                                          # (B, N, K, h, w)
        d2 = torch.where((vis > 0)[..., None, None], d2, torch.full_like(d2, float("inf")))
        if N == 0:
            d2 = kp.new_full((B, 1, K, h, w), float("inf"))
        best, who = d2.min(1)                                           # (B, K, h, w)
        pos = best <= self.pos_dist_thresh ** 2
        scoremaps = pos.float()
        # the nearest person's parts, gathered at every cell: (B, K, h, w, K', 2)
        if N == 0:
            kp_g = kp.new_zeros(B, K, h, w, K, 2)
            vis_g = kp.new_zeros(B, K, h, w, K)
        else:
            bidx = torch.arange(B, device=dev).view(B, 1, 1, 1)
            kp_g = kp[bidx, who]                                        # (B, K, h, w, K', 2)
            vis_g = vis[bidx, who]                                      # (B, K, h, w, K')
        cell = torch.stack(torch.broadcast_tensors(gx.view(1, w), gy.view(h, 1)), -1)  # (h, w, 2)
        kidx = torch.arange(K, device=dev)
        own = kp_g[:, kidx, :, :, kidx].permute(1, 0, 2, 3, 4)          # (B, K, h, w, 2)
        locref = (own - cell) / self.locref_stdev
        posf = pos.float()
        locref = (locref * posf[..., None]).permute(0, 1, 4, 2, 3).reshape(B, 2 * K, h, w)
        locref_w = posf[:, :, None].expand(B, K, 2, h, w).reshape(B, 2 * K, h, w)
        mean, std = self._stats(K, dev)
        others = self._off_diagonal(K, dev)                             # (K, K-1)
        off = kp_g - cell[None, None, :, :, None, :]                    # (B, K, h, w, K', 2)
        off = (off - mean[:, None, None]) / std[:, None, None]          # stats of (k, k')
        off = off[:, kidx[:, None], :, :, others]                      # (K, K-1, B, h, w, 2)
        mask = (vis_g > 0).float()[:, kidx[:, None], :, :, others] * posf.permute(1, 0, 2, 3)[:, None]
        off = (off * mask[..., None]).permute(2, 0, 1, 5, 3, 4).reshape(B, 2 * K * (K - 1), h, w)
        pw_w = mask[..., None].expand(*mask.shape, 2).permute(2, 0, 1, 5, 3, 4)
        pw_w = pw_w.reshape(B, 2 * K * (K - 1), h, w)
        weights = vis[:, 0] if single else vis
        return {"scoremaps": scoremaps, "locref": locref, "locref_weights": locref_w,
                "pairwise": off, "pairwise_weights": pw_w, "keypoint_weights": weights}

    # ------------------------------------------------------------------------------ decode
    def detections(self, probs: np.ndarray, locref: np.ndarray, pairwise: np.ndarray):
        """One image's part candidates: ``probs (K, h, w)`` sigmoid scores, ``locref (2K, h,
        w)``, ``pairwise (2K(K-1), h, w)`` raw outputs -> positions ``(N, 2)`` (input pixels,
        location-refined), grid positions ``(N, 2)``, scores ``(N,)``, classes ``(N,)`` and
        the predicted offsets ``(N, K, 2)`` from each candidate's cell to every part.
        Candidates are the maxima of a ``(2 nms_radius + 1)`` square window (pose-tensorflow's
        ``nms_grid``, a disk there) above ``threshold``, the ``max_peaks`` best per part and
        at most ``max_candidates`` in all (the best; bounds the ILP of an untrained network)."""
        K, h, w = probs.shape
        t = torch.as_tensor(probs, dtype=torch.float32)
        r = self.nms_radius
        pooled = torch.nn.functional.max_pool2d(t[None], 2 * r + 1, 1, r)[0]
        is_peak = (t >= pooled) & (t > self.threshold)
        cells, cls, score = [], [], []
        for k in range(K):
            ys, xs = torch.nonzero(is_peak[k], as_tuple=True)
            s = t[k, ys, xs]
            order = torch.argsort(-s, stable=True)[: self.max_peaks]
            for i in order.tolist():
                cells.append((int(xs[i]), int(ys[i])))
                cls.append(k)
                score.append(float(s[i]))
        cls = np.asarray(cls, np.int64)
        score = np.asarray(score, np.float64)
        cells = np.asarray(cells, np.int64).reshape(len(cls), 2)
        if self.max_candidates is not None and len(cls) > self.max_candidates:
            keep = np.sort(np.argsort(-score, kind="stable")[: self.max_candidates])
            cls, score, cells = cls[keep], score[keep], cells[keep]
        n = len(cls)
        stride = np.asarray(self.stride)
        grid = cells * stride
        lr = locref.reshape(K, 2, h, w)[cls, :, cells[:, 1], cells[:, 0]] * self.locref_stdev
        pos = grid + lr
        mean, std = (t.numpy().astype(np.float64) for t in self._stats(K, "cpu"))
        off = np.zeros((n, K, 2))
        if K > 1 and n:
            raw = pairwise.reshape(K, K - 1, 2, h, w)[cls, :, :, cells[:, 1], cells[:, 0]]  # (n, K-1, 2)
            others = self._off_diagonal(K, "cpu").numpy()[cls]        # (n, K-1)
            rows = np.arange(n)[:, None]
            off[rows, others] = raw * std[cls[:, None], others] + mean[cls[:, None], others]
        return pos, grid, score, cls, off

    def group(self, pos, grid, score, cls, off, K: int):
        """DeeperCut's ILP over one image's candidates -> people ``(P, K, 3)`` [x, y, score]
        (input pixels; missing parts zero) and person scores ``(P,)``."""
        from ..grouping.deepcut import (deepcut_group, deepcut_group_incremental,
                                        labelled_regression_pairwise, people_to_keypoints)
        n = len(cls)
        if n == 0:
            return np.zeros((0, K, 3)), np.zeros(0)
        sigma = self.sigma if self.sigma is not None else float(max(self.stride))
        # DeeperCut's candidates only take their detector's label: the pair (d, e) only
        # needs its term for (cls[d], cls[e])
        prob = labelled_regression_pairwise(pos, off, cls, self.pairwise_weights, sigma=sigma,
                                            x_min=self.pairwise_x_min, x_max=self.pairwise_x_max,
                                            same_part=self.same_part, origins=grid)
        if self.sparse_graph is not None:   # pairs without an edge in the graph: no term
            cc = np.arange(K)
            lab_pair = np.zeros((K, K), bool)
            lab_pair[cc, cc] = True
            for a, b in self.sparse_graph:
                lab_pair[a, b] = lab_pair[b, a] = True
            keep = lab_pair[cls[:, None], cls[None, :]]
            prob = np.where(keep[:, :, None, None], prob, 0.5)
        unary = np.zeros((n, K))
        unary[np.arange(n), cls] = np.clip(score, 0.0, 1.0)
        allowed = np.zeros((n, K), bool)
        allowed[np.arange(n), cls] = True
        if self.stages is not None:
            stages = [list(s) for s in self.stages]
            rest = [k for k in range(K) if not any(k in s for s in stages)]
            if rest:
                stages.append(rest)
            sol = deepcut_group_incremental(pos, unary, prob, cls, stages, allowed=allowed,
                                            time_limit=self.time_limit,
                                            transitivity=self.transitivity)
        else:
            sol = deepcut_group(pos, unary, prob, allowed=allowed, time_limit=self.time_limit,
                                transitivity=self.transitivity)
        people = people_to_keypoints(sol, pos, score, K)
        found = people[..., 2] > 0
        people = people[found.sum(1) >= self.min_parts]
        scores = people[..., 2].sum(1) / K
        if self.max_persons is not None:
            people, scores = people[: self.max_persons], scores[: self.max_persons]
        return people, scores

    def pair_samples(self, outputs, keypoints, visibility):
        """Training samples of the spatial model from network outputs and the ground truth
        (``(B, N, K, 2)`` input pixels, ``(B, N, K)``): each candidate is the part of the GT
        person whose part of its class is nearest, within ``pos_dist_thresh`` (else
        unmatched); every pair of matched candidates of two different classes gives
        ``(class_d, class_e, features (8,), same person)`` with ``class_d < class_e``."""
        from ..grouping.deepcut import labelled_pair_features
        probs = torch.sigmoid(outputs.scoremaps.detach().float()).cpu().numpy()
        locref = outputs.locref.detach().float().cpu().numpy()
        pairwise = outputs.pairwise.detach().float().cpu().numpy()
        kp = torch.as_tensor(keypoints).float().cpu().numpy()
        vis = torch.as_tensor(visibility).float().cpu().numpy()
        ca, cb, feats, same = [], [], [], []
        for b in range(probs.shape[0]):
            pos, grid, score, cls, off = self.detections(probs[b], locref[b], pairwise[b])
            if len(cls) < 2:
                continue
            d = np.linalg.norm(pos[:, None, :] - kp[b][:, cls].transpose(1, 0, 2), axis=-1)  # (n, N)
            d = np.where(vis[b][:, cls].T > 0, d, np.inf)
            who = np.where(d.min(1) <= self.pos_dist_thresh, d.argmin(1), -1) if d.shape[1] \
                else np.full(len(cls), -1)
            f = labelled_pair_features(pos, off, cls, grid)
            for i in range(len(cls)):
                for j in range(len(cls)):
                    if cls[i] < cls[j] and who[i] >= 0 and who[j] >= 0:
                        ca.append(cls[i]), cb.append(cls[j]), feats.append(f[i, j])
                        same.append(float(who[i] == who[j]))
        return (np.asarray(ca, np.int64), np.asarray(cb, np.int64),
                np.asarray(feats, np.float64).reshape(-1, 8), np.asarray(same))

    def fit_pairwise(self, outputs, keypoints, visibility, min_samples: int = 20,
                     l2: float = 1e-2) -> int:
        """DeeperCut's learned spatial model: a logistic regression per part pair (the
        official ``spatial_model_cidx_*``) on :meth:`pair_samples`; pairs with fewer than
        ``min_samples`` samples or one class of label only use the model fitted on all pairs.
        Sets ``pairwise_weights`` ``(K, K, 9)`` and ``pairwise_x_min`` / ``pairwise_x_max``
        ``(K, K, 8)`` (both directions of a pair); returns the number of samples (with none,
        or only one label, nothing changes)."""
        from ..grouping.deepcut import SWAP_DIRECTION, fit_pairwise_logistic
        ca, cb, feats, same = self.pair_samples(outputs, keypoints, visibility)
        if len(same) == 0 or same.min() == same.max():
            return 0
        K = outputs.scoremaps.shape[1]
        w_all, lo_all, hi_all = fit_pairwise_logistic(feats, same, l2=l2)
        w = np.tile(w_all, (K, K, 1))
        lo, hi = np.tile(lo_all, (K, K, 1)), np.tile(hi_all, (K, K, 1))
        for a in range(K):
            for b in range(a + 1, K):
                sel = (ca == a) & (cb == b)
                if sel.sum() >= min_samples and same[sel].min() != same[sel].max():
                    w[a, b], lo[a, b], hi[a, b] = fit_pairwise_logistic(feats[sel], same[sel], l2=l2)
                w[b, a] = np.append(w[a, b, :8][SWAP_DIRECTION], w[a, b, 8])
                lo[b, a], hi[b, a] = lo[a, b][SWAP_DIRECTION], hi[a, b][SWAP_DIRECTION]
        self.pairwise_weights, self.pairwise_x_min, self.pairwise_x_max = w, lo, hi
        return len(same)

    def decode_instances(self, outputs, num_keypoints: Optional[int] = None
                         ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per image: keypoints ``(P, K, 2)`` input pixels, keypoint scores ``(P, K)`` (0: the
        person has no such part) and person scores ``(P,)``."""
        probs = torch.sigmoid(outputs.scoremaps.detach().float()).cpu().numpy()
        locref = outputs.locref.detach().float().cpu().numpy()
        pairwise = outputs.pairwise.detach().float().cpu().numpy()
        K = num_keypoints or probs.shape[1]
        keypoints, scores, person_scores = [], [], []
        for b in range(probs.shape[0]):
            people, ps = self.group(*self.detections(probs[b, :K], locref[b], pairwise[b]), K)
            keypoints.append(torch.from_numpy(people[..., :2]).float())
            scores.append(torch.from_numpy(people[..., 2]).float())
            person_scores.append(torch.from_numpy(ps).float())
        return keypoints, scores, person_scores

    def decode(self, outputs, **meta) -> Tuple[List[Tensor], List[Tensor]]:
        keypoints, scores, _ = self.decode_instances(outputs, meta.get("num_keypoints"))
        return keypoints, scores

    def flip_back(self, outputs_flipped: DeeperCutOutputs, flip_index) -> DeeperCutOutputs:
        """Outputs of the mirrored input mapped onto the unflipped one: every map mirrored
        and moved ``1 - 1/stride`` cells (:func:`flip_maps`), part channels swapped by
        ``flip_index``, the x offsets negated; pair ``(k, k')`` takes the mirrored pair
        ``(flip k, flip k')``'s offsets, de-normalised by that pair's statistics and
        normalised again by its own."""
        sm = outputs_flipped.scoremaps
        K = sm.shape[1]
        idx = check_flip_index(flip_index, K, "DeeperCutLabel.flip_back")
        shift = 1.0 - 1.0 / self.stride[0]
        dev, dt = sm.device, sm.dtype
        sign = torch.tensor([-1.0, 1.0], device=dev, dtype=dt)
        loc_idx = [2 * idx[k] + c for k in range(K) for c in (0, 1)]
        locref = flip_maps(outputs_flipped.locref, loc_idx, shift)
        locref = locref * sign.repeat(K).view(1, -1, 1, 1)
        pw = outputs_flipped.pairwise
        if K > 1:
            mean, std = (t.to(dev, dt) for t in self._stats(K, dev))
            others = self._off_diagonal(K, "cpu").tolist()
            pairs = [(k, k2) for k in range(K) for k2 in others[k]]
            src = [pairwise_index(idx[k], idx[k2], K) for k, k2 in pairs]
            ch = [2 * p + c for p in src for c in (0, 1)]
            raw = flip_maps(pw, ch, shift).view(pw.shape[0], len(pairs), 2, *pw.shape[-2:])
            fa = torch.tensor([idx[k] for k, _ in pairs], device=dev)
            fb = torch.tensor([idx[k2] for _, k2 in pairs], device=dev)
            a = torch.tensor([k for k, _ in pairs], device=dev)
            b = torch.tensor([k2 for _, k2 in pairs], device=dev)
            view = lambda t: t.view(1, len(pairs), 2, 1, 1)  # noqa: E731
            raw = raw * view(std[fa, fb]) + view(mean[fa, fb])
            raw = raw * sign.view(1, 1, 2, 1, 1)
            pw = ((raw - view(mean[a, b])) / view(std[a, b])).reshape(pw.shape)
        interm = outputs_flipped.scoremaps_interm
        return DeeperCutOutputs(flip_maps(sm, idx, shift), locref, pw,
                                None if interm is None else flip_maps(interm, idx, shift))

    @staticmethod
    def average(a: DeeperCutOutputs, b: DeeperCutOutputs) -> DeeperCutOutputs:
        """Flip-test fusion: the mean of the part probabilities (as logits) and of the
        regressed offsets."""
        p = (torch.sigmoid(a.scoremaps.float()) + torch.sigmoid(b.scoremaps.float())) / 2
        return DeeperCutOutputs(torch.logit(p.clamp(1e-6, 1 - 1e-6)),
                                (a.locref.float() + b.locref.float()) / 2,
                                (a.pairwise.float() + b.pairwise.float()) / 2)

    def to_config(self) -> dict:
        lst = lambda a: None if a is None else np.asarray(a).tolist()  # noqa: E731
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "pos_dist_thresh": self.pos_dist_thresh,
                "locref_stdev": self.locref_stdev, "pairwise_mean": lst(self.pairwise_mean),
                "pairwise_std": lst(self.pairwise_std), "threshold": self.threshold,
                "max_peaks": self.max_peaks, "nms_radius": self.nms_radius,
                "max_candidates": self.max_candidates, "sigma": self.sigma,
                "pairwise_weights": lst(self.pairwise_weights),
                "pairwise_x_min": lst(self.pairwise_x_min), "pairwise_x_max": lst(self.pairwise_x_max),
                "same_part": list(self.same_part),
                "sparse_graph": None if self.sparse_graph is None else [list(p) for p in self.sparse_graph],
                "stages": None if self.stages is None else [list(s) for s in self.stages],
                "min_parts": self.min_parts, "max_persons": self.max_persons,
                "time_limit": self.time_limit, "transitivity": self.transitivity}


#: pose-tensorflow's COCO ``sparse_graph``: the part pairs with pairwise terms
COCO17_SPARSE_GRAPH = (
    (0, 1), (0, 2), (1, 2), (2, 4), (1, 3), (0, 4), (0, 3),
    (0, 6), (1, 6), (2, 6), (3, 6), (4, 6), (0, 5), (1, 5), (2, 5), (3, 5), (4, 5),
    (5, 6), (6, 8), (5, 7), (4, 8), (3, 7), (8, 10), (7, 9), (6, 10), (5, 9),
    (6, 12), (6, 11), (5, 12), (5, 11), (11, 12), (12, 14), (11, 13), (12, 13), (11, 14),
    (13, 14), (14, 16), (13, 15), (12, 16), (11, 15))

#: DeeperCut's incremental stages on COCO-17: head and shoulders, then elbows and wrists,
#: then hips, knees and ankles
COCO17_STAGES = ((0, 1, 2, 3, 4, 5, 6), (7, 8, 9, 10), (11, 12, 13, 14, 15, 16))

__all__ = ["COCO17_SPARSE_GRAPH", "COCO17_STAGES", "DeeperCutLabel", "DeeperCutOutputs",
           "pairwise_index", "pairwise_stats"]
