"""Stacked Hourglass (Newell et al. 2016) with intermediate supervision."""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import conv_bn_act, init_weights
from .heads import heatmap_model
from .pose_model import PoseModel


class _Residual(nn.Module):
    """Pre-activation bottleneck residual (the hourglass paper's module)."""

    def __init__(self, cin, cout):
        super().__init__()
        mid = max(cout // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, 1, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1, bias=False))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class _Hourglass(nn.Module):
    def __init__(self, depth, ch, num_blocks):
        super().__init__()
        self.up1 = nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])
        self.low1 = nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])
        self.low2 = _Hourglass(depth - 1, ch, num_blocks) if depth > 1 else \
            nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])
        self.low3 = nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])

    def forward(self, x):
        up = self.up1(x)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")


def hourglass_stem(c: int, block=None) -> nn.Sequential:
    """The hourglass networks' stride-4 stem: 7x7 conv, residuals, max-pool, to ``c`` channels."""
    block = _Residual if block is None else block
    return nn.Sequential(conv_bn_act(3, c // 4, 7, 2), block(c // 4, c // 2), nn.MaxPool2d(2),
                         block(c // 2, c // 2), block(c // 2, c))


def stack_merges(c: int, num_keypoints: int, num_stacks: int):
    """The 1x1 convs adding a stack's features and its maps to the next stack's input."""
    return (nn.ModuleList([nn.Conv2d(c, c, 1) for _ in range(num_stacks - 1)]),
            nn.ModuleList([nn.Conv2d(num_keypoints, c, 1) for _ in range(num_stacks - 1)]))


class HourglassStacks(nn.Module):
    """What the stacked-hourglass family shares: ``stem``, ``hgs`` (one hourglass per stack),
    :meth:`stack_output` (a stack's features and maps) and the merges into the next stack;
    ``forward`` returns every stack's maps (intermediate supervision)."""

    stride = 4

    def stack_output(self, i: int, hourglass_out):
        f = self.features[i](hourglass_out)
        return f, self.outs[i](f)

    def forward(self, x) -> List[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i, hg in enumerate(self.hgs):
            f, p = self.stack_output(i, hg(x))
            outs.append(p)
            if i < len(self.hgs) - 1:
                x = x + self.merge_feat[i](f) + self.merge_pred[i](p)
        return outs


class StackedHourglass(HourglassStacks):
    """Backbone ``(B, 3, H, W) -> [(B, K, H/4, W/4)] * num_stacks``: every stack's heatmaps
    (intermediate supervision; each stack's maps feed the next)."""

    def __init__(self, num_keypoints=17, num_stacks=8, channels=256, depth=4, num_blocks=1):
        super().__init__()
        c = channels
        self.stem = hourglass_stem(c)
        self.hgs = nn.ModuleList([_Hourglass(depth, c, num_blocks) for _ in range(num_stacks)])
        self.features = nn.ModuleList([nn.Sequential(_Residual(c, c), conv_bn_act(c, c, 1))
                                       for _ in range(num_stacks)])
        self.outs = nn.ModuleList([nn.Conv2d(c, num_keypoints, 1) for _ in range(num_stacks)])
        self.merge_feat, self.merge_pred = stack_merges(c, num_keypoints, num_stacks)
        init_weights(self)


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """Stacked hourglass + a pass-through :class:`HeatmapHead`: the loss sums every stack."""
    backbone = StackedHourglass(num_keypoints, **arch)
    return heatmap_model(backbone, codec, input_size, StackedHourglass.stride,
                         num_keypoints=num_keypoints, joint_weights=joint_weights)


CONFIGS = {"paper": dict(num_stacks=8, channels=256, depth=4, num_blocks=1),
           "hg2": dict(num_stacks=2, channels=256, depth=4),
           "tiny": dict(input_size=(48, 64), num_stacks=2, channels=16, depth=2, num_blocks=1)}
