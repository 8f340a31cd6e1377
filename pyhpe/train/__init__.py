"""Training loops (single process and torchrun DDP) and top-down evaluation helpers."""
from .evaluation import (coco_keypoint_stats, flip_back_fractional, predict_topdown,
                         pycocotools_keypoint_stats, shift_last_dim)
from .trainer import TrainConfig, Trainer
from .utils import (CheckpointError, ModelEMA, atomic_save, keypoint_mse_loss, load_checkpoint_file,
                    lr_lambda_factory, seed_everything, simcc_kl_loss)

__all__ = ["CheckpointError", "TrainConfig", "Trainer", "ModelEMA", "atomic_save", "coco_keypoint_stats",
           "flip_back_fractional", "keypoint_mse_loss", "load_checkpoint_file",
           "lr_lambda_factory", "predict_topdown",
           "pycocotools_keypoint_stats", "seed_everything", "shift_last_dim", "simcc_kl_loss"]
