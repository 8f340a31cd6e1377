"""Direct coordinate regression codecs: normalised keypoints (DeepPose) and integral regression
through a differentiable decode of heatmap logits (IPR, debiased IPR, DSNT)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from .base import Codec, as_size, check_flip_index, flip_maps, keypoints_and_visibility


def _labelled_inside(kp: Tensor, vis: Tensor, size) -> Tensor:
    """mmpose RegressionLabel's validity: visible (> 0.5) and inside ``[0, size - 1]``."""
    w, h = size
    inside = (kp[..., 0] >= 0) & (kp[..., 0] <= w - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= h - 1)
    return inside & (vis > 0.5)


class RegressionLabel(Codec):
    """mmpose ``RegressionLabel``: keypoints divided by ``input_size`` (``x / W``, ``y / H``).

    ``keypoint_weights`` are the visibility where the keypoint is labelled (> 0.5) and inside
    the input, else 0 (mmpose: 1 / 0 there, equal for COCO's v). Decoding multiplies back;
    scores are 1."""

    name = "regression"

    def __init__(self, input_size=(192, 256)):
        self.input_size = as_size(input_size, "input_size", "RegressionLabel")

    def _size(self, device) -> Tensor:
        return torch.tensor(self.input_size, dtype=torch.float32, device=device)

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        kp, vis = keypoints_and_visibility(keypoints, visibility, "RegressionLabel.encode", dims=(3,))
        weights = torch.where(_labelled_inside(kp, vis, self.input_size), vis, torch.zeros_like(vis))
        return {"keypoint_labels": kp / self._size(kp.device), "keypoint_weights": weights}

    def decode(self, outputs: Tensor, **meta) -> Tuple[Tensor, Tensor]:
        coords = outputs.detach().float()[..., :2] * self._size(outputs.device)
        return coords, coords.new_ones(coords.shape[:-1])

    def flip_back(self, outputs_flipped: Tensor, flip_index: Sequence[int]) -> Tensor:
        """Normalised coordinates of a flipped input -> the unflipped input's
        (``x = (W - 1) / W - x'``, left/right swapped)."""
        idx = check_flip_index(flip_index, outputs_flipped.shape[1], "RegressionLabel.flip_back")
        out = outputs_flipped[:, idx].clone()
        w = float(self.input_size[0])
        out[..., 0] = (w - 1) / w - out[..., 0]
        return out

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size)}


METHODS = ("ipr", "dipr", "dsnt")


class IntegralRegressionLabel(Codec):
    """Integral keypoint regression over heatmap logits (``(B, K, h, w)``).

    * ``ipr``: integral pose regression (Sun et al. 2018), :func:`pyhpe.ops.soft_argmax`;
    * ``dipr``: debiased IPR (Gu et al. 2021), :func:`pyhpe.ops.debiased_soft_argmax`
      (``debias_form='mmpose'`` trains from a random start; ``'paper'`` divides by ~0 on the
      flat maps of an untrained network, use it to fine-tune);
    * ``dsnt``: DSNT (Nibali et al. 2018), :func:`pyhpe.ops.dsnt` of the flat softmax; its
      targets also hold ``heatmaps``: unit-sum Gaussians of ``reg_sigma`` map pixels at the
      keypoints (from :func:`pyhpe.ops.unbiased_heatmaps`) for dsntnn's Jensen-Shannon
      regulariser.

    ``keypoint_labels`` are heatmap pixels (input pixels / stride, pixel centres at
    integers). :meth:`decode_logits` is the differentiable decode (heatmap pixels) the loss
    uses; :meth:`decode` returns input pixels and a confidence: the softmax mass in the 3x3
    window at its maximum.
    """

    name = "integral"

    def __init__(self, input_size=(192, 256), heatmap_size=(48, 64), method: str = "ipr",
                 beta: float = 1.0, debias_form: str = "mmpose", reg_sigma: float = 1.0):
        self.input_size = as_size(input_size, "input_size", "IntegralRegressionLabel")
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", "IntegralRegressionLabel")
        if method not in METHODS:
            raise ValueError(f"IntegralRegressionLabel: 'method' must be one of {METHODS}, got "
                             f"{method!r}")
        if debias_form not in ("mmpose", "paper"):
            raise ValueError(f"IntegralRegressionLabel: 'debias_form' must be 'mmpose' or "
                             f"'paper', got {debias_form!r}")
        self.method, self.beta, self.debias_form = method, float(beta), debias_form
        self.reg_sigma = float(reg_sigma)

    def _stride(self, device) -> Tensor:
        return (torch.tensor(self.input_size, dtype=torch.float32, device=device)
                / torch.tensor(self.heatmap_size, dtype=torch.float32, device=device))

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        kp, vis = keypoints_and_visibility(keypoints, visibility, "IntegralRegressionLabel.encode",
                                           dims=(3,))
        labels = kp / self._stride(kp.device)
        weights = torch.where(_labelled_inside(kp, vis, self.input_size), vis, torch.zeros_like(vis))
        out = {"keypoint_labels": labels, "keypoint_weights": weights}
        if self.method == "dsnt":
            hm, _ = ops.unbiased_heatmaps(labels.unsqueeze(1), (weights > 0).float().unsqueeze(1),
                                          self.heatmap_size, sigma=self.reg_sigma)
            out["heatmaps"] = hm / hm.sum((-2, -1), keepdim=True).clamp_min(1e-24)
        return out

    def decode_logits(self, logits: Tensor) -> Tensor:
        """Differentiable ``(B, K, h, w)`` logits -> ``(B, K, 2)`` heatmap-pixel keypoints."""
        if logits.dtype not in (torch.float32, torch.float64):
            logits = logits.float()
        if self.method == "ipr":
            return ops.soft_argmax(logits, beta=self.beta)
        if self.method == "dipr":
            return ops.debiased_soft_argmax(logits, beta=self.beta, form=self.debias_form)
        h, w = logits.shape[-2:]
        c = ops.dsnt(logits, normalize="softmax", beta=self.beta)
        size = torch.tensor([w, h], dtype=c.dtype, device=c.device)
        return ((c + 1) * size - 1) / 2

    def probabilities(self, logits: Tensor) -> Tensor:
        """The flat softmax of ``beta * logits`` over each map (what the decode averages)."""
        b, k, h, w = logits.shape
        return (logits.float() * self.beta).reshape(b, k, h * w).softmax(-1).view(b, k, h, w)

    def confidence(self, logits: Tensor) -> Tensor:
        """``(B, K)`` softmax mass in the 3x3 window at the maximum."""
        return (F.avg_pool2d(self.probabilities(logits), 3, 1, 1) * 9).flatten(2).amax(-1)

    def decode(self, logits: Tensor, **meta) -> Tuple[Tensor, Tensor]:
        logits = logits.detach()
        coords = self.decode_logits(logits).float() * self._stride(logits.device)
        return coords, self.confidence(logits)

    def flip_back(self, logits_flipped: Tensor, flip_index: Sequence[int]) -> Tensor:
        """Logit maps of a flipped input mirrored back (shift ``1 - 1/stride``, as heatmaps).
        The integral head averages decoded keypoints instead (:meth:`flip_keypoints`): the
        soft-argmax of averaged logits is not the average of the soft-argmaxes."""
        idx = check_flip_index(flip_index, logits_flipped.shape[1], "IntegralRegressionLabel.flip_back")
        return flip_maps(logits_flipped, idx, 1.0 - self.heatmap_size[0] / self.input_size[0])

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "method": self.method, "beta": self.beta,
                "debias_form": self.debias_form, "reg_sigma": self.reg_sigma}
