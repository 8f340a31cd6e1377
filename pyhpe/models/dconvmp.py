"""DconvMP (Li & Chan, ACCV 2014): 3-D pose from a monocular image by direct regression with a
deep convolutional network, pre-trained on joint detection.

A shared convolutional trunk (9x9 / 5x5 / 5x5 convolutions with 2x2 max-pooling) feeds two
task branches: **joint-point regression** (fully connected layers -> ``3K`` root-relative
joint coordinates, L2 loss) and **part detection** (fully connected layers -> per joint a
classification over the cells of a ``grid x grid`` partition of the input: which cell holds
the joint, cross-entropy). The detection task pre-trains the network (``stage:
"pretrain"``: detection loss only); fine-tuning (``stage: "finetune"``) regresses the
root-relative 3-D joints, optionally keeping the detection task as an auxiliary loss
(``detection_weight``, the multi-task setting). The two stages are two configs of one
architecture: fine-tuning starts from the pre-trained weights (``train.load_from``). The model
is a :class:`~pyhpe.models.pose_model.PoseModel`: :class:`DconvMPNet` and the head
:class:`~pyhpe.models.heads.body3d.DconvMPHead` (the stage's loss weights, the decoding).
Layer sizes follow our reading of the paper (input 112 x 112; 32 / 32 / 64 filters; 1024-wide
fully connected layers); the paper publishes no parameter count.
"""
from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from ..codecs.body3d import DconvMPCodec
from .heads.body3d import DconvMPHead
from .pose_model import PoseModel

STAGES = ("pretrain", "finetune")


class DconvMPNet(nn.Module):
    """``inputs (B, 3, H, W)`` (or ``{"image": ...}``) -> ``(pose (B, K, 3), cell logits
    (B, K, grid^2))``: the shared trunk and the two task branches."""

    def __init__(self, num_keypoints: int, input_size: Sequence[int], grid: int,
                 channels: Sequence[int] = (32, 32, 64), kernels: Sequence[int] = (9, 5, 5),
                 fc: int = 1024, dropout: float = 0.5):
        super().__init__()
        self.num_keypoints, self.grid = int(num_keypoints), int(grid)
        layers, cin = [], 3
        for c, k in zip(channels, kernels):
            layers += [nn.Conv2d(cin, c, k, 1, k // 2), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = c
        self.trunk = nn.Sequential(*layers)
        W, H = input_size
        s = 2 ** len(channels)
        flat = cin * (H // s) * (W // s)
        K, G = self.num_keypoints, self.grid
        self.regression = nn.Sequential(nn.Linear(flat, fc), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(fc, 3 * K))
        self.detection = nn.Sequential(nn.Linear(flat, fc), nn.ReLU(inplace=True),
                                       nn.Dropout(dropout), nn.Linear(fc, K * G * G))

    def forward(self, inputs):
        image = inputs["image"] if isinstance(inputs, dict) else inputs
        f = self.trunk(image).flatten(1)
        B, K, G = f.shape[0], self.num_keypoints, self.grid
        return self.regression(f).reshape(B, K, 3), self.detection(f).reshape(B, K, G * G)


def build(num_keypoints=17, codec=None, *, input_size=(112, 112), grid=8, channels=(32, 32, 64),
          kernels=(9, 5, 5), fc=1024, dropout=0.5, stage="finetune", detection_weight=None,
          regression_weight=1.0, root_index=0, joint_weights=None) -> PoseModel:
    """DconvMP; without a codec: :class:`DconvMPCodec` at ``input_size`` with ``grid``."""
    codec = DconvMPCodec(input_size, grid, root_index) if codec is None else codec
    if not isinstance(codec, DconvMPCodec):
        raise TypeError(f"dconvmp: needs a DconvMPCodec, got {type(codec).__name__}")
    if stage not in STAGES:
        raise ValueError(f"dconvmp: 'stage' must be one of {STAGES}, got {stage!r}")
    detection_weight = float(1.0 if detection_weight is None and stage == "pretrain"
                             else detection_weight or 0.0)
    regression_weight = 0.0 if stage == "pretrain" else float(regression_weight)
    net = DconvMPNet(num_keypoints, codec.input_size, codec.grid, channels, kernels, fc, dropout)
    return PoseModel(net, DconvMPHead(codec, regression_weight, detection_weight,
                                      joint_weights=joint_weights))


CONFIGS = {
    "paper": dict(input_size=(112, 112), grid=8, channels=(32, 32, 64), kernels=(9, 5, 5),
                  fc=1024, dropout=0.5),
    "tiny": dict(input_size=(64, 64), grid=4, channels=(8, 8, 16), kernels=(5, 3, 3), fc=64,
                 dropout=0.0),
}
