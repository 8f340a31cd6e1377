"""Lite Pose (Wang et al. 2022): an efficient single-branch bottom-up network (MobileNetV2-style
inverted residuals with large kernels, fusion deconvolutions).

The backbone and the fusion deconvolutions follow the official code
(github.com/mit-han-lab/litepose ``lib/models/pose_mobilenet.py``, architectures
``mobile_configs/search-{XS,S,M,L}.json``) module for module. Built here as a heatmap model
(backbone + :class:`HeatmapHead` at stride 4, K maps, multi-person targets from a heatmap
codec); the official final layers (5x5 separable convs of the refined and the raw features,
associative-embedding tag maps at stride 4 and a second heatmap output at stride 2) arrive
with the associative-embedding codec and head.
"""
from __future__ import annotations

import torch.nn as nn

from .common import init_weights
from .heads import heatmap_model
from .pose_model import PoseModel


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_relu6(cin, cout, k=3, s=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Lite Pose's InvBottleneck: 1x1 expansion (ReLU6), k x k depthwise conv (ReLU6), 1x1
    projection; residual when the shape is kept."""

    def __init__(self, cin, cout, stride, expand, kernel):
        super().__init__()
        mid = _make_divisible(round(cin * expand))
        self.inv = _conv_bn_relu6(cin, mid, 1)
        self.depth_conv = _conv_bn_relu6(mid, mid, kernel, stride, groups=mid)
        self.point_conv = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.point_conv(self.depth_conv(self.inv(x)))
        return x + y if self.use_res else y


class LitePose(nn.Module):
    """Backbone ``(B, 3, H, W) -> (B, C, H/s, W/s)`` features.

    ``first``: a stride-2 3x3 conv to 32 channels, a depthwise 3x3 conv and a 1x1 projection to
    ``stem_channels``; ``stages`` lists (channels, blocks, stride) of inverted residuals
    (``expand``, ``kernel``). Fusion deconvolutions (``deconv_channels``): step i upsamples the
    refined features and, by a second deconvolution, the raw features of the stage i + 1 from
    the end, sums them, then BN + ReLU (the last stage must keep its input's resolution, as
    Lite Pose's stride-1 last stage does). ``s`` is the backbone's stride / 2 ** deconvs.
    """

    def __init__(self, stem_channels=16,
                 stages=((16, 6, 2), (32, 8, 2), (48, 10, 2), (120, 10, 1)), expand=6, kernel=7,
                 deconv_channels=(32, 24)):
        super().__init__()
        self.first = nn.Sequential(_conv_bn_relu6(3, 32, 3, 2), _conv_bn_relu6(32, 32, 3, 1, groups=32),
                                   nn.Conv2d(32, stem_channels, 1, bias=False), nn.BatchNorm2d(stem_channels))
        channels, cin, stride = [stem_channels], stem_channels, 2
        self.stage = nn.ModuleList()
        for c, n, s in stages:
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, expand, kernel))
                cin = c
            self.stage.append(nn.Sequential(*blocks))
            channels.append(c)
            stride *= s
        if len(deconv_channels) > len(channels) - 2:
            raise ValueError(f"LitePose: {len(deconv_channels)} fusion deconvolutions need at least "
                             f"{len(deconv_channels) + 1} stages")
        self.deconv_refined, self.deconv_raw = nn.ModuleList(), nn.ModuleList()
        self.deconv_bnrelu = nn.ModuleList()
        c = channels[-1]
        for i, dc in enumerate(deconv_channels):
            self.deconv_refined.append(nn.ConvTranspose2d(c, dc, 4, 2, 1, bias=False))
            self.deconv_raw.append(nn.ConvTranspose2d(channels[-i - 2], dc, 4, 2, 1, bias=False))
            self.deconv_bnrelu.append(nn.Sequential(nn.BatchNorm2d(dc), nn.ReLU(inplace=True)))
            c = dc
            stride //= 2
        self.stride = stride
        self.out_channels = c
        init_weights(self)

    def forward(self, x):
        xs = [self.first(x)]
        for st in self.stage:
            xs.append(st(xs[-1]))
        refined, raw = xs[-1], xs[-2]
        for i, (dr, dw, bn) in enumerate(zip(self.deconv_refined, self.deconv_raw, self.deconv_bnrelu)):
            refined = bn(dr(refined) + dw(raw))
            raw = xs[-i - 3]
        return refined


def build(num_keypoints=17, codec=None, *, input_size=(448, 448), joint_weights=None, **arch
          ) -> PoseModel:
    backbone = LitePose(**arch)
    return heatmap_model(backbone, codec, input_size, backbone.stride,
                         in_channels=backbone.out_channels, num_keypoints=num_keypoints,
                         joint_weights=joint_weights)


def _search(stem, channels, deconv, size):
    """An official ``search-*.json`` architecture: 6/8/10/10 blocks, expansion 6, 7x7 kernels;
    the first two of its three fusion deconvolutions (stride 4)."""
    return dict(input_size=(size, size), stem_channels=stem, expand=6, kernel=7,
                stages=tuple(zip(channels, (6, 8, 10, 10), (2, 2, 2, 1))), deconv_channels=deconv)


CONFIGS = {"paper": _search(16, (16, 32, 48, 120), (32, 24), 448),   # LitePose-S
           "xs": _search(16, (16, 32, 48, 80), (16, 24), 256),
           "s": _search(16, (16, 32, 48, 120), (32, 24), 448),
           "m": _search(16, (24, 48, 72, 120), (64, 40), 448),
           "l": _search(24, (24, 64, 96, 160), (64, 40), 512),
           "tiny": dict(input_size=(48, 64), stem_channels=8,
                        stages=((8, 1, 2), (16, 1, 2), (16, 1, 2), (16, 1, 1)), expand=2, kernel=3,
                        deconv_channels=(16, 16))}
