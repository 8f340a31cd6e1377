"""MultiLevelHead: coarse-to-fine heatmap supervision with online hard keypoint mining (CPN's
GlobalNet + RefineNet, MSPN's stages x units), and the OHKM loss."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from torch import Tensor

from ...codecs import Codec, MSRAHeatmap
from ...codecs.multilevel import MultiLevelHeatmap
from .base import BaseHead
from .losses import keypoint_mse_loss


def ohkm_mse_loss(pred: Tensor, target: Tensor, weights: Optional[Tensor], topk: int = 8) -> Tensor:
    """Online hard keypoint mining (CPN's ``ohkm``; mmpose ``JointsOHKMMSELoss`` without its
    factor 1/2, as :func:`keypoint_mse_loss` drops it): per sample and keypoint the mean over
    H, W of ``(w_k (pred - target))^2``, the ``topk`` largest summed and divided by ``topk``,
    mean over the batch."""
    d = (pred.float() - target.float())
    if weights is not None:
        d = d * weights.float()[..., None, None]
    per_kp = (d ** 2).mean((-2, -1))                     # (B, K)
    k = min(int(topk), per_kp.shape[1])
    return per_kp.topk(k, dim=1).values.sum(1).div(k).mean()


class MultiLevelHead(BaseHead):
    """Pass-through head for a backbone that returns a flat list of ``(B, K, H, W)`` maps.

    ``levels[i]``: which of the codec's target levels (sigmas) supervises output ``i``;
    ``ohkm[i]``: True for an OHKM term (``loss_ohkm``), else a weighted MSE (``loss_heatmap``);
    ``loss_weights[i]`` scales each term. Prediction decodes the last output (flip test:
    the average with the mirrored maps). A plain :class:`MSRAHeatmap` codec supervises every
    output with its one target.
    """

    def __init__(self, codec: Codec, levels: Sequence[int], ohkm: Sequence[bool],
                 loss_weights: Optional[Sequence[float]] = None, topk: int = 8,
                 num_keypoints: int = 17, joint_weights=None):
        super().__init__(codec, joint_weights)
        if not isinstance(codec, (MultiLevelHeatmap, MSRAHeatmap)):
            raise TypeError(f"MultiLevelHead: the codec must be a MultiLevelHeatmap or an "
                            f"MSRAHeatmap, got {type(codec).__name__}")
        n = len(levels)
        self.num_levels = codec.num_levels if isinstance(codec, MultiLevelHeatmap) else 1
        if isinstance(codec, MultiLevelHeatmap) and max(levels) >= self.num_levels:
            raise ValueError(f"MultiLevelHead: the network's outputs need {max(levels) + 1} "
                             f"target levels; the codec has {self.num_levels} sigmas")
        self.levels = [int(v) for v in levels]
        self.ohkm = [bool(v) for v in ohkm]
        self.loss_weights = [1.0] * n if loss_weights is None else [float(v) for v in loss_weights]
        if not len(self.ohkm) == len(self.loss_weights) == n:
            raise ValueError("MultiLevelHead: 'levels', 'ohkm' and 'loss_weights' differ in length")
        self.topk = int(topk)
        self.num_keypoints = int(num_keypoints)

    def forward(self, feats) -> List[Tensor]:
        return list(feats)

    def final_outputs(self, outputs) -> Tensor:
        return outputs[-1][:, :self.num_keypoints]

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if len(outputs) != len(self.levels):
            raise ValueError(f"MultiLevelHead: {len(outputs)} outputs for {len(self.levels)} levels")
        hm = targets["heatmaps"]
        w = self.keypoint_weights(targets)
        mse, hard = 0.0, 0.0
        for o, lvl, is_ohkm, lw in zip(outputs, self.levels, self.ohkm, self.loss_weights):
            t = hm[:, lvl] if hm.dim() == 5 else hm
            if is_ohkm:
                hard = hard + lw * ohkm_mse_loss(o, t, w, self.topk)
            else:
                mse = mse + lw * keypoint_mse_loss(o, t, w)
        losses = {}
        if not all(self.ohkm):
            losses["loss_heatmap"] = mse
        if any(self.ohkm):
            losses["loss_ohkm"] = hard
        return losses
