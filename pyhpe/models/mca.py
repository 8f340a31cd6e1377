"""Multi-Context Attention (Chu et al., CVPR 2017, "Multi-Context Attention for Human Pose
Estimation"), built as the official network (bearpaw/pose-attention,
``train/models/hg-attention.lua``, ``layers/AttentionPartsCRF.lua``, ``layers/ResidualPool.lua``)
defines it.

* **HRU** (hourglass residual unit, ``ResidualPool``): identity + the pre-activation
  bottleneck + a side branch ``BN, ReLU, maxpool 2x2, conv3x3 cin->cout, BN, ReLU,
  conv3x3 cout->cout, nearest upsampling x2``, the three summed.
* **Hourglass** (depth ``n``): the skip branch is a residual followed by ``n - 2`` HRUs
  (``repResidual``; one residual at ``n <= 2``), the down branch ``maxpool -> residual ->
  inner hourglass (a residual at n = 1) -> residual -> nearest upsampling``.
* **Attention with CRF mean-field iterations** (``AttentionIter``): unary ``U = conv3x3
  (C->1)``, one spatial ``k x k`` convolution ``W`` shared by the iterations,
  ``Q_1 = sigmoid(U + W*U)``, ``Q_t = sigmoid(U + W*Q_{t-1})`` (3 iterations); the
  features are re-weighted ``f * Q`` (the map broadcast over channels).
* **Per stack**: ``ll1 = conv1x1-BN-ReLU(hourglass)``, ``ll2 = conv1x1-BN-ReLU(ll1)``
  (twice the width in the last stack), the **holistic** attention on ``ll2``; in the first
  half of the stacks the heatmaps are ``conv1x1`` of the attended features, in the second
  half **part attention** refines them (the hierarchical attention): joint ``k``'s map is
  ``conv1x1(f_h * Q_k)`` with its own attention ``Q_k`` computed from the holistically
  attended ``f_h``. The next stack's input is ``x + conv1x1(heatmaps) + conv1x1-BN-ReLU(ll1)``.
* **Stem**: ``conv7x7/1 3->64, BN, ReLU, res(64), maxpool, res(64), res(64->128), maxpool,
  res(128), res(128), res(128->C)`` (stride 4). Every convolution has a bias (Torch's
  default); residual skips that change width are a bare 1x1 convolution.
* **Multi-resolution attention** (the paper's Sec. 3.3, not in the released network;
  ``resolutions > 1``): the hourglass's decoder features at ``1/2, 1/4, ...`` of the stack
  resolution each give a CRF attention map of their own; the maps are upsampled (bilinear)
  to the stack resolution and averaged with the full-resolution holistic map, and the
  average re-weights the features. ``resolutions = 1`` is the released network.

Every stack's heatmaps are returned (intermediate supervision, MSE summed over stacks by the
:class:`HeatmapHead`); inference decodes the last stack's maps.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import init_weights
from .heads import heatmap_model
from .hourglass import HourglassStacks
from .pose_model import PoseModel


def _brc(cin, cout, k=1):
    return [nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, k, 1, k // 2)]


def _lin(cin, cout):
    """The official ``lin``: conv1x1, BN, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """The official pre-activation bottleneck: ``BN, ReLU, 1x1, BN, ReLU, 3x3, BN, ReLU,
    1x1`` + skip (identity, or a bare 1x1 convolution where the width changes)."""

    def __init__(self, cin, cout):
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(*_brc(cin, mid, 1), *_brc(mid, mid, 3), *_brc(mid, cout, 1))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class HRU(Residual):
    """Hourglass residual unit ``cin -> cout``: ``skip(x) + bottleneck(x) + side(x)`` with
    ``side = BN, ReLU, maxpool, 3x3, BN, ReLU, 3x3, nearest upsampling``."""

    def __init__(self, cin, cout):
        super().__init__(cin, cout)
        self.side = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
                                  nn.Conv2d(cin, cout, 3, 1, 1), *_brc(cout, cout, 3))

    def forward(self, x):
        side = F.interpolate(self.side(x), scale_factor=2, mode="nearest")[..., :x.shape[-2], :x.shape[-1]]
        return super().forward(x) + side


