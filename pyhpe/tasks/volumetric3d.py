"""Single-image 3-D pose by coarse-to-fine volumetric prediction (Pavlakos et al. 2017) on
Human3.6M, evaluated as the paper does: the decoded joints (crop pixels and root-relative
depth) are back-projected with the camera intrinsics and the ground-truth root depth, then
compared root-relative in millimetres (MPJPE, protocols 1 and 2, per action:
:func:`pyhpe.eval.metrics.mpjpe_by_action`).

Data types:

* ``h36m``: mmpose's npz layout (:func:`pyhpe.data.read_h36m`) with its ``cameras.pkl`` and
  the frames under ``image_root``; each person box (``center``, side ``scale * 200``) is
  cropped to the model's input size (mmpose's top-down affine, no augmentation);
* ``crops_npz``: frames already cropped, in the layout of
  ``tests/data/record_h36m_volumetric.py`` (images, crop-pixel keypoints with root-relative
  depth, crop-frame intrinsics, root depth, 3-D poses).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from ..engine.config import Config, ConfigError
from ..engine.trainer import TrainConfig, eval_mode
from .base import CodecConfig, ModelConfig, Task, TaskConfig

_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass
class H36MImages(Config):
    type: str = "h36m"
    train_path: str = ""
    test_path: str = ""
    cameras: str = ""
    image_root: str = ""
    train_subjects: Tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
    test_subjects: Tuple[str, ...] = ("S9", "S11")
    downsample: int = 1

    def __post_init__(self):
        if not self.train_path or not self.cameras:
            raise ConfigError("data: type 'h36m' needs 'train_path' and 'cameras'")
        if self.downsample < 1:
            raise ConfigError(f"data.downsample: must be >= 1, got {self.downsample}")


@dataclass
class CropsNpz(Config):
    type: str = "crops_npz"
    path: str = ""
    train_subjects: Tuple[str, ...] = ("S1", "S5", "S7", "S8")
    test_subjects: Tuple[str, ...] = ("S1", "S5", "S7", "S8")

    def __post_init__(self):
        if not self.path:
            raise ConfigError("data: type 'crops_npz' needs 'path'")


@dataclass
class VolumetricEval(Config):
    batch_size: int = 32


@dataclass
class Volumetric3DConfig(TaskConfig):
    task: str = "volumetric3d"
    model: ModelConfig = field(default_factory=lambda: ModelConfig("volumetric", "tiny"))
    codec: CodecConfig = field(default_factory=lambda: CodecConfig("volumetric", {}))
    data: Any = field(default_factory=CropsNpz,
                      metadata={"variants": {"h36m": H36MImages, "crops_npz": CropsNpz}})
    eval: VolumetricEval = field(default_factory=VolumetricEval)
    train: TrainConfig = field(default_factory=TrainConfig)

    codec_name = "volumetric"


class VolumetricDataset(torch.utils.data.Dataset):
    """Items ``{'image' (3, H, W) normalized, 'keypoints' (K, 3) crop pixels + root-relative
    depth mm, 'visibility' (K,)}``; the evaluation arrays ``pose_3d`` (N, K, 3) mm root-relative,
    ``focal``, ``centre`` (N, 2) crop pixels, ``root_depth`` (N,) mm, ``actions`` (N,)."""

    def __init__(self, arrays: Dict[str, np.ndarray], input_size, loader=None):
        self.a = arrays
        self.input_size = tuple(input_size)
        self.loader = loader  # index -> (H, W, 3) uint8 crop; None: arrays['images']

    def __len__(self):
        return len(self.a["keypoints"])

    def image(self, i: int) -> np.ndarray:
        img = self.a["images"][i] if self.loader is None else self.loader(i)
        if img.shape[:2] != self.input_size[::-1]:
            import cv2
            img = cv2.resize(img, self.input_size, interpolation=cv2.INTER_LINEAR)
        return img

    def __getitem__(self, i: int):
        img = (self.image(i).astype(np.float32) / 255.0 - _MEAN) / _STD
        return {"image": torch.from_numpy(img.transpose(2, 0, 1).copy()),
                "keypoints": torch.from_numpy(self.a["keypoints"][i].astype(np.float32)),
                "visibility": torch.from_numpy(self.a["visibility"][i].astype(np.float32))}


def _rescale(arrays: Dict[str, np.ndarray], size_from, size_to) -> Dict[str, np.ndarray]:
    """Crop-pixel quantities of ``size_from`` crops for ``size_to`` network inputs."""
    s = np.array(size_to, np.float64) / np.array(size_from, np.float64)
    out = dict(arrays)
    kp = arrays["keypoints"].astype(np.float64).copy()
    kp[..., :2] = (kp[..., :2] + 0.5) * s - 0.5
    out["keypoints"] = kp
    out["focal"] = arrays["focal"] * s
    out["centre"] = (arrays["centre"] + 0.5) * s - 0.5
    return out


def _crops_split(d: CropsNpz, subjects) -> Dict[str, np.ndarray]:
    from ..data.safe_npz import load_npz_member
    keys = ("images", "keypoints", "pose_3d", "root_depth", "focal", "centre", "visibility",
            "subject", "imgname")
    a = {k: load_npz_member(d.path, k, who="volumetric3d") for k in keys}
    keep = np.isin(a["subject"].astype(str), list(subjects))
    if not keep.any():
        raise ValueError(f"volumetric3d: no frames of subjects {list(subjects)} in {d.path!r}")
    return {k: v[keep] for k, v in a.items()}


def _h36m_split(d: H36MImages, path: str, subjects, input_size):
    """Arrays of the frames of ``subjects`` and a loader cropping frame i to ``input_size``."""
    import cv2

    from ..data import read_h36m
    from ..data.transforms import get_warp_matrix
    r = read_h36m(path, cameras=d.cameras, image_root=d.image_root or None)
    keep = np.flatnonzero(np.isin(r["subject"], list(subjects)))[::d.downsample]
    if not len(keep):
        raise ValueError(f"volumetric3d: no frames of subjects {list(subjects)} in {path!r}")
    mats = []
    for i in keep:
        side = float(r["scale"][i]) * 200.0
        mats.append(get_warp_matrix(r["center"][i], (side, side), 0.0, input_size))
    mats = np.stack(mats).astype(np.float64)
    s, t = mats[:, 0, 0], mats[:, :, 2]
    S = r["keypoints_3d"][keep] * 1000.0
    xy = r["keypoints_2d"][keep] * s[:, None, None] + t[:, None]
    arrays = {"keypoints": np.concatenate([xy, (S - S[:, :1])[..., 2:]], -1),
              "pose_3d": S - S[:, :1], "root_depth": S[:, 0, 2],
              "focal": r["cameras"]["f"][keep] * s[:, None],
              "centre": r["cameras"]["c"][keep] * s[:, None] + t,
              "visibility": r["visibility"][keep], "imgname": np.asarray(r["imgname"])[keep]}
    paths = np.asarray(r["image_path"])[keep]

    def loader(j: int) -> np.ndarray:
        img = cv2.imread(str(paths[j]))
        if img is None:
            raise FileNotFoundError(f"volumetric3d: cannot read image {str(paths[j])!r}")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return cv2.warpAffine(img, mats[j], tuple(input_size),
                              flags=cv2.INTER_LINEAR)
    return arrays, loader


class Volumetric3DTask(Task):
    name = "volumetric3d"
    Config = Volumetric3DConfig
    metric = "MPJPE"
    metric_mode = "min"

    def __init__(self, config):
        super().__init__(config)
        from ..keypoints import get_keypoint_set
        self.kset = get_keypoint_set("h36m17")
        self.root_index = 0

    def _model_options(self) -> Dict[str, Any]:
        from ..models.volumetric import CONFIGS
        m = self.config.model
        if m.config not in CONFIGS:
            raise ConfigError(f"model: 'volumetric' has no config {m.config!r}")
        return dict(CONFIGS[m.config], **m.overrides)

    @property
    def input_size(self):
        return tuple(self._model_options().get("input_size", (256, 256)))

    def build_codec(self):
        from ..codecs.volumetric import VolumetricC2F
        o = self._model_options()
        w, h = self.input_size
        params = dict({k: o[k] for k in ("res_z", "sigma", "depth_range", "beta") if k in o},
                      **self.config.codec.params)
        try:
            return VolumetricC2F(input_size=(w, h), heatmap_size=(w // 4, h // 4), **params)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"codec: {e}") from e

    def build_datasets(self):
        d = self.config.data
        if isinstance(d, CropsNpz):
            out = []
            for subjects in (d.train_subjects, d.test_subjects):
                a = _crops_split(d, subjects)
                out.append(VolumetricDataset(_rescale(a, a["images"].shape[2:0:-1],
                                                      self.input_size), self.input_size))
            return tuple(out)
        train_a, train_l = _h36m_split(d, d.train_path, d.train_subjects, self.input_size)
        test_a, test_l = _h36m_split(d, d.test_path or d.train_path, d.test_subjects,
                                     self.input_size)
        return (VolumetricDataset(train_a, self.input_size, train_l),
                VolumetricDataset(test_a, self.input_size, test_l))

    def build_model(self):
        return self.build_pose_model()

    def prepare(self, batch, device):
        targets = self.codec.encode(batch["keypoints"].to(device), batch["visibility"].to(device))
        return batch["image"].to(device), targets

    @torch.no_grad()
    def predict(self, model, dataset, device="cpu") -> np.ndarray:
        """Root-relative camera-frame joints ``(N, K, 3)`` mm of every frame of ``dataset``."""
        from ..codecs.volumetric import backproject
        bs = self.config.eval.batch_size
        out = []
        with eval_mode(model):
            for i in range(0, len(dataset), bs):
                idx = range(i, min(i + bs, len(dataset)))
                x = torch.stack([dataset[j]["image"] for j in idx]).to(device)
                kp, _ = model.predict(x)
                a = dataset.a
                sl = slice(i, i + len(idx))
                P = backproject(kp.double().cpu(), torch.as_tensor(a["focal"][sl]).double(),
                                torch.as_tensor(a["centre"][sl]).double(),
                                torch.as_tensor(a["root_depth"][sl]).double(), self.root_index)
                out.append(P.numpy())
        return np.concatenate(out) if out else np.zeros((0, self.kset.num_keypoints, 3))

    def metrics(self, pred: np.ndarray, dataset) -> Dict[str, float]:
        from ..eval.metrics import mpjpe_by_action
        a = dataset.a
        out = mpjpe_by_action(pred, a["pose_3d"], a["imgname"], a["visibility"] > 0,
                              protocols=(1, 2))
        return {k: float(v) for k, v in out.items()}

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        val = self.val_dataset()
        if val is None or len(val) == 0:
            return None
        return self.metrics(self.predict(model, val, device), val)


__all__ = ["CropsNpz", "H36MImages", "Volumetric3DConfig", "Volumetric3DTask",
           "VolumetricDataset"]
