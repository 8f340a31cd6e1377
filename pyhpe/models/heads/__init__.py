"""Heads: each owns its codec, its loss (named terms) and its prediction."""
from .ae import AssociativeEmbeddingHead, associative_embedding_loss
from .base import BaseHead, average_outputs
from .body3d import DconvMPHead, MPPE3DHead, ORPMHead, VNectHead
from .heatmap import HeatmapHead, IntegralHead, check_map_size, default_heatmap_codec, heatmap_model
from .lift import LiftHead
from .paf import PAFHead
from .regression import RegressionHead
from .simcc import SimCCHead

__all__ = ["AssociativeEmbeddingHead", "BaseHead", "DconvMPHead", "HeatmapHead", "IntegralHead",
           "LiftHead", "MPPE3DHead", "ORPMHead", "PAFHead", "RegressionHead", "SimCCHead", "VNectHead", "average_outputs", "check_map_size", "heatmap_model",
           "default_heatmap_codec", "associative_embedding_loss"]
