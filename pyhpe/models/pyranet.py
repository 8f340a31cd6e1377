"""PyraNet: stacked hourglass with Pyramid Residual Modules (Yang et al., ICCV 2017,
"Learning Feature Pyramids for Human Pose Estimation"), built as the official network
(bearpaw/PyraNet, ``models/hg-prm.lua``, ``models/layers/PRM.lua``) defines it.

A PRM (``cin -> cout``, bottleneck width ``cout/2``) sums two branches and projects:

* main: ``[BN, ReLU,] conv1x1 cin->cout/2, BN, ReLU, conv3x3``;
* pyramid: ``[BN, ReLU,] conv1x1 cin->D`` (``D = floor(cout / base_width)``), BN, ReLU,
  ``C = cardinality`` scales each ``fractional max pooling by s_c = 2^(-c/C)`` (``c = 1..C``,
  2x2 pooling regions) -> conv3x3 ``D->D`` -> bilinear upsampling back to the input size,
  the scales summed, BN, ReLU, conv1x1 ``D->cout/2``;
* ``BN, ReLU, conv1x1 cout/2->cout`` on the sum, plus the skip (identity, or
  ``BN, ReLU, conv1x1`` when the widths differ or ``use_conv``).

The bracketed pre-activation is dropped in the stem's first PRM (``no_preact``). Variants
(the paper's Fig. 3): ``B`` (shared input, scales summed: the official module), ``A``
(a separate 1x1 input per scale), ``C`` (scales concatenated, ``C*D -> cout/2``), ``D``
(dilated 3x3 convolutions, dilation ``c``, instead of the pooled scales).

Network (official): stem ``conv7x7/2 3->64, BN, ReLU, PRM(64->128, no pre-activation),
maxpool, PRM(128->128), PRM(128->C)``; per stack a depth-4 hourglass with PRMs on the skip
branches at depth >= 2 and the down branches at depth >= 3 (plain pre-activation residuals
elsewhere; the residual after the inner hourglass has a convolutional skip), then
``BN, ReLU, conv1x1-BN-ReLU`` features, a 1x1 heatmap convolution, and the next stack's
input ``x + conv1x1(features) + conv1x1(heatmaps)``. Every convolution has a bias (Torch's
default). At evaluation the fractional pooling uses evenly spaced (not random) pooling
regions so inference is deterministic.

Initialisation (the paper's Sec. 4 for multi-branch networks, where the official module
marks it: ``nBranchIn = C`` on the 1x1 convolution that takes the sum of the ``C`` pyramid
scales): a convolution whose input sums ``a`` branches gets ``Var[w] = 2 / (a * fan_in)``
(MSRA with ``a = 1`` everywhere else).
"""
from __future__ import annotations

import math
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .heads import heatmap_model
from .hourglass import HourglassStacks
from .pose_model import PoseModel


def _brc(cin, cout, k=1, dilation=1, preact=True):
    """``[BN, ReLU,] conv`` (a Torch convolution: with bias)."""
    conv = nn.Conv2d(cin, cout, k, 1, dilation * (k // 2), dilation=dilation)
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), conv) if preact else nn.Sequential(conv)


def _ratios(cardinality: int) -> List[float]:
    """The pyramid scales ``2^(-c/C)``, ``c = 1..C`` (official: ``1 / (2^(1/C))^c``)."""
    return [2.0 ** (-c / cardinality) for c in range(1, cardinality + 1)]


def _offsets(size: int, out: int, device) -> torch.Tensor:
    """Start rows of ``out`` 2-wide pooling regions spread evenly over ``size`` (the first
    at 0, the last at ``size - 2``)."""
    if out <= 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    return torch.tensor([round(i * (size - 2) / (out - 1)) for i in range(out)], dtype=torch.long,
                        device=device)


