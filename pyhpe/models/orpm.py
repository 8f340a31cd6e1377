"""ORPM (Mehta et al., 3DV 2018): single-shot multi-person 3-D pose from monocular RGB with
occlusion-robust pose maps.

Network (our reading of the paper, on VNect's trunk): ResNet-50 to res4f (stride 16), then a
2-D branch (res5a-style bottleneck, 4x4 stride-2 deconvolution, 3x3 conv) predicting ``K``
heatmaps and ``2L`` PAFs, and a 3-D branch (the same layers on the trunk's features, joined
by the 2-D branch's maps) predicting the ORPMs: ``3K`` X / Y / Z location maps (stride 8).

Loss: heatmap and PAF L2, and the ORPM L2 on the pixels the codec wrote
(:class:`pyhpe.codecs.ORPMCodec`: the whole pose around the torso and pelvis, each limb's
joints around the limb's joints). Inference (:meth:`ORPM.predict_people`): PAF grouping of
the 2-D joints (:func:`pyhpe.ops.paf_group`) then the ORPM read-out rules
(:func:`pyhpe.codecs.body3d.orpm_read_sources`). On person crops (the ``image3d`` task)
:meth:`ORPM.predict` keeps the highest-scoring person of each crop.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..codecs.body3d import ORPMCodec, ORPMPrediction
from .common import ResNet, conv_bn_act
from .vnect import _Bottleneck


def _up(cin, cout):
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _out(cin, cout):
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.normal_(conv.weight, std=0.001)
    nn.init.zeros_(conv.bias)
    return conv


class ORPMNet(nn.Module):
    """``(B, 3, H, W) -> (heatmaps (B, K, h, w), pafs (B, 2L, h, w), orpm (B, K, 3, h, w))``."""

    def __init__(self, num_keypoints: int, num_limbs: int, backbone: ResNet,
                 block=(512, 512, 1024), up_channels=128, final_channels=128):
        super().__init__()
        K, L = int(num_keypoints), int(num_limbs)
        self.num_keypoints = K
        self.backbone = backbone
        c = backbone.out_channels
        self.branch2d = nn.Sequential(_Bottleneck(c, *block), _up(block[2], up_channels),
                                      conv_bn_act(up_channels, final_channels, 3))
        self.out2d = _out(final_channels, K + 2 * L)
        self.branch3d = nn.Sequential(_Bottleneck(c, *block), _up(block[2], up_channels))
        self.fuse3d = conv_bn_act(up_channels + K + 2 * L, final_channels, 3)
        self.out3d = _out(final_channels, 3 * K)

    def forward(self, image: Tensor):
        f = self.backbone(image)
        maps2d = self.out2d(self.branch2d(f))
        orpm = self.out3d(self.fuse3d(torch.cat([self.branch3d(f), maps2d], 1)))
        K = self.num_keypoints
        B, _, h, w = orpm.shape
        return maps2d[:, :K], maps2d[:, K:], orpm.reshape(B, K, 3, h, w)


class ORPM(nn.Module):
    """ORPMNet + :class:`~pyhpe.codecs.ORPMCodec`: ``forward(inputs, targets)`` -> losses
    ``loss_heatmap``, ``loss_paf``, ``loss_orpm``."""

    def __init__(self, codec: ORPMCodec, net: ORPMNet, orpm_weight: float = 1.0):
        super().__init__()
        self.codec, self.net, self.orpm_weight = codec, net, float(orpm_weight)

    def forward(self, inputs, targets: Optional[Dict[str, Tensor]] = None):
        image = inputs["image"] if isinstance(inputs, dict) else inputs
        out = self.net(image)
        if tuple(out[0].shape[-2:]) != tuple(self.codec.heatmap_size[::-1]):
            raise ValueError(f"ORPM: the network's maps are {tuple(out[0].shape[-2:])} (H, W) but "
                             f"the codec's heatmap_size is {self.codec.heatmap_size} (W, H)")
        if targets is None:
            return out
        return self.loss(out, targets)

    def loss(self, outputs, targets) -> Dict[str, Tensor]:
        hm, paf, orpm = (o.float() for o in outputs)
        mask = targets["orpm_mask"].float()
        err = (mask[:, :, None] * (orpm - targets["orpm"].float())) ** 2
        return {"loss_heatmap": ((hm - targets["heatmaps"].float()) ** 2).mean(),
                "loss_paf": ((paf - targets["pafs"].float()) ** 2).mean(),
                "loss_orpm": self.orpm_weight * err.sum() / mask.sum().clamp_min(1.0)}

    @torch.no_grad()
    def predict_people(self, inputs) -> ORPMPrediction:
        """Every person of every image: PAF grouping, then the ORPM read-out."""
        return self.codec.decode(self(inputs))

    @torch.no_grad()
    def predict(self, inputs) -> Dict[str, Tensor]:
        """Person crops: the highest-scoring person of each crop (``keypoints``, ``scores``,
        ``keypoints_3d``); a crop where grouping finds nobody falls back to the heatmap
        maxima as one person."""
        hm, paf, orpm = self(inputs)
        people = self.codec.decode((hm, paf, orpm))
        B, K = hm.shape[:2]
        kps, scs, p3 = [], [], []
        for b in range(B):
            if len(people.person_scores[b]):
                i = int(people.person_scores[b].argmax())
                kp, sc = people.keypoints[b][i].to(hm.device), people.scores[b][i].to(hm.device)
                kps.append(kp), scs.append(sc), p3.append(people.keypoints_3d[b][i].to(hm.device))
                continue
            w = hm.shape[-1]
            sc, idx = hm[b].float().reshape(K, -1).max(-1)
            kp = torch.stack([idx % w, idx // w], -1).float() * torch.tensor(
                self.codec.paf.stride, device=hm.device)
            kps.append(kp), scs.append(sc)
            p3.append(self.codec.read_out(orpm[b].float(), kp[None], sc[None])[0])
        return {"keypoints": torch.stack(kps), "scores": torch.stack(scs),
                "keypoints_3d": torch.stack(p3)}


def build(num_keypoints=17, codec=None, *, input_size=(368, 368), depth=50, layers=(3, 4, 6),
          widths=(64, 128, 256), stem_channels=64, stem_pool=True, block=(512, 512, 1024),
          up_channels=128, final_channels=128, orpm_weight=1.0, parents=None, torso=None,
          root_index=0, joint_weights=None) -> ORPM:
    """ORPM; without a codec: :class:`ORPMCodec` at ``input_size`` for ``parents`` (default:
    Human3.6M's 17-joint tree, torso = thorax)."""
    backbone = ResNet(depth, list(layers), widths, "bottleneck", stem_channels, stem_pool, "conv7")
    if codec is None:
        from ..keypoints import get_keypoint_set
        kset = get_keypoint_set("h36m17")
        parents = kset.parents if parents is None else parents
        stride = backbone.stride / 2
        codec = ORPMCodec(input_size, tuple(int(round(int(v) / stride)) for v in input_size),
                          parents, 8 if torso is None else torso, root_index)
    if not isinstance(codec, ORPMCodec):
        raise TypeError(f"orpm: needs an ORPMCodec, got {type(codec).__name__}")
    if codec.num_keypoints != num_keypoints:
        raise ValueError(f"orpm: the codec has {codec.num_keypoints} joints, the model "
                         f"{num_keypoints}")
    net = ORPMNet(num_keypoints, len(codec.paf.limbs), backbone, block, up_channels, final_channels)
    return ORPM(codec, net, orpm_weight)


CONFIGS = {
    "paper": dict(input_size=(368, 368), depth=50, layers=(3, 4, 6), widths=(64, 128, 256)),
    "tiny": dict(input_size=(64, 64), layers=(1, 1, 1), widths=(8, 16, 32), stem_channels=8,
                 stem_pool=False, block=(32, 32, 64), up_channels=16, final_channels=16),
}
