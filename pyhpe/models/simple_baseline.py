"""SimpleBaseline (Xiao et al. 2018): ResNet backbone + three deconvolutions -> heatmaps."""
from __future__ import annotations

from .common import ResNet
from .heads import heatmap_model
from .pose_model import PoseModel


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), depth=50, layers=None,
          widths=(64, 128, 256, 512), block=None, stem_channels=64, stem_pool=True,
          deconv_channels=(256, 256, 256), extra_convs=0, stem="conv7", joint_weights=None
          ) -> PoseModel:
    """``(B, 3, H, W) -> (B, K, H/4, W/4)`` heatmaps with the default 4-stage ResNet and three
    deconvs (fewer stages or deconvs change the stride accordingly)."""
    backbone = ResNet(depth, layers, widths, block, stem_channels, stem_pool, stem)
    stride = backbone.stride / 2 ** len(deconv_channels)
    return heatmap_model(backbone, codec, input_size, stride, in_channels=backbone.out_channels,
                         num_keypoints=num_keypoints, deconv_channels=deconv_channels,
                         extra_convs=extra_convs, joint_weights=joint_weights)


CONFIGS = {
    "paper": dict(depth=50, deconv_channels=(256, 256, 256)),
    "r101": dict(depth=101), "r152": dict(depth=152),
    "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1, 1], widths=(8, 16, 32),
                 stem_channels=8, deconv_channels=(16, 16)),
    # the demo's fast model: stride-16 backbone (3 stages), 2 deconvs -> stride 4
    "demo": dict(input_size=(48, 64), depth=18, layers=[1, 2, 2], widths=(32, 64, 128),
                 stem_channels=32, deconv_channels=(64, 64)),
}
