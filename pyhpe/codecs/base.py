"""The codec interface: keypoints <-> network targets and outputs, for a whole batch at once.

Conventions (shared by every codec):

* keypoints are ``(x, y)`` in input-image pixels with pixel centres at integers, float32, on
  the training device; single-instance batches are ``(B, K, 2)``, multi-instance ``(B, N, K, 2)``;
* visibility is COCO's ``v`` (0 unlabelled, 1/2 labelled) or a 0..1 weight, clamped to [0, 1]
  as mmpose's ``keypoints_visible``;
* ``encode`` runs once per collated batch (one kernel call) and always returns
  ``"keypoint_weights"`` shaped like the visibility;
* ``decode`` returns input-pixel keypoints ``(B, K, 2)`` and scores ``(B, K)``;
* ``flip_back`` maps the outputs for a horizontally flipped input (``x' = W - 1 - x``) onto
  the unflipped input, left/right keypoints swapped by ``flip_index``.
"""
from __future__ import annotations

from typing import ClassVar, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor


def as_size(value, name: str, who: str, error: type = ValueError) -> Tuple[int, int]:
    """A ``(W, H)`` pair of positive ints; otherwise ``error`` (a ValueError subclass, e.g. a
    config error) naming ``who`` and ``name``."""
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise error(f"{who}: '{name}' must be a (W, H) pair of ints, got {value!r}") from None
    if w <= 0 or h <= 0:
        raise error(f"{who}: '{name}' must be positive, got {(w, h)}")
    return w, h


def keypoints_and_visibility(keypoints, visibility, who: str, dims=(3, 4)
                             ) -> Tuple[Tensor, Tensor]:
    """float32 keypoints and a [0, 1] visibility on the keypoints' device (None: all 1)."""
    kp = torch.as_tensor(keypoints)
    if not kp.is_floating_point():
        kp = kp.float()
    kp = kp.to(torch.float32)
    if kp.dim() not in dims or kp.shape[-1] != 2:
        shapes = " or ".join({3: "(B, K, 2)", 4: "(B, N, K, 2)"}[d] for d in dims)
        raise ValueError(f"{who}: 'keypoints' must be {shapes}, got shape {tuple(kp.shape)}")
    if visibility is None:
        vis = kp.new_ones(kp.shape[:-1])
    else:
        vis = torch.as_tensor(visibility, device=kp.device).to(torch.float32)
        if vis.shape != kp.shape[:-1]:
            raise ValueError(f"{who}: 'visibility' must have shape {tuple(kp.shape[:-1])}, got "
                             f"{tuple(vis.shape)}")
    return kp, vis.clamp(0.0, 1.0)


def shift_last_dim(t: Tensor, shift: float) -> Tensor:
    """Move the content of the last dimension by ``shift`` (fractional or negative) with linear
    interpolation and edge replication."""
    if shift == 0 or t.shape[-1] == 0:
        return t
    n = t.shape[-1]
    src = (torch.arange(n, dtype=torch.float32, device=t.device) - float(shift)).clamp(0, n - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    a = (src - lo.float()).to(t.dtype)
    return t[..., lo] * (1 - a) + t[..., hi] * a


def flip_maps(maps: Tensor, flip_index: Sequence[int], shift: float) -> Tensor:
    """Mirror ``(B, C, H, W)`` maps of a flipped input back, reorder channels by
    ``flip_index`` and move them ``shift`` pixels right.

    An input flipped as ``x' = W_in - 1 - x`` puts the back-mirrored peak at ``h - (1 - 1/s)``
    for map stride ``s``, so ``shift = 1 - 1/s`` re-aligns it exactly (HRNet's
    ``shift_heatmap`` rounds this to one pixel; UDP maps need no shift)."""
    return shift_last_dim(maps.flip(-1)[:, list(flip_index)], shift)


def check_flip_index(flip_index, num: int, who: str) -> list:
    if flip_index is None:
        raise ValueError(f"{who}: flip test needs 'flip_index' (KeypointSet.flip_index())")
    idx = [int(i) for i in flip_index]
    if len(idx) != num or sorted(idx) != list(range(num)):
        raise ValueError(f"{who}: 'flip_index' must be a permutation of range({num}), got {idx}")
    return idx


class Codec:
    """Base class; see the module docstring for the conventions."""

    name: ClassVar[str] = ""
    #: True: the top-down crop must use the UDP affine (mmpose get_udp_warp_matrix).
    udp_transform: ClassVar[bool] = False
    #: True: a bottom-up codec whose decode groups people (per-image lists of instances,
    #: data-dependent, so only the raw network outputs export).
    groups_people: ClassVar[bool] = False

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        raise NotImplementedError

    def decode(self, outputs, **meta):
        raise NotImplementedError

    def flip_back(self, outputs_flipped, flip_index: Sequence[int]):
        raise NotImplementedError

    def flip_inputs(self, inputs: Tensor, flip_index: Sequence[int]) -> Tensor:
        """The network input of the mirrored image (images: flip the width axis)."""
        return inputs.flip(-1)

    def flip_keypoints(self, keypoints: Tensor, flip_index: Sequence[int]) -> Tensor:
        """Input-pixel keypoints ``(B, K, 2)`` decoded from a flipped input -> the unflipped
        input's keypoints (``x = W - 1 - x'``, left/right swapped)."""
        idx = check_flip_index(flip_index, keypoints.shape[-2], f"{type(self).__name__}.flip_keypoints")
        out = keypoints[..., idx, :].clone()
        out[..., 0] = self.input_size[0] - 1 - out[..., 0]
        return out

    def to_config(self) -> dict:
        """``build_codec(**codec.to_config())`` rebuilds an equal codec (plain json types)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        cfg = self.to_config()
        cfg.pop("name", None)
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.to_config() == other.to_config()

    __hash__ = None