class _ScaleBranch(nn.Module):
    """Fractional max pooling by ``ratio`` (2x2 regions), 3x3 convolution, bilinear
    upsampling back to the input size (Torch's ``SpatialUpSamplingBilinear``: corners
    aligned)."""

    def __init__(self, ch, ratio):
        super().__init__()
        self.ratio = ratio
        self.conv = nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x):
        h, w = int(x.shape[-2]), int(x.shape[-1])
        oh, ow = max(int(h * self.ratio), 1), max(int(w * self.ratio), 1)
        if h < 2 or w < 2:
            y = F.adaptive_max_pool2d(x, (oh, ow))
        elif self.training:
            y = F.fractional_max_pool2d(x, 2, output_size=(oh, ow))
        else:  # evaluation: 2x2 pooling regions at evenly spaced (not random) offsets
            y = F.max_pool2d(x, 2, stride=1)
            y = y.index_select(2, _offsets(h, oh, x.device)).index_select(3, _offsets(w, ow, x.device))
        y = self.conv(y)
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=True)


def _skip(cin, cout, use_conv):
    return _brc(cin, cout, 1) if (use_conv or cin != cout) else nn.Identity()


class Residual(nn.Module):
    """The official pre-activation bottleneck residual (``models/layers/Residual.lua``):
    ``[BN, ReLU,] 1x1 -> BN, ReLU, 3x3 -> BN, ReLU, 1x1`` plus the skip (``BN, ReLU,
    conv1x1`` when the widths differ or ``use_conv``)."""

    def __init__(self, cin, cout, preact=True, use_conv=False):
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(*_brc(cin, mid, 1, preact=preact), *_brc(mid, mid, 3), *_brc(mid, cout, 1))
        self.skip = _skip(cin, cout, use_conv)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class PRM(nn.Module):
    """Pyramid Residual Module ``cin -> cout`` of variant ``A``/``B``/``C``/``D`` (see the
    module docstring); ``preact=False`` is the official ``no_preact`` type, ``use_conv``
    forces the convolutional skip."""

    def __init__(self, cin, cout, variant="B", base_width=9, cardinality=4, preact=True,
                 use_conv=False):
        super().__init__()
        variant = variant.upper()
        if variant not in "ABCD" or len(variant) != 1:
            raise ValueError(f"PRM: variant must be one of A, B, C, D, got {variant!r}")
        self.variant = variant
        mid, d = cout // 2, max(cout // base_width, 1)
        self.main = nn.Sequential(*_brc(cin, mid, 1, preact=preact), *_brc(mid, mid, 3))
        n_in = cardinality if variant == "A" else 1
        self.inputs = nn.ModuleList([nn.Sequential(*_brc(cin, d, 1, preact=preact), nn.BatchNorm2d(d),
                                                   nn.ReLU(inplace=True)) for _ in range(n_in)])
        if variant == "D":
            self.scales = nn.ModuleList([nn.Conv2d(d, d, 3, 1, c, dilation=c)
                                         for c in range(1, cardinality + 1)])
        else:
            self.scales = nn.ModuleList([_ScaleBranch(d, r) for r in _ratios(cardinality)])
        self.pyr_out = _brc(d * cardinality if variant == "C" else d, mid, 1)
        # the official ``a.nBranchIn = C``: this convolution's input sums the C scales
        self.pyr_out[2].branches_in = 1 if variant == "C" else cardinality
        self.out = _brc(mid, cout, 1)
        self.skip = _skip(cin, cout, use_conv)

    def forward(self, x):
        if self.variant == "A":
            ys = [s(inp(x)) for s, inp in zip(self.scales, self.inputs)]
        else:
            f = self.inputs[0](x)
            ys = [s(f) for s in self.scales]
        p = torch.cat(ys, 1) if self.variant == "C" else sum(ys)
        return self.out(self.main(x) + self.pyr_out(p)) + self.skip(x)


