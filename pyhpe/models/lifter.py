"""SimpleBaseline-3D lifter (Martinez et al. 2017): 2-D keypoints -> 3-D keypoints."""
from __future__ import annotations

import numpy as np
import torch.nn as nn

from ..codecs import Lift3DCodec
from .heads import LiftHead
from .pose_model import PoseModel


class _ResLinear(nn.Module):
    def __init__(self, width, dropout):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout))

    def forward(self, x):
        return x + self.body(x)


class LifterBackbone(nn.Module):
    """``(B, K, 2) -> (B, width)``: a linear layer and ``num_blocks`` residual linear blocks
    (BN, ReLU, dropout). Paper: width 1024, two blocks, dropout 0.5, max-norm omitted."""

    def __init__(self, num_keypoints=17, width=1024, num_blocks=2, dropout=0.5):
        super().__init__()
        self.out_features = width
        self.inp = nn.Sequential(nn.Linear(num_keypoints * 2, width), nn.BatchNorm1d(width),
                                 nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[_ResLinear(width, dropout) for _ in range(num_blocks)])

    def forward(self, x):
        return self.blocks(self.inp(x.reshape(x.shape[0], -1)))


def identity_codec(num_keypoints: int, num_out_keypoints: int = None) -> Lift3DCodec:
    """Root joint 0, zero means and unit stds (train with :meth:`Lift3DCodec.from_data`)."""
    ko = num_out_keypoints or num_keypoints
    return Lift3DCodec(0, np.zeros((num_keypoints, 2)), np.ones((num_keypoints, 2)),
                       np.zeros((ko, 3)), np.ones((ko, 3)))


def build(num_keypoints=17, codec=None, *, width=1024, num_blocks=2, dropout=0.5,
          num_out_keypoints=None, bone_weight=0.0, bones=None, joint_weights=None) -> PoseModel:
    """Lifter + :class:`LiftHead`: ``(B, K, 2)`` standardised inputs -> ``(B, K_out, 3)``
    standardised root-relative 3-D (K_out: the codec's 3-D keypoints)."""
    codec = identity_codec(num_keypoints, num_out_keypoints) if codec is None else codec
    backbone = LifterBackbone(num_keypoints, width, num_blocks, dropout)
    head = LiftHead(codec, width, bone_weight, bones, joint_weights=joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {"paper": dict(width=1024, num_blocks=2, dropout=0.5),
           "tiny": dict(width=32, num_blocks=1, dropout=0.1)}
