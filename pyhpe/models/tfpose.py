"""TFPose (Mao et al. 2021): a ResNet backbone and :class:`TFPoseHead` (transformer encoder
over the last feature map, decoder with K keypoint queries regressing normalised
coordinates, every decoder layer supervised)."""
from __future__ import annotations

from ..codecs import RegressionLabel
from .common import ResNet
from .heads.tfpose import TFPoseHead
from .pose_model import PoseModel


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), depth=50, layers=None,
          widths=(64, 128, 256, 512), stem_channels=64, dim=256, heads=8, enc_layers=6,
          dec_layers=6, ffn_dim=1024, dropout=0.1, refine=True, loss="l1",
          aux_heatmap_weight=0.0, aux_sigma=1.0, joint_weights=None) -> PoseModel:
    """ResNet (last stage, stride 32) + :class:`TFPoseHead`: ``(L, B, K, 2)`` keypoints in
    [0, 1] of the input from each of the ``dec_layers`` decoder layers."""
    backbone = ResNet(depth, layers, widths, stem_channels=stem_channels)
    codec = RegressionLabel(input_size) if codec is None else codec
    head = TFPoseHead(codec, backbone.out_channels, num_keypoints, dim=dim, heads=heads,
                      enc_layers=enc_layers, dec_layers=dec_layers, ffn_dim=ffn_dim,
                      dropout=dropout, refine=refine, loss=loss,
                      aux_heatmap_weight=aux_heatmap_weight, aux_sigma=aux_sigma,
                      joint_weights=joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {
    # ResNet-50, 6 encoder and 6 decoder layers of width 256 (DETR's transformer)
    "paper": dict(depth=50, dim=256, heads=8, enc_layers=6, dec_layers=6, ffn_dim=1024),
    "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1, 1], widths=(16, 32, 64),
                 stem_channels=16, dim=32, heads=2, enc_layers=1, dec_layers=2, ffn_dim=64,
                 dropout=0.0),
}
