"""ChainedHead: the per-joint spatial softmax of Chained Predictions (Gkioxari et al. 2016)."""
from __future__ import annotations

import math
from typing import Dict

import torch
from torch import Tensor

from ...codecs import Codec
from .heatmap import HeatmapHead
from .losses import weighted_mean


class ChainedHead(HeatmapHead):
    """Pass-through head for a backbone that returns ``(B, K, H, W)`` logits, one spatial
    distribution per joint (the chain's steps, in keypoint order).

    Loss (``loss_softmax``): the paper's per-step softmax cross-entropy over the map's
    locations. The target distribution is the codec's Gaussian heatmap normalised to unit
    sum (a soft version of the one-hot joint location); weighted mean over the keypoints
    (``keypoint_weights`` times ``joint_weights``), so every step of the chain is supervised.

    Prediction decodes the softmax probabilities rescaled by ``2 pi sigma^2`` (the sum of an
    unnormalised Gaussian of the codec's sigma): a prediction equal to the target
    distribution peaks at about 1, like the heatmaps the codec's decoders and the keypoint
    scores expect. Flip test averages those maps.
    """

    def __init__(self, codec: Codec, num_keypoints: int = 17, joint_weights=None):
        super().__init__(codec, None, num_keypoints=num_keypoints, joint_weights=joint_weights)
        sigma = getattr(codec, "sigma", 1.0)
        sigma = float(sigma if isinstance(sigma, (int, float)) else 1.0)
        self.scale = 2 * math.pi * sigma ** 2

    def probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits.float().flatten(2), -1).view_as(logits)

    def final_outputs(self, outputs) -> Tensor:
        logits = self.stages(outputs)[-1][:, :self.num_keypoints]
        return self.probabilities(logits) * self.scale

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        target = targets["heatmaps"].float()
        w = self.map_weights(targets)
        K = target.shape[1]
        q = target / target.sum((-2, -1), keepdim=True).clamp_min(1e-12)
        total = 0.0
        for o in self.stages(outputs):
            logits = o[:, :K].float()
            b, _, h, wd = logits.shape
            logp = torch.log_softmax(logits.reshape(b, K, h * wd), -1)
            ce = -(q.reshape(b, K, h * wd) * logp).sum(-1)          # (B, K)
            total = total + weighted_mean(ce, w)
        return {"loss_softmax": total}
