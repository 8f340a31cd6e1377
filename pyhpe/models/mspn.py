"""MSPN: Multi-Stage Pose Network (Li et al. 2019, "Rethinking on Multi-Stage Networks for
Human Pose Estimation").

A shared ResNet top (7x7 conv + max-pool, stride 4, 64 channels) feeds ``num_stages``
single-stage modules, each a ResNet downsampling path (C2..C5) and an upsampling path of 1x1
lateral units (coarse -> fine, bilinear upsample + 1x1 conv added), each unit predicting
heatmaps at the stride-4 output (1x1 conv + 3x3 conv, upsampled). Cross-stage feature
aggregation: every unit of stage ``s`` sends two 1x1 convs (of its lateral input and of its
output) added to the same level of stage ``s + 1``'s downsampling path; the finest unit's 1x1
``cross_conv`` (64 channels) is the next stage's input. Layout as the authors' code (MSPN /
mmpose 0.x ``MSPN``).

Coarse-to-fine supervision (official ``COARSE_TO_FINE``): with the 5 target sigmas of kernels
15, 11, 9, 7, 5, unit ``j`` of every stage but the last uses level ``j``, the last stage level
``j + 1``; units 0-2 are L2 (mean over B, K, H, W) weighted 1/4, the finest unit of every
stage L2 with online hard keypoint mining (top 8), as the authors' ``JointsL2Loss``.
Differences: the official code zeroes the L2 targets of keypoints with v = 1 (here every
labelled keypoint is weighted by the codec's ``keypoint_weights``), and its convs before BN
carry biases (here none, as mmpose).
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..codecs.multilevel import MultiLevelHeatmap, sigma_from_kernel
from .common import RESNET_SPECS, conv_bn_act, heatmap_size, init_weights, make_stage
from .cpn import _predictor, _small_init
from .heads.heatmap import check_map_size
from .heads.multistage import MultiLevelHead
from .pose_model import PoseModel

#: the official MSPN targets at 256x192: cv2 kernels 15, 11, 9, 7, 5 (coarse -> fine)
MSPN_SIGMAS = tuple(round(sigma_from_kernel(k), 4) for k in (15, 11, 9, 7, 5))


def _up(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class _UpUnit(nn.Module):
    def __init__(self, cin, channels, num_keypoints, first, gen_skip, cross_channels, pred_norm):
        super().__init__()
        self.lateral = conv_bn_act(cin, channels, 1, act=False)
        self.up_conv = None if first else conv_bn_act(channels, channels, 1, act=False)
        self.skip1 = conv_bn_act(cin, cin, 1) if gen_skip else None
        self.skip2 = conv_bn_act(channels, cin, 1) if gen_skip else None
        self.cross = conv_bn_act(channels, cross_channels, 1) if cross_channels else None
        self.predict = nn.Sequential(conv_bn_act(channels, channels, 1),
                                     _predictor(channels, num_keypoints, pred_norm))

    def forward(self, x, up, out_size):
        out = self.lateral(x)
        if self.up_conv is not None:
            out = out + self.up_conv(_up(up, out.shape[-2:]))
        out = F.relu(out)
        maps = _up(self.predict(out), out_size)
        skips = (self.skip1(x), self.skip2(out)) if self.skip1 is not None else (None, None)
        cross = self.cross(out) if self.cross is not None else None
        return out, maps, skips, cross


class _Stage(nn.Module):
    def __init__(self, block, layers, widths, in_channels, channels, num_keypoints, has_skip,
                 last, pred_norm):
        super().__init__()
        cin, downs, outs = in_channels, [], []
        for i, (n, w) in enumerate(zip(layers, widths)):
            st, cin = make_stage(block, cin, w, n, 1 if i == 0 else 2)
            downs.append(st)
            outs.append(cin)
        self.downs = nn.ModuleList(downs)
        self.has_skip = has_skip
        ins = outs[::-1]                                 # coarse -> fine
        self.units = nn.ModuleList([
            _UpUnit(c, channels, num_keypoints, i == 0, not last,
                    in_channels if (not last and i == len(ins) - 1) else 0, pred_norm)
            for i, c in enumerate(ins)])

    def forward(self, x, skips: Optional[List], out_size):
        feats = []
        for i, st in enumerate(self.downs):
            x = st(x)
            if self.has_skip:
                x = x + skips[i][0] + skips[i][1]
            feats.append(x)
        up, maps, new_skips, cross = None, [], [], None
        for unit, f in zip(self.units, feats[::-1]):
            up, m, sk, cross = unit(f, up, out_size)
            maps.append(m)
            new_skips.append(sk)
        return maps, new_skips[::-1], cross              # skips fine -> coarse, as the levels


class MSPN(nn.Module):
    """``(B, 3, H, W) -> [stage 0 units coarse -> fine, ..., last stage units]``, each
    ``(B, K, H/4, W/4)``."""

    stride = 4

    def __init__(self, num_keypoints=17, num_stages=2, depth=50, layers=None,
                 widths=(64, 128, 256, 512), block=None, stem_channels=64, channels=256,
                 pred_norm=True):
        super().__init__()
        from .common import BasicBlock, Bottleneck
        blk, lay = RESNET_SPECS.get(depth, (Bottleneck, [3, 4, 6, 3]))
        if block is not None:
            blk = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        layers = list(layers) if layers is not None else lay
        self.top = nn.Sequential(conv_bn_act(3, stem_channels, 7, 2), nn.MaxPool2d(3, 2, 1))
        self.num_stages, self.num_units = int(num_stages), len(layers)
        self.stages = nn.ModuleList([
            _Stage(blk, layers, widths, stem_channels, channels, num_keypoints, i > 0,
                   i == num_stages - 1, pred_norm) for i in range(self.num_stages)])
        init_weights(self)
        _small_init(self)

    def forward(self, x) -> List[torch.Tensor]:
        x = self.top(x)
        size, skips, outs = x.shape[-2:], None, []
        for st in self.stages:
            maps, skips, x = st(x, skips, size)
            outs += maps
        return outs


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), topk=8, joint_weights=None,
          **arch) -> PoseModel:
    """MSPN + a :class:`MultiLevelHead` (coarse-to-fine levels, OHKM on each stage's finest
    unit). Without a codec: a :class:`MultiLevelHeatmap` of the MSPN sigmas at ``input_size``.
    With ``U`` units a codec of ``U + 1`` levels gives the last stage levels 1..U and the
    others 0..U-1; with ``U`` levels every stage uses them all (mmpose's single-stage
    ``mspn50``: kernels 11, 9, 7, 5); fewer levels repeat the coarsest."""
    net = MSPN(num_keypoints, **arch)
    S, U = net.num_stages, net.num_units
    if codec is None:
        sig = MSPN_SIGMAS[-(U + 1):] if U + 1 <= len(MSPN_SIGMAS) else \
            MSPN_SIGMAS[:1] * (U + 1 - len(MSPN_SIGMAS)) + MSPN_SIGMAS
        codec = MultiLevelHeatmap(input_size, heatmap_size(input_size, MSPN.stride), sig)
    check_map_size(codec, MSPN.stride, "MSPN")
    n = getattr(codec, "num_levels", 1)
    levels, ohkm, weights = [], [], []
    for s in range(S):
        # coarse-to-fine: the last stage's units one level finer when the codec has U + 1
        off = n - U - (1 if n > U and s < S - 1 else 0)
        for j in range(U):
            levels.append(max(off + j, 0))
            last_unit = j == U - 1
            ohkm.append(last_unit)
            weights.append(1.0 if last_unit else 0.25)
    head = MultiLevelHead(codec, levels, ohkm, weights, topk=topk, num_keypoints=num_keypoints,
                          joint_weights=joint_weights)
    return PoseModel(net, head)


CONFIGS = {
    "paper": dict(num_stages=2, depth=50),              # 2xMSPN-50 (256x192: 74.5 AP in the paper)
    "mspn50": dict(num_stages=1, depth=50),
    "3xmspn50": dict(num_stages=3, depth=50),
    "4xmspn50": dict(num_stages=4, depth=50),
    "tiny": dict(input_size=(48, 64), num_stages=2, depth=18, layers=[1, 1, 1, 1],
                 widths=(8, 16, 24, 32), stem_channels=8, channels=16, pred_norm=False),
}
