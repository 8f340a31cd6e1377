"""pyhpe: human pose estimation with C++/CUDA kernels exposed as PyTorch ops.

Importing pyhpe loads the compiled extension, which registers every op under
``torch.ops.pyhpe``; the typed Python wrappers live in :mod:`pyhpe.ops`.

Above the ops, data flows one way: :mod:`pyhpe.data` (readers and transforms; items carry
keypoints, never targets) -> :mod:`pyhpe.codecs` (targets of a whole collated batch, decoding)
-> :mod:`pyhpe.models` (backbone + head; the head owns its loss and prediction through its
codec) -> :mod:`pyhpe.engine` (the one trainer) -> :mod:`pyhpe.eval` (metrics).
:mod:`pyhpe.tasks` builds them from one validated config; :mod:`pyhpe.keypoints` holds the
keypoint-set facts.
"""
from ._version import __version__

import torch  # noqa: F401  (the extension links against torch's libraries)

from . import _C  # noqa: E402  registers torch.ops.pyhpe.*
from . import _numpy_exp  # noqa: E402

_numpy_exp.configure()
from . import ops  # noqa: E402,F401


def info():
    """Build information: versions, whether CUDA kernels were compiled, for which archs."""
    return {
        "pyhpe": __version__,
        "extension": _C.version(),
        "torch": torch.__version__,
        "torch_compiled_against": _C.torch_version(),
        "cuda_compiled": _C.has_cuda(),
        "cuda_version": _C.cuda_version() or None,
        "cuda_archs": _C.cuda_archs() or None,
        "cuda_available": torch.cuda.is_available(),
        "num_threads": torch.get_num_threads(),
        "numpy_exp_path": _numpy_exp.numpy_exp_path(),
    }


def __getattr__(name):
    # pyhpe.Inferencer without importing models, data and cv2 at `import pyhpe`
    if name == "Inferencer":
        from .apis.inferencer import Inferencer
        return Inferencer
    raise AttributeError(f"module 'pyhpe' has no attribute {name!r}")


__all__ = ["Inferencer", "__version__", "info", "ops"]
