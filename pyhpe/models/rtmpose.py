"""SimCC / RTMPose-like model: a CNN backbone and a SimCC head classifying x and y separately."""
from __future__ import annotations

import torch

from ..codecs import SimCCLabel
from .common import ResNet
from .heads import SimCCHead
from .pose_model import PoseModel


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), split_ratio=2.0, depth=50,
          layers=None, widths=(64, 128, 256, 512), stem_channels=64, hidden=256, kernel=7,
          joint_weights=None) -> PoseModel:
    """ResNet + :class:`SimCCHead`: ``((B, K, W r), (B, K, H r))`` logits for the codec's
    ``input_size=(W, H)`` and split ratio r (without a codec: SimCCLabel(input_size,
    split_ratio=split_ratio))."""
    codec = SimCCLabel(input_size, split_ratio=split_ratio) if codec is None else codec
    backbone = ResNet(depth, layers, widths, stem_channels=stem_channels)
    w, h = codec.input_size
    with torch.no_grad():  # the feature-map size fixes the MLP's input width
        was = backbone.training
        feat = tuple(backbone.eval()(torch.zeros(1, 3, h, w)).shape[-2:])
        backbone.train(was)
    head = SimCCHead(codec, backbone.out_channels, feat, num_keypoints, hidden, kernel,
                     joint_weights=joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {"paper": dict(input_size=(192, 256), depth=50, hidden=256),
           "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1, 1, 1], widths=(8, 16, 32, 32),
                        stem_channels=8, hidden=32)}
