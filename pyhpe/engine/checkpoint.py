"""Checkpoint files: written atomically, read with ``torch.load(weights_only=True)`` only."""
from __future__ import annotations

import os
from typing import Dict

import torch


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be (safely) loaded; the message names the file."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file, fsync, then ``os.replace`` (never a torn file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint_file(path: str, map_location="cpu"):
    """Read a checkpoint written by :func:`atomic_save` with ``torch.load(weights_only=True)``.

    Only tensors and plain containers / numbers / strings are accepted: a file whose unpickling
    would construct arbitrary objects (and so could run code) is refused. A failure is a
    :class:`CheckpointError` naming the file (:class:`CheckpointNotFoundError`, also a
    ``FileNotFoundError``, when it does not exist).
    """
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"pyhpe: cannot load checkpoint {str(path)!r}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        msg = str(e).strip().splitlines()
        raise CheckpointError(f"pyhpe: cannot load checkpoint {str(path)!r}: "
                              f"{msg[0] if msg else type(e).__name__} (only tensors and plain "
                              f"containers are loaded; weights_only=True)") from e


def model_weights(checkpoint, prefer_ema: bool = True) -> Dict[str, torch.Tensor]:
    """The model state dict inside a loaded checkpoint: the EMA weights of a ``last.pth`` when
    present (and ``prefer_ema``), else its ``model`` entry, else the dict itself when it is a
    bare state dict (tensors only)."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"pyhpe: a checkpoint must be a dict, got {type(checkpoint).__name__}")
    ema = checkpoint.get("ema")
    if prefer_ema and isinstance(ema, dict) and isinstance(ema.get("module"), dict):
        return ema["module"]
    for key in ("model", "state_dict"):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint
    raise CheckpointError("pyhpe: the checkpoint holds no model weights (expected an 'ema', "
                          f"'model' or 'state_dict' entry; keys: {sorted(checkpoint)[:8]})")


def load_weights(model: torch.nn.Module, path: str, prefer_ema: bool = True,
                 strict: bool = True) -> torch.nn.Module:
    """Load the weights of checkpoint file ``path`` into ``model`` (see :func:`model_weights`)."""
    state = model_weights(load_checkpoint_file(path), prefer_ema)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        raise CheckpointError(f"pyhpe: checkpoint {str(path)!r} does not fit the model: "
                              f"{str(e).splitlines()[0]}") from e
    return model


def plain(obj):
    """Tuples -> lists (recursively), so a checkpoint holds only what ``weights_only`` loads."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


__all__ = ["CheckpointError", "CheckpointNotFoundError", "atomic_save", "load_checkpoint_file",
           "load_weights", "model_weights", "plain"]
