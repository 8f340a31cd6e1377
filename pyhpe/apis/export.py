"""Export of pose models: ONNX (:func:`export_onnx`) and ``torch.export``
(:func:`export_program`), with or without the decode step.

The codecs decode through pyhpe's compiled ops (``torch.ops.pyhpe.*``), which have no ONNX
symbolic. :class:`ExportModule` therefore decodes with plain torch ops written for export
(:func:`torch_decoder`), reproducing each codec's decode:

* ``msra`` / ``unbiased`` heatmaps: argmax + mmpose 1.x quarter offset, or DARK (Gaussian
  blur with cv2's kernel, log, Taylor step); ``udp``: DARK-UDP; ``integral`` (ipr / dipr /
  dsnt): soft-argmax (debiased for dipr) and the 3x3 softmax mass as score; ``simcc``: first
  maximum per axis (+ 1-D DARK); ``regression``: scaled coordinates; ``lift3d``: the codec's
  de-standardisation (plain torch already).
* ``paf`` (bottom-up): the grouping is data-dependent (a variable number of people) and stays
  in Python (:func:`pyhpe.ops.paf_group`): only the raw outputs (heatmaps, PAFs) export;
  ``with_decode=True`` raises.

Without the decode step the graph returns the head's final raw outputs (heatmaps, logits,
SimCC vectors, ...); with it, ``(keypoints (B, K, 2|3) input pixels, scores (B, K))``. Flip
test is not part of the graph (run the graph twice and average in the caller if needed).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


# ---------------------------------------------------------------------------- decode helpers
def _take2d(flat: Tensor, x: Tensor, y: Tensor, W: int, H: int) -> Tensor:
    """``flat (B, K, H*W)`` at integer ``(x, y)`` ``(B, K)``, indices clamped into the map
    (callers mask what lies outside)."""
    xi = x.clamp(0, W - 1)
    yi = y.clamp(0, H - 1)
    return flat.gather(-1, (yi * W + xi).unsqueeze(-1)).squeeze(-1)


def _argmax2d(hm: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """First maximum of each ``(B, K, H, W)`` map: integer x, y (-1 where the maximum is <= 0),
    float coordinates and the maxima."""
    B, K, H, W = hm.shape
    flat = hm.reshape(B, K, H * W)
    idx = flat.argmax(-1)
    val = flat.amax(-1)
    valid = val > 0
    x = torch.where(valid, idx % W, torch.full_like(idx, -1))
    y = torch.where(valid, torch.div(idx, W, rounding_mode="floor"), torch.full_like(idx, -1))
    return x, y, torch.stack([x, y], -1).to(hm.dtype), val


def _cv2_gaussian(kernel: int) -> np.ndarray:
    import cv2
    return cv2.getGaussianKernel(int(kernel), 0).astype(np.float32)[:, 0]


class _Blur2d(nn.Module):
    """mmpose/DarkPose ``gaussian_blur``: zero padding, cv2's Gaussian, rescaled to the map's
    original maximum."""

    def __init__(self, kernel: int):
        super().__init__()
        g = torch.from_numpy(_cv2_gaussian(kernel))
        self.register_buffer("weight", torch.outer(g, g)[None, None], persistent=False)
        self.pad = (int(kernel) - 1) // 2

    def forward(self, hm: Tensor) -> Tensor:
        B, K, H, W = hm.shape
        x = hm.reshape(B * K, 1, H, W)
        y = F.conv2d(x, self.weight.to(hm.dtype), padding=self.pad)
        orig = x.amax((-2, -1), keepdim=True)
        y = y * (orig / y.amax((-2, -1), keepdim=True))
        return y.reshape(B, K, H, W)


class _Blur1d(nn.Module):
    def __init__(self, kernel: int):
        super().__init__()
        g = torch.from_numpy(_cv2_gaussian(kernel))
        self.register_buffer("weight", g[None, None], persistent=False)
        self.pad = (int(kernel) - 1) // 2

    def forward(self, v: Tensor) -> Tensor:
        B, K, N = v.shape
        x = v.reshape(B * K, 1, N)
        y = F.conv1d(x, self.weight.to(v.dtype), padding=self.pad)
        y = y * (x.amax(-1, keepdim=True) / y.amax(-1, keepdim=True))
        return y.reshape(B, K, N)


class HeatmapDecoder(nn.Module):
    """``msra`` / ``unbiased`` / ``udp`` heatmaps -> input-pixel keypoints and maxima."""

    def __init__(self, codec):
        super().__init__()
        from ..codecs.heatmap import UDPHeatmap
        self.udp = isinstance(codec, UDPHeatmap)
        self.dark = self.udp or codec.decoding == "dark"
        self.blur = _Blur2d(codec.blur_kernel_size) if self.dark else None
        self.register_buffer("scale", torch.tensor(codec.scale_factor, dtype=torch.float32),
                             persistent=False)

    def forward(self, heatmaps: Tensor):
        hm = heatmaps.float()
        B, K, H, W = hm.shape
        x, y, coords, val = _argmax2d(hm)
        if self.udp:
            coords = coords + self._dark_udp(hm, x, y)
            # the sentinel stays -1 (pyhpe.ops.dark_decode(udp=True))
            coords = torch.where((val > 0).unsqueeze(-1), coords, torch.full_like(coords, -1.0))
        elif self.dark:
            coords = coords + self._dark(hm, x, y)
        else:
            coords = coords + self._quarter(hm.reshape(B, K, H * W), x, y, W, H)
        return coords * self.scale, val

    @staticmethod
    def _quarter(flat, x, y, W, H):
        """mmpose 1.x ``refine_keypoints``: +-0.25 towards the higher neighbour, per axis."""
        cx = (x > 1) & (x < W - 1) & (y > 0) & (y < H)
        cy = (y > 1) & (y < H - 1) & (x > 0) & (x < W)
        dx = _take2d(flat, x + 1, y, W, H) - _take2d(flat, x - 1, y, W, H)
        dy = _take2d(flat, x, y + 1, W, H) - _take2d(flat, x, y - 1, W, H)
        dx = torch.where(cx, dx, torch.zeros_like(dx))
        dy = torch.where(cy, dy, torch.zeros_like(dy))
        return torch.stack([torch.sign(dx), torch.sign(dy)], -1) * 0.25

    def _dark(self, hm, x, y):
        """mmpose ``refine_keypoints_dark`` (DarkPose Taylor step) where 1 < x < W-2, 1 < y < H-2."""
        B, K, H, W = hm.shape
        m = torch.log(self.blur(hm).clamp_min(1e-10)).reshape(B, K, H * W)

        def at(dx, dy):
            return _take2d(m, x + dx, y + dy, W, H)

        c = at(0, 0)
        gx = 0.5 * (at(1, 0) - at(-1, 0))
        gy = 0.5 * (at(0, 1) - at(0, -1))
        dxx = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
        dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
        dyy = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
        det = dxx * dyy - dxy * dxy
        ok = (x > 1) & (x < W - 2) & (y > 1) & (y < H - 2) & (det != 0)
        det = torch.where(ok, det, torch.ones_like(det))
        ox = -(dyy * gx - dxy * gy) / det
        oy = -(dxx * gy - dxy * gx) / det
        off = torch.stack([ox, oy], -1)
        return torch.where(ok.unsqueeze(-1), off, torch.zeros_like(off))

    def _dark_udp(self, hm, x, y):
        """mmpose 1.x ``refine_keypoints_dark_udp`` (clip 1e-3..50, log, edge pad 1)."""
        B, K, H, W = hm.shape
        m = torch.log(self.blur(hm).clamp(1e-3, 50.0))
        m = F.pad(m, (1, 1, 1, 1), mode="replicate").reshape(B, K, (H + 2) * (W + 2))
        px, py = x + 1, y + 1

        def at(dx, dy):
            return _take2d(m, px + dx, py + dy, W + 2, H + 2)

        c, xp, xm, yp, ym = at(0, 0), at(1, 0), at(-1, 0), at(0, 1), at(0, -1)
        gx, gy = 0.5 * (xp - xm), 0.5 * (yp - ym)
        eps = float(np.finfo(np.float32).eps)
        a = xp - 2 * c + xm + eps
        d = yp - 2 * c + ym + eps
        b = 0.5 * (at(1, 1) - xp - yp + c + c - xm - ym + at(-1, -1))
        det = a * d - b * b
        return -torch.stack([(d * gx - b * gy) / det, (a * gy - b * gx) / det], -1)


class SimCCDecoder(nn.Module):
    """mmpose ``SimCCLabel.decode``: first maximum per axis, score the smaller maximum, the
    -1 sentinel where it is <= 0, optional 1-D DARK, divided by ``split_ratio``."""

    def __init__(self, codec):
        super().__init__()
        from ..ops.decode import simcc_dark_kernel
        self.split_ratio = float(codec.split_ratio)
        self.dark = bool(codec.decode_dark)
        sx, sy = codec.sigma if isinstance(codec.sigma, (list, tuple)) else (codec.sigma,) * 2
        self.blur_x = _Blur1d(simcc_dark_kernel(sx)) if self.dark else None
        self.blur_y = _Blur1d(simcc_dark_kernel(sy)) if self.dark else None

    def forward(self, outputs):
        sx, sy = outputs[0].float(), outputs[1].float()
        vx, ix = sx.amax(-1), sx.argmax(-1)
        vy, iy = sy.amax(-1), sy.argmax(-1)
        score = torch.minimum(vx, vy)
        locs = torch.stack([ix, iy], -1).to(sx.dtype)
        locs = torch.where((score > 0).unsqueeze(-1), locs, torch.full_like(locs, -1.0))
        if self.dark:
            locs = torch.stack([self._refine(locs[..., 0], sx, self.blur_x),
                                self._refine(locs[..., 1], sy, self.blur_y)], -1)
        return locs / self.split_ratio, score

    @staticmethod
    def _refine(loc, v, blur):
        m = torch.log(blur(v).clamp(1e-3, 50.0))
        m = F.pad(m, (2, 2), mode="replicate")
        px = (loc + 2.5).long()
        n = m.shape[-1]

        def at(d):   # a negative index wraps around, as numpy's in mmpose (the sentinel)
            i = px + d
            i = torch.where(i < 0, i + n, i)
            return m.gather(-1, i.unsqueeze(-1)).squeeze(-1)

        dx = 0.5 * (at(1) - at(-1))
        dxx = 1e-9 + 0.25 * (at(2) - 2 * at(0) + at(-2))
        return loc - dx / dxx


class IntegralDecoder(nn.Module):
    """``ipr`` / ``dsnt`` (the same expectation in pixels) and ``dipr`` soft-argmax times the
    stride; score: the softmax mass in the 3x3 window at the maximum."""

    def __init__(self, codec):
        super().__init__()
        self.method, self.beta, self.form = codec.method, float(codec.beta), codec.debias_form
        stride = np.asarray(codec.input_size, np.float32) / np.asarray(codec.heatmap_size, np.float32)
        self.register_buffer("stride", torch.from_numpy(stride), persistent=False)

    def forward(self, logits: Tensor):
        h = logits.float()
        B, K, H, W = h.shape
        z = (h * self.beta).reshape(B, K, H * W)
        p = torch.softmax(z, -1).reshape(B, K, H, W)
        xs = torch.arange(W, dtype=h.dtype, device=h.device)
        ys = torch.arange(H, dtype=h.dtype, device=h.device)
        J = torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], -1)
        if self.method == "dipr":
            if self.form == "paper":
                mx = z.amax(-1, keepdim=True)
                u = torch.exp(-mx) / torch.exp(z - mx).mean(-1, keepdim=True)
                centre = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=h.dtype, device=h.device)
            else:
                hf = h.reshape(B, K, H * W)
                mx = hf.amax(-1, keepdim=True)
                u = torch.exp(-mx) / torch.exp(hf - mx).sum(-1, keepdim=True)
                centre = torch.tensor([W / 2, H / 2], dtype=h.dtype, device=h.device)
            J = (J - centre * u) / (1 - u)
        score = (F.avg_pool2d(p, 3, 1, 1) * 9).flatten(2).amax(-1)
        return J * self.stride, score


class RegressionDecoder(nn.Module):
    def __init__(self, codec):
        super().__init__()
        self.register_buffer("size", torch.tensor(codec.input_size, dtype=torch.float32),
                             persistent=False)

    def forward(self, outputs: Tensor):
        coords = outputs.float()[..., :2] * self.size
        return coords, torch.ones_like(coords[..., 0])


class CodecDecoder(nn.Module):
    """A codec whose ``decode`` is plain torch already (``lift3d``)."""

    def __init__(self, codec):
        super().__init__()
        self.codec = codec

    def forward(self, outputs):
        return self.codec.decode(outputs)


def torch_decoder(codec) -> nn.Module:
    """The plain-torch decode module of a codec (see the module docstring)."""
    from ..codecs.heatmap import MSRAHeatmap
    from ..codecs.lift3d import Lift3DCodec
    from ..codecs.pipnet import PIPNetLabel
    from ..codecs.regression import IntegralRegressionLabel, RegressionLabel
    from ..codecs.simcc import SimCCLabel
    from ..codecs.volumetric import VolumetricC2F, VolumetricDecoder
    if isinstance(codec, MSRAHeatmap):
        return HeatmapDecoder(codec)
    if isinstance(codec, SimCCLabel):
        return SimCCDecoder(codec)
    if isinstance(codec, IntegralRegressionLabel):
        return IntegralDecoder(codec)
    if isinstance(codec, RegressionLabel):
        return RegressionDecoder(codec)
    if isinstance(codec, (Lift3DCodec, PIPNetLabel)):
        return CodecDecoder(codec)
    if isinstance(codec, VolumetricC2F):
        return VolumetricDecoder(codec)
    if codec.groups_people:
        raise NotImplementedError(
            f"export: the {type(codec).__name__} codec's decode groups people, which is "
            "data-dependent and not exportable; export with with_decode=False (the raw maps) "
            f"and group with {type(codec).__name__}.decode_instances")
    raise NotImplementedError(f"export: no export decode for codec {type(codec).__name__}")


class _NoMHAFastPath:
    """nn.MultiheadAttention's inference fast path (``aten::_native_multi_head_attention``)
    has no ONNX symbolic and no export decomposition: off while tracing."""

    def __enter__(self):
        mha = getattr(torch.backends, "mha", None)
        self.prev = mha.get_fastpath_enabled() if mha is not None else None
        if mha is not None:
            mha.set_fastpath_enabled(False)

    def __exit__(self, *exc):
        if self.prev is not None:
            torch.backends.mha.set_fastpath_enabled(self.prev)


class ExportModule(nn.Module):
    """``forward(inputs)``: the model's final raw outputs as a tuple of tensors, or with
    ``with_decode`` ``(keypoints, scores)`` decoded in plain torch ops."""

    def __init__(self, model, with_decode: bool = False):
        super().__init__()
        self.model = model
        self.with_decode = bool(with_decode)
        self.decoder = torch_decoder(model.codec) if with_decode else None

    def forward(self, inputs: Tensor):
        out = self.model.head.final_outputs(self.model(inputs))
        if self.decoder is not None:
            return tuple(self.decoder(out))
        return (out,) if isinstance(out, Tensor) else tuple(out)


def output_names(model, with_decode: bool) -> list:
    if with_decode:
        return ["keypoints", "scores"]
    from ..codecs.paf import PAFCodec
    from ..codecs.simcc import SimCCLabel
    if isinstance(model.codec, SimCCLabel):
        return ["simcc_x", "simcc_y"]
    if isinstance(model.codec, PAFCodec):
        return ["heatmaps", "pafs"]
    return ["outputs"]


def example_input(model, input_size: Optional[Sequence[int]] = None, batch_size: int = 1) -> Tensor:
    """A normalised-image-shaped input ``(B, 3, H, W)`` for ``input_size`` ``(W, H)`` (default:
    the codec's), or ``(B, K, 2)`` for a 2-D -> 3-D lifter."""
    from ..codecs.lift3d import Lift3DCodec
    g = torch.Generator().manual_seed(0)
    device = next(iter(model.parameters())).device
    if isinstance(model.codec, Lift3DCodec):
        x = torch.randn(batch_size, int(model.codec.mean_2d.shape[0]), 2, generator=g)
    else:
        W, H = (input_size if input_size is not None else model.codec.input_size)
        x = torch.randn(batch_size, 3, int(H), int(W), generator=g)
    return x.to(device)


def export_onnx(model, path: str, input_size: Optional[Sequence[int]] = None, *,
                with_decode: bool = False, batch_size: int = 1, dynamic_batch: bool = True,
                opset_version: int = 17) -> str:
    """Write ``model`` (a PoseModel, eval mode is set) as ONNX to ``path``: input ``input``
    ``(B, 3, H, W)`` (``input_size`` ``(W, H)``, default the codec's; a lifter: ``(B, K,
    2)``), outputs :func:`output_names` (raw outputs, or ``keypoints``/``scores`` with
    ``with_decode``), batch dimension dynamic unless ``dynamic_batch=False``. Uses the
    TorchScript-based exporter (no onnxscript needed)."""
    model.eval()
    wrapper = ExportModule(model, with_decode).eval()
    x = example_input(model, input_size, batch_size)
    names = output_names(model, with_decode)
    axes = {n: {0: "batch"} for n in ["input"] + names} if dynamic_batch else None
    import warnings
    with torch.no_grad(), warnings.catch_warnings(), _NoMHAFastPath():
        warnings.simplefilter("ignore", DeprecationWarning)   # the TorchScript-based exporter
        torch.onnx.export(wrapper, (x,), path, input_names=["input"], output_names=names,
                          dynamic_axes=axes, opset_version=opset_version, dynamo=False)
    return path


def export_program(model, input_size: Optional[Sequence[int]] = None, *,
                   with_decode: bool = False, batch_size: int = 2, dynamic_batch: bool = True,
                   path: Optional[str] = None):
    """``torch.export.export`` of the :class:`ExportModule` (the batch dimension dynamic unless
    ``dynamic_batch=False``); saved with ``torch.export.save`` when ``path`` is given.

    The graph may call pyhpe's compiled ops only where plain torch would do: it does not (the
    decode is :func:`torch_decoder`), so the program runs wherever torch does."""
    model.eval()
    wrapper = ExportModule(model, with_decode).eval()
    x = example_input(model, input_size, batch_size)
    dyn = ({"inputs": {0: torch.export.Dim("batch", min=1, max=1024)}},) if dynamic_batch else None
    with torch.no_grad(), _NoMHAFastPath():
        try:
            prog = torch.export.export(wrapper, (x,), dynamic_shapes=dyn[0] if dyn else None)
        except Exception:
            if not dynamic_batch:
                raise
            # some graphs specialise on the batch (e.g. reshape with a constant): export it fixed
            prog = torch.export.export(wrapper, (x,))
    if path is not None:
        torch.export.save(prog, path)
    return prog


__all__ = ["ExportModule", "HeatmapDecoder", "IntegralDecoder", "RegressionDecoder",
           "SimCCDecoder", "example_input", "export_onnx", "export_program", "output_names",
           "torch_decoder"]
