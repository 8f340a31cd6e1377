"""Encode/decode objects between keypoints and network targets (MSRA/DARK heatmaps, SimCC)."""
from .msra import MSRAHeatmap
from .simcc import SimCCLabel
from ._fallback import argmax_decode_torch, dark_decode_torch, msra_heatmaps_torch

__all__ = ["MSRAHeatmap", "SimCCLabel", "argmax_decode_torch", "dark_decode_torch",
           "msra_heatmaps_torch"]
