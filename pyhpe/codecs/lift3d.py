"""2-D -> 3-D lifting codec (Martinez et al. 2017; mmpose ``ImagePoseLifting``): root-centred,
per-coordinate standardised 2-D inputs and root-relative standardised 3-D targets."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .base import Codec, check_flip_index, keypoints_and_visibility


def _stats(value, name: str, dims: int) -> np.ndarray:
    a = np.asarray(value, dtype=np.float32)
    if a.ndim == 1:
        if a.size % dims:
            raise ValueError(f"Lift3DCodec: '{name}' of length {a.size} is not a multiple of {dims}")
        a = a.reshape(-1, dims)
    if a.ndim != 2 or a.shape[1] != dims:
        raise ValueError(f"Lift3DCodec: '{name}' must be (K, {dims}) or (K * {dims},), got {a.shape}")
    return a


class Lift3DCodec(Codec):
    """Inputs: 2-D keypoints minus the root (``center_2d``), standardised with
    ``mean_2d``/``std_2d``; targets: 3-D keypoints (``keypoints_3d`` meta, mm) minus the root,
    standardised with ``mean_3d``/``std_3d``. The root is joint ``root_index`` or the mean of
    several joints (e.g. COCO's hips). Stats are ``(K, 2)``/``(K, 3)`` (or flat);
    :meth:`from_data` computes them from training poses (std floored at 1e-3, for the zero
    root). Decoding returns root-relative 3-D keypoints in mm, scores 1."""

    name = "lift3d"

    def __init__(self, root_index: Union[int, Sequence[int]] = 0, mean_2d=None, std_2d=None,
                 mean_3d=None, std_3d=None, center_2d: bool = True):
        self.root_index = [int(root_index)] if np.ndim(root_index) == 0 else [int(r) for r in root_index]
        if any(v is None for v in (mean_2d, std_2d, mean_3d, std_3d)):
            raise ValueError("Lift3DCodec: 'mean_2d', 'std_2d', 'mean_3d' and 'std_3d' are needed "
                             "(Lift3DCodec.from_data computes them)")
        self.mean_2d, self.std_2d = _stats(mean_2d, "mean_2d", 2), _stats(std_2d, "std_2d", 2)
        self.mean_3d, self.std_3d = _stats(mean_3d, "mean_3d", 3), _stats(std_3d, "std_3d", 3)
        if not (self.mean_2d.shape == self.std_2d.shape and self.mean_3d.shape == self.std_3d.shape):
            raise ValueError("Lift3DCodec: means and stds must have equal shapes")
        if (self.std_2d <= 0).any() or (self.std_3d <= 0).any():
            raise ValueError("Lift3DCodec: stds must be positive")
        self.center_2d = bool(center_2d)

    @classmethod
    def from_data(cls, pose_2d, pose_3d, root_index: Union[int, Sequence[int]] = 0,
                  center_2d: bool = True, min_std: float = 1e-3) -> "Lift3DCodec":
        """Stats of training poses ``(N, K, 2)`` pixels and ``(N, K, 3)`` mm."""
        roots = [int(root_index)] if np.ndim(root_index) == 0 else list(root_index)
        p2 = np.asarray(pose_2d, np.float64)
        p3 = np.asarray(pose_3d, np.float64)
        if center_2d:
            p2 = p2 - p2[:, roots].mean(1, keepdims=True)
        p3 = p3 - p3[:, roots].mean(1, keepdims=True)
        return cls(roots if len(roots) > 1 else roots[0], p2.mean(0), np.maximum(p2.std(0), min_std),
                   p3.mean(0), np.maximum(p3.std(0), min_std), center_2d)

    @property
    def num_keypoints(self) -> int:
        return self.mean_2d.shape[0]

    def _t(self, a: np.ndarray, like: Tensor) -> Tensor:
        return torch.as_tensor(a, device=like.device, dtype=like.dtype)

    def _root(self, x: Tensor) -> Tensor:
        return x[..., self.root_index, :].mean(-2, keepdim=True)

    def normalize_2d(self, keypoints: Tensor) -> Tensor:
        x = keypoints - self._root(keypoints) if self.center_2d else keypoints
        return (x - self._t(self.mean_2d, x)) / self._t(self.std_2d, x)

    def denormalize_2d(self, inputs: Tensor) -> Tensor:
        return inputs * self._t(self.std_2d, inputs) + self._t(self.mean_2d, inputs)

    def normalize_3d(self, keypoints_3d: Tensor) -> Tensor:
        x = keypoints_3d - self._root(keypoints_3d)
        return (x - self._t(self.mean_3d, x)) / self._t(self.std_3d, x)

    def denormalize_3d(self, outputs: Tensor) -> Tensor:
        return outputs * self._t(self.std_3d, outputs) + self._t(self.mean_3d, outputs)

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, *,
               keypoints_3d: Optional[Tensor] = None, **meta) -> Dict[str, Tensor]:
        """``inputs (B, K, 2)``, ``keypoint_weights (B, K)`` and, with ``keypoints_3d``
        ``(B, K, 3)`` mm, ``keypoint_labels (B, K, 3)``."""
        kp, vis = keypoints_and_visibility(keypoints, visibility, "Lift3DCodec.encode", dims=(3,))
        if kp.shape[1] != self.num_keypoints:
            raise ValueError(f"Lift3DCodec.encode: expected {self.num_keypoints} keypoints, got "
                             f"{kp.shape[1]}")
        out = {"inputs": self.normalize_2d(kp), "keypoint_weights": vis}
        if keypoints_3d is not None:
            k3 = torch.as_tensor(keypoints_3d, device=kp.device).to(torch.float32)
            if k3.shape != kp.shape[:-1] + (3,):
                raise ValueError(f"Lift3DCodec.encode: 'keypoints_3d' must be "
                                 f"{tuple(kp.shape[:-1]) + (3,)}, got {tuple(k3.shape)}")
            out["keypoint_labels"] = self.normalize_3d(k3)
        return out

    def decode(self, outputs: Tensor, **meta) -> Tuple[Tensor, Tensor]:
        """``(B, K, 3)`` standardised outputs -> root-relative mm, scores 1."""
        kp = self.denormalize_3d(outputs.detach().float())
        return kp, kp.new_ones(kp.shape[:-1])

    def _mirror(self, x: Tensor, flip_index: Sequence[int]) -> Tensor:
        idx = check_flip_index(flip_index, x.shape[-2], "Lift3DCodec.flip")
        x = x[..., idx, :].clone()
        x[..., 0] = -x[..., 0]
        return x

    def flip_inputs(self, inputs: Tensor, flip_index: Sequence[int]) -> Tensor:
        """Standardised 2-D inputs of the mirrored pose (root-centred x negated, left/right
        swapped); needs ``center_2d`` (an uncentred x has no mirror without the image width)."""
        if not self.center_2d:
            raise ValueError("Lift3DCodec.flip_inputs: flip test needs center_2d=True")
        raw = self._mirror(self.denormalize_2d(inputs), flip_index)
        return (raw - self._t(self.mean_2d, raw)) / self._t(self.std_2d, raw)

    def flip_back(self, outputs_flipped: Tensor, flip_index: Sequence[int]) -> Tensor:
        raw = self._mirror(self.denormalize_3d(outputs_flipped), flip_index)
        return (raw - self._t(self.mean_3d, raw)) / self._t(self.std_3d, raw)

    def flip_keypoints(self, keypoints: Tensor, flip_index: Sequence[int]) -> Tensor:
        return self._mirror(keypoints, flip_index)

    def to_config(self) -> dict:
        return {"name": self.name,
                "root_index": self.root_index if len(self.root_index) > 1 else self.root_index[0],
                "mean_2d": self.mean_2d.tolist(), "std_2d": self.std_2d.tolist(),
                "mean_3d": self.mean_3d.tolist(), "std_3d": self.std_3d.tolist(),
                "center_2d": self.center_2d}
