"""DeeperCut (Insafutdinov et al., ECCV 2016): a ResNet part detector with location
refinement and image-conditioned pairwise (part-to-part offset) regression, grouped by the
subset-partition ILP (:mod:`pyhpe.grouping.deepcut`).

Architecture as the paper and the official pose-tensorflow code (``nnet/pose_net.py``):
ResNet-101 without its classifier, its last stage (conv5) made stride 1 with dilation 2
(output stride 16, slim's ``output_stride=16``); each output is a 3x3 stride-2 transposed
convolution of the conv5 features (stride 8): part score-map logits (K), location refinement
(2K) and pairwise offsets (2K(K-1)); intermediate supervision adds part logits from the 12th
block of conv4 (``intermediate_supervision_layer: 12``), through their own 3x3 deconvolution.

Loss (``part_detection_loss``): sigmoid cross-entropy of the part logits (mean over all
cells; the intermediate one added), the Huber loss (k = 1) of the location refinement and
of the pairwise offsets over their positive cells (tf's ``SUM_BY_NONZERO_WEIGHTS``), weighted
``locref_loss_weight`` / ``pairwise_loss_weight`` (the COCO model: 0.05 each).

Parameters of the ``paper`` config: the backbone is exactly ResNet-101 without its
classifier, 42,500,160 parameters (ResNet-101's 44,549,160 minus the 2,049,000 of the 1000-way
fully connected layer; the ResNet paper itself gives FLOPs, not parameters); dilation adds
none. The deconvolution outputs add 2048 * 9 * (K + 2K + 2K(K - 1)) + their biases and the
intermediate 1024 * 9 * K + K: for COCO-17 (595 + 17 output channels) 11,124,324, 53,624,484
in all. The DeeperCut paper publishes no parameter count.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..codecs.deepercut import (COCO17_SPARSE_GRAPH, COCO17_STAGES, DeeperCutLabel,
                                DeeperCutOutputs)
from .common import ResNet, heatmap_size
from .heads.base import BaseHead
from .pose_model import PoseModel


class DilatedResNet(ResNet):
    """:class:`ResNet` with its last stage at stride 1 and dilation 2 (output stride 16 with
    the standard stem), returning ``(last features, intermediate features)`` where the
    intermediate ones are the output of block ``interm_block`` (1-based) of stage
    ``interm_stage`` (1-based; None: no intermediate output)."""

    def __init__(self, *args, interm_stage: Optional[int] = 3, interm_block: int = 12, **kwargs):
        super().__init__(*args, **kwargs)
        last = self.stages[-1]
        for m in last.modules():
            if isinstance(m, nn.Conv2d):
                if m.stride == (2, 2):
                    m.stride = (1, 1)
                if m.kernel_size == (3, 3):
                    m.dilation, m.padding = (2, 2), (2, 2)
        self.stride = self.stride // 2
        if interm_stage is not None:
            n = len(self.stages[interm_stage - 1])
            if not 1 <= interm_block <= n:
                raise ValueError(f"deepercut: interm_block must be in 1..{n}, got {interm_block}")
        self.interm_stage, self.interm_block = interm_stage, int(interm_block)
        self.interm_channels = None
        if interm_stage is not None:
            blk = self.stages[interm_stage - 1][interm_block - 1]
            self.interm_channels = blk.conv3[0].out_channels if hasattr(blk, "conv3") \
                else blk.conv2[0].out_channels

    def forward(self, x):
        x = self.stem(x)
        interm = None
        for s, st in enumerate(self.stages, 1):
            if s == self.interm_stage:
                for b, blk in enumerate(st, 1):
                    x = blk(x)
                    if b == self.interm_block:
                        interm = x
            else:
                x = st(x)
        return x, interm


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    """pose-tensorflow's ``prediction_layer``: a 3x3 stride-2 'SAME' transposed conv (2x up)."""
    m = nn.ConvTranspose2d(cin, cout, 3, 2, padding=1, output_padding=1)
    nn.init.normal_(m.weight, std=0.01)
    nn.init.zeros_(m.bias)
    return m


def huber(pred: Tensor, target: Tensor, weights: Tensor, k: float = 1.0) -> Tensor:
    """pose-tensorflow's ``huber_loss`` reduced as tf's SUM_BY_NONZERO_WEIGHTS."""
    d = (pred.float() - target.float()).abs()
    loss = torch.where(d < k, 0.5 * d ** 2, k * d - 0.5 * k ** 2)
    return (loss * weights).sum() / (weights != 0).sum().clamp(min=1)


