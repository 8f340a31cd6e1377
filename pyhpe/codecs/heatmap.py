"""Gaussian-heatmap codecs: MSRA (SimpleBaseline / HRNet), unbiased (DARK) and UDP.

Targets come from the pyhpe.ops kernels (one call per batch); decoding is the ops' argmax
with the quarter offset, DARK, or DARK-UDP. Semantics follow mmpose 1.x ``MSRAHeatmap``,
``MSRAHeatmap(unbiased=True)`` and ``UDPHeatmap`` (see each class for the differences).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .. import ops
from .base import Codec, as_size, check_flip_index, flip_maps, keypoints_and_visibility

_DECODES = ("argmax", "dark")
FLIP_SHIFTS = ("exact", "mmpose")


class MSRAHeatmap(Codec):
    """Integer-centred Gaussian heatmaps (mmpose ``MSRAHeatmap``).

    ``input_size`` and ``heatmap_size`` are ``(W, H)``; keypoints are divided by the stride
    ``input_size / heatmap_size`` (float32, as mmpose). ``decode='argmax'``: the first maximum
    moved a quarter pixel towards the higher neighbour (mmpose 1.x ``refine_keypoints``);
    ``'dark'``: DARK's Taylor step on the blurred log map (``blur_kernel_size``).

    ``flip_shift`` (flip test, :meth:`flip_back`): ``'exact'`` moves the back-mirrored maps
    ``1 - 1/stride`` pixels right, which re-aligns a flipped input exactly; ``'mmpose'``
    moves them one whole pixel (mmpose's ``flip_heatmaps(shift_heatmap=True)``, HRNet's
    ``shift_heatmap``), for keypoints identical to mmpose's flip test.
    """

    name = "msra"
    _encoder = staticmethod(ops.msra_heatmaps)

    def __init__(self, input_size=(192, 256), heatmap_size=(48, 64), sigma: float = 2.0,
                 decode: str = "argmax", blur_kernel_size: int = 11, flip_shift: str = "exact"):
        who = type(self).__name__
        if flip_shift not in FLIP_SHIFTS:
            raise ValueError(f"{who}: 'flip_shift' must be one of {FLIP_SHIFTS}, got {flip_shift!r}")
        self.flip_shift = flip_shift
        self.input_size = as_size(input_size, "input_size", who)
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", who)
        self.sigma = float(sigma)
        if not self.sigma > 0:
            raise ValueError(f"{who}: 'sigma' must be positive, got {sigma}")
        if decode not in _DECODES:
            raise ValueError(f"{who}: 'decode' must be one of {_DECODES}, got {decode!r}")
        self.decoding = decode
        self.blur_kernel_size = int(blur_kernel_size)
        self.scale_factor = self._scale_factor()

    def _scale_factor(self) -> Tuple[float, float]:
        # float32, as mmpose's (input_size / heatmap_size).astype(np.float32)
        s = np.asarray(self.input_size, np.float64) / np.asarray(self.heatmap_size, np.float64)
        return tuple(float(v) for v in s.astype(np.float32))

    def _scale(self, device) -> Tensor:
        return torch.tensor(self.scale_factor, dtype=torch.float32, device=device)

    @property
    def stride(self) -> float:
        return self.scale_factor[0]

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        """``(B, K, 2)`` or ``(B, N, K, 2)`` input-pixel keypoints -> ``heatmaps (B, K, H, W)``
        (max over the N instances) and ``keypoint_weights`` ``(B, K)`` / ``(B, N, K)``."""
        kp, vis = keypoints_and_visibility(keypoints, visibility, f"{type(self).__name__}.encode")
        single = kp.dim() == 3
        if single:
            kp, vis = kp.unsqueeze(1), vis.unsqueeze(1)
        heatmaps, weights = self._encoder(kp / self._scale(kp.device), vis, self.heatmap_size,
                                          sigma=self.sigma)
        return {"heatmaps": heatmaps, "keypoint_weights": weights[:, 0] if single else weights}

    def decode_heatmap_space(self, heatmaps: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, K, H, W) -> (B, K, 2)`` heatmap-pixel keypoints and ``(B, K)`` scores."""
        if not isinstance(heatmaps, Tensor) or heatmaps.dim() != 4:
            raise ValueError(f"{type(self).__name__}.decode: 'heatmaps' must be a (B, K, H, W) "
                             f"tensor, got {getattr(heatmaps, 'shape', type(heatmaps))}")
        hm = heatmaps.detach().float()
        if self.decoding == "dark":
            coords, scores = ops.dark_decode(hm, kernel=self.blur_kernel_size)
        else:
            coords, scores = ops.argmax_decode(hm, quarter_offset=True, offset_rule="mmpose1")
        return coords, scores

    def decode(self, heatmaps: Tensor, **meta) -> Tuple[Tensor, Tensor]:
        """``(B, K, H, W) -> (B, K, 2)`` input-pixel keypoints and ``(B, K)`` scores (maxima)."""
        coords, scores = self.decode_heatmap_space(heatmaps)
        return coords * self._scale(coords.device), scores

    def flip_back(self, heatmaps_flipped: Tensor, flip_index: Sequence[int]) -> Tensor:
        idx = check_flip_index(flip_index, heatmaps_flipped.shape[1], f"{type(self).__name__}.flip_back")
        return flip_maps(heatmaps_flipped, idx, self._flip_shift())

    def _flip_shift(self) -> float:
        return 1.0 if self.flip_shift == "mmpose" else 1.0 - 1.0 / self.scale_factor[0]

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "sigma": self.sigma,
                "decode": self.decoding, "blur_kernel_size": self.blur_kernel_size,
                "flip_shift": self.flip_shift}


