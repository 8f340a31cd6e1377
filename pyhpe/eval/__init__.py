"""Evaluation: COCO keypoint AP/AR identical to pycocotools (C++ core)."""
from .coco import COCO_SIGMAS, COCOKeypointEval, pycocotools_stats

__all__ = ["COCO_SIGMAS", "COCOKeypointEval", "pycocotools_stats"]
