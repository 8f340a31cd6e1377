"""Config sections and helpers shared by the image tasks (top-down and bottom-up)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from ..engine.config import Config, ConfigError
from ..eval.coco import EVAL_MODES
from .base import SyntheticData, Task, TaskConfig


@dataclass
class SyntheticImages(SyntheticData):
    """Rendered figures (:class:`pyhpe.data.SyntheticPoseDataset`): ``num_images`` training
    and ``val_images`` held-out images of ``image_size`` pixels."""
    num_images: int = 200
    val_images: int = 50
    image_size: int = 128
    occlusion: float = 0.1
    max_persons: int = 1


@dataclass
class CocoImages(Config):
    """Annotation files and image directories; ``format`` names the files' own format
    (:data:`pyhpe.tasks.datasets.FORMATS`: 'coco' (a COCO keypoint json as it is), 'ochuman',
    'crowdpose', 'aic', 'halpe' / 'halpe136', 'halpe26', 'coco_wholebody', 'mpii' (json or
    ``.mat``), 'posetrack18', 'jhmdb'), read by that dataset's reader."""
    type: str = "coco"
    train_ann: str = ""
    train_images: str = ""
    val_ann: Optional[str] = None
    val_images: Optional[str] = None
    seed: int = 0
    format: str = "coco"

    def __post_init__(self):
        from .datasets import check_format
        check_format(self.format)
        if not self.train_ann or not self.train_images:
            raise ConfigError("data: type 'coco' needs 'train_ann' and 'train_images'")
        if bool(self.val_ann) != bool(self.val_images):
            raise ConfigError("data: give both 'val_ann' and 'val_images' (or neither)")


IMAGE_DATA = {"synthetic": SyntheticImages, "coco": CocoImages}


def check_downsample(downsample: int) -> None:
    """``data.downsample`` (every n-th frame) must be >= 1."""
    if downsample < 1:
        raise ConfigError(f"data.downsample: must be >= 1, got {downsample}")


def check_subject_split(train_subjects, test_subjects, path: str, test_path: str = "") -> None:
    """Training and test subjects read from one file (``test_path`` empty or equal to
    ``path``) must not overlap."""
    shared = sorted(set(train_subjects) & set(test_subjects))
    if shared and (test_path or path) == path:
        raise ConfigError(f"data: subjects {shared} are in both the training and the test "
                          f"split of {path!r}")


def image_sources(data, keypoints: str):
    """(train COCO dict, train image loader, val COCO dict or None, val loader or None,
    keypoint set) of a data section."""
    from ..data import CocoImageLoader, SyntheticPoseDataset
    from ..keypoints import get_keypoint_set, keypoint_set_from_coco
    if isinstance(data, SyntheticImages):
        size = (data.image_size, data.image_size)
        kw = dict(size=size, occlusion=data.occlusion, max_persons=data.max_persons)
        tr = SyntheticPoseDataset(data.num_images, seed=data.seed, **kw)
        va = SyntheticPoseDataset(data.val_images, seed=data.heldout_seed, **kw) if data.val_images else None
        return (tr.coco_dict(), tr.image_by_id, va.coco_dict() if va else None,
                va.image_by_id if va else None, get_keypoint_set(keypoints))
    from .datasets import read_annotations
    tr = read_annotations(data.train_ann, data.format)
    kset = keypoint_set_from_coco(tr) if keypoints == "auto" else get_keypoint_set(keypoints)
    va = read_annotations(data.val_ann, data.format) if data.val_ann else None
    return (tr, CocoImageLoader(tr, data.train_images), va,
            CocoImageLoader(va, data.val_images) if va else None, kset)


def keypoint_set_of(data, keypoints: str):
    """The keypoint set without loading images ('auto': from the COCO train annotations)."""
    from ..keypoints import get_keypoint_set, keypoint_set_from_coco
    if keypoints == "auto":
        if not isinstance(data, CocoImages):
            raise ConfigError("keypoints: 'auto' needs COCO-format data (data.type 'coco')")
        from .datasets import read_annotations
        return keypoint_set_from_coco(read_annotations(data.train_ann, data.format))
    try:
        return get_keypoint_set(keypoints)
    except (KeyError, ValueError) as e:
        raise ConfigError(f"keypoints: {e}") from e


