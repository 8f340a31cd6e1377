"""SimCC codec (Li et al. 2022; RTMPose): per-axis 1-D classification with Gaussian labels."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

from torch import Tensor

from .. import ops
from .base import Codec, as_size, check_flip_index, keypoints_and_visibility, shift_last_dim


class SimCCLabel(Codec):
    """mmpose ``SimCCLabel(smoothing_type='gaussian')`` on :func:`pyhpe.ops.simcc_labels`.

    ``input_size=(W, H)``; ``round(W * split_ratio)`` x bins and ``round(H * split_ratio)`` y
    bins; ``sigma`` (x, y) in bins; ``normalize`` divides the labels by ``sigma sqrt(2 pi)``.
    Outputs are the pair ``(x_logits (B, K, Wx), y_logits (B, K, Wy))``; decoding is
    :func:`pyhpe.ops.simcc_decode` (first maximum per axis, score = the smaller maximum;
    ``decode_dark`` adds mmpose's 1-D DARK refinement).
    """

    name = "simcc"

    def __init__(self, input_size=(192, 256), sigma=(4.9, 5.66), split_ratio: float = 2.0,
                 normalize: bool = False, decode_dark: bool = False):
        self.input_size = as_size(input_size, "input_size", "SimCCLabel")
        try:
            sx, sy = (float(s) for s in sigma)
        except TypeError:
            sx = sy = float(sigma)
        if not (sx > 0 and sy > 0):
            raise ValueError(f"SimCCLabel: 'sigma' must be positive, got {sigma!r}")
        self.sigma = (sx, sy)
        self.split_ratio = float(split_ratio)
        if not self.split_ratio > 0:
            raise ValueError(f"SimCCLabel: 'split_ratio' must be positive, got {split_ratio}")
        self.normalize = bool(normalize)
        self.decode_dark = bool(decode_dark)

    @property
    def bins(self) -> Tuple[int, int]:
        """``(Wx, Wy)``: label lengths (numpy's round half to even, as mmpose)."""
        return tuple(int(round(s * self.split_ratio)) for s in self.input_size)

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        """``(B, K, 2)`` input-pixel keypoints -> ``x_labels (B, K, Wx)``, ``y_labels
        (B, K, Wy)``, ``keypoint_weights (B, K)``."""
        kp, vis = keypoints_and_visibility(keypoints, visibility, "SimCCLabel.encode", dims=(3,))
        x, y, w = ops.simcc_labels(kp, vis, self.input_size, sigma=self.sigma,
                                   split_ratio=self.split_ratio, normalize=self.normalize)
        return {"x_labels": x, "y_labels": y, "keypoint_weights": w}

    def decode(self, outputs, **meta) -> Tuple[Tensor, Tensor]:
        """``(x_logits, y_logits) -> (B, K, 2)`` input-pixel keypoints, ``(B, K)`` scores."""
        x, y = outputs
        return ops.simcc_decode(x.detach().float(), y.detach().float(),
                                split_ratio=self.split_ratio, dark=self.decode_dark,
                                sigma=self.sigma)

    def flip_back(self, outputs_flipped, flip_index: Sequence[int]):
        """Mirror the x bins back (shifted ``1 - split_ratio`` bins: the flipped peak lands
        ``split_ratio - 1`` bins right of the true one), swap left/right keypoints."""
        x, y = outputs_flipped
        idx = check_flip_index(flip_index, x.shape[1], "SimCCLabel.flip_back")
        return shift_last_dim(x.flip(-1)[:, idx], 1.0 - self.split_ratio), y[:, idx]

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size), "sigma": list(self.sigma),
                "split_ratio": self.split_ratio, "normalize": self.normalize,
                "decode_dark": self.decode_dark}
