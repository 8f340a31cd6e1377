"""Model-based 3-D fitting: SMPLify / SMPLify-X's objective over the SMPL and SMPL-X body
models (``smplx`` from PyPI, the optional extra ``pyhpe[smpl]``), the model-file readers, and
AMASS / MoSh sequences forwarded through the body model.

The licensed SMPL model files and the pose priors' weights are never downloaded: pass their
paths. Submodules load on first use (``pyhpe fit``'s parser imports only :mod:`.cli`).
"""
import importlib

_EXPORTS = {
    "body_model": ["BodyModel", "FACE_POINTS", "KEYPOINT_MAPS", "NUM_MODEL_JOINTS",
                   "SMPL_JOINT_NAMES", "SMPL_PARENTS", "TORSO_KEYPOINTS", "load_body_model",
                   "read_model_file", "sequence_joints", "write_synthetic_smpl"],
    "priors": ["MaxMixturePrior", "SphereCollision", "VPoserDecoder", "angle_prior", "gmof",
               "l2_prior", "read_gmm", "rotmat_to_axis_angle"],
    "smplify": ["FitResult", "SMPLify", "SMPLifyConfig", "SMPLX_STAGE_WEIGHTS"],
    "smplx_model": ["SMPLHModel", "SMPLH_KEYPOINT_MAPS", "SMPLXModel", "SMPLX_KEYPOINT_MAPS",
                    "SMPLX_PARTS", "load_smplx_model", "model_file_type", "read_smplh_file",
                    "read_smplx_file", "write_synthetic_smplh", "write_synthetic_smplx"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
