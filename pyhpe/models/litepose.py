"""Lite Pose (Wang et al. 2022): an efficient single-branch bottom-up network (MobileNetV2-style
inverted residuals with large kernels, fusion deconvs).

Built here as a heatmap model (backbone + :class:`HeatmapHead`, K maps, multi-person targets
from a heatmap codec); the paper's associative-embedding tag maps arrive with the
associative-embedding codec and head."""
from __future__ import annotations

import torch.nn as nn

from .common import conv_bn_act, init_weights
from .heads import heatmap_model
from .pose_model import PoseModel


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, kernel):
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            *(conv_bn_act(cin, mid, 1) if expand != 1 else []),
            conv_bn_act(mid, mid, kernel, stride, groups=mid),
            conv_bn_act(mid, cout, 1, act=False))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class LitePose(nn.Module):
    """Backbone ``(B, 3, H, W) -> (B, C, H/4, W/4)`` features.

    ``stages`` lists (channels, blocks, stride) of the backbone after a stride-2 stem; the
    decoder upsamples the last stage with deconvs, adding lateral 1x1 projections of the
    stride-8 and stride-4 features (Lite Pose's fusion).
    """

    def __init__(self, stem_channels=16,
                 stages=((16, 6, 2), (32, 8, 2), (48, 10, 2), (80, 10, 1)), expand=6, kernel=7,
                 deconv_channels=(48, 32)):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, 32, 3, 2), conv_bn_act(32, stem_channels, 3, 1, groups=1))
        blocks, cin = [], stem_channels
        self.taps = []
        strides = 2
        for c, n, s in stages:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, expand, kernel))
                cin = c
            strides *= s
            self.taps.append((len(blocks) - 1, strides, c))
        self.blocks = nn.ModuleList(blocks)
        tap_by_stride = {}
        for idx, st, c in self.taps:
            tap_by_stride[st] = (idx, c)
        self.lat_idx = {st: tap_by_stride[st][0] for st in (4, 8) if st in tap_by_stride}
        c = cin
        self.deconvs = nn.ModuleList()
        self.laterals = nn.ModuleDict()
        stride = strides
        for dc in deconv_channels:
            self.deconvs.append(nn.Sequential(nn.ConvTranspose2d(c, dc, 4, 2, 1, bias=False),
                                              nn.BatchNorm2d(dc), nn.ReLU(inplace=True)))
            stride //= 2
            if stride in tap_by_stride:
                self.laterals[str(stride)] = nn.Conv2d(tap_by_stride[stride][1], dc, 1)
            c = dc
        self.stride = stride
        self.out_channels = c
        init_weights(self)

    def forward(self, x):
        x = self.stem(x)
        feats = {}
        for i, b in enumerate(self.blocks):
            x = b(x)
            feats[i] = x
        for d in self.deconvs:
            x = d(x)
            key = None
            for st, idx in self.lat_idx.items():
                if str(st) in self.laterals and feats[idx].shape[-2:] == x.shape[-2:]:
                    key = (st, idx)
            if key is not None:
                x = x + self.laterals[str(key[0])](feats[key[1]])
        return x


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), joint_weights=None, **arch
          ) -> PoseModel:
    backbone = LitePose(**arch)
    return heatmap_model(backbone, codec, input_size, backbone.stride,
                         in_channels=backbone.out_channels, num_keypoints=num_keypoints,
                         joint_weights=joint_weights)


CONFIGS = {"paper": dict(),  # LitePose-S-like: 6/8/10/10 blocks, 7x7 kernels
           "tiny": dict(input_size=(48, 64), stem_channels=8, stages=((8, 1, 2), (16, 1, 2), (16, 1, 2)), expand=2,
                        kernel=3, deconv_channels=(16, 16))}
