"""Chained Predictions (Gkioxari, Toshev, Jaitly, ECCV 2016, "Chained Predictions Using
Convolutional Neural Networks"): the single-image chain model.

The image is encoded once, ``h_0 = CNN_x(x)``; the joints are then predicted one after the
other along the kinematic chain (head, right arm, left arm, right leg, left leg). Step ``t``
(untied weights, the paper's formulation for images, its Eq. 4) updates the hidden state from
the previous one and every prediction made so far,

    h_t = ReLU(W^h_t * h_{t-1} + sum_{i<t} W^y_{i,t} * e(y_i)),

with ``e`` one convolutional embedding net shared by all the joints (a map at the output
stride -> the hidden state's stride) and ``W^y_{i,t}`` a convolution per pair of steps
(computed as one convolution over the concatenated embeddings ``e(y_0) .. e(y_{t-1})``),
and predicts its joint's spatial distribution ``y_t = softmax(m_t(h_t))`` with a multi-scale
output net ``m_t`` (a stride-2 deconvolution, then parallel 3x3 convolutions at dilations
1, 2, 3 summed: the paper's "deception" net, in small). Loss: the paper's softmax
cross-entropy over locations at every step
(:class:`~pyhpe.models.heads.chained.ChainedHead`).

Choices where the paper leaves room: the maps passed on are the predicted probabilities
divided by their peak (soft and differentiable, so the chain trains end to end and each step
sees the model's own earlier predictions in training as at inference: no teacher forcing);
the hidden state uses ReLU after batch normalisation; ``W^y_{i,t}`` are 1x1 convolutions
(``pair_kernel``), ``W^h_t`` 3x3.

Encoder: a ResNet with deconvolutions to the hidden state's stride (the paper's encoder is an
Inception network; a ResNet-50 stands in for it in the ``paper`` config). Output stride 4.
The paper publishes no parameter count: the ``paper`` config's count is pinned in
tests/test_chained.py.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ResNet, conv_bn_act, init_weights
from .heads.chained import ChainedHead
from .heads.heatmap import check_map_size, default_heatmap_codec
from .pose_model import PoseModel

# The chain orders (head first, then right arm, left arm, right leg, left leg).
COCO17_ORDER = (0, 1, 2, 3, 4, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15)
MPII16_ORDER = (9, 8, 7, 12, 11, 10, 13, 14, 15, 6, 2, 1, 0, 3, 4, 5)


def chain_order(num_keypoints: int) -> Sequence[int]:
    """The default chain order: COCO-17 / MPII-16 follow the kinematic chain from the head;
    other keypoint sets keep their index order."""
    return {17: COCO17_ORDER, 16: MPII16_ORDER}.get(num_keypoints, tuple(range(num_keypoints)))


class _Step(nn.Module):
    """One chain step: the hidden-state update (``t > 0``: ``W^h_t`` and the ``W^y_{i,t}``,
    ``i < t``) and the output net ``m_t``."""

    def __init__(self, t: int, channels: int, embed_channels: int, out_channels: int, pair_kernel: int = 1):
        super().__init__()
        c = channels
        if t > 0:
            self.w_h = nn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.w_y = nn.Conv2d(t * embed_channels, c, pair_kernel, 1, pair_kernel // 2, bias=False)
            self.norm = nn.BatchNorm2d(c)
        self.up = nn.Sequential(nn.ConvTranspose2d(c, out_channels, 4, 2, 1, bias=False),
                                nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.branches = nn.ModuleList(nn.Conv2d(out_channels, 1, 3, 1, d, dilation=d)
                                      for d in (1, 2, 3))

    def update(self, h, embeddings):
        """``embeddings``: ``e(y_0) .. e(y_{t-1})`` concatenated on the channels."""
        return torch.relu(self.norm(self.w_h(h) + self.w_y(embeddings)))

    def output(self, h):
        u = self.up(h)
        return sum(b(u) for b in self.branches)


class ChainedPredictor(nn.Module):
    """Backbone ``(B, 3, H, W) -> (B, K, H/4, W/4)`` logits (keypoint index order), each
    joint predicted by its own chain step from the hidden state and every earlier step's
    prediction."""

    stride = 4

    def __init__(self, num_keypoints: int = 17, order: Optional[Sequence[int]] = None,
                 depth: int = 50, layers=None, widths=(64, 128, 256, 512), stem_channels: int = 64,
                 hidden_channels: int = 256, embed_channels: int = 64, out_channels: int = 64,
                 pair_kernel: int = 1):
        super().__init__()
        self.num_keypoints = int(num_keypoints)
        self.order = tuple(int(i) for i in (order if order is not None else chain_order(num_keypoints)))
        if sorted(self.order) != list(range(self.num_keypoints)):
            raise ValueError(f"ChainedPredictor: 'order' must be a permutation of the "
                             f"{self.num_keypoints} keypoints, got {self.order}")
        inverse = [0] * self.num_keypoints
        for pos, j in enumerate(self.order):
            inverse[j] = pos
        self.inverse = inverse
        self.resnet = ResNet(depth, layers, widths, None, stem_channels)
        n_up = int(round(math.log2(self.resnet.stride / 8.0)))
        if n_up < 0:
            raise ValueError("ChainedPredictor: the encoder's stride must be at least 8")
        ups, cin = [], self.resnet.out_channels
        for _ in range(n_up):
            ups += [nn.ConvTranspose2d(cin, hidden_channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(hidden_channels), nn.ReLU(inplace=True)]
            cin = hidden_channels
        if cin != hidden_channels:
            ups.append(conv_bn_act(cin, hidden_channels, 1))
        self.encoder_up = nn.Sequential(*ups)
        # e: one embedding net shared by every joint's map (stride 4 -> the hidden stride 8)
        e = embed_channels
        self.embed = nn.Sequential(nn.Conv2d(1, e, 3, 2, 1), nn.ReLU(inplace=True),
                                   nn.Conv2d(e, e, 3, 1, 1), nn.ReLU(inplace=True))
        self.steps = nn.ModuleList(_Step(t, hidden_channels, embed_channels, out_channels, pair_kernel)
                                   for t in range(self.num_keypoints))
        init_weights(self.encoder_up)
        init_weights(self.embed)
        init_weights(self.steps)
        for st in self.steps:
            for b in st.branches:
                nn.init.normal_(b.weight, std=0.001)

    def encode(self, x):
        return self.encoder_up(self.resnet(x))

    def forward(self, x) -> torch.Tensor:
        h = self.encode(x)
        logits: List[torch.Tensor] = []
        embeddings: List[torch.Tensor] = []
        for t, step in enumerate(self.steps):
            if t > 0:
                h = step.update(h, torch.cat(embeddings, 1))
            o = step.output(h)
            logits.append(o)
            p = torch.softmax(o.flatten(2), -1).view_as(o)
            e = self.embed(p / p.amax((-2, -1), keepdim=True).clamp_min(1e-12))
            if e.shape[-2:] != h.shape[-2:]:
                e = F.interpolate(e, size=h.shape[-2:], mode="bilinear", align_corners=False)
            embeddings.append(e)
        return torch.cat(logits, 1)[:, self.inverse]      # chain order -> keypoint order


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """The chain model + a :class:`~pyhpe.models.heads.chained.ChainedHead` (softmax
    cross-entropy per joint); without a codec, MSRA heatmaps at stride 4 (their Gaussians,
    normalised, are the target distributions)."""
    from ..codecs import IntegralRegressionLabel, MultiLevelHeatmap
    backbone = ChainedPredictor(num_keypoints, **arch)
    if codec is None:
        codec = default_heatmap_codec(input_size, ChainedPredictor.stride)
    if isinstance(codec, (MultiLevelHeatmap, IntegralRegressionLabel)) or not hasattr(codec, "heatmap_size"):
        raise ValueError(f"chained: needs a single-map heatmap codec (msra, udp, ...), got "
                         f"{type(codec).__name__}")
    check_map_size(codec, ChainedPredictor.stride, "ChainedPredictor")
    return PoseModel(backbone, ChainedHead(codec, num_keypoints=num_keypoints,
                                           joint_weights=joint_weights))


CONFIGS = {
    "paper": dict(depth=50, hidden_channels=256, embed_channels=64, out_channels=64),
    "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1, 1], widths=(8, 16, 32),
                 stem_channels=8, hidden_channels=16, embed_channels=8, out_channels=8),
}
