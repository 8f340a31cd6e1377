"""SimpleBaseline-3D lifter (Martinez et al. 2017): 2-D keypoints -> 3-D keypoints."""
from __future__ import annotations

import torch
import torch.nn as nn


class _ResLinear(nn.Module):
    def __init__(self, width, dropout):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout))

    def forward(self, x):
        return x + self.body(x)


class SimpleBaseline3D(nn.Module):
    """``(B, K, 2) -> (B, K_out, 3)`` (root-relative, in the units of the training targets).

    Paper: width 1024, two residual blocks, dropout 0.5, max-norm omitted.
    """

    output_kind = "lifting"

    def __init__(self, num_keypoints=17, num_out_keypoints=None, width=1024, num_blocks=2, dropout=0.5):
        super().__init__()
        self.k_out = num_out_keypoints or num_keypoints
        self.inp = nn.Sequential(nn.Linear(num_keypoints * 2, width), nn.BatchNorm1d(width),
                                 nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[_ResLinear(width, dropout) for _ in range(num_blocks)])
        self.out = nn.Linear(width, self.k_out * 3)

    def forward(self, x):
        b = x.shape[0]
        return self.out(self.blocks(self.inp(x.reshape(b, -1)))).view(b, self.k_out, 3)


CONFIGS = {"paper": dict(width=1024, num_blocks=2, dropout=0.5),
           "tiny": dict(width=32, num_blocks=1, dropout=0.1)}
