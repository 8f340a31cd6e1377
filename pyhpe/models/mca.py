"""Multi-Context Attention (Chu et al., CVPR 2017, "Multi-Context Attention for Human Pose
Estimation"): a stacked hourglass built of Hourglass Residual Units with attention.

* **HRU** (hourglass residual unit): identity + the pre-activation bottleneck + a side
  micro-hourglass branch (max pooling, two 3x3 convolutions, a 1x1 projection, upsampling
  back), the three summed. The hourglasses use HRUs on their skip branches at depth >= 2.
* **Attention with CRF-style mean-field iterations**: ``U = conv3x3(BN(f)) -> 1 map``; the
  attention is refined ``Q_1 = sigmoid(U)``, ``Q_t = sigmoid(U + k * Q_{t-1})`` with one
  spatial kernel ``k`` shared by the iterations (3 iterations); the features are
  re-weighted ``f * Q`` (the map broadcast over channels).
* **Multi-resolution attention**: the unary ``U`` sums the 3x3 responses of the stack's
  output features and of the hourglass's decoder features at half resolution (upsampled).
* **Holistic attention** for the first half of the stacks (the heatmaps are a 1x1
  convolution of the attended features), **part attention** for the second half (one
  attention map per joint; joint ``k``'s heatmap is a 1x1 convolution of the features
  attended by its own map), as the official network does.
* Every stack's heatmaps are returned (intermediate supervision, MSE summed over stacks by
  the :class:`HeatmapHead`); inference decodes the last stack's maps.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import conv_bn_act, init_weights
from .heads import heatmap_model
from .hourglass import HourglassStacks, _Residual, hourglass_stem, stack_merges
from .pose_model import PoseModel


def _bn_relu_conv(cin, cout, k=1):
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         nn.Conv2d(cin, cout, k, 1, k // 2, bias=False))


class HRU(nn.Module):
    """Hourglass residual unit ``cin -> cout``: ``skip(x) + bottleneck(x) + side(x)`` with
    ``side`` = pool -> 3x3 -> 3x3 -> 1x1 -> upsample."""

    def __init__(self, cin, cout):
        super().__init__()
        mid = max(cout // 2, 1)
        self.res = _Residual(cin, cout)  # bottleneck + skip
        self.side = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), _bn_relu_conv(cin, mid, 3),
                                  _bn_relu_conv(mid, mid, 3), _bn_relu_conv(mid, cout, 1))

    def forward(self, x):
        return self.res(x) + F.interpolate(self.side(x), size=x.shape[-2:], mode="nearest")


class CRFAttention(nn.Module):
    """One attention map from features at one or more resolutions, refined by ``iters``
    mean-field steps with a shared ``kernel x kernel`` spatial convolution; returns the
    first features re-weighted by the map (and the map)."""

    def __init__(self, ch, iters=3, kernel=1, resolutions=1):
        super().__init__()
        self.unary = nn.ModuleList([nn.Sequential(nn.BatchNorm2d(ch), nn.Conv2d(ch, 1, 3, 1, 1))
                                    for _ in range(resolutions)])
        self.pairwise = nn.Conv2d(1, 1, kernel, 1, kernel // 2)
        self.iters = iters

    def attention(self, feats: List[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        u = sum(F.interpolate(conv(f), size=size, mode="bilinear", align_corners=False)
                if f.shape[-2:] != size else conv(f) for conv, f in zip(self.unary, feats))
        q = torch.sigmoid(u)
        for _ in range(self.iters - 1):
            q = torch.sigmoid(u + self.pairwise(q))
        return q

    def forward(self, feats: List[torch.Tensor]):
        q = self.attention(feats)
        return feats[0] * q, q


class _AttHourglass(nn.Module):
    """Hourglass of HRUs; returns the output and the decoder features at half resolution."""

    def __init__(self, depth, ch, num_blocks):
        super().__init__()
        up = HRU if depth >= 2 else _Residual
        self.up1 = nn.Sequential(*[up(ch, ch) for _ in range(num_blocks)])
        self.low1 = nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])
        self.low2 = _AttHourglass(depth - 1, ch, num_blocks) if depth > 1 else \
            nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])
        self.low3 = nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])

    def forward(self, x):
        up = self.up1(x)
        low = self.low2(self.low1(F.max_pool2d(x, 2)))
        if isinstance(low, tuple):
            low = low[0]
        low = self.low3(low)
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest"), low


class MultiContextAttention(HourglassStacks):
    """Backbone ``(B, 3, H, W) -> [(B, K, H/4, W/4)] * num_stacks``: stacked hourglass of
    HRUs; holistic attention in the first ``num_stacks // 2`` stacks, part attention (one
    map per joint) in the rest; every stack's heatmaps returned."""

    stride = 4

    def __init__(self, num_keypoints=17, num_stacks=8, channels=256, depth=4, num_blocks=1,
                 iters=3, kernel=1, multi_resolution=True):
        super().__init__()
        c, k = channels, num_keypoints
        res = 2 if multi_resolution else 1
        self.num_holistic = num_stacks // 2
        self.stem = hourglass_stem(c)
        self.hgs = nn.ModuleList([_AttHourglass(depth, c, num_blocks) for _ in range(num_stacks)])
        self.features = nn.ModuleList([nn.Sequential(_Residual(c, c), conv_bn_act(c, 2 * c, 1),
                                                     conv_bn_act(2 * c, c, 1))
                                       for _ in range(num_stacks)])
        self.holistic = nn.ModuleList([CRFAttention(c, iters, kernel, res)
                                       for _ in range(self.num_holistic)])
        self.holistic_out = nn.ModuleList([nn.Conv2d(c, k, 1) for _ in range(self.num_holistic)])
        n_part = num_stacks - self.num_holistic
        self.parts = nn.ModuleList([nn.ModuleList([CRFAttention(c, iters, kernel, res) for _ in range(k)])
                                    for _ in range(n_part)])
        self.parts_out = nn.ModuleList([nn.ModuleList([nn.Conv2d(c, 1, 1) for _ in range(k)])
                                        for _ in range(n_part)])
        self.merge_feat, self.merge_pred = stack_merges(c, k, num_stacks)
        self.multi_resolution = multi_resolution
        init_weights(self)
        for conv in list(self.holistic_out) + [m for mods in self.parts_out for m in mods]:
            nn.init.normal_(conv.weight, std=0.001)
        for m in self.modules():  # attention starts unsaturated (maps near 1/2, not 0 / 1)
            if isinstance(m, CRFAttention):
                for unary in m.unary:
                    nn.init.normal_(unary[1].weight, std=0.01)

    def stack_output(self, i: int, hourglass_out):
        """Holistic attention in the first stacks, one part-attention map per joint after."""
        h, half = hourglass_out
        f = self.features[i](h)
        feats = [f, half] if self.multi_resolution else [f]
        if i < self.num_holistic:
            return f, self.holistic_out[i](self.holistic[i](feats)[0])
        j = i - self.num_holistic
        return f, torch.cat([out(att(feats)[0]) for att, out in zip(self.parts[j], self.parts_out[j])], 1)


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """Multi-context attention network + a pass-through :class:`HeatmapHead`."""
    backbone = MultiContextAttention(num_keypoints, **arch)
    return heatmap_model(backbone, codec, input_size, MultiContextAttention.stride,
                         num_keypoints=num_keypoints, joint_weights=joint_weights)


CONFIGS = {"paper": dict(num_stacks=8, channels=256, depth=4, num_blocks=1, iters=3, kernel=1,
                         multi_resolution=True),
           "tiny": dict(input_size=(48, 64), num_stacks=2, channels=16, depth=2, num_blocks=1,
                        iters=3, kernel=3, multi_resolution=True)}
