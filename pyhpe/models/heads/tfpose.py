"""TFPoseHead (Mao et al. 2021, "TFPose: Direct Human Pose Estimation with Transformers").

The backbone's last feature map is projected to ``dim`` channels and flattened into tokens
with fixed 2-D sine positions; a DETR-style transformer (post-norm encoder over the tokens,
decoder over K learnt keypoint queries) regresses every keypoint's normalised ``(x, y)``
directly. Every decoder layer predicts (the decoder's shared final norm and a shared 3-layer
MLP); with ``refine`` each layer refines the previous layer's estimate in inverse-sigmoid
space (the first from a reference point learnt per query; Deformable-DETR style),
``refine=False`` predicts each layer's coordinates independently. The loss sums the L1 losses of every layer (``loss_kpt`` the last,
``loss_kpt_d<i>`` the earlier ones); prediction decodes the last layer.

Optional auxiliary heatmap branch (``aux_heatmap_weight > 0``, as the paper trains): a 1x1
conv on the encoder's output (reshaped to the feature map) predicts K heatmaps supervised
by MSE with unit-peak Gaussians (``aux_sigma`` map pixels) at the keypoints; used only in
training.
"""
from __future__ import annotations

import math
from typing import Dict, NamedTuple, Optional

import torch
import torch.nn as nn
from torch import Tensor

from ... import ops
from ...codecs import RegressionLabel
from .base import BaseHead
from .losses import check_coordinate_loss, coordinate_loss, keypoint_mse_loss


class TFPoseOutputs(NamedTuple):
    """With the auxiliary branch: ``coords`` ``(L, B, K, 2)`` normalised keypoints of every
    decoder layer and ``heatmaps`` ``(B, K, h, w)`` (without it the head returns ``coords``)."""
    coords: Tensor
    heatmaps: Optional[Tensor] = None


def sine_positions_2d(h: int, w: int, dim: int, temperature: float = 10000.0) -> Tensor:
    """DETR's normalised 2-D sine positions ``(h*w, dim)``: y features, then x."""
    scale = 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32)[:, None].expand(h, w) / (h + 1e-6) * scale
    x = torch.arange(1, w + 1, dtype=torch.float32)[None, :].expand(h, w) / (w + 1e-6) * scale
    half = dim // 2
    t = torch.arange(half, dtype=torch.float32)
    t = temperature ** (2 * (t // 2) / half)
    px, py = x[..., None] / t, y[..., None] / t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), -1).flatten(2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), -1).flatten(2)
    return torch.cat((py, px), -1).reshape(h * w, 2 * half)


class EncoderLayer(nn.Module):
    """DETR post-norm encoder layer: positions added to queries and keys."""

    def __init__(self, dim, heads, ffn_dim, dropout=0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(ffn_dim, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x, pos):
        q = x + pos
        x = self.norm1(x + self.drop1(self.attn(q, q, x, need_weights=False)[0]))
        return self.norm2(x + self.drop2(self.ffn(x)))


class DecoderLayer(nn.Module):
    """DETR post-norm decoder layer: query self-attention, cross-attention to the memory, FFN."""

    def __init__(self, dim, heads, ffn_dim, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(ffn_dim, dim))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2, self.drop3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, tgt, query_pos, memory, pos):
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.drop1(self.self_attn(q, q, tgt, need_weights=False)[0]))
        tgt = self.norm2(tgt + self.drop2(self.cross_attn(tgt + query_pos, memory + pos, memory,
                                                          need_weights=False)[0]))
        return self.norm3(tgt + self.drop3(self.ffn(tgt)))


