"""Datasets (COCO, MPII, Human3.6M, synthetic), readers of each dataset's own format
(:mod:`pyhpe.data.readers` for the COCO-style 2-D files, :func:`read_mpii_mat`,
:mod:`pyhpe.data.body3d` for the 3-D ones) and the top-down, bottom-up and lifting pipelines.
Items never carry targets: codecs encode collated batches.

Keypoint-set metadata lives in :mod:`pyhpe.keypoints`."""
from .body3d import (body3d_lifting_arrays, body3d_to_coco, project_h36m, project_panoptic,
                     project_pinhole, read_amass, read_h36m, read_mpi_inf_3dhp,
                     read_panoptic_body3d, read_panoptic_calibration)
from .bottomup import (BottomUpDataset, bottomup_center_scale, bottomup_to_image_space,
                       collate_bottomup)
from .coco import CocoImageLoader, load_coco
from .lifting import (H36M_TEST_SUBJECTS, H36M_TRAIN_SUBJECTS, LiftingDataset, fit_camera,
                      h36m_arrays, load_h36m_npz, synthetic_lifting_data)
from .mpii import load_mpii, mpii_to_coco, read_mpii_mat
from .readers import (READERS, read_aic, read_coco, read_coco_wholebody, read_crowdpose,
                      read_halpe, read_jhmdb, read_keypoint_file, read_mpii, read_ochuman,
                      read_posetrack18, split_wholebody)
from .synthetic import SyntheticPoseDataset, random_pose_3d, render_sample
from .topdown import (RecordTable, TopDownDataset, collate_topdown, normalize_images,
                      records_from_boxes, records_from_coco, to_image_space)
from .transforms import (TopDownAugment, affine_points, bbox_xywh_to_center_scale, crop,
                         flip_keypoints, get_udp_warp_matrix, get_warp_matrix,
                         half_body_center_scale)

__all__ = ["BottomUpDataset", "CocoImageLoader", "H36M_TEST_SUBJECTS", "H36M_TRAIN_SUBJECTS",
           "LiftingDataset", "READERS", "SyntheticPoseDataset", "TopDownAugment", "TopDownDataset",
           "affine_points", "bbox_xywh_to_center_scale", "body3d_lifting_arrays", "body3d_to_coco",
           "bottomup_center_scale", "bottomup_to_image_space", "collate_bottomup",
           "collate_topdown", "crop", "fit_camera", "flip_keypoints", "get_udp_warp_matrix",
           "get_warp_matrix", "h36m_arrays", "half_body_center_scale", "load_coco",
           "load_h36m_npz", "load_mpii", "mpii_to_coco", "normalize_images", "project_h36m",
           "project_panoptic", "project_pinhole", "random_pose_3d", "read_aic", "read_amass",
           "read_coco", "read_coco_wholebody", "read_crowdpose", "read_h36m", "read_halpe",
           "read_jhmdb", "read_keypoint_file", "read_mpi_inf_3dhp", "read_mpii", "read_mpii_mat",
           "read_ochuman", "read_panoptic_body3d", "read_panoptic_calibration", "read_posetrack18",
           "RecordTable", "records_from_boxes", "records_from_coco", "render_sample", "split_wholebody",
           "synthetic_lifting_data", "to_image_space"]
