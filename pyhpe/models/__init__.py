"""Pose models = backbone (+ neck) + head, with ``tiny`` (tests) and ``paper`` configs; no
weight downloads.

``build_model(name, config='tiny'|'paper'|<variant>, num_keypoints=17, codec=None,
**overrides) -> PoseModel``. The head owns the codec, the loss and the prediction; without a
codec each model gets a sensible default for its head at the config's input size.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from ..codecs import Codec
from . import (chained, cpm, cpn, dconvmp, deepercut, deeppose, higherhrnet, hourglass, hrnet,
               lifter, litepose, mca, mppe3d, mspn, okdhp, openpose, orpm, pipnet, pyranet, rmpe,
               rtmpose, simple_baseline, tfpose, tokenpose, vitpose, vnect, volumetric)
from .common import BasicBlock, Bottleneck, ResNet
from .cpm import CPM
from .heads import (BaseHead, HeatmapHead, IntegralHead, LiftHead, PAFHead, RegressionHead,
                    SimCCHead)
from .hourglass import StackedHourglass
from .hrnet import HRNet
from .lifter import LifterBackbone
from .litepose import LitePose
from .openpose import OpenPoseBackbone
from .pose_model import PoseModel
from .tokenpose import TokenHeatmapHead, TokenPoseBackbone
from .vitpose import ViT

MODELS: Dict[str, Tuple[Callable[..., PoseModel], Dict[str, dict]]] = {
    "simple_baseline": (simple_baseline.build, simple_baseline.CONFIGS),
    "hourglass": (hourglass.build, hourglass.CONFIGS),
    "hrnet": (hrnet.build, hrnet.CONFIGS),
    "cpm": (cpm.build, cpm.CONFIGS),
    "deeppose": (deeppose.build, deeppose.CONFIGS),
    "rtmpose": (rtmpose.build, rtmpose.CONFIGS),
    "vitpose": (vitpose.build, vitpose.CONFIGS),
    "tokenpose": (tokenpose.build, tokenpose.CONFIGS),
    "litepose": (litepose.build, litepose.CONFIGS),
    "openpose": (openpose.build, openpose.CONFIGS),
    "simple_baseline_3d": (lifter.build, lifter.CONFIGS),
    "tfpose": (tfpose.build, tfpose.CONFIGS),
    "pipnet": (pipnet.build, pipnet.CONFIGS),
    "pyranet": (pyranet.build, pyranet.CONFIGS),
    "mca": (mca.build, mca.CONFIGS),
    "cpn": (cpn.build, cpn.CONFIGS),
    "mspn": (mspn.build, mspn.CONFIGS),
    "chained": (chained.build, chained.CONFIGS),
    "okdhp": (okdhp.build, okdhp.CONFIGS),
    "rmpe": (rmpe.build, rmpe.CONFIGS),
    "deepercut": (deepercut.build, deepercut.CONFIGS),
    "volumetric": (volumetric.build, volumetric.CONFIGS),
    "mppe3d": (mppe3d.build, mppe3d.CONFIGS), "vnect": (vnect.build, vnect.CONFIGS),
    "dconvmp": (dconvmp.build, dconvmp.CONFIGS), "orpm": (orpm.build, orpm.CONFIGS),
    "higherhrnet": (higherhrnet.build, higherhrnet.CONFIGS),
}
ALIASES = {"simplebaseline": "simple_baseline", "resnet": "simple_baseline",
           "stacked_hourglass": "hourglass", "hrnet_w32": ("hrnet", "w32"),
           "hrnet_w48": ("hrnet", "w48"), "simcc": "rtmpose", "rtmpose_like": "rtmpose",
           "lite_pose": "litepose", "paf": "openpose", "lifter": "simple_baseline_3d",
           "simplebaseline3d": "simple_baseline_3d"}


def list_models():
    """The registered model names (``build_model``'s first argument)."""
    return sorted(MODELS)


model_names = list_models


def build_model(name: str, config: str = "tiny", num_keypoints: int = 17,
                codec: Optional[Codec] = None, **overrides) -> PoseModel:
    """A registered model with a named config, overridden by keyword arguments (architecture
    options, ``input_size`` / ``img_size`` for the default codec, head options such as
    ``joint_weights``)."""
    key = name.lower().replace("-", "_")
    alias = ALIASES.get(key, key)
    if isinstance(alias, tuple):
        key, config = alias[0], config if config not in ("paper",) else alias[1]
    else:
        key = alias
    if key not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; known: {model_names()}")
    builder, configs = MODELS[key]
    if config not in configs:
        raise ValueError(f"build_model: model {key!r} has no config {config!r}; known: {sorted(configs)}")
    if codec is not None and not isinstance(codec, Codec):
        raise TypeError(f"build_model: 'codec' must be a pyhpe.codecs.Codec, got {type(codec).__name__}")
    kwargs = dict(configs[config])
    kwargs.update(overrides)
    return builder(num_keypoints=num_keypoints, codec=codec, **kwargs)


__all__ = ["build_model", "list_models", "model_names", "MODELS", "BaseHead", "BasicBlock", "Bottleneck", "CPM",
           "HRNet", "HeatmapHead", "IntegralHead", "LiftHead", "LifterBackbone", "LitePose",
           "OpenPoseBackbone", "PAFHead", "PoseModel", "RegressionHead", "ResNet", "SimCCHead",
           "StackedHourglass", "TokenHeatmapHead", "TokenPoseBackbone", "ViT"]