def _inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class TFPoseHead(BaseHead):
    """Input projection + transformer encoder/decoder + per-layer coordinate MLP.

    ``forward(feats (B, C, h, w))`` -> ``(L, B, K, 2)`` coordinates of every decoder layer
    (:class:`TFPoseOutputs` with the auxiliary heatmaps when ``aux_heatmap_weight > 0``);
    loss: L1 (``loss``='l1' | 'smooth_l1' | 'mse') of every layer, summed, plus
    ``aux_heatmap_weight`` x the auxiliary heatmap MSE; predict: the last layer, through the
    :class:`RegressionLabel` codec."""

    def __init__(self, codec: RegressionLabel, in_channels: int, num_keypoints: int = 17, *,
                 dim: int = 256, heads: int = 8, enc_layers: int = 6, dec_layers: int = 6,
                 ffn_dim: int = 1024, dropout: float = 0.1, refine: bool = True,
                 loss: str = "l1", aux_heatmap_weight: float = 0.0, aux_sigma: float = 1.0,
                 joint_weights=None):
        if not isinstance(codec, RegressionLabel):
            raise TypeError(f"TFPoseHead: 'codec' must be a RegressionLabel, got "
                            f"{type(codec).__name__}")
        super().__init__(codec, joint_weights)
        check_coordinate_loss(loss, "TFPoseHead")
        if dec_layers < 1:
            raise ValueError(f"TFPoseHead: 'dec_layers' must be >= 1, got {dec_layers}")
        self.k, self.dim, self.refine, self.loss_kind = int(num_keypoints), dim, refine, loss
        self.aux_heatmap_weight, self.aux_sigma = float(aux_heatmap_weight), float(aux_sigma)
        self.input_proj = nn.Conv2d(in_channels, dim, 1)
        self.encoder = nn.ModuleList([EncoderLayer(dim, heads, ffn_dim, dropout)
                                      for _ in range(enc_layers)])
        self.decoder = nn.ModuleList([DecoderLayer(dim, heads, ffn_dim, dropout)
                                      for _ in range(dec_layers)])
        self.dec_norm = nn.LayerNorm(dim)
        self.query_pos = nn.Embedding(self.k, dim)
        self.coord_mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True),
                                       nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 2))
        self.reference = nn.Linear(dim, 2) if refine else None
        self.aux_head = nn.Conv2d(dim, self.k, 1) if self.aux_heatmap_weight > 0 else None
        self._reset_parameters()

    def _reset_parameters(self):
        for name, p in self.named_parameters():
            if p.dim() > 1 and not name.startswith("query_pos"):
                nn.init.xavier_uniform_(p)
        last = self.coord_mlp[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)       # refine: start at the reference; else at the centre
        if self.aux_head is not None:
            nn.init.normal_(self.aux_head.weight, std=0.001)
            nn.init.zeros_(self.aux_head.bias)

    def forward(self, feats: Tensor) -> TFPoseOutputs:
        x = self.input_proj(feats)
        b, d, h, w = x.shape
        pos = sine_positions_2d(h, w, d).to(x.device, x.dtype).unsqueeze(0)
        memory = x.flatten(2).transpose(1, 2)
        for layer in self.encoder:
            memory = layer(memory, pos)
        query_pos = self.query_pos.weight.unsqueeze(0).expand(b, -1, -1)
        tgt = torch.zeros_like(query_pos)
        ref = self.reference(query_pos).sigmoid() if self.refine else None
        coords = []
        for layer in self.decoder:
            tgt = layer(tgt, query_pos, memory, pos)
            delta = self.coord_mlp(self.dec_norm(tgt))
            if self.refine:
                ref = (_inverse_sigmoid(ref) + delta).sigmoid()
                coords.append(ref)
                ref = ref.detach()
            else:
                coords.append(delta.sigmoid())
        coords = torch.stack(coords)
        if self.aux_head is None:
            return coords
        return TFPoseOutputs(coords, self.aux_head(memory.transpose(1, 2).reshape(b, d, h, w)))

    def final_outputs(self, outputs) -> Tensor:
        return (outputs.coords if isinstance(outputs, TFPoseOutputs) else outputs)[-1]

    def aux_targets(self, targets: Dict[str, Tensor], size) -> Tensor:
        """Unit-peak Gaussians at the keypoints on the ``size`` = (w, h) map grid (normalised
        labels times the map size: input pixels / stride)."""
        w, h = size
        labels = targets["keypoint_labels"].float() * torch.tensor(
                [w, h], dtype=torch.float32, device=targets["keypoint_labels"].device)
        vis = (targets["keypoint_weights"] > 0).float()
        hm, _ = ops.unbiased_heatmaps(labels.unsqueeze(1), vis.unsqueeze(1), (w, h),
                                      sigma=self.aux_sigma)
        return hm

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        weights = self.keypoint_weights(targets)
        labels = targets["keypoint_labels"]
        if not isinstance(outputs, TFPoseOutputs):
            outputs = TFPoseOutputs(outputs)
        n = outputs.coords.shape[0]
        losses = {}
        for i, c in enumerate(outputs.coords):
            name = "loss_kpt" if i == n - 1 else f"loss_kpt_d{i}"
            losses[name] = coordinate_loss(c, labels, weights, self.loss_kind)
        if outputs.heatmaps is not None:
            h, w = outputs.heatmaps.shape[-2:]
            target = self.aux_targets(targets, (w, h))
            losses["loss_heatmap"] = self.aux_heatmap_weight * keypoint_mse_loss(
                outputs.heatmaps, target, weights)
        return losses

