"""PyraNet: stacked hourglass with Pyramid Residual Modules (Yang et al., ICCV 2017,
"Learning Feature Pyramids for Human Pose Estimation").

A PRM adds to the pre-activation bottleneck a pyramid branch: the input is reduced to ``D``
channels by a 1x1 convolution, subsampled at ``C`` fractional ratios
``s_c = 2^(-c/C)`` (``c = 1..C``; fractional max pooling while training, a deterministic
pooling at evenly spaced offsets at evaluation), convolved by a 3x3 convolution per scale,
upsampled back (bilinear) and fused, then projected to the bottleneck width. Variants:

* ``A``: a separate 1x1 input convolution per scale, scales summed;
* ``B``: one shared 1x1 input convolution, scales summed (the paper's main module);
* ``C``: shared input, scales concatenated (the 1x1 output convolution takes ``C*D``);
* ``D``: shared input, the scales replaced by dilated 3x3 convolutions (dilation ``c``).

As in the official network, the hourglass uses PRMs on its high-resolution levels (the
skip branch at depth >= 2, the down branch at depth >= 3) and plain residuals below; the
stem's residuals are PRMs. Weights get the paper's multi-branch initialisation: a
convolution whose output is summed with ``a`` other branches' outputs has
``Var[w] = 2 / (a * fan_in)`` (MSRA divided by the number of summed branches, so the
variance of a sum of branches is kept).
"""
from __future__ import annotations

import math
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import conv_bn_act
from .heads import heatmap_model
from .hourglass import HourglassStacks, _Residual, hourglass_stem, stack_merges
from .pose_model import PoseModel


