"""2-D pose estimation + matching (Chen & Ramanan, CVPR 2017): 3-D pose from a 2-D pose by
nearest-neighbour search in a library of 3-D poses projected to 2-D.

* Library: root-relative 3-D poses ``(N, K, 3)`` mm (the training set), each seen from
  ``num_views`` virtual cameras turned about the vertical (camera y) axis around the root
  (``num_views = 1``: the poses as the training cameras saw them).
* Projection (``projection``): ``"orthographic"`` (x, y: the weak-perspective model up to the
  scale the normalisation removes) or ``"perspective"`` (the pose placed at ``depth`` mm in
  front of a pinhole camera, ``x / (z + depth)``).
* Matching: 2-D poses (input and library) are root-centred and scaled to unit RMS radius
  (translation and scale invariant), then the nearest library entry in Euclidean distance
  over the visible joints (``torch.cdist`` on the model's device, queries in batches,
  the library in chunks of ``chunk`` entries, so memory stays ``O(batch * chunk)``);
  ``top_k`` > 1 averages the ``top_k`` nearest 3-D poses.
* Depth recovery (``depth_recovery``): ``"exemplar"`` returns the matched 3-D pose;
  ``"copy"`` (the paper's) keeps the matched pose's depths (root-relative z) and takes x, y
  from the input 2-D pose, rescaled to the matched pose's metric size (least-squares scale of
  the centred input onto the matched pose's projection; perspective: the input's normalised
  image coordinates times the matched pose's depth ``z + depth``).

:class:`Matching3D` has no trainable weights; the library is a buffer (saved in checkpoints).
The lift3d task builds it from its training set (``model.name: "matching3d"``).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

PROJECTIONS = ("orthographic", "perspective")
DEPTH_RECOVERY = ("copy", "exemplar")


def _yaw(angle: float) -> Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def project_library(poses: Tensor, projection: str, depth: float) -> Tensor:
    """Root-relative poses ``(N, K, 3)`` mm -> 2-D ``(N, K, 2)`` (orthographic: mm;
    perspective: normalised image coordinates ``x / (z + depth)``)."""
    if projection == "orthographic":
        return poses[..., :2]
    z = (poses[..., 2:3] + depth).clamp_min(1e-3 * depth)
    return poses[..., :2] / z


def normalize_2d(x: Tensor, weights: Optional[Tensor] = None, eps: float = 1e-9
                 ) -> Tuple[Tensor, Tensor, Tensor]:
    """Centre ``(B, K, 2)`` on the weighted mean joint and scale to unit RMS radius ->
    (normalised, centre (B, 1, 2), scale (B, 1, 1))."""
    w = torch.ones(x.shape[:2], device=x.device, dtype=x.dtype) if weights is None else weights.to(x.dtype)
    w = w[..., None]
    n = w.sum(1, keepdim=True).clamp_min(eps)
    centre = (x * w).sum(1, keepdim=True) / n
    d = (x - centre) * w
    scale = ((d ** 2).sum((1, 2), keepdim=True) / n).sqrt().clamp_min(eps)
    return d / scale, centre, scale


class Matching3D(nn.Module):
    """Nearest-neighbour 3-D pose from 2-D (see the module docstring).

    ``forward(inputs)``/``predict(inputs)``: the codec-standardised 2-D inputs ``(B, K, 2)``
    (the lift3d codec's) -> root-relative 3-D ``(B, K, 3)`` mm and scores (1); or use
    :meth:`match` on pixels directly. ``set_library(poses_3d)`` fills the library."""

    def __init__(self, num_keypoints: int = 17, codec=None, *, projection: str = "orthographic",
                 depth: float = 5000.0, num_views: int = 1, top_k: int = 1,
                 depth_recovery: str = "copy", chunk: int = 65536, batch: int = 1024,
                 root_index=0):
        super().__init__()
        if projection not in PROJECTIONS:
            raise ValueError(f"Matching3D: 'projection' must be one of {PROJECTIONS}, got {projection!r}")
        if depth_recovery not in DEPTH_RECOVERY:
            raise ValueError(f"Matching3D: 'depth_recovery' must be one of {DEPTH_RECOVERY}, "
                             f"got {depth_recovery!r}")
        for name, v in (("num_views", num_views), ("top_k", top_k), ("chunk", chunk),
                        ("batch", batch)):
            if int(v) < 1:
                raise ValueError(f"Matching3D: {name!r} must be >= 1, got {v}")
        if not depth > 0:
            raise ValueError(f"Matching3D: 'depth' must be > 0, got {depth}")
        self.codec, self.num_keypoints = codec, int(num_keypoints)
        self.projection, self.depth = projection, float(depth)
        self.num_views, self.top_k = int(num_views), int(top_k)
        self.depth_recovery, self.chunk, self.batch = depth_recovery, int(chunk), int(batch)
        self.root_index = list(getattr(codec, "root_index", np.atleast_1d(root_index)))
        self.register_buffer("library_3d", torch.zeros(0, num_keypoints, 3))
        self.register_buffer("library_2d", torch.zeros(0, num_keypoints, 2))

    def set_library(self, poses_3d) -> "Matching3D":
        """Root-relative 3-D poses ``(N, K, 3)`` mm: each seen from ``num_views`` yaw angles,
        projected and stored."""
        X = torch.as_tensor(np.asarray(poses_3d), dtype=torch.float32)
        if X.ndim != 3 or X.shape[1:] != (self.num_keypoints, 3):
            raise ValueError(f"Matching3D.set_library: expected (N, {self.num_keypoints}, 3), "
                             f"got {tuple(X.shape)}")
        if not torch.isfinite(X).all():
            raise ValueError("Matching3D.set_library: the poses hold NaN or inf")
        X = X - X[:, self.root_index].mean(1, keepdim=True)
        views = [X @ _yaw(2 * math.pi * v / self.num_views).T for v in range(self.num_views)]
        lib3 = torch.cat(views).to(self.library_3d.device)
        self.library_3d = lib3
        self.library_2d = normalize_2d(project_library(lib3, self.projection, self.depth))[0]
        return self

    def __len__(self):
        return len(self.library_3d)

    @torch.no_grad()
    def nearest(self, query: Tensor, weights: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Normalised 2-D queries ``(B, K, 2)`` -> (distances ``(B, top_k)``, library indices
        ``(B, top_k)``), the library searched in chunks."""
        if len(self) == 0:
            raise ValueError("Matching3D: the library is empty (set_library)")
        B, K = query.shape[:2]
        w = torch.ones(B, K, device=query.device) if weights is None else weights.float()
        q = (query * w[..., None]).reshape(B, -1)
        k = min(self.top_k, len(self))
        best_d = torch.full((B, k), float("inf"), device=query.device)
        best_i = torch.zeros(B, k, dtype=torch.long, device=query.device)
        for s in range(0, len(self), self.chunk):
            lib = self.library_2d[s:s + self.chunk]
            if weights is None:
                d = torch.cdist(q[None], lib.reshape(1, len(lib), -1))[0]
            else:   # hidden joints left out: |w q - w l|^2 = |w q|^2 - 2 (w q).l + w.|l_k|^2
                d2 = (q * q).sum(1, keepdim=True) - 2 * q @ lib.reshape(len(lib), -1).T \
                    + w @ (lib ** 2).sum(-1).T
                d = d2.clamp_min(0).sqrt()
            d_all = torch.cat([best_d, d], 1)
            i_all = torch.cat([best_i, torch.arange(s, s + len(lib), device=q.device).expand(B, -1)], 1)
            best_d, pos = d_all.topk(k, dim=1, largest=False)
            best_i = i_all.gather(1, pos)
        return best_d, best_i

    @torch.no_grad()
    def match(self, pose_2d: Tensor, visibility: Optional[Tensor] = None) -> Tensor:
        """2-D poses ``(B, K, 2)`` (pixels; perspective: normalised image coordinates, i.e.
        ``(u - c) / f``) -> root-relative 3-D ``(B, K, 3)`` mm."""
        out = []
        for s in range(0, len(pose_2d), self.batch):
            x = pose_2d[s:s + self.batch].float()
            v = None if visibility is None else visibility[s:s + self.batch].float()
            out.append(self._match(x, v))
        return torch.cat(out) if out else pose_2d.new_zeros(0, self.num_keypoints, 3)

    def _match(self, x: Tensor, v: Optional[Tensor]) -> Tensor:
        xn, _, _ = normalize_2d(x, v)
        _, idx = self.nearest(xn, v)
        X = self.library_3d[idx]                                # (B, k, K, 3)
        if self.depth_recovery == "exemplar":
            return X.mean(1)
        X = X.mean(1)
        # x, y of the input at the matched pose's metric scale, z of the matched pose
        proj = project_library(X, self.projection, self.depth)
        pn, pc, ps = normalize_2d(proj, v)
        xy = xn * ps + pc                                       # input in the exemplar's frame
        if self.projection == "orthographic":
            out = torch.cat([xy, X[..., 2:]], -1)
        else:
            z = X[..., 2:] + self.depth
            out = torch.cat([xy * z, X[..., 2:]], -1)
        return out - out[:, self.root_index].mean(1, keepdim=True)

    def forward(self, inputs: Tensor, targets=None):
        if targets is not None:
            raise RuntimeError("Matching3D: has no weights to train (the library is built from "
                               "the training set)")
        if self.codec is None:
            raise ValueError("Matching3D.forward: needs the lift3d codec (or call match)")
        return self.match(self.codec.denormalize_2d(inputs.float()))

    @torch.no_grad()
    def predict(self, inputs: Tensor, *, flip_test: bool = False, flip_index=None):
        kp = self(inputs)
        return kp, kp.new_ones(kp.shape[:-1])


def build(num_keypoints=17, codec=None, **kw) -> Matching3D:
    return Matching3D(num_keypoints, codec, **kw)


CONFIGS = {"paper": dict(projection="orthographic", num_views=1, top_k=1, depth_recovery="copy"),
           "tiny": dict(projection="orthographic", num_views=1, top_k=1, depth_recovery="copy",
                        chunk=4096, batch=256)}

__all__ = ["CONFIGS", "DEPTH_RECOVERY", "Matching3D", "PROJECTIONS", "build", "normalize_2d",
           "project_library"]
