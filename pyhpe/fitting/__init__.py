"""Model-based 3-D fitting: SMPLify / SMPLify-X's objective over the SMPL body model (``smplx``
from PyPI, the optional extra ``pyhpe[smpl]``), the model-file reader, and AMASS / MoSh
sequences forwarded through the body model.

The licensed SMPL model files and SMPLify's pose prior are never downloaded: pass their paths.
"""
from .body_model import (FACE_POINTS, KEYPOINT_MAPS, NUM_MODEL_JOINTS, SMPL_JOINT_NAMES,
                         SMPL_PARENTS, TORSO_KEYPOINTS, BodyModel, load_body_model,
                         read_model_file, sequence_joints, write_synthetic_smpl)
from .priors import (MaxMixturePrior, SphereCollision, VPoserDecoder, angle_prior, gmof, l2_prior,
                     read_gmm, rotmat_to_axis_angle)
from .smplify import FitResult, SMPLify, SMPLifyConfig

__all__ = ["BodyModel", "FACE_POINTS", "FitResult", "KEYPOINT_MAPS", "MaxMixturePrior",
           "NUM_MODEL_JOINTS", "SMPLify", "SMPLifyConfig", "SMPL_JOINT_NAMES", "SMPL_PARENTS",
           "SphereCollision", "TORSO_KEYPOINTS", "VPoserDecoder", "angle_prior", "gmof",
           "l2_prior", "load_body_model", "read_gmm", "read_model_file", "rotmat_to_axis_angle",
           "sequence_joints", "write_synthetic_smpl"]