def build_checked(what: str, fn: Callable, *args, **kwargs):
    """Call a constructor with config arguments; a bad argument is a ConfigError naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except TypeError as e:
        raise ConfigError(f"{what}: {e}") from e


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


@dataclass
class ImageTaskConfig(TaskConfig):
    """What the image tasks' configs check besides :class:`TaskConfig`: ``input_size``, the
    (W, H) of the network input, is a pair of positive ints."""

    def __post_init__(self):
        from ..codecs.base import as_size
        super().__post_init__()
        self.input_size = as_size(self.input_size, "input_size", self.task, ConfigError)


@dataclass
class CocoEval(Config):
    """The COCO keypoint evaluation of an image task's validation set: ``mode`` is one of
    :data:`pyhpe.eval.EVAL_MODES` or 'auto'."""
    mode: str = "auto"

    def __post_init__(self):
        if self.mode != "auto" and self.mode not in EVAL_MODES:
            raise ConfigError(f"eval.mode: one of {['auto', *EVAL_MODES]}, got {self.mode!r}")


def coco_eval_mode(gt: Dict, mode: str = "auto") -> str:
    """The evaluation mode for a COCO dict. 'auto': pycocotools when every annotation has an
    'area'; otherwise (e.g. CrowdPose, AIC) the OKS area is 0.53 x the box area: 'crowdpose'
    where every image has CrowdPose's 'crowdIndex', else 'xtcocotools_noarea'. An explicit mode
    that needs 'area' or 'crowdIndex' the file lacks is a ConfigError naming the field."""
    has_area = all("area" in a for a in gt["annotations"])
    has_crowd_index = all("crowdIndex" in im for im in gt["images"])
    if mode == "auto":
        return "pycocotools" if has_area else "crowdpose" if has_crowd_index else "xtcocotools_noarea"
    if EVAL_MODES[mode][1] and not has_area:
        raise ConfigError(f"eval.mode {mode!r} needs an 'area' in every validation annotation; "
                          "use 'auto', 'xtcocotools_noarea' or 'crowdpose'")
    if mode == "crowdpose" and not has_crowd_index:
        raise ConfigError("eval.mode 'crowdpose' needs a 'crowdIndex' in every validation image")
    return mode


class ImageTask(Task):
    """What the image tasks share: the keypoint set of the data section, batches of uint8
    images normalised on the device and keypoints encoded by the codec, and COCO keypoint
    stats of ``predict``'s results on the validation COCO dict (``val_gt``) in the config's
    ``eval.mode``."""

    _val_gt: Optional[Dict] = None

    def __init__(self, config):
        super().__init__(config)
        self.kset = keypoint_set_of(self.config.data, self.config.keypoints)
        self.codec   # a bad codec section fails here, not in the middle of a run

    @property
    def val_gt(self) -> Optional[Dict]:
        self.datasets()
        return self._val_gt

    def set_val_gt(self, gt: Dict) -> None:
        """The validation COCO dict; an evaluation mode it cannot support fails here, before
        training."""
        coco_eval_mode(gt, self.config.eval.mode)
        self._val_gt = gt

    def prepare(self, batch, device):
        from ..data import normalize_images
        # non_blocking: from the loader's pinned batches the copies queue behind the step
        inputs = normalize_images(batch["image"].to(device, non_blocking=True))
        targets = self.codec.encode(batch["keypoints"].to(device, non_blocking=True),
                                    batch["visibility"].to(device, non_blocking=True))
        return inputs, targets

    def predict(self, model, dataset, device="cpu") -> List[Dict]:
        """COCO keypoint results of every image of ``dataset``."""
        raise NotImplementedError

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        val = self.val_dataset()
        if val is None:
            return None
        return self.coco_stats(self.predict(model, val, device))

    def coco_stats(self, results: List[Dict], gt: Optional[Dict] = None) -> Dict[str, float]:
        """The COCO keypoint stats of ``results`` on ``gt`` (default ``val_gt``) by name (AP,
        AP50, ...; in 'crowdpose' mode AP_easy/AP_medium/AP_hard instead of the area ranges)."""
        from ..eval import COCOKeypointEval
        gt = self.val_gt if gt is None else gt
        mode, use_area = EVAL_MODES[coco_eval_mode(gt, self.config.eval.mode)]
        ev = COCOKeypointEval(gt, results, sigmas=self.kset.sigmas, mode=mode, use_area=use_area)
        ev.run()
        return {name: float(v) for name, v in zip(ev.stat_names, ev.stats)}


__all__ = ["CocoEval", "CocoImages", "IMAGE_DATA", "ImageTask", "ImageTaskConfig",
           "SyntheticImages",
           "build_checked", "coco_eval_mode", "image_sources", "keypoint_set_of", "write_json"]
