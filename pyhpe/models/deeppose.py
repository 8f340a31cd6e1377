"""DeepPose-style direct regression (Toshev & Szegedy 2014) on a ResNet backbone (RLE-free)."""
from __future__ import annotations

from ..codecs import RegressionLabel
from .common import ResNet
from .heads import RegressionHead
from .pose_model import PoseModel


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), depth=50, layers=None,
          widths=(64, 128, 256, 512), stem_channels=64, num_stages=1, loss="l1",
          joint_weights=None) -> PoseModel:
    """ResNet + :class:`RegressionHead`: ``(B, K, 2)`` keypoints normalised to [0, 1] of the
    input; ``num_stages`` > 1 adds DeepPose's cascaded refinement."""
    backbone = ResNet(depth, layers, widths, stem_channels=stem_channels)
    codec = RegressionLabel(input_size) if codec is None else codec
    head = RegressionHead(codec, backbone.out_channels, num_keypoints, num_stages, loss,
                          joint_weights=joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {"paper": dict(depth=50),
           "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1, 1, 1], widths=(8, 16, 32, 32),
                        stem_channels=8, num_stages=2)}
