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
architecture: fine-tuning starts from the pre-trained weights (``train.load_from``).
Layer sizes follow our reading of the paper (input 112 x 112; 32 / 32 / 64 filters; 1024-wide
fully connected layers); the paper publishes no parameter count.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..codecs.body3d import DconvMPCodec

STAGES = ("pretrain", "finetune")


class DconvMP(nn.Module):
    """``inputs (B, 3, H, W)`` (or ``{"image": ...}``) -> ``(pose (B, K, 3), cell logits
    (B, K, grid^2))``; with targets (:class:`~pyhpe.codecs.DconvMPCodec`) the stage's losses
    ``loss_regression`` / ``loss_detection``."""

    def __init__(self, codec: DconvMPCodec, num_keypoints: int, channels: Sequence[int] = (32, 32, 64),
                 kernels: Sequence[int] = (9, 5, 5), fc: int = 1024, dropout: float = 0.5,
                 stage: str = "finetune", detection_weight: Optional[float] = None,
                 regression_weight: float = 1.0):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"dconvmp: 'stage' must be one of {STAGES}, got {stage!r}")
        self.codec, self.num_keypoints, self.stage = codec, int(num_keypoints), stage
        self.detection_weight = float(1.0 if detection_weight is None and stage == "pretrain"
                                      else detection_weight or 0.0)
        self.regression_weight = 0.0 if stage == "pretrain" else float(regression_weight)
        layers, cin = [], 3
        for c, k in zip(channels, kernels):
            layers += [nn.Conv2d(cin, c, k, 1, k // 2), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = c
        self.trunk = nn.Sequential(*layers)
        W, H = codec.input_size
        s = 2 ** len(channels)
        flat = cin * (H // s) * (W // s)
        K, G = self.num_keypoints, codec.grid
        self.regression = nn.Sequential(nn.Linear(flat, fc), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(fc, 3 * K))
        self.detection = nn.Sequential(nn.Linear(flat, fc), nn.ReLU(inplace=True),
                                       nn.Dropout(dropout), nn.Linear(fc, K * G * G))

    def forward(self, inputs, targets: Optional[Dict[str, Tensor]] = None):
        image = inputs["image"] if isinstance(inputs, dict) else inputs
        f = self.trunk(image).flatten(1)
        B, K, G = f.shape[0], self.num_keypoints, self.codec.grid
        out = (self.regression(f).reshape(B, K, 3), self.detection(f).reshape(B, K, G * G))
        if targets is None:
            return out
        return self.loss(out, targets)

    def loss(self, outputs, targets) -> Dict[str, Tensor]:
        pose, logits = outputs
        losses = {}
        if self.regression_weight:
            w = targets["keypoint_weights"].float()
            err = ((pose.float() - targets["pose_3d"].float()) ** 2).sum(-1) * w
            losses["loss_regression"] = self.regression_weight * err.mean()
        if self.detection_weight:
            w = targets["detection_weights"].float()
            cells = targets["cells"].clamp_min(0)
            ce = F.cross_entropy(logits.float().flatten(0, 1), cells.flatten(), reduction="none")
            losses["loss_detection"] = self.detection_weight * (ce * w.flatten()).sum() / \
                w.sum().clamp_min(1.0)
        return losses

    @torch.no_grad()
    def predict(self, inputs) -> Dict[str, Tensor]:
        kp, scores, P = self.codec.decode(self(inputs))
        return {"keypoints": kp, "scores": scores, "keypoints_3d": P}


def build(num_keypoints=17, codec=None, *, input_size=(112, 112), grid=8, channels=(32, 32, 64),
          kernels=(9, 5, 5), fc=1024, dropout=0.5, stage="finetune", detection_weight=None,
          regression_weight=1.0, root_index=0, joint_weights=None) -> DconvMP:
    """DconvMP; without a codec: :class:`DconvMPCodec` at ``input_size`` with ``grid``."""
    codec = DconvMPCodec(input_size, grid, root_index) if codec is None else codec
    if not isinstance(codec, DconvMPCodec):
        raise TypeError(f"dconvmp: needs a DconvMPCodec, got {type(codec).__name__}")
    return DconvMP(codec, num_keypoints, channels, kernels, fc, dropout, stage, detection_weight,
                   regression_weight)


CONFIGS = {
    "paper": dict(input_size=(112, 112), grid=8, channels=(32, 32, 64), kernels=(9, 5, 5),
                  fc=1024, dropout=0.5),
    "tiny": dict(input_size=(64, 64), grid=4, channels=(8, 8, 16), kernels=(5, 3, 3), fc=64,
                 dropout=0.0),
}
