"""PAFHead: OpenPose's stages, each predicting PAFs and confidence maps from the shared
features and the previous stage."""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...codecs import PAFCodec, PAFOutputs
from ..common import init_weights
from .base import BaseHead


def _branch(cin, cmid, cout, n, k, hidden=None):
    """``n`` k x k convs of ``cmid`` channels, a 1x1 conv to ``hidden`` (default ``cmid``) and
    a 1x1 conv to ``cout`` (ReLU after every conv but the last)."""
    hidden = cmid if hidden is None else hidden
    layers, c = [], cin
    for _ in range(n):
        layers += [nn.Conv2d(c, cmid, k, 1, k // 2), nn.ReLU(inplace=True)]
        c = cmid
    layers += [nn.Conv2d(c, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, cout, 1)]
    return nn.Sequential(*layers)


class PAFHead(BaseHead):
    """``num_stages`` stages; stage 1 sees the features (three ``stage1_kernel`` convs, a 1x1
    conv to ``stage1_hidden`` channels, a 1x1 conv to the maps), stage t > 1 stage t - 1's PAFs
    and heatmaps and the features, concatenated in that order as in CMU's model
    (``refine_convs`` convs of ``refine_kernel``, a 1x1 conv, a 1x1 conv to the maps). Outputs: a list of
    :class:`~pyhpe.codecs.PAFOutputs` (heatmaps K [+ background], PAFs 2L), one per stage.
    Loss: the sum over stages of the heatmap and PAF mean squared errors (OpenPose's L2),
    ``loss_heatmap`` and ``paf_weight`` x ``loss_paf``; prediction decodes the last stage."""

    def __init__(self, codec: PAFCodec, in_channels: int, num_keypoints: int = 17,
                 num_stages: int = 6, stage_channels: int = 128, stage1_kernel: int = 3,
                 refine_kernel: int = 7, refine_convs: int = 5, paf_weight: float = 1.0,
                 joint_weights=None, stage1_hidden: int = None):
        if not isinstance(codec, PAFCodec):
            raise TypeError(f"PAFHead: 'codec' must be a PAFCodec, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.num_keypoints = int(num_keypoints)
        self.paf_weight = float(paf_weight)
        P, S = 2 * len(codec.limbs), num_keypoints + int(codec.background)
        self.paf1 = _branch(in_channels, stage_channels, P, 3, stage1_kernel, stage1_hidden)
        self.hm1 = _branch(in_channels, stage_channels, S, 3, stage1_kernel, stage1_hidden)
        cin = in_channels + P + S
        self.paf_refine = nn.ModuleList([_branch(cin, stage_channels, P, refine_convs, refine_kernel)
                                         for _ in range(num_stages - 1)])
        self.hm_refine = nn.ModuleList([_branch(cin, stage_channels, S, refine_convs, refine_kernel)
                                        for _ in range(num_stages - 1)])
        init_weights(self)

    def forward(self, feats: Tensor) -> List[PAFOutputs]:
        out = [PAFOutputs(self.hm1(feats), self.paf1(feats))]
        for pr, hr in zip(self.paf_refine, self.hm_refine):
            z = torch.cat([out[-1].pafs, out[-1].heatmaps, feats], 1)
            out.append(PAFOutputs(hr(z), pr(z)))
        return out

    def final_outputs(self, outputs: List[PAFOutputs]) -> PAFOutputs:
        return outputs[-1]

    def loss(self, outputs: List[PAFOutputs], targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        hm_t, paf_t = targets["heatmaps"].float(), targets["pafs"].float()
        return {"loss_heatmap": sum(F.mse_loss(o.heatmaps.float(), hm_t) for o in outputs),
                "loss_paf": self.paf_weight * sum(F.mse_loss(o.pafs.float(), paf_t) for o in outputs)}

    def predict(self, outputs, flipped_outputs=None, flip_index=None):
        outputs = self.final_outputs(outputs)
        if flipped_outputs is not None:
            back = self.codec.flip_back(self.final_outputs(flipped_outputs), flip_index)
            pafs = outputs.pafs.float()
            # NaN: a limb without a mirrored limb keeps its unflipped field
            mean = (pafs + back.pafs.float()) / 2
            outputs = PAFOutputs((outputs.heatmaps.float() + back.heatmaps.float()) / 2,
                                 torch.where(torch.isnan(mean), pafs, mean))
        return self.codec.decode(outputs, num_keypoints=self.num_keypoints)
