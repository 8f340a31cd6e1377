"""Coarse-to-fine volumetric targets (Pavlakos et al., CVPR 2017) and their integral decoding.

Keypoints are ``(x, y, z)``: x, y in input-image pixels (pixel centres at integers, as every
codec), z the depth relative to the root joint in millimetres. The volume of the finest level
is ``(D, H, W)`` = ``(depth, heatmap_size[1], heatmap_size[0])``; z maps linearly onto its D
voxels over ``depth_range`` millimetres centred on the root (the paper: 64 bins over 2 m).

Level i of ``res_z`` (the paper: 1, 2, 4, 64 for four hourglasses) has ``res_z[i]`` depth bins
over the same range. The finest level (``res_z[i] == D``) is a 3-D Gaussian of ``sigma``
voxels (:func:`pyhpe.ops.gaussian_volumes`, the MSRA heatmap rule in three axes); a coarser
level's depth spread ``sigma * res / D`` is below one bin (the paper's ``size_z`` is 1 there),
so its target is the 2-D Gaussian in the bin holding the keypoint and zero elsewhere; levels
whose depth spread reaches a bin are refused. Weights: the visibility, 0 where the keypoint
misses the finest volume.

Decoding: :func:`pyhpe.ops.soft_argmax_3d` of the finest volume with ``beta`` (the network is
trained with the paper's L2 to peak-1 Gaussians, so a sharp softmax, beta = 20 by default, reads
the peak's neighbourhood; beta -> inf is the paper's argmax), scores the volume's maximum.
The paper's Human3.6M evaluation back-projects the decoded joints at the ground-truth root
depth (the image3d task, :func:`pyhpe.codecs.body3d.back_project`).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .base import Codec, as_size, check_flip_index, shift_last_dim


class VolumetricC2F(Codec):
    name = "volumetric"

    def __init__(self, input_size=(256, 256), heatmap_size=(64, 64), res_z: Sequence[int] = (
            1, 2, 4, 64), sigma: float = 2.0, depth_range: float = 2000.0, beta: float = 20.0,
                 root_index: int = 0):
        who = "VolumetricC2F"
        self.root_index = int(root_index)
        self.input_size = as_size(input_size, "input_size", who)
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", who)
        self.res_z = tuple(int(r) for r in res_z)
        if not self.res_z or min(self.res_z) <= 0:
            raise ValueError(f"{who}: 'res_z' must be positive depth resolutions, got {res_z!r}")
        self.depth = max(self.res_z)
        if self.res_z[-1] != self.depth:
            raise ValueError(f"{who}: the last level of 'res_z' must be the finest, got {res_z!r}")
        self.sigma = float(sigma)
        self.depth_range = float(depth_range)
        self.beta = float(beta)
        if not (self.sigma > 0 and self.depth_range > 0 and self.beta > 0):
            raise ValueError(f"{who}: 'sigma', 'depth_range' and 'beta' must be positive")
        for r in self.res_z:
            if r != self.depth and 3 * self.sigma * r / self.depth >= 1:
                raise ValueError(f"{who}: level res_z={r} has a depth spread of "
                                 f"{self.sigma * r / self.depth:g} bins (>= 1/3); only the finest "
                                 f"level draws a depth Gaussian")

    # ---- coordinates -------------------------------------------------------------------
    def _scale(self, device, dtype) -> Tensor:
        (wi, hi), (wh, hh) = self.input_size, self.heatmap_size
        return torch.tensor([wh / wi, hh / hi], dtype=dtype, device=device)

    def to_voxels(self, keypoints: Tensor) -> Tensor:
        """``(.., 3)`` (x, y input pixels, z mm) -> voxels of the finest volume."""
        xy = keypoints[..., :2] * self._scale(keypoints.device, keypoints.dtype)
        z = (keypoints[..., 2:3] / self.depth_range + 0.5) * self.depth - 0.5
        return torch.cat([xy, z], -1)

    def from_voxels(self, voxels: Tensor) -> Tensor:
        xy = voxels[..., :2] / self._scale(voxels.device, voxels.dtype)
        z = ((voxels[..., 2:3] + 0.5) / self.depth - 0.5) * self.depth_range
        return torch.cat([xy, z], -1)

    # ---- codec -------------------------------------------------------------------------
    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, *,
               keypoints_3d: Optional[Tensor] = None, **meta) -> Dict[str, Tensor]:
        """``keypoints (B, K, 3)`` -> ``volumes_<i> (B, K, res_z[i], H, W)`` per level and
        ``keypoint_weights (B, K)``. ``(B, K, 2)`` keypoints take their depth from
        ``keypoints_3d (B, K, 3)`` (camera-frame mm, as the image3d task passes): z = Z -
        Z[root_index]; without it, the root's depth (z = 0)."""
        from ..ops import gaussian_volumes
        kp = torch.as_tensor(keypoints).float()
        if kp.dim() == 3 and kp.shape[-1] == 2:
            if keypoints_3d is None:
                z = kp.new_zeros(kp.shape[:2] + (1,))
            else:
                P = torch.as_tensor(keypoints_3d, device=kp.device).float()
                if P.shape != kp.shape[:2] + (3,):
                    raise ValueError(f"VolumetricC2F.encode: 'keypoints_3d' must be (B, K, 3) "
                                     f"camera-frame mm, got shape {tuple(P.shape)}")
                r = self.root_index
                z = P[..., 2:3] - P[:, r:r + 1, 2:3]
            kp = torch.cat([kp, z], -1)
        if kp.dim() != 3 or kp.shape[-1] != 3:
            raise ValueError(f"VolumetricC2F.encode: 'keypoints' must be (B, K, 3) (x, y, z mm), "
                             f"got shape {tuple(kp.shape)}")
        vis = kp.new_ones(kp.shape[:2]) if visibility is None else \
            torch.as_tensor(visibility, device=kp.device).float().clamp(0, 1)
        vox = self.to_voxels(kp)
        W, H = self.heatmap_size
        fine, weights = gaussian_volumes(vox, vis, (W, H, self.depth), sigma=self.sigma)
        flat = vox.clone()
        flat[..., 2] = 0.0
        plane = None
        out: Dict[str, Tensor] = {}
        for i, r in enumerate(self.res_z):
            if r == self.depth:
                out[f"volumes_{i}"] = fine
                continue
            if plane is None:  # the 2-D MSRA Gaussian (a one-slice volume)
                plane = gaussian_volumes(flat, vis, (W, H, 1), sigma=self.sigma).volumes
            zr = (vox[..., 2] + 0.5) * r / self.depth - 0.5
            bin_ = torch.floor(zr + 0.5)
            onehot = (torch.arange(r, device=kp.device, dtype=kp.dtype) == bin_[..., None])
            out[f"volumes_{i}"] = plane * onehot.to(plane.dtype)[..., None, None]
        out["keypoint_weights"] = weights
        return out

    def decode(self, outputs: Tensor, **meta) -> Tuple[Tensor, Tensor]:
        """Finest volumes ``(B, K, D, H, W)`` -> keypoints ``(B, K, 3)`` (x, y input pixels,
        z mm relative to the root) and scores ``(B, K)`` (the volume maxima)."""
        from ..ops import soft_argmax_3d
        v = outputs.float()
        vox = soft_argmax_3d(v, beta=self.beta)
        return self.from_voxels(vox), v.flatten(2).amax(-1)

    def flip_back(self, outputs_flipped, flip_index: Sequence[int]):
        """Volumes of the mirrored input -> the input's: mirrored along W, joints swapped by
        ``flip_index`` and moved ``1 - 1/stride`` voxels right (as 2-D heatmaps, flip_maps)."""
        idx = check_flip_index(flip_index, outputs_flipped.shape[1], "VolumetricC2F.flip_back")
        stride = self.input_size[0] / self.heatmap_size[0]
        return shift_last_dim(outputs_flipped.flip(-1)[:, idx], 1.0 - 1.0 / stride)

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "res_z": list(self.res_z),
                "sigma": self.sigma, "depth_range": self.depth_range, "beta": self.beta,
                "root_index": self.root_index}


class VolumetricDecoder(torch.nn.Module):
    """:meth:`VolumetricC2F.decode` in plain torch ops (softmax over the voxels and the three
    weighted sums), for export (ONNX, ``torch.export``), where pyhpe's compiled ops are not
    available; equal to the codec's decode to float rounding."""

    def __init__(self, codec: VolumetricC2F):
        super().__init__()
        self.codec = codec

    def forward(self, volumes: Tensor):
        v = volumes.float()
        B, K, D, H, W = v.shape
        p = torch.softmax(v.reshape(B, K, D * H * W) * self.codec.beta, -1).reshape(B, K, D, H, W)
        grid = [torch.arange(n, dtype=v.dtype, device=v.device) for n in (W, H, D)]
        vox = torch.stack([(p.sum((2, 3)) * grid[0]).sum(-1), (p.sum((2, 4)) * grid[1]).sum(-1),
                           (p.sum((3, 4)) * grid[2]).sum(-1)], -1)
        return self.codec.from_voxels(vox), v.reshape(B, K, -1).amax(-1)


__all__ = ["VolumetricC2F", "VolumetricDecoder"]
