"""PIPNet's pixel-in-pixel targets (Jin et al. 2021, "Pixel-in-Pixel Net"): a low-resolution
grid of ``stride`` input pixels per cell; each keypoint is its cell (a one-hot score map),
its offset inside the cell and the offsets of its C nearest neighbours' positions from its
own cell. Pure index arithmetic, one batch at a time (no Gaussians).

Conventions (official ``lib/functions.py`` ``gen_target_pip``): a keypoint at input pixel
``x`` lies in cell ``floor(x / stride)`` (clamped to the grid) with offset
``x / stride - cell`` in [0, 1); neighbour ``j`` of keypoint ``i`` has offset
``x_j / stride - cell_i``. Decoding: ``(cell + offset) * stride``.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .base import Codec, as_size, keypoints_and_visibility

#: A mean upright COCO-17 pose in a unit box (x right, y down): the default for choosing each
#: keypoint's nearest neighbours (PIPNet computes them from the training set's mean shape).
COCO17_MEAN_POSE = [
    [0.50, 0.10], [0.53, 0.08], [0.47, 0.08], [0.57, 0.10], [0.43, 0.10],
    [0.64, 0.24], [0.36, 0.24], [0.70, 0.40], [0.30, 0.40], [0.72, 0.55], [0.28, 0.55],
    [0.60, 0.55], [0.40, 0.55], [0.60, 0.75], [0.40, 0.75], [0.60, 0.95], [0.40, 0.95]]


def nearest_neighbors(mean_pose, num_nb: int) -> Tensor:
    """``(K, C)`` indices of each keypoint's ``num_nb`` nearest other keypoints in
    ``mean_pose`` (K, 2) (official ``get_meanface``: sorted by distance, self excluded)."""
    mp = torch.as_tensor(mean_pose, dtype=torch.float64, device="cpu").reshape(-1, 2)
    k = mp.shape[0]
    if not 1 <= num_nb < k:
        raise ValueError(f"PIPNetLabel: 'num_nb' must be in [1, {k - 1}] for {k} keypoints, "
                         f"got {num_nb}")
    d = torch.cdist(mp, mp)
    d.fill_diagonal_(float("inf"))
    return d.argsort(dim=1, stable=True)[:, :num_nb]


class PIPNetLabel(Codec):
    """``encode(keypoints (B, K, 2), visibility)`` ->

    * ``cell_index`` (B, K) long: ``row * w + col`` of the keypoint's grid cell;
    * ``heatmaps`` (B, K, h, w): 1 at that cell (0 for unlabelled keypoints);
    * ``offsets`` (B, K, 2): the in-cell offset, grid units in [0, 1);
    * ``nb_offsets`` (B, K, C, 2): neighbour ``neighbors[k, c]``'s position minus keypoint
      k's cell, grid units;
    * ``keypoint_weights`` (B, K) (visible and inside the input) and ``nb_weights`` (B, K, C)
      (both ends labelled).

    ``heatmap_size`` = (w, h) grid (stride = ``input_size / heatmap_size``); ``num_nb`` C
    neighbours from ``mean_pose`` (K, 2) (default: :data:`COCO17_MEAN_POSE`) or explicit
    ``neighbors`` (K, C). ``decode(outputs)`` of a :class:`PIPNetOutputs`-like tuple
    ``(scores, offset_x, offset_y, nb_x, nb_y)`` takes each keypoint's best cell, adds its
    offset and averages it with the votes of the keypoints that have it as a neighbour
    (official ``forward_pip`` + merge); scores are the score map's maxima (sigmoid with
    ``score='sigmoid'``, else clamped to [0, 1]).
    """

    name = "pipnet"

    def __init__(self, input_size=(192, 256), heatmap_size=(6, 8), num_nb: int = 4,
                 mean_pose=None, neighbors=None, score: str = "clamp"):
        self.input_size = as_size(input_size, "input_size", "PIPNetLabel")
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", "PIPNetLabel")
        if score not in ("sigmoid", "clamp"):
            raise ValueError(f"PIPNetLabel: 'score' must be 'sigmoid' or 'clamp', got {score!r}")
        self.score = score
        self.mean_pose = None if mean_pose is None else [[float(v) for v in p] for p in mean_pose]
        if neighbors is not None:
            nb = torch.as_tensor(neighbors, dtype=torch.long, device="cpu")
            if nb.dim() != 2 or nb.numel() == 0:
                raise ValueError("PIPNetLabel: 'neighbors' must be a (K, C) list of lists")
            self.neighbors = nb
            self.num_nb = nb.shape[1]
            self._explicit = True
        else:
            self.num_nb = int(num_nb)
            self.neighbors = nearest_neighbors(
                COCO17_MEAN_POSE if self.mean_pose is None else self.mean_pose, self.num_nb)
            self._explicit = False
        k = self.neighbors.shape[0]
        if int(self.neighbors.min()) < 0 or int(self.neighbors.max()) >= k or \
                bool((self.neighbors == torch.arange(k, device="cpu")[:, None]).any()):
            raise ValueError("PIPNetLabel: 'neighbors' must index other keypoints in [0, K)")

    @property
    def num_keypoints(self) -> int:
        return self.neighbors.shape[0]

    def vote_matrix(self) -> Tensor:
        """``(K*C, K)``: row ``k*C + c`` is one-hot at ``neighbors[k, c]`` (the keypoint that
        keypoint k's c-th neighbour prediction votes for)."""
        k, c = self.neighbors.shape
        m = torch.zeros(k * c, k, device="cpu")
        m[torch.arange(k * c, device="cpu"), self.neighbors.reshape(-1)] = 1.0
        return m

    def _stride(self, device) -> Tensor:
        return (torch.tensor(self.input_size, dtype=torch.float32, device=device)
                / torch.tensor(self.heatmap_size, dtype=torch.float32, device=device))

    def _check_k(self, k: int, who: str):
        if k != self.num_keypoints:
            raise ValueError(f"PIPNetLabel.{who}: {k} keypoints, but the neighbours are for "
                             f"{self.num_keypoints} (give 'mean_pose' or 'neighbors')")

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        kp, vis = keypoints_and_visibility(keypoints, visibility, "PIPNetLabel.encode", dims=(3,))
        b, k, _ = kp.shape
        self._check_k(k, "encode")
        w, h = self.input_size
        gw, gh = self.heatmap_size
        inside = (kp[..., 0] >= 0) & (kp[..., 0] <= w - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= h - 1)
        weights = torch.where(inside & (vis > 0.5), vis, torch.zeros_like(vis))
        g = kp / self._stride(kp.device)                                  # grid units
        cell = g.floor()
        cell[..., 0].clamp_(0, gw - 1)
        cell[..., 1].clamp_(0, gh - 1)
        offsets = g - cell
        nb = self.neighbors.to(kp.device)
        nb_pos = g[:, nb]                                                  # (B, K, C, 2)
        nb_offsets = nb_pos - cell.unsqueeze(2)
        nb_weights = weights.unsqueeze(2) * weights[:, nb]
        index = (cell[..., 1] * gw + cell[..., 0]).long()
        heatmaps = torch.zeros(b, k, gh * gw, device=kp.device)
        heatmaps.scatter_(2, index.unsqueeze(2), (weights > 0).float().unsqueeze(2))
        return {"cell_index": index, "heatmaps": heatmaps.view(b, k, gh, gw), "offsets": offsets,
                "nb_offsets": nb_offsets, "keypoint_weights": weights, "nb_weights": nb_weights}

    def decode(self, outputs, **meta) -> Tuple[Tensor, Tensor]:
        scores, off_x, off_y, nb_x, nb_y = (t.detach().float() for t in outputs)
        b, k, gh, gw = scores.shape
        self._check_k(k, "decode")
        c = self.num_nb
        flat = scores.flatten(2)
        best, index = flat.max(-1)                                        # (B, K)
        cell = torch.stack([index % gw, index // gw], -1).float()        # (B, K, 2)

        def at(maps, n):                                                  # (B, K*n, h, w) -> (B, K, n)
            m = maps.reshape(b, k, n, gh * gw)
            return m.gather(3, index.view(b, k, 1, 1).expand(b, k, n, 1)).squeeze(3)

        own = cell + torch.stack([at(off_x, 1)[..., 0], at(off_y, 1)[..., 0]], -1)
        votes = cell.unsqueeze(2) + torch.stack([at(nb_x, c), at(nb_y, c)], -1)   # (B, K, C, 2)
        # keypoint j's estimate: the mean of its own and every vote for it (the official merge)
        vote = self.vote_matrix().to(scores.device)                        # (K*C, K)
        total = own + torch.einsum("bnd,nk->bkd", votes.reshape(b, k * c, 2), vote)
        count = 1 + vote.sum(0)
        coords = total / count.view(1, k, 1) * self._stride(scores.device)
        conf = best.sigmoid() if self.score == "sigmoid" else best.clamp(0, 1)
        return coords, conf

    def flip_back(self, outputs_flipped, flip_index: Sequence[int]):
        raise NotImplementedError("PIPNetLabel: flip test averages decoded keypoints "
                                  "(flip_keypoints), the maps' cells do not mirror exactly")

    def to_config(self) -> dict:
        cfg = {"name": self.name, "input_size": list(self.input_size),
               "heatmap_size": list(self.heatmap_size), "score": self.score}
        if self._explicit:
            cfg["neighbors"] = self.neighbors.tolist()
        else:
            cfg["num_nb"] = self.num_nb
            if self.mean_pose is not None:
                cfg["mean_pose"] = self.mean_pose
        return cfg
