"""Heatmap / SimCC decoding, soft-argmax family and back-transforms (torch.ops.pyhpe.*).

Coordinate convention (all ops except :func:`dsnt`): (x, y) in heatmap pixels, the centre
of pixel (col, row) being (col, row): a W-wide map spans x in [-0.5, W - 0.5] and an
argmax lands on the integers 0..W-1 (HRNet / mmpose / kornia ``normalized_coordinates=False``).

Every op runs in the input dtype (float32 or float64) on the input device (CPU, or CUDA
when pyhpe was built with it); the CPU and CUDA kernels share ``csrc/decode/decode_math.h``.
The oracles the tests compare against are in :mod:`pyhpe.reference.decode`.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

import torch

from ._common import as_float_tensor, check_finite, float_option, float_pair, int_option, int_pair
from ._types import Decoded, RescoredPoses

Tensor = torch.Tensor


# ---- fake (meta) implementations for torch.compile / opcheck --------------------------


def _coords_scores_fake(maps):
    B, K = maps.shape[0], maps.shape[1]
    return maps.new_empty((B, K, 2)), maps.new_empty((B, K))


@torch.library.register_fake("pyhpe::argmax_decode")
def _argmax_decode_fake(heatmaps, quarter_offset=True, offset_rule="hrnet"):
    torch._check(heatmaps.dim() == 4, lambda: "pyhpe.argmax_decode: 'heatmaps' must be (B, K, H, W)")
    return _coords_scores_fake(heatmaps)


@torch.library.register_fake("pyhpe::dark_decode")
def _dark_decode_fake(heatmaps, kernel=11, udp=False):
    torch._check(heatmaps.dim() == 4, lambda: "pyhpe.dark_decode: 'heatmaps' must be (B, K, H, W)")
    return _coords_scores_fake(heatmaps)


@torch.library.register_fake("pyhpe::simcc_decode")
def _simcc_decode_fake(x_labels, y_labels, split_ratio=2.0, kernel_x=0, kernel_y=0):
    torch._check(x_labels.dim() == 3, lambda: "pyhpe.simcc_decode: 'x_labels' must be (B, K, Wx)")
    return _coords_scores_fake(x_labels)


def _expectation_fake(heatmaps, *args):
    torch._check(heatmaps.dim() == 4, lambda: "pyhpe: 'heatmaps' must be (B, K, H, W)")
    return heatmaps.new_empty((heatmaps.shape[0], heatmaps.shape[1], 2))


def _expectation_forward_fake(heatmaps, *args):
    coords = _expectation_fake(heatmaps)
    return coords, heatmaps.new_empty((*coords.shape[:2], _NUM_STATS), dtype=torch.float64)


def _expectation_backward_fake(grad, heatmaps, stats, *args):
    return torch.empty_like(heatmaps, memory_format=torch.contiguous_format)


_NUM_STATS = 8  # kNumStats in decode_math.h
for _name in ("soft_argmax", "debiased_soft_argmax", "dsnt"):
    torch.library.register_fake(f"pyhpe::{_name}", _expectation_fake)
    torch.library.register_fake(f"pyhpe::_{_name}_forward", _expectation_forward_fake)
    torch.library.register_fake(f"pyhpe::_{_name}_backward", _expectation_backward_fake)


@torch.library.register_fake("pyhpe::transform_preds")
def _transform_preds_fake(coords, center, scale, width, height, use_udp=False):
    return coords.new_empty(coords.shape)


@torch.library.register_fake("pyhpe::topdown_rescore")
def _topdown_rescore_fake(coords, scores, center, scale, box_scores, width, height,
                          use_udp=False, score_thr=0.2):
    N, K = coords.shape[0], coords.shape[1]
    return (coords.new_empty((N, K, 3), dtype=torch.float64),
            coords.new_empty((N,), dtype=torch.float64))


@torch.library.register_fake("pyhpe::affine_transform_points")
def _affine_transform_points_fake(coords, matrix):
    return coords.new_empty(coords.shape)


# ---- autograd: each backward is its own op (CPU + CUDA over the same math) --------------


# The public ops return the coords; their autograd kernels (C++, csrc/decode/
# decode_autograd.cpp: the Python register_autograd route costs about as much as the kernels
# on typical batches) run the private _<op>_forward, which also returns per-map float64
# statistics (max / sums / expectations), and hand those to _<op>_backward, which then reads
# each map only once.


# The back-transforms are affine in every input; their gradients are small batched
# contractions, written with torch ops (themselves differentiable).
def _transform_preds_setup(ctx, inputs, output):
    coords, center, scale, width, height, use_udp = inputs
    ctx.save_for_backward(coords, scale)
    ctx.size = (width - 1, height - 1) if use_udp else (width, height)


def _transform_preds_bwd(ctx, grad):
    coords, scale = ctx.saved_tensors
    size = torch.tensor(ctx.size, dtype=grad.dtype, device=grad.device)
    factor = (scale / size).unsqueeze(1)  # (B, 1, 2)
    g_coords = grad * factor if ctx.needs_input_grad[0] else None
    g_center = grad.sum(1) if ctx.needs_input_grad[1] else None
    g_scale = (grad * (coords / size - 0.5)).sum(1) if ctx.needs_input_grad[2] else None
    return g_coords, g_center, g_scale, None, None, None


def _affine_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _affine_bwd(ctx, grad):
    coords, matrix = ctx.saved_tensors
    g_coords = g_matrix = None
    if ctx.needs_input_grad[0]:
        g_coords = torch.einsum("bki,bij->bkj", grad, matrix[:, :, :2])
    if ctx.needs_input_grad[1]:
        g_matrix = torch.cat([torch.einsum("bki,bkj->bij", grad, coords),
                              grad.sum(1).unsqueeze(-1)], dim=-1)
    return g_coords, g_matrix


torch.library.register_autograd("pyhpe::transform_preds", _transform_preds_bwd,
                                setup_context=_transform_preds_setup)
torch.library.register_autograd("pyhpe::affine_transform_points", _affine_bwd,
                                setup_context=_affine_setup)


# ---- typed wrappers -------------------------------------------------------------------


def argmax_decode(heatmaps: Tensor, *, quarter_offset: bool = True,
                  offset_rule: str = "hrnet") -> Decoded:
    """Argmax decoding with the HRNet / mmpose quarter-pixel shift.

    ``(B, K, H, W) ->`` :class:`Decoded` ``(keypoints (B, K, 2)`` (x, y) in heatmap pixels,
    ``scores (B, K))``.

    Semantics of HRNet ``get_max_preds`` + ``get_final_preds`` and mmpose 0.x
    ``_get_max_preds`` + ``keypoints_from_heatmaps(post_process='default')``:

    * location = first maximum in row-major order (``np.argmax``; a NaN counts as the
      maximum), score = the maximum value (``maxvals``), unchanged in every case;
    * sentinel: where the maximum is ``<= 0`` (or NaN) the coords are ``(-1, -1)`` and get no
      shift, as mmpose 0.x/1.x (``np.where(maxvals > 0, preds, -1)``); the score stays the
      max value. HRNet's own ``get_max_preds`` multiplies by the mask instead, giving
      ``(0, 0)``: use ``torch.where(scores[..., None] > 0, coords, 0)`` for that;
    * quarter offset: with ``offset_rule='hrnet'`` (default; HRNet and mmpose 0.x) both
      axes move by ``0.25 * sign(h[y, x+1] - h[y, x-1])`` / ``sign(h[y+1, x] - h[y-1, x])``
      only when ``1 < x < W - 1 and 1 < y < H - 1`` (note: column/row 1 gets no shift,
      as in the references). ``offset_rule='mmpose1'`` is mmpose 1.x ``refine_keypoints``:
      x is shifted when ``1 < x < W - 1 and 0 < y``, y when ``1 < y < H - 1 and 0 < x``.

    Not differentiable: maps that require grad raise (detach them or use ``torch.no_grad()``).
    """
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    return Decoded(*torch.ops.pyhpe.argmax_decode(heatmaps, bool(quarter_offset), offset_rule))


def dark_decode(heatmaps: Tensor, *, kernel: int = 11, udp: bool = False) -> Decoded:
    """DARK (DarkPose) or DARK-UDP decoding, fused per (instance, keypoint).

    ``(B, K, H, W) ->`` :class:`Decoded` ``(keypoints (B, K, 2)`` (x, y) in heatmap pixels,
    ``scores (B, K))`` (the maxima, as :func:`argmax_decode`).

    Modulation as DarkPose / mmpose ``gaussian_blur``: the map is padded with
    ``(kernel - 1) / 2`` zeros, blurred with OpenCV's Gaussian of that size
    (``cv2.GaussianBlur(dr, (k, k), 0)``: sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8, the fixed
    tables for k <= 7), cropped, and rescaled so its max equals the original max.

    * ``udp=False``: mmpose ``refine_keypoints_dark`` (DarkPose ``taylor``):
      ``log(max(., 1e-10))``, then one Newton step ``-H^-1 g`` with central differences at
      the integer argmax when ``1 < x < W - 2 and 1 < y < H - 2`` and ``det(H) != 0``.
    * ``udp=True``: mmpose 1.x ``refine_keypoints_dark_udp`` (UDPHeatmap decode):
      ``log(clip(., 1e-3, 50))``, edge padding, UDP differences, step
      ``-(H + eps_f32 I)^-1 g`` (solved in float64 as numpy promotes it), on every map.

    Maps whose max is ``<= 0`` keep the ``(-1, -1)`` sentinel (mmpose's UDP refinement
    would index outside the map there; we do not reproduce that). ``kernel`` must be odd in
    [3, 127] (an integer; 11.0 is accepted, 11.7 is a ValueError). Only the samples the
    Taylor step needs are blurred; the full blurred map is computed only when a clamp could
    change the result, so the output equals the reference's up to float rounding. Not
    differentiable: maps that require grad raise (detach them or use ``torch.no_grad()``).
    """
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    kernel = int_option("pyhpe.dark_decode", kernel, "kernel")
    return Decoded(*torch.ops.pyhpe.dark_decode(heatmaps, kernel, bool(udp)))


def simcc_dark_kernel(sigma: float) -> int:
    """mmpose ``SimCCLabel`` blur size for 1-D DARK: ``int((20 * sigma - 7) // 3)``, made odd."""
    sigma = float_option("pyhpe.simcc_dark_kernel", sigma, "sigma")
    if not (0 < sigma < float("inf")):
        raise ValueError(f"pyhpe.simcc_dark_kernel: 'sigma' must be positive and finite, "
                         f"got {sigma}")
    k = int((sigma * 20 - 7) // 3)
    return k - int(k % 2 == 0)


def simcc_decode(x_labels: Tensor, y_labels: Tensor, *, split_ratio: float = 2.0,
                 dark: Union[bool, int, Sequence[int]] = False,
                 kernel: Optional[Union[int, Sequence[int]]] = None,
                 sigma: Union[float, Sequence[float]] = 6.0) -> Decoded:
    """SimCC decoding (mmpose ``SimCCLabel.decode`` / ``get_simcc_maximum``).

    ``x_labels (B, K, Wx), y_labels (B, K, Wy) ->`` :class:`Decoded` ``(keypoints (B, K, 2),
    scores (B, K))``.

    Per axis the first maximum; score = ``min(max_x, max_y)`` (mmpose's masked
    assignment, so a NaN in x wins); where the score ``<= 0`` both bins become the ``-1``
    sentinel. With ``dark`` each axis is refined by mmpose ``refine_simcc_dark`` (1-D blur
    as :func:`dark_decode`, ``clip(., 1e-3, 50)``, log, edge pad 2, ``x -= dx / (dxx +
    1e-9)``), the sentinel included, exactly as mmpose does. Finally coords are divided by
    ``split_ratio``, so the sentinel decodes to ``-1 / split_ratio`` like in mmpose.

    ``dark`` may be ``True`` or directly the kernel size (int or ``(kx, ky)``); otherwise
    ``kernel`` gives it, and by default it follows mmpose from ``sigma``
    (:func:`simcc_dark_kernel`; sigma 6.0 -> 37).

    Not differentiable: labels that require grad raise (detach them or use
    ``torch.no_grad()``), as for :func:`argmax_decode` and :func:`dark_decode`.
    """
    op = "pyhpe.simcc_decode"
    x_labels = as_float_tensor(x_labels, "x_labels")
    y_labels = as_float_tensor(y_labels, "y_labels", like=x_labels)
    kx = ky = 0
    if dark is not False and dark is not None:
        name = "kernel"
        if dark is not True:
            kernel, name = dark, "dark"
        if kernel is None:
            if isinstance(sigma, (numbers.Real, torch.Tensor)) and not isinstance(sigma, bool):
                sx = sy = float_option(op, sigma, "sigma")
            else:
                sx, sy = float_pair(op, sigma, "sigma")
            kernel = (simcc_dark_kernel(sx), simcc_dark_kernel(sy))
        if hasattr(kernel, "__iter__") and not isinstance(kernel, (str, bytes, torch.Tensor)):
            kx, ky = int_pair(op, kernel, name)
        else:
            kx = ky = int_option(op, kernel, name)
    return Decoded(*torch.ops.pyhpe.simcc_decode(
        x_labels, y_labels, float_option(op, split_ratio, "split_ratio"), kx, ky))



def soft_argmax(heatmaps: Tensor, *, beta: float = 1.0, normalize: str = "softmax") -> Tensor:
    """Soft-argmax / integral pose regression, differentiable.

    ``(B, K, H, W) -> (B, K, 2)``: ``sum_ij p_ij (j, i)``, the grid being pixel centres
    0..W-1 / 0..H-1 (kornia 0.9 ``spatial_soft_argmax2d(..., temperature=1 / beta,
    normalized_coordinates=False)``: kornia divides by its temperature; mmpose's integral head uses ``j / W``, i.e. these
    values divided by (W, H)).

    ``normalize='softmax'``: ``p = softmax(beta * h)`` over H*W (Sun et al. integral
    regression); ``'sum'``: ``p = h / sum(h)`` (beta unused); ``'none'``: ``p = h``.
    Backward: the private op ``torch.ops.pyhpe._soft_argmax_backward`` (first order only:
    differentiating the gradient again raises).

    Defined answers where the formula has none (zero gradient there; same on every CPU path
    and on CUDA): with ``'softmax'``, once ``|beta| * max|h|`` (``|beta| * min|h|`` side for
    beta < 0) reaches 2^23 in float32 (2^52 in float64) the dtype cannot resolve the
    exponent any more (``beta=1e30`` would give 0 / 0) and the result is the beta -> inf
    limit, the mean position of the maxima (minima for beta < 0); with ``'sum'`` a map
    summing to 0 gives the grid centre ``((W - 1) / 2, (H - 1) / 2)``. ``beta`` must be
    finite. Maps holding NaN give NaN.

    Exactness: the sums run in a different order on each path (AVX2 lanes, SSE2/scalar rows,
    a warp per map on CUDA), so the paths agree to rounding, not bit for bit: within 1e-12
    relative in the statistics, as csrc/tests/test_decode_math.cpp checks by running the
    GPU's order of work on the CPU.
    """
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    beta = float_option("pyhpe.soft_argmax", beta, "beta")
    return torch.ops.pyhpe.soft_argmax(heatmaps, beta, normalize)


def debiased_soft_argmax(heatmaps: Tensor, *, beta: float = 1.0, form: str = "paper") -> Tensor:
    """Debiased integral pose regression (Gu, Yang, Yao, ICCV 2021), differentiable.

    ``(B, K, H, W) -> (B, K, 2)`` in pixels (grid as :func:`soft_argmax`). With
    ``J~ = soft_argmax(h, beta)`` the softmax's uniform part is removed:
    ``J = C / (C - 1) * (J~ - c / C)``.

    * ``form='paper'``: ``C = mean(exp(beta * h))`` over the H*W pixels and ``c`` the grid
      centre ``((W - 1) / 2, (H - 1) / 2)``: exact for the softmax of ``beta * h``.
    * ``form='mmpose'``: mmpose ``IntegralRegressionHead(debias=True)``:
      ``C = sum(exp(h))`` (a sum, without beta) and ``c = (W / 2, H / 2)`` (mmpose's
      ``1 / (2C)`` on its ``j / W`` grid, scaled to pixels). Divide by (W, H) for mmpose's
      normalized output.

    Evaluated stably as ``(J~ - c u) / (1 - u)`` with ``u = 1 / C`` from max-shifted sums.
    Backward: the private op ``torch.ops.pyhpe._debiased_soft_argmax_backward`` (first order only).

    ``beta`` must be positive and finite (ValueError otherwise: ``beta = 0`` makes ``C = 1``
    for every map). Where ``C == 1`` exactly (e.g. a flat map of zeros in the paper form)
    or ``1 / C`` overflows, the debiasing is ``0 / 0`` or ``inf / inf``: the result is then
    the centre ``c`` of the form, with zero gradient. A saturated softmax (huge ``beta``)
    is handled as in :func:`soft_argmax`.
    """
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    beta = float_option("pyhpe.debiased_soft_argmax", beta, "beta")
    return torch.ops.pyhpe.debiased_soft_argmax(heatmaps, beta, form)


def dsnt(heatmaps: Tensor, *, normalize: str = "none", beta: float = 1.0) -> Tensor:
    """DSNT (Nibali et al.; ``dsntnn.dsnt``), differentiable.

    ``(B, K, H, W) -> (B, K, 2)`` (x, y) in dsntnn normalized coordinates: pixel centre
    ``(2 j + 1) / W - 1`` (and ``(2 i + 1) / H - 1``), so the map spans exactly (-1, 1)
    at the edges.

    ``normalize='none'`` (default, ``dsntnn.dsnt``): the maps must already be normalized
    (e.g. ``dsntnn.flat_softmax``); the op computes ``sum_ij h_ij (x_j, y_i)`` without
    renormalizing, as dsntnn does. ``normalize='softmax'`` fuses dsntnn's
    ``flat_softmax(beta * h)`` in (``dsnt(flat_softmax(h))`` in one pass over the maps,
    without materializing the probabilities); ``'sum'`` divides by ``sum h`` instead.
    Backward: the private op ``torch.ops.pyhpe._dsnt_backward`` (first order only).

    Degenerate maps as in :func:`soft_argmax`: a saturated softmax gives the mean position
    of the maxima, a map summing to 0 under ``'sum'`` gives the centre ``(0, 0)``; both with
    zero gradient.
    """
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    beta = float_option("pyhpe.dsnt", beta, "beta")
    return torch.ops.pyhpe.dsnt(heatmaps, beta, normalize)


def transform_preds(coords: Tensor, center: Tensor, scale: Tensor,
                    heatmap_size: Sequence[int], *, use_udp: bool = False) -> Tensor:
    """Heatmap coordinates back to the image (mmpose 0.x ``transform_preds``), batched.

    ``coords (B, K, 2), center (B, 2), scale (B, 2), heatmap_size (W, H) -> (B, K, 2)``:
    ``x' = x * scale_x / W + center_x - 0.5 * scale_x`` (``W - 1``, ``H - 1`` with
    ``use_udp``). ``scale`` is the box size in pixels, as mmpose 1.x uses it (mmpose 0.x
    passes ``scale / 200`` and multiplies by 200 inside: pass ``200 * scale_0x``).
    Differentiable in coords, center and scale.
    """
    coords = as_float_tensor(coords, "coords")
    center = as_float_tensor(center, "center", like=coords)
    scale = as_float_tensor(scale, "scale", like=coords)
    width, height = int_pair("pyhpe.transform_preds", heatmap_size, "heatmap_size")
    return torch.ops.pyhpe.transform_preds(coords, center, scale, width, height, bool(use_udp))


def affine_transform_points(coords: Tensor, matrix: Tensor) -> Tensor:
    """Batched 2-D affine transform of points (mmpose ``affine_transform``).

    ``coords (B, K, 2), matrix (B, 2, 3) -> (B, K, 2)``: ``M[:, :2] @ (x, y) + M[:, 2]``.
    Use the inverse of the crop warp (``cv2.invertAffineTransform``) to map heatmap or
    input coordinates back to the image. Differentiable in coords and matrix.
    """
    coords = as_float_tensor(coords, "coords")
    matrix = as_float_tensor(matrix, "matrix", like=coords)
    return torch.ops.pyhpe.affine_transform_points(coords, matrix)


def topdown_rescore(coords: Tensor, scores: Tensor, center: Tensor, scale: Tensor,
                    box_scores: Tensor, input_size: Sequence[int], *, udp: bool = False,
                    score_thr: float = 0.2, validate: bool = True) -> RescoredPoses:
    """Top-down crops back to the image with mmpose's rescoring, one fused pass.

    ``coords (N, K, 2)`` input-pixel keypoints of N crops, ``scores (N, K)``, the crops'
    ``center`` / ``scale (N, 2)`` (pixels), detector ``box_scores (N,)``, ``input_size (W, H)``
    -> :class:`RescoredPoses` ``(keypoints (N, K, 3)`` float64 ``[x, y, score]`` in image pixels,
    ``scores (N,)`` float64 instance scores).

    * position: ``coords / input_size * scale + center - 0.5 * scale`` one step at a time in
      float64, rounded to the coords' dtype: mmpose 1.x ``add_pred_to_datasample`` bit for
      bit (numpy promotes the division by the integer ``input_size`` to float64 and stores
      the result into the float32 keypoints); ``input_size - 1`` for UDP crops
      (``udp=True``, as :func:`pyhpe.data.to_image_space`);
    * score: ``box_score x`` the mean of the keypoint scores ``> score_thr`` (compared in the
      scores' dtype, as numpy compares a float32 array with a Python float; summed in float64),
      0 when no keypoint passes: the top-down rescoring of mmpose's COCO metric.

    ``center``, ``scale`` take the coords' dtype and ``box_scores`` float64 here. With
    ``validate`` (default) NaN or infinite inputs raise a ValueError naming them;
    ``validate=False`` lets them propagate. Not differentiable (inputs that require grad
    raise).
    """
    op = "pyhpe.topdown_rescore"
    coords = as_float_tensor(coords, "coords")
    scores = as_float_tensor(scores, "scores", like=coords)
    center = as_float_tensor(center, "center", like=coords).to(coords.dtype)
    scale = as_float_tensor(scale, "scale", like=coords).to(coords.dtype)
    box_scores = as_float_tensor(box_scores, "box_scores", like=coords).to(torch.float64)
    width, height = int_pair(op, input_size, "input_size")
    score_thr = float_option(op, score_thr, "score_thr", finite=True)
    if validate:
        for name, t in (("coords", coords), ("scores", scores), ("center", center),
                        ("scale", scale), ("box_scores", box_scores)):
            check_finite(t, name, op)
    return RescoredPoses(*torch.ops.pyhpe.topdown_rescore(coords, scores, center, scale, box_scores,
                                                          width, height, bool(udp),
                                                          score_thr))


class SoftArgmax2d(torch.nn.Module):
    """Module form of :func:`soft_argmax`: ``(B, K, H, W) -> (B, K, 2)`` in pixels.

    ``beta`` is a fixed float (the ops take it as a scalar; a learnable beta would need a
    gradient with respect to it, which the backward ops do not compute).
    """

    def __init__(self, beta: float = 1.0, normalize: str = "softmax"):
        super().__init__()
        self.beta = float_option("pyhpe.SoftArgmax2d", beta, "beta")
        self.normalize = normalize

    def forward(self, heatmaps: Tensor) -> Tensor:
        return soft_argmax(heatmaps, beta=self.beta, normalize=self.normalize)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, normalize={self.normalize!r}"


class DebiasedSoftArgmax2d(torch.nn.Module):
    """Module form of :func:`debiased_soft_argmax`: ``(B, K, H, W) -> (B, K, 2)`` in pixels
    (``form`` 'paper' or 'mmpose'; ``beta`` fixed, as :class:`SoftArgmax2d`)."""

    def __init__(self, beta: float = 1.0, form: str = "paper"):
        super().__init__()
        self.beta = float_option("pyhpe.DebiasedSoftArgmax2d", beta, "beta")
        self.form = form

    def forward(self, heatmaps: Tensor) -> Tensor:
        return debiased_soft_argmax(heatmaps, beta=self.beta, form=self.form)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, form={self.form!r}"


class DSNT2d(torch.nn.Module):
    """Module form of :func:`dsnt`: ``(B, K, H, W) -> (B, K, 2)`` in dsntnn normalized
    coordinates (``normalize`` 'none', 'softmax' or 'sum'; ``beta`` fixed)."""

    def __init__(self, normalize: str = "none", beta: float = 1.0):
        super().__init__()
        self.beta = float_option("pyhpe.DSNT2d", beta, "beta")
        self.normalize = normalize

    def forward(self, heatmaps: Tensor) -> Tensor:
        return dsnt(heatmaps, normalize=self.normalize, beta=self.beta)

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}, beta={self.beta}"


__all__ = ["DSNT2d", "DebiasedSoftArgmax2d", "SoftArgmax2d", "affine_transform_points",
           "argmax_decode", "dark_decode", "debiased_soft_argmax", "dsnt", "simcc_dark_kernel",
           "simcc_decode", "soft_argmax", "topdown_rescore", "transform_preds"]
