"""Associative Embedding heads (Newell et al. 2017): heatmaps plus per-keypoint tag maps, trained
with the heatmap MSE and the pull/push tag loss, decoded by tag grouping through the codec.

:class:`AssociativeEmbeddingHead` is mmpose 1.x's ``AssociativeEmbeddingHead`` (optional
deconvolutions, a final conv to ``K`` heatmaps + ``K * L`` tags); multi-resolution heads
(HigherHRNet's, Lite Pose's) subclass it and only change the layers: every AE head returns a
list of :class:`~pyhpe.codecs.AEOutputs`, one per resolution (coarse to fine; a resolution
without tags has zero tag channels), so the loss (each resolution's heatmaps against the codec's
target of its size, the tag loss where tags are predicted) and the inference aggregation
(HigherHRNet's ``get_multi_stage_outputs`` + ``aggregate_results``) are shared.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...codecs import AEOutputs, AssociativeEmbedding
from ...codecs.ae import has_tags
from ..common import init_weights
from .base import BaseHead
from .losses import keypoint_mse_loss

_LOSS_TYPES = ("exp", "max")
_EPS = 1e-6


def associative_embedding_loss(tags: Tensor, keypoint_indices: Tensor, *, loss_type: str = "exp",
                               push_loss_factor: float = 0.5, loss_weight: float = 1.0,
                               push_self_pairs: bool = True, reduction: str = "sum"
                               ) -> Tuple[Tensor, Tensor]:
    """The pull/push tag loss of a batch, vectorised over images and persons.

    ``tags (B, K * L, H, W)`` (channel ``l * K + k``), ``keypoint_indices (B, N, K, 2)``
    int ``(y * W + x, visible)`` (the :class:`~pyhpe.codecs.AssociativeEmbedding` encoding;
    padded persons have every ``visible`` 0) -> ``(pull, push)`` scalars.

    Per image with ``N`` persons that have a visible keypoint, reference tag ``h_n`` (mean of
    the person's keypoint tags): ``pull = sum_n mean_{k, l} (tag_nk - h_n)^2 / N`` and
    ``push = sum_{n, m} f(h_n - h_m) / (N (N - 1))`` (0 for ``N < 2``), with
    ``f(d) = exp(-d^2)`` (``loss_type='exp'``) or ``max(0, 1 - |d|)`` ('max', the official
    HigherHRNet option), summed over the tag dimensions. Defaults are exactly mmpose 1.x
    ``AssociativeEmbeddingLoss``: the pairs ``n == m`` are included (``push_self_pairs``),
    the ``+1e-6`` in both denominators, ``pull * loss_weight`` and
    ``push * loss_weight * push_loss_factor`` summed over the batch. The official HigherHRNet
    ``AELoss`` is ``push_self_pairs=False, push_loss_factor=0.5, reduction='mean'`` (with
    its ``PULL/PUSH_LOSS_FACTOR`` as ``loss_weight``).
    """
    if loss_type not in _LOSS_TYPES:
        raise ValueError(f"associative_embedding_loss: 'loss_type' must be one of {_LOSS_TYPES}, "
                         f"got {loss_type!r}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"associative_embedding_loss: 'reduction' must be 'sum' or 'mean', got "
                         f"{reduction!r}")
    if tags.dim() != 4:
        raise ValueError(f"associative_embedding_loss: 'tags' must be (B, K*L, H, W), got shape "
                         f"{tuple(tags.shape)}")
    idx = torch.as_tensor(keypoint_indices, device=tags.device)
    B, C, H, W = tags.shape
    if idx.dim() != 4 or idx.shape[0] != B or idx.shape[-1] != 2:
        raise ValueError(f"associative_embedding_loss: 'keypoint_indices' must be (B={B}, N, K, 2), "
                         f"got shape {tuple(idx.shape)}")
    N, K = idx.shape[1], idx.shape[2]
    if K == 0 or C % K:
        raise ValueError(f"associative_embedding_loss: {C} tag channels for {K} keypoints")
    L = C // K
    t = tags.float().reshape(B, L, K, H * W)
    pos = idx[..., 0].long().clamp(0, H * W - 1)                     # (B, N, K)
    valid = (idx[..., 1] > 0) & (idx[..., 0] >= 0) & (idx[..., 0] < H * W)
    gathered = t.gather(3, pos.permute(0, 2, 1).unsqueeze(1).expand(B, L, K, N))  # (B, L, K, N)
    kt = gathered.permute(0, 3, 2, 1)                                 # (B, N, K, L)
    v = valid.to(kt.dtype).unsqueeze(-1)
    count = valid.sum(-1)                                             # (B, N)
    person = count > 0
    denom = count.clamp(min=1).to(kt.dtype)
    ref = (kt * v).sum(2) / denom.unsqueeze(-1)                       # (B, N, L)
    pull_n = (((kt - ref.unsqueeze(2)) ** 2) * v).sum((2, 3)) / (denom * L)
    n_img = person.sum(1).to(kt.dtype)                                # (B,)
    pull = (pull_n * person).sum(1) / (n_img + _EPS)
    diff = ref.unsqueeze(1) - ref.unsqueeze(2)                        # (B, N, N, L)
    f = torch.exp(-diff.pow(2)) if loss_type == "exp" else (1 - diff.abs()).clamp(min=0)
    pairs = person.unsqueeze(1) & person.unsqueeze(2)
    if not push_self_pairs:
        pairs = pairs & ~torch.eye(N, dtype=torch.bool, device=tags.device)
    push = (f * pairs.unsqueeze(-1)).sum((1, 2, 3)) / ((n_img - 1) * n_img + _EPS)
    push = torch.where(n_img > 1, push, torch.zeros_like(push))
    pull = pull * loss_weight
    push = push * (loss_weight * push_loss_factor)
    if reduction == "sum":
        return pull.sum(), push.sum()
    return pull.mean(), push.mean()


def resize_maps(maps: Tensor, size_hw) -> Tensor:
    """Bilinear resize (``align_corners=False``, as HigherHRNet and mmpose) unless already
    that size."""
    if tuple(maps.shape[-2:]) == tuple(size_hw):
        return maps
    return F.interpolate(maps, size=tuple(size_hw), mode="bilinear", align_corners=False)


class AssociativeEmbeddingHead(BaseHead):
    """Heatmaps + tags from one feature map (mmpose ``AssociativeEmbeddingHead``):
    ``deconv_channels`` stride-2 4x4 deconvolutions (BN, ReLU), then a ``final_kernel`` conv to
    ``K`` heatmaps and ``K * tag_dim`` tags (``tag_per_keypoint``) or ``tag_dim`` shared tags.
    Forward returns ``[AEOutputs(heatmaps, tags)]``.

    Loss (named ``loss_heatmap``, ``loss_heatmap_i`` for further resolutions, ``loss_pull``,
    ``loss_push``): per resolution the masked heatmap MSE (HigherHRNet's ``HeatmapLoss``,
    mmpose's ``KeypointMSELoss`` with the heatmap mask: the mean over B, K, H, W of
    ``mask * (pred - target)^2``; ``targets['heatmap_mask']`` ``(B, 1, H, W)`` when given,
    ``joint_weights`` per channel) times ``heatmap_loss_weights[i]``, plus
    :func:`associative_embedding_loss` of the tags (``tag_loss_weight``,
    ``push_loss_factor``, ``loss_type``, ``push_self_pairs``, ``tag_loss_reduction``).

    Prediction: :meth:`aggregate` (every resolution's heatmaps resized to the finest one and
    averaged, the flipped outputs mirrored back and averaged, tags of the original and the
    flipped input concatenated along the tag dimension as mmpose's flip test, then with
    ``restore_size`` everything resized to the input size), grouped by the codec.
    """

    def __init__(self, codec: AssociativeEmbedding, in_channels: int = 32, num_keypoints: int = 17,
                 tag_dim: int = 1, tag_per_keypoint: bool = True,
                 deconv_channels: Sequence[int] = (), final_kernel: int = 1,
                 heatmap_loss_weights: Sequence[float] = (1.0,), tag_loss_weight: float = 1e-3,
                 push_loss_factor: float = 0.5, loss_type: str = "exp",
                 push_self_pairs: bool = True, tag_loss_reduction: str = "sum",
                 restore_size: bool = True, joint_weights=None, build_layers: bool = True):
        if not isinstance(codec, AssociativeEmbedding):
            raise TypeError(f"{type(self).__name__}: 'codec' must be an AssociativeEmbedding "
                            f"codec, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        if loss_type not in _LOSS_TYPES:
            raise ValueError(f"{type(self).__name__}: 'loss_type' must be one of {_LOSS_TYPES}, "
                             f"got {loss_type!r}")
        self.num_keypoints, self.tag_dim = int(num_keypoints), int(tag_dim)
        self.tag_per_keypoint = bool(tag_per_keypoint)
        self.tag_channels = self.num_keypoints * self.tag_dim if self.tag_per_keypoint else self.tag_dim
        self.heatmap_loss_weights = [float(w) for w in heatmap_loss_weights]
        self.tag_loss_weight, self.push_loss_factor = float(tag_loss_weight), float(push_loss_factor)
        self.loss_type, self.push_self_pairs = loss_type, bool(push_self_pairs)
        self.tag_loss_reduction = tag_loss_reduction
        self.restore_size = bool(restore_size)
        if not build_layers:
            return
        layers, cin = [], int(in_channels)
        for c in deconv_channels:
            layers += [nn.ConvTranspose2d(cin, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True)]
            cin = c
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, self.num_keypoints + self.tag_channels, final_kernel, 1,
                               final_kernel // 2)
        init_weights(self)
        nn.init.normal_(self.final.weight, std=0.001)

    @property
    def num_levels(self) -> int:
        return 1

    def check_codec(self, who: str) -> None:
        """The codec must have one heatmap target per output resolution."""
        n = len(self.codec.heatmap_sizes)
        if n != self.num_levels:
            raise ValueError(f"{who}: the head predicts {self.num_levels} resolution(s) but the "
                             f"codec makes {n} heatmap target(s); set the codec's "
                             f"'extra_heatmap_sizes' to {self.num_levels - 1} size(s)")
        if len(self.heatmap_loss_weights) == 1 and self.num_levels > 1:
            self.heatmap_loss_weights = self.heatmap_loss_weights * self.num_levels
        if len(self.heatmap_loss_weights) != self.num_levels:
            raise ValueError(f"{who}: {len(self.heatmap_loss_weights)} heatmap loss weights for "
                             f"{self.num_levels} resolutions")

    def split(self, out: Tensor) -> AEOutputs:
        K = self.num_keypoints
        return AEOutputs(out[:, :K], out[:, K:])

    def forward(self, feats: Tensor) -> List[AEOutputs]:
        return [self.split(self.final(self.deconv(feats)))]

    def final_outputs(self, outputs: List[AEOutputs]) -> Tuple[Tensor, ...]:
        """The raw maps as one flat tuple (what an export returns): each resolution's heatmaps,
        followed by its tags where it predicts tags."""
        flat: List[Tensor] = []
        for o in outputs:
            flat.append(o.heatmaps)
            if has_tags(o):
                flat.append(o.tags)
        return tuple(flat)

    def full_tags(self, tags: Tensor) -> Tensor:
        """Shared tags (``tag_per_keypoint=False``) repeated for every keypoint, as mmpose."""
        return tags if self.tag_per_keypoint else tags.repeat(1, self.num_keypoints, 1, 1)

    def loss(self, outputs: List[AEOutputs], targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        losses: Dict[str, Tensor] = {}
        K = self.num_keypoints
        jw = None if self.joint_weights is None else self.joint_weights.view(1, K, 1, 1)
        pull = push = None
        for i, (out, w) in enumerate(zip(outputs, self.heatmap_loss_weights)):
            key = "heatmaps" if i == 0 else f"heatmaps_{i}"
            target = targets[key].float()
            if out.heatmaps.shape != target.shape:
                raise ValueError(f"{type(self).__name__}: resolution {i} predicts heatmaps "
                                 f"{tuple(out.heatmaps.shape)} but targets[{key!r}] is "
                                 f"{tuple(target.shape)}")
            weight = targets.get("heatmap_mask" if i == 0 else f"heatmap_mask_{i}")
            weight = None if weight is None else weight.float()
            if jw is not None:
                weight = jw if weight is None else weight * jw
            name = "loss_heatmap" if i == 0 else f"loss_heatmap_{i}"
            losses[name] = w * keypoint_mse_loss(out.heatmaps, target, weight)
            if has_tags(out) and i == 0:
                pull, push = associative_embedding_loss(
                    self.full_tags(out.tags), targets["keypoint_indices"],
                    loss_type=self.loss_type, push_loss_factor=self.push_loss_factor,
                    loss_weight=self.tag_loss_weight, push_self_pairs=self.push_self_pairs,
                    reduction=self.tag_loss_reduction)
        if pull is not None:
            losses["loss_pull"], losses["loss_push"] = pull, push
        return losses

    def aggregate(self, outputs: List[AEOutputs], flipped_outputs: Optional[List[AEOutputs]] = None,
                  flip_index: Optional[Sequence[int]] = None) -> AEOutputs:
        """The heatmaps and tags that grouping reads (see the class docstring)."""
        def one(levels: List[AEOutputs]) -> Tuple[Tensor, List[Tensor]]:
            size = levels[-1].heatmaps.shape[-2:]
            hm = sum(resize_maps(l.heatmaps.float(), size) for l in levels) / len(levels)
            tags = [resize_maps(self.full_tags(l.tags.float()), size)
                    for l in levels if has_tags(l)]
            return hm, tags

        hm, tags = one(list(outputs))
        if flipped_outputs is not None:
            back = [self.codec.flip_back(AEOutputs(l.heatmaps, self.full_tags(l.tags) if has_tags(l)
                                                   else l.tags), flip_index)
                    for l in flipped_outputs]
            hm_f, tags_f = one(back)
            hm = (hm + hm_f) / 2
            tags = tags + tags_f
        if not tags:
            raise ValueError(f"{type(self).__name__}: no resolution predicts tags")
        tags = torch.cat(tags, 1) if len(tags) > 1 else tags[0]
        if self.restore_size:
            size = (self.codec.input_size[1], self.codec.input_size[0])
            hm, tags = resize_maps(hm, size), resize_maps(tags, size)
        return AEOutputs(hm, tags)

    def predict(self, outputs, flipped_outputs=None, flip_index=None):
        return self.codec.decode(self.aggregate(outputs, flipped_outputs, flip_index),
                                 num_keypoints=self.num_keypoints)

    def predict_instances(self, outputs, flipped_outputs=None, flip_index=None):
        """Per image: keypoints ``(P, K, 2)`` input pixels, scores ``(P, K)`` and instance
        scores ``(P,)``."""
        return self.codec.decode_instances(self.aggregate(outputs, flipped_outputs, flip_index),
                                           self.num_keypoints)


__all__ = ["AssociativeEmbeddingHead", "associative_embedding_loss", "resize_maps"]
