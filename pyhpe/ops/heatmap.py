"""Training-target generation: Gaussian heatmaps, SimCC labels and part affinity fields.

Wrappers over ``torch.ops.pyhpe.msra_heatmaps``, ``udp_heatmaps``, ``unbiased_heatmaps``,
``simcc_labels`` and ``paf_targets``, each with an ``.out`` overload that writes into a
caller's tensor (CPU and CUDA kernels over one header, csrc/heatmap/heatmap_math.h).
One call encodes a whole batch. Coordinates are (x, y) in pixels of the target grid (heatmap
pixels; input-image pixels for SimCC), pixel centres at integers, as in mmpose.

Every op copies a reference implementation exactly; the numpy reimplementations the tests
compare against live in :mod:`pyhpe.reference.heatmap`:

* :func:`msra_heatmaps`      mmpose ``generate_gaussian_heatmaps`` (HRNet / MSRA).
* :func:`udp_heatmaps`       mmpose ``generate_udp_gaussian_heatmaps`` (UDP).
* :func:`unbiased_heatmaps`  mmpose ``generate_unbiased_gaussian_heatmaps`` (DARK).
* :func:`simcc_labels`       mmpose ``SimCCLabel(smoothing_type='gaussian')``.
* :func:`paf_targets`        mmpose 0.x ``PAFGenerator`` (OpenPose PAFs), zero-length limbs
  skipped, plus a soft variant.

float32 results agree with mmpose (numpy 2) to 1e-6; float64 inputs are computed in float64
(mmpose always produces float32).

Shared rules: sizes are integers (48.0 is accepted, 48.9 is a ValueError, a non-number a
TypeError), each heatmap side at most 65536 and each SimCC label length at most 2^24 (a
ValueError naming the size, before anything is allocated). A sigma so small that
``2 sigma^2`` underflows the dtype draws the sigma -> 0 limit (1 at a centre that falls
exactly on a pixel, 0 elsewhere) where mmpose would produce NaN; SimCC with
``normalize=True`` refuses a sigma whose peak ``1 / (sigma sqrt(2 pi))`` overflows.
Targets are not differentiable: inputs, or an ``out`` tensor, that require grad raise under
grad mode.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

import torch

from ._common import (as_float_tensor, check_sigma_values, float_option, float_pair,
                      sigma_arg, size_option)
from ._types import HeatmapTargets, PAFTargets, SimCCTargets

Size = Union[Sequence[int], torch.Size]


# ---------------------------------------------------------------------------------------
# fake (meta) implementations, for torch.compile / FakeTensor tracing
# ---------------------------------------------------------------------------------------

def _gaussian_heatmaps_fake(keypoints, visibility, sigma, width, height):
    torch._check(keypoints.dim() == 4, lambda: "pyhpe: 'keypoints' must be (B, N, K, 2)")
    B, N, K = keypoints.shape[:3]
    return keypoints.new_empty((B, K, height, width)), keypoints.new_empty((B, N, K))


def _gaussian_heatmaps_out_fake(keypoints, visibility, sigma, *, out):
    B, N, K = keypoints.shape[:3]
    return keypoints.new_empty((B, N, K))


_ENCODINGS = ("msra", "udp", "unbiased")
for _encoding in _ENCODINGS:
    torch.library.register_fake(f"pyhpe::{_encoding}_heatmaps", _gaussian_heatmaps_fake)
    torch.library.register_fake(f"pyhpe::{_encoding}_heatmaps.out", _gaussian_heatmaps_out_fake)


def _simcc_length(size: int, ratio: float) -> int:
    # mmpose: np.around(w * simcc_split_ratio); Python's round is also half to even.
    return int(round(size * ratio))


@torch.library.register_fake("pyhpe::simcc_labels")
def _simcc_labels_fake(keypoints, visibility, width, height, sigma_x, sigma_y,
                       split_ratio=2.0, normalize=False):
    B, K = keypoints.shape[:2]
    return (keypoints.new_empty((B, K, _simcc_length(width, split_ratio))),
            keypoints.new_empty((B, K, _simcc_length(height, split_ratio))),
            keypoints.new_empty((B, K)))


@torch.library.register_fake("pyhpe::simcc_labels.out")
def _simcc_labels_out_fake(keypoints, visibility, sigma_x, sigma_y, split_ratio, normalize, *,
                           x_out, y_out):
    return keypoints.new_empty(keypoints.shape[:2])


@torch.library.register_fake("pyhpe::paf_targets")
def _paf_targets_fake(keypoints, visibility, limbs, width, height, limb_width=1.0,
                      paf_mode="hard"):
    B, L = keypoints.shape[0], limbs.shape[0]
    return (keypoints.new_empty((B, 2 * L, height, width)),
            keypoints.new_empty((B, L, height, width)))


@torch.library.register_fake("pyhpe::paf_targets.out")
def _paf_targets_out_fake(keypoints, visibility, limbs, limb_width, paf_mode, *, out):
    B, L = keypoints.shape[0], limbs.shape[0]
    return keypoints.new_empty((B, L, out.shape[2], out.shape[3]))


# ---------------------------------------------------------------------------------------
# argument helpers
# ---------------------------------------------------------------------------------------

def _wh(op: str, size, name: str) -> Tuple[int, int]:
    return size_option(op, size, name, "WH")


def _tensor_arg(op: str, value, name: str, convert):
    """convert(value), with a TypeError naming the argument when it holds no numbers."""
    if isinstance(value, torch.Tensor):
        return convert(value)
    try:
        return convert(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{op}: '{name}' must be a tensor or an array of numbers, got "
                        f"{type(value).__name__}") from None


def _keypoints_and_visibility(keypoints, visibility, op: str):
    """Float keypoints plus visibility of the same dtype/device (ones when None)."""
    kp = _tensor_arg(op, keypoints, "keypoints", lambda v: as_float_tensor(v, "keypoints"))
    if visibility is None:
        vis = torch.ones(kp.shape[:-1], dtype=kp.dtype, device=kp.device)
    else:
        vis = _tensor_arg(op, visibility, "visibility",
                          lambda v: torch.as_tensor(v, device=kp.device))
        if vis.dtype != kp.dtype and kp.is_floating_point():
            vis = vis.to(kp.dtype)
    return kp, vis


def _sigma_tensor(op: str, sigma, kp: torch.Tensor, batched: bool) -> torch.Tensor:
    """sigma as a float64 tensor broadcastable to (B, N, K)."""
    s, scalar = sigma_arg(op, sigma, kp.device, 3)
    if scalar:
        return s
    if not s.is_floating_point():
        s = s.to(torch.float64)
    if not batched:
        if s.dim() == 2:  # (N, K)
            s = s.unsqueeze(0)
        elif s.dim() > 2:
            raise ValueError(f"{op}: 'sigma' for unbatched keypoints must be a float, (K,) or "
                             f"(N, K), got shape {tuple(s.shape)}")
    if s.dim() == 0:
        s = s.reshape(1, 1, 1)
    elif s.dim() == 1:  # per keypoint
        s = s.reshape(1, 1, -1)
    elif s.dim() == 2:  # per instance
        s = s.unsqueeze(-1)
    elif s.dim() != 3:
        raise ValueError(f"{op}: 'sigma' must be a float, (K,), (B, N) or (B, N, K), "
                         f"got shape {tuple(s.shape)}")
    check_sigma_values(op, s)
    return s


def _check_out(op: str, out: torch.Tensor, name: str, shape, kp: torch.Tensor) -> None:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{op}: '{name}' must be a tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{op}: '{name}' must have shape {tuple(shape)}, got "
                         f"{tuple(out.shape)}")
    if out.dtype != kp.dtype or out.device != kp.device:
        raise TypeError(f"{op}: '{name}' must have dtype {kp.dtype} on {kp.device}, got "
                        f"{out.dtype} on {out.device}")
    if out.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(f"{op}: '{name}' requires grad, but targets are not differentiable "
                           f"and cannot be written into a tensor that requires grad; pass a "
                           f"tensor without requires_grad (or call under torch.no_grad())")


def _instances(op: str, keypoints, visibility):
    """(B, N, K, C) keypoints and (B, N, K) visibility, and whether the input was batched
    ((N, K, C) gains a leading B = 1)."""
    kp, vis = _keypoints_and_visibility(keypoints, visibility, op)
    batched = kp.dim() != 3
    if not batched:
        kp, vis = kp.unsqueeze(0), vis.unsqueeze(0)
    if kp.dim() != 4:
        raise ValueError(f"{op}: 'keypoints' must be (B, N, K, 2) or (N, K, 2), got shape "
                         f"{tuple(kp.shape)}")
    return kp, vis, batched


def _gaussian(encoding: str, keypoints, visibility, heatmap_size, sigma, out) -> HeatmapTargets:
    name = f"{encoding}_heatmaps"
    op = f"pyhpe.{name}"
    kernel = getattr(torch.ops.pyhpe, name)
    kp, vis, batched = _instances(op, keypoints, visibility)
    W, H = _wh(op, heatmap_size, "heatmap_size")
    s = _sigma_tensor(op, sigma, kp, batched)
    if out is None:
        heatmaps, weights = kernel.default(kp, vis, s, W, H)
    else:
        B, K = kp.shape[0], kp.shape[2]
        _check_out(op, out, "out", (B, K, H, W) if batched else (K, H, W), kp)
        weights = kernel.out(kp, vis, s, out=out if batched else out.unsqueeze(0))
        heatmaps = out.unsqueeze(0) if not batched else out
    if not batched:
        return HeatmapTargets(heatmaps[0], weights[0])
    return HeatmapTargets(heatmaps, weights)


_GAUSSIAN_ARGS = """
    Args:
      keypoints: ``(B, N, K, 2)`` (or ``(B, N, K, C>2)``, x and y first) keypoints in heatmap
        pixels; or ``(N, K, 2)`` for one map set (then outputs drop the B dimension).
      visibility: ``(B, N, K)``; keypoints with visibility < 0.5 are skipped (None: all 1).
      heatmap_size: ``(W, H)``.
      sigma: float, ``(K,)`` per keypoint, ``(B, N)`` per instance, or ``(B, N, K)``
        (unbatched input: float, ``(K,)`` or ``(N, K)``).
      out: optional preallocated ``(B, K, H, W)`` tensor (keypoints' dtype and device) that
        receives the heatmaps; it is also returned.

    Returns:
      :class:`HeatmapTargets` ``(heatmaps (B, K, H, W), keypoint_weights (B, N, K))``: the N
      instances of an image are combined by max into its K maps; the weights copy the
      visibility, set to 0 where a visible keypoint's Gaussian misses the map. A visible
      keypoint with a non-finite coordinate gets weight 0.
    """


def msra_heatmaps(keypoints, visibility, heatmap_size: Size, *, sigma=2.0,
                  out: Optional[torch.Tensor] = None) -> HeatmapTargets:
    """MSRA (HRNet) Gaussian heatmaps, exactly mmpose ``generate_gaussian_heatmaps``.

    ``(B, N, K, 2) -> (B, K, H, W), (B, N, K)``. The centre is the integer pixel
    ``int(kp + 0.5)``; the Gaussian ``exp(-d²/2σ²)`` (peak 1) is drawn in the window
    ``[int(mu - 3σ), int(mu + 3σ + 1))`` (truncation toward zero, so σ with a fractional 3σ
    reproduces mmpose's one-pixel shift left of the map); weight 0 only when that window
    misses the map entirely.
    """
    return _gaussian("msra", keypoints, visibility, heatmap_size, sigma, out)


def udp_heatmaps(keypoints, visibility, heatmap_size: Size, *, sigma=2.0,
                 out: Optional[torch.Tensor] = None) -> HeatmapTargets:
    """UDP Gaussian heatmaps, exactly mmpose ``generate_udp_gaussian_heatmaps``.

    ``(B, N, K, 2) -> (B, K, H, W), (B, N, K)``. Same integer window and weights as
    :func:`msra_heatmaps`, but the Gaussian is centred on the fractional keypoint inside it
    (Huang et al., The Devil is in the Details, CVPR 2020). Computed in float64 and rounded,
    as numpy 2 does in mmpose.
    """
    return _gaussian("udp", keypoints, visibility, heatmap_size, sigma, out)


def unbiased_heatmaps(keypoints, visibility, heatmap_size: Size, *, sigma=2.0,
                      out: Optional[torch.Tensor] = None) -> HeatmapTargets:
    """Unbiased (DARK) Gaussian heatmaps, exactly mmpose
    ``generate_unbiased_gaussian_heatmaps``.

    ``(B, N, K, 2) -> (B, K, H, W), (B, N, K)``. The Gaussian is centred on the fractional
    keypoint and evaluated over the whole map (Zhang et al., Distribution-Aware Coordinate
    Representation, CVPR 2020); weight 0 when ``kp - 3σ >= size`` or ``kp + 3σ + 1 < 0``.
    Evaluated as ``exp(-dx²/2σ²) · exp(-dy²/2σ²)`` (W + H exponentials per instance instead
    of W·H), within 2e-7 of mmpose's ``exp`` of the sum.
    """
    return _gaussian("unbiased", keypoints, visibility, heatmap_size, sigma, out)


for _fn in (msra_heatmaps, udp_heatmaps, unbiased_heatmaps):
    if _fn.__doc__:  # None under python -OO
        _fn.__doc__ += _GAUSSIAN_ARGS


def simcc_labels(keypoints, visibility, input_size: Size, *, sigma=(6.0, 6.0),
                 split_ratio: float = 2.0, normalize: bool = False,
                 out: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> SimCCTargets:
    """SimCC 1-D Gaussian labels, exactly mmpose ``SimCCLabel(smoothing_type='gaussian')``.

    ``(B, K, 2) ->`` :class:`SimCCTargets` ``(x_labels (B, K, Wx), y_labels (B, K, Wy),
    keypoint_weights (B, K))`` with ``Wx = round(w * split_ratio)`` and
    ``Wy = round(h * ratio)`` (half to even, as ``np.around``).

    Args:
      keypoints: ``(B, K, 2)`` keypoints in input-image pixels (one instance per row; mmpose's
        N is our B).
      visibility: ``(B, K)``; < 0.5 means unlabelled (zero labels, weight kept). None: all 1.
      input_size: ``(w, h)`` of the input image.
      sigma: float or ``(sigma_x, sigma_y)`` in split (label) units.
      split_ratio: label bins per input pixel (mmpose's ``simcc_split_ratio``).
      normalize: divide by ``sigma * sqrt(2π)`` (mmpose's default is True; RTMPose uses False).
      out: optional preallocated ``(x_labels, y_labels)``.

    The centre is ``int(np.around(kp * split_ratio))``; labels ``exp(-(i - mu)² / 2σ²)`` over all
    bins; weight 0 when ``mu ± 3σ`` misses the label range.
    """
    op = "pyhpe.simcc_labels"
    kp, vis = _keypoints_and_visibility(keypoints, visibility, op)
    if kp.dim() != 3:
        raise ValueError(f"{op}: 'keypoints' must be (B, K, 2), got shape {tuple(kp.shape)}")
    w, h = _wh(op, input_size, "input_size")
    if isinstance(sigma, (numbers.Real, torch.Tensor)) and not isinstance(sigma, bool) and (
            not isinstance(sigma, torch.Tensor) or sigma.numel() == 1):
        sx = sy = float_option(op, sigma, "sigma")
    else:
        sx, sy = float_pair(op, sigma, "sigma")
    ratio = float_option(op, split_ratio, "split_ratio")
    if out is None:
        return SimCCTargets(*torch.ops.pyhpe.simcc_labels.default(kp, vis, w, h, sx, sy, ratio,
                                                                  bool(normalize)))
    try:
        x_out, y_out = out
    except (TypeError, ValueError):
        raise TypeError(f"{op}: 'out' must be a pair (x_labels, y_labels)") from None
    B, K = kp.shape[:2]
    _check_out(op, x_out, "out[0]", (B, K, _simcc_length(w, ratio)), kp)
    _check_out(op, y_out, "out[1]", (B, K, _simcc_length(h, ratio)), kp)
    weights = torch.ops.pyhpe.simcc_labels.out(kp, vis, sx, sy, ratio, bool(normalize),
                                               x_out=x_out, y_out=y_out)
    return SimCCTargets(x_out, y_out, weights)


def paf_targets(keypoints, visibility, limbs, heatmap_size: Size, *, limb_width: float = 1.0,
                mode: str = "hard", out: Optional[torch.Tensor] = None) -> PAFTargets:
    """Part affinity field targets (OpenPose; exactly mmpose 0.x ``PAFGenerator`` in 'hard').

    ``(B, N, K, 2), limbs (L, 2) ->`` :class:`PAFTargets` ``(pafs (B, 2L, H, W), counts (B, L,
    H, W))``; channels
    ``2l`` and ``2l + 1`` hold the x and y components of limb l.

    A limb of an instance is drawn when both endpoints have visibility > 0 and it has
    non-zero length (zero-length limbs are skipped; mmpose 0.x would count them with a zero
    vector). mode='hard': a pixel gets the limb's unit vector when it lies in the box
    ``[floor(min - w), ceil(max + w)]`` (clipped to the map) and its distance to the limb's
    line is ``< limb_width``; overlapping limbs of the same type are averaged
    (``sum / max(count, 1)``) and ``counts`` is how many instances cover each pixel.
    mode='soft': each instance contributes ``g * unit`` with ``g = exp(-d²/2w²)`` for
    ``d < 3w`` (box grown by 3w); the field is ``sum / max(Σg, 1)`` and ``counts`` is Σg, so
    it equals 'hard' where weights are 0/1 and fades smoothly across the limb.

    Args:
      keypoints: ``(B, N, K, 2)`` (x, y first) in heatmap pixels, or ``(N, K, 2)``.
      visibility: ``(B, N, K)`` (None: all visible).
      limbs: ``(L, 2)`` int keypoint index pairs (source, destination): a list, or a
        tensor on the CPU or the keypoints' device. They are bounds-checked on the host, so
        CPU limbs (lists become CPU tensors) cost a CUDA step no synchronisation; limbs on
        the device are copied back for the check.
      heatmap_size: ``(W, H)``.
      limb_width: half-width in pixels of the limb band.
      out: optional preallocated ``(B, 2L, H, W)`` tensor for the fields.
    """
    op = "pyhpe.paf_targets"
    kp, vis, batched = _instances(op, keypoints, visibility)
    if mode not in ("hard", "soft"):
        raise ValueError(f"{op}: 'mode' must be 'hard' or 'soft', got {mode!r}")
    W, H = _wh(op, heatmap_size, "heatmap_size")
    lim = _tensor_arg(op, limbs, "limbs", torch.as_tensor)      # lists become CPU tensors
    if lim.numel() == 0:
        lim = lim.reshape(0, 2)
    if lim.is_floating_point() or lim.dtype == torch.bool:
        raise TypeError(f"{op}: 'limbs' must hold integer keypoint indices, got {lim.dtype}")
    lim = lim.to(torch.int64)
    limb_width = float_option(op, limb_width, "limb_width")
    if out is None:
        pafs, counts = torch.ops.pyhpe.paf_targets.default(kp, vis, lim, W, H, limb_width, mode)
    else:
        B, L = kp.shape[0], (lim.shape[0] if lim.dim() == 2 else -1)
        _check_out(op, out, "out", (B, 2 * L, H, W) if batched else (2 * L, H, W), kp)
        counts = torch.ops.pyhpe.paf_targets.out(kp, vis, lim, limb_width, mode,
                                                 out=out if batched else out.unsqueeze(0))
        pafs = out if batched else out.unsqueeze(0)
    if not batched:
        return PAFTargets(pafs[0], counts[0])
    return PAFTargets(pafs, counts)


__all__ = ["msra_heatmaps", "udp_heatmaps", "unbiased_heatmaps", "simcc_labels", "paf_targets"]
