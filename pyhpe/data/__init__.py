"""Datasets (COCO, MPII, synthetic) and top-down/bottom-up pipelines.

Keypoint-set metadata lives in :mod:`pyhpe.keypoints`."""
from .bottomup import BottomUpDataset, paf_targets
from .coco import CocoImageLoader, load_coco
from .mpii import load_mpii, mpii_to_coco
from .synthetic import SyntheticPoseDataset, render_sample
from .topdown import (TopDownDataset, collate_topdown, normalize_images, records_from_boxes,
                      records_from_coco, to_image_space)
from .transforms import (TopDownAugment, affine_points, bbox_xywh_to_center_scale, crop,
                         flip_keypoints, get_warp_matrix, half_body_center_scale)

__all__ = ["BottomUpDataset", "paf_targets", "CocoImageLoader", "load_coco", "load_mpii", "mpii_to_coco",
           "SyntheticPoseDataset", "render_sample", "TopDownDataset", "collate_topdown",
           "normalize_images", "records_from_boxes", "records_from_coco", "to_image_space",
           "TopDownAugment", "affine_points", "bbox_xywh_to_center_scale", "crop",
           "flip_keypoints", "get_warp_matrix", "half_body_center_scale"]
