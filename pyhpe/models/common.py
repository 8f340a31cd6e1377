"""Shared building blocks: conv-bn-act, residual blocks, ResNet (written here; no downloads),
and the default-codec helper of the model builders."""
from __future__ import annotations

from typing import Sequence

import torch.nn as nn


def conv_bn_act(cin, cout, k=3, s=1, p=None, groups=1, act=True):
    p = k // 2 if p is None else p
    layers = [nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _projection(cin, cout, stride):
    """ResNet shortcut: a strided 1x1 conv + BN where the shape changes, else None."""
    if stride != 1 or cin != cout:
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return None


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = conv_bn_act(cin, planes, 3, stride)
        self.conv2 = conv_bn_act(planes, cout, 3, 1, act=False)
        self.down = _projection(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return self.relu(self.conv2(self.conv1(x)) + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = conv_bn_act(cin, planes, 1)
        self.conv2 = conv_bn_act(planes, planes, 3, stride)
        self.conv3 = conv_bn_act(planes, cout, 1, act=False)
        self.down = _projection(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + idt)


RESNET_SPECS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
                50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3]),
                152: (Bottleneck, [3, 8, 36, 3])}


def make_stage(block, cin, planes, blocks, stride):
    layers = [block(cin, planes, stride)]
    for _ in range(1, blocks):
        layers.append(block(planes * block.expansion, planes))
    return nn.Sequential(*layers), planes * block.expansion


class ResNet(nn.Module):
    """ResNet (He et al. 2016) backbone returning the last stage (stride 32 with 4 stages).

    ``stem='conv3x2'`` replaces the 7x7 conv + max-pool by two stride-2 3x3 convs.
    ``depth`` picks the standard block/layer spec; ``layers``/``widths``/``block`` override it
    (tiny configs). ``stem='deep'`` uses three 3x3 convs instead of the 7x7 conv; ``stem_pool``
    keeps or drops the stride-2 max-pool.
    """

    def __init__(self, depth: int = 50, layers: Sequence[int] = None, widths: Sequence[int] = (64, 128, 256, 512),
                 block: str = None, stem_channels: int = 64, stem_pool: bool = True,
                 stem: str = "conv7"):
        super().__init__()
        blk, lay = RESNET_SPECS.get(depth, (Bottleneck, [3, 4, 6, 3]))
        if block is not None:
            blk = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        layers = list(layers) if layers is not None else lay
        if stem == "conv7":
            self.stem = nn.Sequential(
                nn.Conv2d(3, stem_channels, 7, 2, 3, bias=False), nn.BatchNorm2d(stem_channels),
                nn.ReLU(inplace=True), *([nn.MaxPool2d(3, 2, 1)] if stem_pool else []))
        elif stem == "conv3x2":  # two stride-2 3x3 convs: stride 4 like conv7+pool, cheaper
            self.stem = nn.Sequential(conv_bn_act(3, stem_channels // 2, 3, 2),
                                      conv_bn_act(stem_channels // 2, stem_channels, 3, 2))
        else:
            raise ValueError(f"ResNet: unknown stem {stem!r}; use 'conv7' or 'conv3x2'")
        cin = stem_channels
        stages = []
        for i, (n, w) in enumerate(zip(layers, widths)):
            st, cin = make_stage(blk, cin, w, n, 1 if i == 0 else 2)
            stages.append(st)
        self.stages = nn.ModuleList(stages)
        self.out_channels = cin
        #: output stride of the last stage
        self.stride = (4 if stem == "conv3x2" or stem_pool else 2) * 2 ** (len(stages) - 1)
        init_weights(self)

    def forward(self, x, return_all: bool = False):
        x = self.stem(x)
        feats = []
        for st in self.stages:
            x = st(x)
            feats.append(x)
        return feats if return_all else x


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=0.001) if isinstance(m, nn.ConvTranspose2d) else \
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def input_hw(input_size) -> tuple:
    w, h = (int(v) for v in input_size)
    return h, w


def heatmap_size(input_size, stride) -> tuple:
    """``(W, H)`` of the maps of a stride-``stride`` network at ``input_size=(W, H)``."""
    return tuple(max(int(round(int(v) / stride)), 1) for v in input_size)
