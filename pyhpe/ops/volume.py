"""Volumetric (3-D) ops: soft-argmax / integral decoding of (B, K, D, H, W) volumes and 3-D
Gaussian target volumes (torch.ops.pyhpe.*).

Coordinate convention: a volume is ``(D, H, W)``, voxel ``(z, y, x)`` = (depth, row, column),
and its centre has the coordinates ``(x, y, z)`` in voxel units: a W-wide volume spans x in
``[-0.5, W - 0.5]`` (the 2-D decode family's pixel convention, one axis more). Sizes are
given as ``(W, H, D)``, as 2-D sizes are ``(W, H)``.

Every op runs in the input dtype (float32 or float64, as the 2-D soft-argmax) on the input
device (CPU, or CUDA when pyhpe was built with it); the CPU and CUDA kernels share
``csrc/volume/volume_math.h``. The oracles the tests compare against are in
:mod:`pyhpe.reference.volume`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ._common import as_float_tensor, check_sigma_values, float_option, sigma_arg, size_option
from ._types import VolumeTargets

Tensor = torch.Tensor

_NUM_STATS = 8  # kNumStats in volume_math.h


# ---- fake (meta) implementations for torch.compile / opcheck --------------------------


def _coords_fake(volumes, *args):
    torch._check(volumes.dim() == 5, lambda: "pyhpe: 'volumes' must be (B, K, D, H, W)")
    return volumes.new_empty((volumes.shape[0], volumes.shape[1], 3))


def _forward_fake(volumes, *args):
    coords = _coords_fake(volumes)
    return coords, volumes.new_empty((*coords.shape[:2], _NUM_STATS), dtype=torch.float64)


def _backward_fake(grad, volumes, stats, *args):
    return torch.empty_like(volumes, memory_format=torch.contiguous_format)


for _name in ("soft_argmax_3d", "debiased_soft_argmax_3d"):
    torch.library.register_fake(f"pyhpe::{_name}", _coords_fake)
    torch.library.register_fake(f"pyhpe::_{_name}_forward", _forward_fake)
    torch.library.register_fake(f"pyhpe::_{_name}_backward", _backward_fake)


@torch.library.register_fake("pyhpe::gaussian_volumes")
def _gaussian_volumes_fake(keypoints, visibility, sigma, width, height, depth):
    torch._check(keypoints.dim() == 3, lambda: "pyhpe: 'keypoints' must be (B, K, 3)")
    B, K = keypoints.shape[:2]
    return (keypoints.new_empty((B, K, depth, height, width)), keypoints.new_empty((B, K)))


# ---- typed wrappers -------------------------------------------------------------------


def soft_argmax_3d(volumes: Tensor, *, beta: float = 1.0, normalize: str = "softmax") -> Tensor:
    """3-D soft-argmax / integral pose regression (Sun et al., ECCV 2018), differentiable.

    ``volumes (B, K, D, H, W) -> (B, K, 3)``: the expectation ``sum_v p_v (x_v, y_v, z_v)``
    over the voxel centres, x = 0..W-1 (columns), y = 0..H-1 (rows), z = 0..D-1 (depth):
    (x, y, z) in voxel units. Divide by ``(W, H, D)`` for the ``[0, 1)`` grid that
    integral-regression code often uses (``x / W``).

    ``normalize='softmax'``: ``p = softmax(beta * v)`` over the D*H*W voxels, evaluated
    max-subtracted (stable for any finite input); ``'sum'``: ``p = v / sum(v)`` (beta
    unused); ``'none'``: ``p = v``. Backward: the private op
    ``torch.ops.pyhpe._soft_argmax_3d_backward`` (first order only: differentiating the
    gradient again raises).

    Defined answers where the formula has none (zero gradient there; the same on CPU and
    CUDA), as the 2-D :func:`pyhpe.ops.soft_argmax`: with ``'softmax'``, once
    ``|beta| * max|v|`` reaches 2^23 in float32 (2^52 in float64) the dtype cannot resolve
    the exponent and the result is the beta -> inf limit, the mean position of the maxima
    (minima for beta < 0); with ``'sum'`` a volume summing to 0 gives the grid centre
    ``((W - 1) / 2, (H - 1) / 2, (D - 1) / 2)``. ``beta`` must be finite. Volumes holding
    NaN (or +-inf under softmax) give NaN coordinates. ``B * K == 0`` gives an empty
    ``(B, K, 3)``.
    """
    volumes = as_float_tensor(volumes, "volumes")
    beta = float_option("pyhpe.soft_argmax_3d", beta, "beta")
    return torch.ops.pyhpe.soft_argmax_3d(volumes, beta, normalize)


def debiased_soft_argmax_3d(volumes: Tensor, *, beta: float = 1.0, form: str = "paper") -> Tensor:
    """Debiased 3-D integral regression (Gu, Yang, Yao, ICCV 2021, in three axes),
    differentiable.

    ``volumes (B, K, D, H, W) -> (B, K, 3)`` in voxels (grid as :func:`soft_argmax_3d`).
    With ``J~ = soft_argmax_3d(v, beta)``, ``C = mean(exp(beta * v))`` over the voxels and
    ``c = ((W - 1) / 2, (H - 1) / 2, (D - 1) / 2)`` the softmax's uniform part is removed:
    ``J = C / (C - 1) * (J~ - c / C)``, evaluated stably as ``(J~ - c u) / (1 - u)`` with
    ``u = 1 / C`` from max-shifted sums. Only ``form='paper'`` exists in 3-D (the 2-D op's
    ``'mmpose'`` form copies a 2-D head). Backward: the private op
    ``torch.ops.pyhpe._debiased_soft_argmax_3d_backward`` (first order only).

    ``beta`` must be positive and finite. Where ``C == 1`` (a flat volume at 0) or ``1 / C``
    overflows, the result is the centre ``c`` with zero gradient.
    """
    volumes = as_float_tensor(volumes, "volumes")
    beta = float_option("pyhpe.debiased_soft_argmax_3d", beta, "beta")
    return torch.ops.pyhpe.debiased_soft_argmax_3d(volumes, beta, form)


def _whd(op: str, size, name: str):
    return size_option(op, size, name, "WHD")


def _sigma_tensor(op: str, sigma, kp: Tensor) -> Tensor:
    """sigma as a float64 (B|1, K|1) tensor."""
    s, scalar = sigma_arg(op, sigma, kp.device, 2)
    if scalar:
        return s
    s = s.to(torch.float64)
    if s.dim() == 0:
        s = s.reshape(1, 1)
    elif s.dim() == 1:  # per keypoint
        s = s.reshape(1, -1)
    elif s.dim() != 2:
        raise ValueError(f"{op}: 'sigma' must be a float, (K,) or (B, K), "
                         f"got shape {tuple(s.shape)}")
    check_sigma_values(op, s)
    return s


def gaussian_volumes(keypoints: Tensor, visibility, volume_size: Sequence[int], *,
                     sigma=2.0) -> VolumeTargets:
    """3-D Gaussian target volumes (the MSRA / HRNet heatmap encoding in three axes).

    ``keypoints (B, K, 3) -> ``:class:`VolumeTargets` ``(volumes (B, K, D, H, W),
    keypoint_weights (B, K))``; keypoints are ``(x, y, z)`` in voxels (centres at integers),
    ``volume_size`` is ``(W, H, D)``.

    As :func:`pyhpe.ops.msra_heatmaps` (mmpose ``generate_gaussian_heatmaps``) per axis: the
    centre is the voxel ``int(kp + 0.5)``, the Gaussian ``exp(-d²/2σ²)`` (peak 1) is drawn
    in the window ``[int(mu - 3σ), int(mu + 3σ + 1))`` (truncation toward zero) and is 0
    outside it (truncation radius 3σ). Weights copy the visibility; a visible keypoint gets
    weight 0 when its window misses the volume (``left >= size`` or ``right < 0`` on any
    axis) or a coordinate is not finite. Keypoints with visibility < 0.5 are skipped (zero
    volume, weight kept).

    Args:
      keypoints: ``(B, K, 3)`` (or ``(B, K, C>3)``, x, y, z first).
      visibility: ``(B, K)`` or None (all 1).
      volume_size: ``(W, H, D)``, each in [0, 4096].
      sigma: float, ``(K,)`` per keypoint or ``(B, K)``, positive and finite (voxels).

    Not differentiable (inputs that require grad raise under grad mode).
    """
    op = "pyhpe.gaussian_volumes"
    kp = as_float_tensor(keypoints, "keypoints")
    if visibility is None:
        vis = torch.ones(kp.shape[:-1], dtype=kp.dtype, device=kp.device)
    else:
        try:
            vis = torch.as_tensor(visibility, device=kp.device)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{op}: 'visibility' must be a tensor or an array of numbers, got "
                            f"{type(visibility).__name__}") from None
        if vis.dtype != kp.dtype and kp.is_floating_point():
            vis = vis.to(kp.dtype)
    W, H, D = _whd(op, volume_size, "volume_size")
    s = _sigma_tensor(op, sigma, kp)
    return VolumeTargets(*torch.ops.pyhpe.gaussian_volumes(kp, vis, s, W, H, D))


class SoftArgmax3d(torch.nn.Module):
    """Module form of :func:`soft_argmax_3d`: ``(B, K, D, H, W) -> (B, K, 3)`` in voxels
    (``beta`` a fixed float)."""

    def __init__(self, beta: float = 1.0, normalize: str = "softmax"):
        super().__init__()
        self.beta = float_option("pyhpe.SoftArgmax3d", beta, "beta")
        self.normalize = normalize

    def forward(self, volumes: Tensor) -> Tensor:
        return soft_argmax_3d(volumes, beta=self.beta, normalize=self.normalize)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, normalize={self.normalize!r}"


class DebiasedSoftArgmax3d(torch.nn.Module):
    """Module form of :func:`debiased_soft_argmax_3d`: ``(B, K, D, H, W) -> (B, K, 3)``."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = float_option("pyhpe.DebiasedSoftArgmax3d", beta, "beta")

    def forward(self, volumes: Tensor) -> Tensor:
        return debiased_soft_argmax_3d(volumes, beta=self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


__all__ = ["DebiasedSoftArgmax3d", "SoftArgmax3d", "VolumeTargets", "debiased_soft_argmax_3d",
           "gaussian_volumes", "soft_argmax_3d"]
