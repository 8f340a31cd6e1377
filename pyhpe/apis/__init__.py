"""High-level entry points: loading published checkpoints into pyhpe's models."""
from .pretrained import (INPUT_NORMALIZATION, LAYOUTS, CheckpointMismatch, LoadReport,
                         load_pretrained, map_state_dict, synthetic_state_dict)

__all__ = ["INPUT_NORMALIZATION", "LAYOUTS", "CheckpointMismatch", "LoadReport", "load_pretrained",
           "map_state_dict", "synthetic_state_dict"]