class DeeperCutHead(BaseHead):
    """Part logits, location refinement and pairwise offsets (and the intermediate part
    logits) by 3x3 stride-2 transposed convs; loss and prediction as the module docstring."""

    def __init__(self, codec: DeeperCutLabel, in_channels: int, num_keypoints: int,
                 interm_channels: Optional[int] = None, locref_loss_weight: float = 0.05,
                 pairwise_loss_weight: float = 0.05, joint_weights=None):
        if not isinstance(codec, DeeperCutLabel):
            raise TypeError(f"DeeperCutHead: 'codec' must be a DeeperCutLabel, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        K = self.num_keypoints = int(num_keypoints)
        self.part_pred = _deconv(in_channels, K)
        self.locref_pred = _deconv(in_channels, 2 * K)
        self.pairwise_pred = _deconv(in_channels, 2 * K * (K - 1))
        self.interm_pred = None if interm_channels is None else _deconv(interm_channels, K)
        self.locref_loss_weight = float(locref_loss_weight)
        self.pairwise_loss_weight = float(pairwise_loss_weight)

    def forward(self, feats) -> DeeperCutOutputs:
        x, interm = feats if isinstance(feats, (tuple, list)) else (feats, None)
        out = DeeperCutOutputs(self.part_pred(x), self.locref_pred(x), self.pairwise_pred(x))
        if self.interm_pred is not None and interm is not None:
            out = out._replace(scoremaps_interm=self.interm_pred(interm))
        return out

    def loss(self, outputs: DeeperCutOutputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        sm = targets["scoremaps"].float()
        losses = {"loss_part": F.binary_cross_entropy_with_logits(outputs.scoremaps.float(), sm)}
        if outputs.scoremaps_interm is not None:
            losses["loss_part_interm"] = F.binary_cross_entropy_with_logits(
                outputs.scoremaps_interm.float(), sm)
        losses["loss_locref"] = self.locref_loss_weight * huber(
            outputs.locref, targets["locref"], targets["locref_weights"])
        if outputs.pairwise.shape[1]:
            losses["loss_pairwise"] = self.pairwise_loss_weight * huber(
                outputs.pairwise, targets["pairwise"], targets["pairwise_weights"])
        return losses

    def limb_coords(self, outputs, num_keypoints: int) -> Tensor:  # pragma: no cover
        raise TypeError("DeeperCutHead: a multi-person head has no single-person bone loss")

    def predict(self, outputs, flipped_outputs=None, flip_index: Optional[Sequence[int]] = None):
        """Per-image lists of people (the codec's ILP decoding); with ``flipped_outputs``
        (flip test) the mirrored outputs are mapped back and averaged first."""
        if flipped_outputs is not None:
            outputs = self.codec.average(outputs, self.codec.flip_back(flipped_outputs, flip_index))
        return self.codec.decode(outputs, num_keypoints=self.num_keypoints)


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), depth=101, layers=None,
          widths=(64, 128, 256, 512), block=None, stem_channels=64, interm_stage=3,
          interm_block=12, intermediate_supervision=True, locref_loss_weight=0.05,
          pairwise_loss_weight=0.05, joint_weights=None) -> PoseModel:
    """Dilated ResNet (``depth`` or ``layers``/``widths``/``block``) + :class:`DeeperCutHead`.
    Without a codec: ``DeeperCutLabel(input_size, input_size / 8)`` with at most 3K
    candidates, 2 s per image for the ILP and, for 17 keypoints, the COCO stages and
    sparse graph."""
    backbone = DilatedResNet(depth, layers, widths, block, stem_channels,
                             interm_stage=interm_stage if intermediate_supervision else None,
                             interm_block=interm_block)
    stride = backbone.stride // 2
    if codec is None:
        codec = DeeperCutLabel(input_size, heatmap_size(input_size, stride),
                               max_candidates=3 * num_keypoints, time_limit=2.0,
                               **(dict(stages=COCO17_STAGES, sparse_graph=COCO17_SPARSE_GRAPH)
                                  if num_keypoints == 17 else {}))
    expected = heatmap_size(codec.input_size, stride)
    if tuple(codec.heatmap_size) != expected:
        raise ValueError(f"deepercut: the codec's heatmap_size {tuple(codec.heatmap_size)} is not "
                         f"the network's output size {expected} (input_size "
                         f"{tuple(codec.input_size)} / stride {stride})")
    head = DeeperCutHead(codec, backbone.out_channels, num_keypoints, backbone.interm_channels,
                         locref_loss_weight, pairwise_loss_weight, joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {
    # ResNet-101, output stride 8 after the deconvolutions, intermediate supervision at conv4_12
    "paper": dict(),
    "tiny": dict(input_size=(64, 64), layers=(1, 1, 2, 1), widths=(8, 16, 24, 32),
                 block="bottleneck", stem_channels=16, interm_block=2),
    # a network that learns synthetic crowds in minutes on a CPU
    "small": dict(input_size=(128, 128), layers=(2, 2, 3, 2), widths=(16, 32, 64, 96),
                  block="bottleneck", stem_channels=32, interm_block=3),
}

__all__ = ["DeeperCutHead", "DilatedResNet", "build", "CONFIGS"]
