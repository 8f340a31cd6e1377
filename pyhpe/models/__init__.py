"""Pose models with ``tiny`` (tests) and ``paper`` configs; no weight downloads.

``build_model(name, config='tiny'|'paper'|<variant>, num_keypoints=17, **overrides)``.
"""
from __future__ import annotations

from typing import Dict

import torch.nn as nn

from . import cpm, deeppose, hourglass, hrnet, lifter, litepose, openpose, rtmpose, simple_baseline, tokenpose, vitpose
from .common import BasicBlock, Bottleneck, HeatmapHead, ResNet
from .cpm import CPM
from .deeppose import DeepPose
from .hourglass import StackedHourglass
from .hrnet import HRNet
from .lifter import SimpleBaseline3D
from .litepose import LitePose
from .openpose import OpenPoseNet
from .rtmpose import RTMPoseLike, SimCCHead
from .simple_baseline import SimpleBaseline
from .tokenpose import TokenPose
from .vitpose import ViTPose

MODELS: Dict[str, tuple] = {
    "simple_baseline": (SimpleBaseline, simple_baseline.CONFIGS),
    "hourglass": (StackedHourglass, hourglass.CONFIGS),
    "hrnet": (HRNet, hrnet.CONFIGS),
    "cpm": (CPM, cpm.CONFIGS),
    "deeppose": (DeepPose, deeppose.CONFIGS),
    "rtmpose": (RTMPoseLike, rtmpose.CONFIGS),
    "vitpose": (ViTPose, vitpose.CONFIGS),
    "tokenpose": (TokenPose, tokenpose.CONFIGS),
    "litepose": (LitePose, litepose.CONFIGS),
    "openpose": (OpenPoseNet, openpose.CONFIGS),
    "simple_baseline_3d": (SimpleBaseline3D, lifter.CONFIGS),
}
ALIASES = {"simplebaseline": "simple_baseline", "resnet": "simple_baseline",
           "stacked_hourglass": "hourglass", "hrnet_w32": ("hrnet", "w32"),
           "hrnet_w48": ("hrnet", "w48"), "simcc": "rtmpose", "rtmpose_like": "rtmpose",
           "lite_pose": "litepose", "paf": "openpose", "lifter": "simple_baseline_3d",
           "simplebaseline3d": "simple_baseline_3d"}


def model_names():
    return sorted(MODELS)


def build_model(name: str, config: str = "tiny", num_keypoints: int = 17, **overrides) -> nn.Module:
    """Instantiate a registered model with a named config, overridden by keyword arguments."""
    key = name.lower().replace("-", "_")
    alias = ALIASES.get(key, key)
    if isinstance(alias, tuple):
        key, config = alias[0], config if config not in ("paper",) else alias[1]
    else:
        key = alias
    if key not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; known: {model_names()}")
    cls, configs = MODELS[key]
    if config not in configs:
        raise ValueError(f"build_model: model {key!r} has no config {config!r}; known: {sorted(configs)}")
    kwargs = dict(configs[config])
    kwargs.update(overrides)
    return cls(num_keypoints=num_keypoints, **kwargs)


__all__ = ["build_model", "model_names", "MODELS", "BasicBlock", "Bottleneck", "HeatmapHead",
           "ResNet", "CPM", "DeepPose", "StackedHourglass", "HRNet", "SimpleBaseline3D", "LitePose",
           "OpenPoseNet", "RTMPoseLike", "SimCCHead", "SimpleBaseline", "TokenPose", "ViTPose"]
