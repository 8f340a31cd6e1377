"""PoseModel: backbone (+ neck) + head; the loss path runs through ``forward``."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from .heads.base import BaseHead


class PoseModel(nn.Module):
    """``forward(inputs)`` -> the head's outputs (every stage for multi-stage heads);
    ``forward(inputs, targets)`` -> the head's named losses (so DistributedDataParallel sees
    the whole training computation, intermediate supervision included);
    ``predict(inputs, flip_test=, flip_index=)`` -> decoded ``(keypoints, scores)``.

    ``predict`` does not change the train/eval mode; call ``eval()`` first for inference.

    ``scai``: an optional :class:`~pyhpe.models.scai.SCAIOption` (the top-down task's
    ``model.scai``): its losses join the head's, and ``predict`` corrects low-confidence
    terminal keypoints with it (``predict(scai=False)``, or its ``infer`` off, skips that).
    """

    def __init__(self, backbone: nn.Module, head: BaseHead, neck: Optional[nn.Module] = None):
        super().__init__()
        if not isinstance(head, BaseHead):
            raise TypeError(f"PoseModel: 'head' must be a BaseHead, got {type(head).__name__}")
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.scai = None

    @property
    def codec(self):
        return self.head.codec

    def extract_features(self, inputs: Tensor):
        feats = self.backbone(inputs)
        return feats if self.neck is None else self.neck(feats)

    def forward(self, inputs: Tensor, targets: Optional[Dict[str, Tensor]] = None):
        outputs = self.head(self.extract_features(inputs))
        if targets is None:
            return outputs
        losses = self.head.loss(outputs, targets)
        if self.scai is not None:
            losses = dict(losses, **self.scai.losses(targets))
        return losses

    @torch.no_grad()
    def predict(self, inputs: Tensor, *, flip_test: bool = False,
                flip_index: Optional[Sequence[int]] = None, scai: Optional[bool] = None):
        outputs = self(inputs)
        flipped = None
        if flip_test:
            if flip_index is None:
                raise ValueError("PoseModel.predict: flip_test=True needs 'flip_index' "
                                 "(KeypointSet.flip_index())")
            flipped = self(self.codec.flip_inputs(inputs, flip_index))
        if self.scai is not None and (self.scai.infer if scai is None else scai):
            return self.scai.predict(self.head, outputs, flipped, flip_index)
        return self.head.predict(outputs, flipped, flip_index)