def _bn_relu_conv(cin, cout, k=1, dilation=1):
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         nn.Conv2d(cin, cout, k, 1, dilation * (k // 2), dilation=dilation, bias=False))


def _ratios(cardinality: int) -> List[float]:
    """The paper's pyramid scales ``2^(-c/C)``, ``c = 1..C``."""
    return [2.0 ** (-c / cardinality) for c in range(1, cardinality + 1)]


def _offsets(size: int, out: int, device) -> torch.Tensor:
    """Start rows of ``out`` 2-wide pooling regions spread evenly over ``size`` (the first
    at 0, the last at ``size - 2``)."""
    if out <= 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    return torch.tensor([round(i * (size - 2) / (out - 1)) for i in range(out)], dtype=torch.long,
                        device=device)


class _ScaleBranch(nn.Module):
    """Subsample by ``ratio`` (fractional max pooling), 3x3 convolution, bilinear upsampling
    back to the input size."""

    def __init__(self, ch, ratio):
        super().__init__()
        self.ratio = ratio
        self.conv = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.conv.branches = None  # set by the PRM for the initialisation

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
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


class PRM(nn.Module):
    """Pyramid Residual Module ``cin -> cout`` of variant ``A``/``B``/``C``/``D``:
    ``skip(x) + g(f(x) + P(x))`` with ``f`` the bottleneck's 1x1+3x3 path (``cout/2``
    channels), ``P`` the pyramid branch (``D = cout // base_width`` channels, ``C =
    cardinality`` scales) and ``g`` the shared 1x1 output convolution."""

    def __init__(self, cin, cout, variant="B", base_width=9, cardinality=5):
        super().__init__()
        variant = variant.upper()
        if variant not in "ABCD" or len(variant) != 1:
            raise ValueError(f"PRM: variant must be one of A, B, C, D, got {variant!r}")
        self.variant = variant
        mid, d = cout // 2, max(cout // base_width, 1)
        self.main = nn.Sequential(_bn_relu_conv(cin, mid, 1), _bn_relu_conv(mid, mid, 3))
        if variant == "A":
            self.inputs = nn.ModuleList([_bn_relu_conv(cin, d, 1) for _ in range(cardinality)])
        else:
            self.inputs = nn.ModuleList([_bn_relu_conv(cin, d, 1)])
        self.pre = nn.Sequential(nn.BatchNorm2d(d), nn.ReLU(inplace=True))
        if variant == "D":
            self.scales = nn.ModuleList([nn.Conv2d(d, d, 3, 1, c, dilation=c, bias=False)
                                         for c in range(1, cardinality + 1)])
        else:
            self.scales = nn.ModuleList([_ScaleBranch(d, r) for r in _ratios(cardinality)])
        self.pyr_out = _bn_relu_conv(d * cardinality if variant == "C" else d, mid, 1)
        self.out = _bn_relu_conv(mid, cout, 1)
        self.skip = nn.Identity() if cin == cout else _bn_relu_conv(cin, cout, 1)
        # Multi-branch initialisation: number of branches each convolution's output is
        # summed with (the scales are summed in A/B/D; main and pyramid are summed; the
        # module's output is summed with the skip).
        summed = 1 if variant == "C" else cardinality
        for s in self.scales:
            conv = s.conv if isinstance(s, _ScaleBranch) else s
            conv.branches = summed
        self.main[1][2].branches = 2
        self.pyr_out[2].branches = 2
        self.out[2].branches = 2
        if not isinstance(self.skip, nn.Identity):
            self.skip[2].branches = 2

    def forward(self, x):
        if self.variant == "A":
            feats = [self.pre(inp(x)) for inp in self.inputs]
        else:
            feats = [self.pre(self.inputs[0](x))] * len(self.scales)
        ys = [s(f) for s, f in zip(self.scales, feats)]
        p = torch.cat(ys, 1) if self.variant == "C" else sum(ys)
        return self.out(self.main(x) + self.pyr_out(p)) + self.skip(x)


def multi_branch_init(module: nn.Module) -> None:
    """The paper's initialisation for multi-branch networks: a convolution whose output is
    summed with ``a`` branches gets ``std = sqrt(2 / (a * fan_in))`` (``a = 1``: MSRA); BN
    scale 1, shift 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            a = getattr(m, "branches", None) or 1
            nn.init.normal_(m.weight, std=math.sqrt(2.0 / (a * fan_in)))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _PyraHourglass(nn.Module):
    def __init__(self, depth, ch, num_blocks, prm):
        super().__init__()
        up = prm if depth >= 2 else _Residual
        down = prm if depth >= 3 else _Residual
        self.up1 = nn.Sequential(*[up(ch, ch) for _ in range(num_blocks)])
        self.low1 = nn.Sequential(*[down(ch, ch) for _ in range(num_blocks)])
        self.low2 = _PyraHourglass(depth - 1, ch, num_blocks, prm) if depth > 1 else \
            nn.Sequential(*[_Residual(ch, ch) for _ in range(num_blocks)])
        self.low3 = nn.Sequential(*[down(ch, ch) for _ in range(num_blocks)])

    def forward(self, x):
        up = self.up1(x)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")


class PyraNet(HourglassStacks):
    """Backbone ``(B, 3, H, W) -> [(B, K, H/4, W/4)] * num_stacks``: stacked hourglass of
    PRMs, every stack's heatmaps returned (intermediate supervision)."""

    stride = 4

    def __init__(self, num_keypoints=17, num_stacks=8, channels=256, depth=4, num_blocks=1,
                 variant="B", base_width=9, cardinality=5):
        super().__init__()
        c = channels

        def prm(cin, cout):
            return PRM(cin, cout, variant, base_width, cardinality)

        self.stem = hourglass_stem(c, prm)
        self.hgs = nn.ModuleList([_PyraHourglass(depth, c, num_blocks, prm) for _ in range(num_stacks)])
        self.features = nn.ModuleList([nn.Sequential(_Residual(c, c), conv_bn_act(c, c, 1))
                                       for _ in range(num_stacks)])
        self.outs = nn.ModuleList([nn.Conv2d(c, num_keypoints, 1) for _ in range(num_stacks)])
        self.merge_feat, self.merge_pred = stack_merges(c, num_keypoints, num_stacks)
        for i in range(num_stacks - 1):  # x + merge_feat + merge_pred: three summed branches
            self.merge_feat[i].branches = self.merge_pred[i].branches = 3
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


CONFIGS = {"paper": dict(num_stacks=8, channels=256, depth=4, num_blocks=1, variant="B",
                         base_width=9, cardinality=5),
           "prm_a": dict(num_stacks=8, channels=256, depth=4, variant="A", base_width=9, cardinality=5),
           "prm_c": dict(num_stacks=8, channels=256, depth=4, variant="C", base_width=9, cardinality=5),
           "prm_d": dict(num_stacks=8, channels=256, depth=4, variant="D", base_width=9, cardinality=5),
           "tiny": dict(input_size=(48, 64), num_stacks=2, channels=16, depth=2, num_blocks=1,
                        variant="B", base_width=2, cardinality=3)}