class UnbiasedHeatmap(MSRAHeatmap):
    """Gaussians centred on the sub-pixel keypoint over the whole map, decoded by DARK
    (mmpose ``MSRAHeatmap(unbiased=True)``; Zhang et al. 2020)."""

    name = "unbiased"
    _encoder = staticmethod(ops.unbiased_heatmaps)

    def __init__(self, input_size=(192, 256), heatmap_size=(48, 64), sigma: float = 2.0,
                 decode: str = "dark", blur_kernel_size: int = 11, flip_shift: str = "exact"):
        super().__init__(input_size, heatmap_size, sigma, decode, blur_kernel_size, flip_shift)


class UDPHeatmap(MSRAHeatmap):
    """UDP (Huang et al. 2020; mmpose ``UDPHeatmap(heatmap_type='gaussian')``): the stride is
    ``(input_size - 1) / (heatmap_size - 1)``, Gaussians are centred on the sub-pixel keypoint
    inside MSRA's integer window, decoding is DARK-UDP, and the top-down crop must use the UDP
    affine (``udp_transform``). A flipped input needs no shift (mmpose's UDP configs set
    ``shift_heatmap=False`` too), so ``flip_shift`` is not an option here.

    Decoded keypoints are true input pixels (``heatmap px * (input - 1) / (heatmap - 1)``, the
    inverse of ``encode``). mmpose's ``UDPHeatmap.decode`` multiplies by
    ``input / (heatmap - 1)`` instead and compensates in its ``input_size``-based back
    transform; the two agree once mapped to the image.
    """

    name = "udp"
    udp_transform = True
    _encoder = staticmethod(ops.udp_heatmaps)

    def __init__(self, input_size=(192, 256), heatmap_size=(48, 64), sigma: float = 2.0,
                 blur_kernel_size: int = 11):
        super().__init__(input_size, heatmap_size, sigma, "dark", blur_kernel_size)
        if min(self.heatmap_size) < 2:
            raise ValueError("UDPHeatmap: 'heatmap_size' must be at least 2 on each side")

    def _scale_factor(self) -> Tuple[float, float]:
        s = (np.asarray(self.input_size, np.float64) - 1) / (np.asarray(self.heatmap_size, np.float64) - 1)
        return tuple(float(v) for v in s.astype(np.float32))

    def decode_heatmap_space(self, heatmaps: Tensor) -> Tuple[Tensor, Tensor]:
        if not isinstance(heatmaps, Tensor) or heatmaps.dim() != 4:
            raise ValueError(f"UDPHeatmap.decode: 'heatmaps' must be a (B, K, H, W) tensor, got "
                             f"{getattr(heatmaps, 'shape', type(heatmaps))}")
        return ops.dark_decode(heatmaps.detach().float(), kernel=self.blur_kernel_size, udp=True)

    def _flip_shift(self) -> float:
        return 0.0

    def to_config(self) -> dict:
        cfg = super().to_config()
        del cfg["decode"], cfg["flip_shift"]
        return cfg
