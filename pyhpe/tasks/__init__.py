"""Declarative tasks: dataset + codec + model + metric from one validated config, all trained
by the one engine (:class:`pyhpe.engine.Trainer`).

``TASKS`` maps the config's ``"task"`` to its class; :func:`build_task` (used by ``pyhpe
train`` and from Python alike) reads a json path or dict, applies ``--set`` style overrides
and validates every section (unknown keys are errors)::

    task = build_task("configs/topdown_simplebaseline_synthetic.json", ["train.epochs=3"])
    result = task.fit()
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Union

from ..engine.config import ConfigError, apply_overrides, load_config_dict
from .base import CodecConfig, ModelConfig, Task
from .bottomup_ae import BottomUpAEConfig, BottomUpAETask
from .bottomup_deepercut import BottomUpDeeperCutTask
from .bottomup_paf import BottomUpPAFConfig, BottomUpPAFTask
from .image3d import Image3DConfig, Image3DTask
from .lift3d import Lift3DConfig, Lift3DTask
from .topdown import TopDownConfig, TopDownTask

TASKS: Dict[str, type] = {"topdown": TopDownTask, "bottomup_paf": BottomUpPAFTask,
                          "lift3d": Lift3DTask, "bottomup_deepercut": BottomUpDeeperCutTask,
                          "image3d": Image3DTask,
                          "bottomup_ae": BottomUpAETask}


def task_names():
    return sorted(TASKS)


def build_task(config: Union[str, dict], overrides: Optional[Iterable[str]] = None) -> Task:
    """The task of a config (json path or dict) with ``"a.b=value"`` overrides applied."""
    cfg = load_config_dict(config)
    apply_overrides(cfg, overrides or ())
    name = cfg.get("task")
    if name not in TASKS:
        raise ConfigError(f"task: one of {task_names()}, got {name!r}")
    return TASKS[name](cfg)


__all__ = ["BottomUpPAFConfig", "BottomUpPAFTask", "CodecConfig", "Lift3DConfig", "Lift3DTask",
           "ModelConfig", "TASKS", "Task", "TopDownConfig", "TopDownTask", "build_task",
           "task_names"]
