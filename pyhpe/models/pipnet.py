"""PIPNet (Jin et al. 2021) for body keypoints: a ResNet backbone (last stage, stride 32, as
the official ``Pip_resnet18`` / ``Pip_resnet101``) and :class:`PIPNetHead` on a
:class:`PIPNetLabel` grid."""
from __future__ import annotations

from ..codecs.pipnet import PIPNetLabel
from .common import ResNet, heatmap_size
from .heads.pipnet import PIPNetHead
from .pose_model import PoseModel


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), depth=18, layers=None,
          widths=(64, 128, 256, 512), stem_channels=64, deconv_layers=0, num_nb=4,
          cls_loss="mse", cls_weight=10.0, reg_weight=1.0, joint_weights=None) -> PoseModel:
    """ResNet + :class:`PIPNetHead`; without a codec, a :class:`PIPNetLabel` on the network's
    own grid (``input_size`` / its stride) with ``num_nb`` neighbours (COCO-17 mean pose)."""
    backbone = ResNet(depth, layers, widths, stem_channels=stem_channels)
    if codec is None:
        stride = backbone.stride / 2 ** deconv_layers
        codec = PIPNetLabel(input_size, heatmap_size(input_size, stride), num_nb=num_nb,
                            score="sigmoid" if cls_loss == "bce" else "clamp")
    head = PIPNetHead(codec, backbone.out_channels, num_keypoints, deconv_layers=deconv_layers,
                      cls_loss=cls_loss, cls_weight=cls_weight, reg_weight=reg_weight,
                      joint_weights=joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {
    # official PIPNet: ResNet-18, net_stride 32, cls weight 10, reg weight 1, L2 score loss
    "paper": dict(depth=18, input_size=(192, 256)),
    "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1], widths=(16, 32), stem_channels=16),
}
