"""High-level entry points: inference on images, folders and videos (:class:`Inferencer`),
export to ONNX and ``torch.export`` programs, and loading published checkpoints into pyhpe's
models (:func:`load_pretrained`)."""
from .export import ExportModule, export_onnx, export_program
from .inferencer import InferenceResult, Inferencer
from .pretrained import (INPUT_NORMALIZATION, LAYOUTS, CheckpointMismatch, LoadReport,
                         load_pretrained, map_state_dict, synthetic_state_dict)

__all__ = ["INPUT_NORMALIZATION", "LAYOUTS", "CheckpointMismatch", "ExportModule",
           "InferenceResult", "Inferencer", "LoadReport", "export_onnx", "export_program",
           "load_pretrained", "map_state_dict", "synthetic_state_dict"]