def multi_branch_init(module: nn.Module) -> None:
    """The paper's initialisation for multi-branch networks: a convolution whose input sums
    ``a`` branches (attribute ``branches_in``) gets ``std = sqrt(2 / (a * fan_in))``
    (``a = 1``: MSRA); biases 0, BN scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            a = getattr(m, "branches_in", 1)
            nn.init.normal_(m.weight, std=math.sqrt(2.0 / (a * fan_in)))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _PyraHourglass(nn.Module):
    """The official ``hourglass(n)``: PRMs on the skip branch at ``n >= 2`` and on the down
    branch at ``n >= 3``; the residual after the inner hourglass has a convolutional skip."""

    def __init__(self, depth, ch, num_blocks, prm):
        super().__init__()

        def blocks(use_prm, use_conv=False):
            make = (lambda: prm(ch, ch, use_conv=use_conv)) if use_prm else \
                (lambda: Residual(ch, ch, use_conv=use_conv))
            return nn.Sequential(*[make() for _ in range(num_blocks)])

        self.up1 = blocks(depth >= 2)
        self.low1 = blocks(depth >= 3)
        self.low2 = _PyraHourglass(depth - 1, ch, num_blocks, prm) if depth > 1 else blocks(depth >= 3)
        self.low3 = blocks(depth >= 3, use_conv=True)

    def forward(self, x):
        up = self.up1(x)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")


class PyraNet(HourglassStacks):
    """Backbone ``(B, 3, H, W) -> [(B, K, H/4, W/4)] * num_stacks``: stacked hourglass of
    PRMs, every stack's heatmaps returned (intermediate supervision)."""

    stride = 4

    def __init__(self, num_keypoints=17, num_stacks=8, channels=256, depth=4, num_blocks=1,
                 variant="B", base_width=9, cardinality=4, stem_channels=64):
        super().__init__()
        c, s = channels, stem_channels

        def prm(cin, cout, preact=True, use_conv=False):
            return PRM(cin, cout, variant, base_width, cardinality, preact, use_conv)

        self.stem = nn.Sequential(nn.Conv2d(3, s, 7, 2, 3), nn.BatchNorm2d(s), nn.ReLU(inplace=True),
                                  prm(s, 2 * s, preact=False), nn.MaxPool2d(2),
                                  prm(2 * s, 2 * s), prm(2 * s, c))
        self.hgs = nn.ModuleList([_PyraHourglass(depth, c, num_blocks, prm) for _ in range(num_stacks)])
        self.features = nn.ModuleList([nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                                     nn.Conv2d(c, c, 1), nn.BatchNorm2d(c),
                                                     nn.ReLU(inplace=True)) for _ in range(num_stacks)])
        self.outs = nn.ModuleList([nn.Conv2d(c, num_keypoints, 1) for _ in range(num_stacks)])
        self.merge_feat = nn.ModuleList([nn.Conv2d(c, c, 1) for _ in range(num_stacks - 1)])
        self.merge_pred = nn.ModuleList([nn.Conv2d(num_keypoints, c, 1) for _ in range(num_stacks - 1)])
        multi_branch_init(self)
        for conv in self.outs:  # heatmap outputs start near zero (as the heatmap heads do)
            nn.init.normal_(conv.weight, std=0.001)


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """PyraNet + a pass-through :class:`HeatmapHead`: MSE on every stack's heatmaps summed;
    inference decodes the last stack's maps through the codec (flip test by the task)."""
    backbone = PyraNet(num_keypoints, **arch)
    return heatmap_model(backbone, codec, input_size, PyraNet.stride,
                         num_keypoints=num_keypoints, joint_weights=joint_weights)


# "paper": the 8-stack PRM-B network of the paper's MPII/LSP results with the official
# experiment's module widths (baseWidth 9, cardinality 4; experiments/mpii/hg-prm-stack2.sh).
CONFIGS = {"paper": dict(num_stacks=8, channels=256, depth=4, num_blocks=1, variant="B",
                         base_width=9, cardinality=4),
           "prm_a": dict(num_stacks=8, channels=256, depth=4, variant="A", base_width=9, cardinality=4),
           "prm_c": dict(num_stacks=8, channels=256, depth=4, variant="C", base_width=9, cardinality=4),
           "prm_d": dict(num_stacks=8, channels=256, depth=4, variant="D", base_width=9, cardinality=4),
           "tiny": dict(input_size=(48, 64), num_stacks=2, channels=16, depth=2, num_blocks=1,
                        variant="B", base_width=2, cardinality=3, stem_channels=8)}
