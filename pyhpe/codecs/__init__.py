"""Codecs: one object per target representation, between keypoints and network outputs.

``build_codec(name, **cfg)`` / ``list_codecs()``; ``build_codec(**codec.to_config())`` round
trips. Targets are made for a whole collated batch in one pyhpe.ops kernel call.
"""
from __future__ import annotations

from typing import Dict, List

from .ae import AEOutputs, AssociativeEmbedding
from .base import Codec
from .body3d import DconvMPCodec, MPPE3DCodec, ORPMCodec, VNectCodec
from .deepercut import DeeperCutLabel
from .heatmap import MSRAHeatmap, UDPHeatmap, UnbiasedHeatmap
from .lift3d import Lift3DCodec
from .multilevel import MultiLevelHeatmap
from .paf import PAFCodec, PAFOutputs
from .pipnet import PIPNetLabel
from .regression import IntegralRegressionLabel, RegressionLabel
from .simcc import SimCCLabel
from .volumetric import VolumetricC2F

CODECS: Dict[str, type] = {cls.name: cls for cls in (
    MSRAHeatmap, UnbiasedHeatmap, UDPHeatmap, SimCCLabel, RegressionLabel,
    IntegralRegressionLabel, PAFCodec, Lift3DCodec, MultiLevelHeatmap, PIPNetLabel, DeeperCutLabel,
    MPPE3DCodec, VNectCodec, DconvMPCodec, ORPMCodec, AssociativeEmbedding, VolumetricC2F)}


def list_codecs() -> List[str]:
    return sorted(CODECS)


def build_codec(name: str, **cfg) -> Codec:
    """A codec by name (see :func:`list_codecs`) with its constructor's keyword arguments."""
    if name not in CODECS:
        raise ValueError(f"build_codec: unknown codec {name!r}; known: {list_codecs()}")
    return CODECS[name](**cfg)


__all__ = ["CODECS", "Codec", "IntegralRegressionLabel", "Lift3DCodec", "MSRAHeatmap",
           "PAFCodec", "PAFOutputs", "RegressionLabel", "SimCCLabel", "UDPHeatmap",
           "UnbiasedHeatmap", "build_codec", "list_codecs"]