class CRFAttention(nn.Module):
    """The official ``AttentionIter``: one attention map ``Q`` from features ``f`` by
    ``iters`` mean-field steps with a shared ``kernel x kernel`` spatial convolution;
    :meth:`forward` returns ``(f * Q, Q)``."""

    def __init__(self, ch, iters=3, kernel=1):
        super().__init__()
        self.unary = nn.Conv2d(ch, 1, 3, 1, 1)
        self.pairwise = nn.Conv2d(1, 1, kernel, 1, kernel // 2)
        self.iters = iters

    def attention(self, f: torch.Tensor) -> torch.Tensor:
        u = self.unary(f)
        q = u
        for _ in range(self.iters):
            q = torch.sigmoid(u + self.pairwise(q))
        return q

    def forward(self, f: torch.Tensor):
        q = self.attention(f)
        return f * q, q


class _AttHourglass(nn.Module):
    """The official attention hourglass (``num_blocks`` = ``nModual``); returns its output
    and the decoder features at every lower resolution (coarse to fine)."""

    def __init__(self, depth, ch, num_blocks):
        super().__init__()

        def rep():  # repResidual(n - 1): a residual then HRUs
            return [Residual(ch, ch)] + [HRU(ch, ch) for _ in range(depth - 2)]

        up = []
        for i in range(num_blocks):
            up += rep() if depth > 1 else [Residual(ch, ch) if i == 0 else HRU(ch, ch)]
        self.up1 = nn.Sequential(*up)
        self.low1 = nn.Sequential(*[Residual(ch, ch) for _ in range(num_blocks)])
        self.low2 = _AttHourglass(depth - 1, ch, num_blocks) if depth > 1 else Residual(ch, ch)
        self.low3 = Residual(ch, ch)

    def forward(self, x):
        up = self.up1(x)
        low = self.low2(self.low1(F.max_pool2d(x, 2)))
        decoder = []
        if isinstance(low, tuple):
            low, decoder = low[0], low[1] + [low[0]]
        low = self.low3(low)
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest"), decoder


class MultiContextAttention(HourglassStacks):
    """Backbone ``(B, 3, H, W) -> [(B, K, H/4, W/4)] * num_stacks``: stacked hourglass of
    HRUs; holistic attention in every stack, part attention refining it in the second half
    of the stacks (always in the last); every stack's heatmaps returned."""

    stride = 4

    def __init__(self, num_keypoints=17, num_stacks=8, channels=256, depth=4, num_blocks=1,
                 iters=3, kernel=1, resolutions=1, stem_channels=64):
        super().__init__()
        c, k, s = channels, num_keypoints, stem_channels
        if not 1 <= resolutions <= depth:
            raise ValueError(f"MultiContextAttention: resolutions must be in [1, depth={depth}], got {resolutions}")
        self.resolutions = resolutions
        self.num_holistic = num_stacks // 2 if num_stacks > 1 else 0
        self.stem = nn.Sequential(nn.Conv2d(3, s, 7, 1, 3), nn.BatchNorm2d(s), nn.ReLU(inplace=True),
                                  Residual(s, s), nn.MaxPool2d(2), Residual(s, s), Residual(s, 2 * s),
                                  nn.MaxPool2d(2), Residual(2 * s, 2 * s), Residual(2 * s, 2 * s),
                                  Residual(2 * s, c))
        self.hgs = nn.ModuleList([_AttHourglass(depth, c, num_blocks) for _ in range(num_stacks)])
        widths = [2 * c if i == num_stacks - 1 else c for i in range(num_stacks)]
        self.lin1 = nn.ModuleList([_lin(c, w) for w in widths])
        self.lin2 = nn.ModuleList([_lin(w, w) for w in widths])
        self.holistic = nn.ModuleList([CRFAttention(w, iters, kernel) for w in widths])
        self.multi_res = nn.ModuleList([nn.ModuleList([CRFAttention(c, iters, kernel) for _ in range(resolutions - 1)])
                                        for _ in widths])
        self.outs = nn.ModuleList()
        for i, w in enumerate(widths):
            if i < self.num_holistic:
                self.outs.append(nn.Conv2d(w, k, 1))
            else:
                self.outs.append(nn.ModuleList([nn.ModuleDict({"att": CRFAttention(w, iters, kernel),
                                                               "out": nn.Conv2d(w, 1, 1)}) for _ in range(k)]))
        self.merge_feat = nn.ModuleList([_lin(c, c) for _ in range(num_stacks - 1)])
        self.merge_pred = nn.ModuleList([nn.Conv2d(k, c, 1) for _ in range(num_stacks - 1)])
        init_weights(self)
        for m in self.modules():
            if isinstance(m, CRFAttention):  # attention starts unsaturated (maps near 1/2)
                nn.init.normal_(m.unary.weight, std=0.01)
        for out in self.outs:  # heatmap outputs start near zero (as the heatmap heads do)
            for conv in ([out] if isinstance(out, nn.Conv2d) else [p["out"] for p in out]):
                nn.init.normal_(conv.weight, std=0.001)

    def holistic_map(self, i: int, f: torch.Tensor, decoder: List[torch.Tensor]) -> torch.Tensor:
        """Stack ``i``'s holistic attention map: the CRF map of ``f``, averaged with the
        upsampled maps of the decoder's ``resolutions - 1`` finest lower resolutions."""
        q = self.holistic[i].attention(f)
        if self.resolutions == 1:
            return q
        maps = [q] + [F.interpolate(att.attention(d), size=q.shape[-2:], mode="bilinear", align_corners=False)
                      for att, d in zip(self.multi_res[i], decoder[::-1])]
        return torch.stack(maps, 0).mean(0)

    def stack_output(self, i: int, hourglass_out):
        h, decoder = hourglass_out
        ll1 = self.lin1[i](h)
        ll2 = self.lin2[i](ll1)
        att = ll2 * self.holistic_map(i, ll2, decoder)
        if i < self.num_holistic:
            return ll1, self.outs[i](att)
        return ll1, torch.cat([p["out"](p["att"](att)[0]) for p in self.outs[i]], 1)


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """Multi-context attention network + a pass-through :class:`HeatmapHead`."""
    backbone = MultiContextAttention(num_keypoints, **arch)
    return heatmap_model(backbone, codec, input_size, MultiContextAttention.stride,
                         num_keypoints=num_keypoints, joint_weights=joint_weights)


# "paper": the released 8-stack network (LRNKer 1, 3 CRF iterations, nModual 8/nStack = 1);
# "paper_mr": the same with the paper's multi-resolution attention (3 decoder resolutions).
CONFIGS = {"paper": dict(num_stacks=8, channels=256, depth=4, num_blocks=1, iters=3, kernel=1, resolutions=1),
           "paper_mr": dict(num_stacks=8, channels=256, depth=4, num_blocks=1, iters=3, kernel=1, resolutions=4),
           "tiny": dict(input_size=(48, 64), num_stacks=2, channels=16, depth=2, num_blocks=1,
                        iters=3, kernel=3, resolutions=2, stem_channels=8)}
