"""The one training engine (AMP, EMA, schedules, checkpoints, exact resume, DDP, logs) and
the plain-dataclass config machinery every task config is built on."""
from .checkpoint import (CheckpointError, CheckpointNotFoundError, atomic_save,
                         load_checkpoint_file, load_weights, model_weights)
from .config import Config, ConfigError, apply_overrides, load_config_dict, parse_value
from .distributed import ShardedOrder, dist_info, init_distributed, unwrap
from .ema import ModelEMA
from .schedules import LR_POLICIES, lr_lambda_factory
from .seeding import get_rng_state, seed_everything, set_rng_state
from .trainer import TrainConfig, Trainer, eval_mode

__all__ = ["CheckpointError", "CheckpointNotFoundError", "Config", "ConfigError", "LR_POLICIES",
           "ModelEMA", "ShardedOrder", "TrainConfig", "Trainer", "apply_overrides", "atomic_save",
           "dist_info", "get_rng_state", "init_distributed", "load_checkpoint_file", "load_config_dict",
           "load_weights", "lr_lambda_factory", "model_weights", "parse_value", "seed_everything",
           "set_rng_state", "unwrap", "eval_mode"]
