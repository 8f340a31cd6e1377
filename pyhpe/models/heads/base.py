"""BaseHead: a head owns its codec, its loss and its prediction."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from ...codecs import Codec


def average_outputs(a, b):
    """Mean of two outputs of the same structure (tensor, or tuple / NamedTuple of tensors)."""
    if isinstance(a, Tensor):
        return (a.float() + b.float()) / 2
    return type(a)(*[average_outputs(x, y) for x, y in zip(a, b)]) if hasattr(a, "_fields") \
        else type(a)(average_outputs(x, y) for x, y in zip(a, b))


class BaseHead(nn.Module):
    """``forward(feats) -> outputs`` (multi-stage heads return every stage, a list),
    ``loss(outputs, targets) -> {name: loss}`` (the engine sums them) and
    ``predict(outputs, flipped_outputs=None, flip_index=None) -> (keypoints, scores)``
    through ``self.codec``.

    ``joint_weights`` (K,) (e.g. ``KeypointSet.joint_weights``) multiply the codec's
    ``keypoint_weights`` inside the loss.
    """

    def __init__(self, codec: Codec, joint_weights=None):
        super().__init__()
        if not isinstance(codec, Codec):
            raise TypeError(f"{type(self).__name__}: 'codec' must be a pyhpe.codecs.Codec, got "
                            f"{type(codec).__name__}")
        self.codec = codec
        jw = None if joint_weights is None else torch.as_tensor(joint_weights, dtype=torch.float32)
        self.register_buffer("joint_weights", jw, persistent=False)

    def keypoint_weights(self, targets: Dict[str, Tensor]) -> Tensor:
        w = targets["keypoint_weights"].float()
        if self.joint_weights is not None:
            if self.joint_weights.numel() != w.shape[-1]:
                raise ValueError(f"{type(self).__name__}: {self.joint_weights.numel()} joint "
                                 f"weights for {w.shape[-1]} keypoints")
            w = w * self.joint_weights.to(w.device)
        return w

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        raise NotImplementedError

    def final_outputs(self, outputs):
        """What prediction decodes: the last stage of a multi-stage head."""
        return outputs

    def predict(self, outputs, flipped_outputs=None, flip_index: Optional[Sequence[int]] = None):
        outputs = self.final_outputs(outputs)
        if flipped_outputs is not None:
            back = self.codec.flip_back(self.final_outputs(flipped_outputs), flip_index)
            outputs = average_outputs(outputs, back)
        return self.codec.decode(outputs)
