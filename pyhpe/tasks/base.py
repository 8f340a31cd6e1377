"""The task protocol and the config sections every task shares.

A task turns one validated config into datasets, a codec, a model, batches for the engine and
the dataset's metric::

    inputs, targets = task.prepare(batch, device)   # targets: codec.encode(...) on device
    losses = model(inputs, targets)                  # the engine sums them
    metrics = task.evaluate(model, device)           # best-by task.metric / task.metric_mode
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional, Tuple

import torch

from ..engine.config import Config, ConfigError
from ..engine.trainer import TrainConfig


@dataclass
class TaskConfig(Config):
    """What every task's config checks: its ``task`` key names the task (the subclass's default)
    and, where the task works with one codec only (``codec_name``), the codec section names it."""
    codec_name: ClassVar[Optional[str]] = None

    def __post_init__(self):
        expected = type(self).task
        if self.task != expected:
            raise ConfigError(f"task: {expected!r} expected, got {self.task!r}")
        if self.codec_name is not None and self.codec.name != self.codec_name:
            raise ConfigError(f"codec.name: the {expected} task uses the {self.codec_name!r} "
                              f"codec, got {self.codec.name!r}")


@dataclass
class SyntheticData(Config):
    """Generated data: training samples from ``seed``, held-out ones from :attr:`heldout_seed`."""
    type: str = "synthetic"
    seed: int = 0

    @property
    def heldout_seed(self) -> int:
        return self.seed + 7919


@dataclass
class ModelConfig(Config):
    """``build_model(name, config, num_keypoints=..., codec=..., **overrides)``: keys other
    than ``name`` and ``config`` are that model's keyword overrides (checked by the model)."""
    name: str = "simple_baseline"
    config: str = "tiny"
    overrides: Dict[str, Any] = field(default_factory=dict)
    extra_field: ClassVar[Optional[str]] = "overrides"


@dataclass
class CodecConfig(Config):
    """``build_codec(name, **params)``: keys other than ``name`` are the codec's arguments
    (checked by the codec)."""
    name: str = "msra"
    params: Dict[str, Any] = field(default_factory=dict)
    extra_field: ClassVar[Optional[str]] = "params"


class Task:
    """Base class of the tasks (see the module docstring). Subclasses set ``name``,
    ``Config`` (a :class:`~pyhpe.engine.config.Config` dataclass with a ``train`` section),
    ``metric`` and ``metric_mode`` ('max' or 'min')."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = Config
    metric: ClassVar[str] = ""
    metric_mode: ClassVar[str] = "max"

    def __init__(self, config):
        if not isinstance(config, self.Config):
            config = self.Config.from_dict(config)
        self.config = config
        self._datasets: Optional[Tuple[Any, Any]] = None
        self._codec = None

    # -- what a task defines ------------------------------------------------------------------
    def build_datasets(self) -> Tuple[Any, Any]:
        """(train dataset, validation data or None)."""
        raise NotImplementedError

    def build_codec(self):
        raise NotImplementedError

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def collate(self, items):
        return torch.utils.data.default_collate(items)

    def prepare(self, batch, device) -> Tuple[Any, Dict[str, torch.Tensor]]:
        raise NotImplementedError

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        return None

    # -- shared -------------------------------------------------------------------------------
    def build_named_codec(self, **defaults):
        """``build_codec`` of the config's codec section, ``defaults`` filling absent keys."""
        from ..codecs import build_codec
        params = dict(defaults, **self.config.codec.params)
        try:
            return build_codec(self.config.codec.name, **params)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"codec: {e}") from e

    def build_pose_model(self, **defaults) -> torch.nn.Module:
        """``build_model`` of the config's model section with this task's codec and keypoint
        count; ``defaults`` fill overrides the config does not give."""
        from ..models import build_model
        m = self.config.model
        try:
            return build_model(m.name, m.config, num_keypoints=self.kset.num_keypoints,
                               codec=self.codec, **dict(defaults, **m.overrides))
        except TypeError as e:
            raise ConfigError(f"model: {e}") from e

    def datasets(self) -> Tuple[Any, Any]:
        """:meth:`build_datasets`, built once."""
        if self._datasets is None:
            self._datasets = self.build_datasets()
        return self._datasets

    def train_dataset(self):
        return self.datasets()[0]

    def val_dataset(self):
        return self.datasets()[1]

    @property
    def codec(self):
        """:meth:`build_codec`, built once."""
        if self._codec is None:
            self._codec = self.build_codec()
        return self._codec

    def set_epoch(self, epoch: int) -> None:
        """Epoch-seeded augmentation: tell the training set which epoch starts."""
        set_epoch = getattr(self.train_dataset(), "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)

    def train_config(self, **overrides) -> TrainConfig:
        return dataclasses.replace(self.config.train, **overrides)

    def fit(self, log=print, **train_overrides) -> Dict:
        """Train with the one engine (``train_overrides`` replace fields of the train section)."""
        from ..engine.trainer import Trainer
        return Trainer(self, self.train_config(**train_overrides), log=log).fit()


__all__ = ["CodecConfig", "ModelConfig", "SyntheticData", "Task", "TaskConfig"]
