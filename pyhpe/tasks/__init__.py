"""End-to-end task pipelines beyond single-person top-down heatmaps.

``run_task(task, argv)`` runs one task's command line (``python -m pyhpe.tasks TASK ...``):

* ``bottomup``: OpenPose-style PAF network on multi-person synthetic images; PAF and heatmap
  targets from :func:`pyhpe.ops.paf_targets` / :func:`pyhpe.ops.msra_heatmaps`, grouping by
  :func:`pyhpe.ops.paf_group`, COCO AP by :class:`pyhpe.eval.COCOKeypointEval`.
* ``lift3d``: SimpleBaseline-3D 2-D -> 3-D lifting on synthetic 3-D kinematic poses or on
  Human3.6M npz files in the VideoPose3D layout; MPJPE / P-MPJPE; optional bone-length loss.
* ``integral``: integral regression (IPR / debiased IPR / DSNT) trained through the
  differentiable decode ops.
* ``topdown_infer``: top-down inference on detector boxes from a COCO results file, OKS-NMS
  and COCO evaluation.
"""
from __future__ import annotations

import importlib
from typing import List, Optional

TASKS = {"bottomup": "bottomup", "lift3d": "lift3d", "integral": "integral",
         "topdown_infer": "topdown_infer"}
ALIASES = {"bottom_up": "bottomup", "paf": "bottomup", "openpose": "bottomup",
           "lifting": "lift3d", "lift": "lift3d", "3d": "lift3d", "ipr": "integral",
           "topdown-infer": "topdown_infer", "infer_topdown": "topdown_infer"}


def task_names() -> List[str]:
    return sorted(TASKS)


def get_task(task: str):
    """The module implementing ``task`` (it has ``main(argv) -> int`` and ``run(**kw)``)."""
    key = task.lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"pyhpe.tasks: unknown task {task!r}; known: {task_names()}")
    return importlib.import_module(f"{__name__}.{TASKS[key]}")


def run_task(task: str, argv: Optional[List[str]] = None) -> int:
    """Run ``task``'s command line with arguments ``argv``; returns the exit status."""
    return int(get_task(task).main(list(argv or [])) or 0)


__all__ = ["TASKS", "get_task", "run_task", "task_names"]
