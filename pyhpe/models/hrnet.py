"""HRNet (Sun et al. 2019): parallel multi-resolution branches with repeated fusion."""
from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import BasicBlock, Bottleneck, conv_bn_act, init_weights, make_stage
from .heads import heatmap_model
from .pose_model import PoseModel


class _FuseModule(nn.Module):
    """One HRNet module: ``num_blocks`` BasicBlocks per branch, then all-to-all fusion."""

    def __init__(self, widths: Sequence[int], num_blocks: int, multi_scale_output: bool = True):
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(*[BasicBlock(w, w) for _ in range(num_blocks)]) for w in widths])
        n = len(widths)
        self.fuse = nn.ModuleList()
        for i in range(n if multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:  # lower resolution -> 1x1 conv, upsample in forward
                    row.append(nn.Sequential(nn.Conv2d(widths[j], widths[i], 1, bias=False),
                                             nn.BatchNorm2d(widths[i])))
                else:  # higher resolution -> (i - j) stride-2 convs
                    convs = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        convs.append(conv_bn_act(widths[j], widths[i] if last else widths[j], 3, 2, act=not last))
                    row.append(nn.Sequential(*convs))
            self.fuse.append(row)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        xs = [b(x) for b, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse):
            y = xs[i]
            for j, f in enumerate(row):
                if j == i:
                    continue
                z = f(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="nearest")
                y = y + z
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    """Backbone ``(B, 3, H, W) -> (B, width, H/4, W/4)``: the highest-resolution branch.

    ``width`` 32 / 48 gives HRNet-W32 / W48 (branch widths w, 2w, 4w, 8w); ``modules`` is the
    number of fusion modules in stages 2-4 (paper: 1, 4, 3) and ``num_blocks`` the BasicBlocks
    per branch (paper: 4).
    """

    stride = 4

    def __init__(self, width=32, modules=(1, 4, 3), num_blocks=4,
                 stem_channels=64, stage1_blocks=4):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, stem_channels, 3, 2), conv_bn_act(stem_channels, stem_channels, 3, 2))
        self.layer1, c1 = make_stage(Bottleneck, stem_channels, stem_channels, stage1_blocks, 1)
        widths = [width * 2 ** i for i in range(4)]
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = [c1]
        for s, n_mod in enumerate(modules):
            cur = widths[:s + 2]
            trans = nn.ModuleList()
            for i, w in enumerate(cur):
                if i < len(prev):
                    trans.append(nn.Identity() if prev[i] == w else conv_bn_act(prev[i], w, 3, 1))
                else:
                    trans.append(conv_bn_act(prev[-1], w, 3, 2))
            self.transitions.append(trans)
            last_stage = s == len(modules) - 1
            # HRNet's very last module fuses into the high-resolution branch only
            self.stages.append(nn.Sequential(*[_FuseModuleSeq(cur, num_blocks, not (last_stage and m == n_mod - 1))
                                               for m in range(n_mod)]))
            prev = cur
        self.out_channels = widths[0]
        init_weights(self)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        xs = [x]
        for trans, stage in zip(self.transitions, self.stages):
            new = []
            for i, t in enumerate(trans):
                new.append(t(xs[i]) if i < len(xs) else t(xs[-1]))
            xs = stage(new)
        return xs[0]


class _FuseModuleSeq(_FuseModule):
    """_FuseModule usable inside nn.Sequential (list in, list out)."""


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """HRNet + a 1x1 :class:`HeatmapHead` on the high-resolution branch (stride 4)."""
    backbone = HRNet(**arch)
    return heatmap_model(backbone, codec, input_size, HRNet.stride,
                         in_channels=backbone.out_channels, num_keypoints=num_keypoints,
                         joint_weights=joint_weights)


CONFIGS = {"paper": dict(width=32), "w32": dict(width=32), "w48": dict(width=48),
           "tiny": dict(input_size=(48, 64), width=8, modules=(1, 1, 1), num_blocks=1,
                        stem_channels=16, stage1_blocks=1)}
