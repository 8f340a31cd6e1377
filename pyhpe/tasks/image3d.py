"""Image-based 3-D pose: top-down crops of the person box from the real images, with each
frame's camera and camera-frame 3-D joints; the model's codec encodes whole batches.

Data: Human3.6M and MPI-INF-3DHP in mmpose's npz + cameras layout
(:func:`pyhpe.data.read_h36m` / :func:`pyhpe.data.read_mpi_inf_3dhp`) and their image folders;
the crop is the square ``scale * 200`` box (mmpose's) times ``padding`` through the top-down
transform (:class:`pyhpe.data.TopDownDataset`). Models (``model.name``): ``mppe3d``
(3DMPPE: PoseNet + RootNet, :mod:`pyhpe.models.mppe3d`), ``vnect`` (VNect,
:mod:`pyhpe.models.vnect`) and ``dconvmp`` (direct regression with joint-detection
pre-training, :mod:`pyhpe.models.dconvmp`) and ``orpm`` (occlusion-robust pose maps,
:mod:`pyhpe.models.orpm`; on crops, the best person of each) and ``volumetric``
(coarse-to-fine volumetric prediction, :mod:`pyhpe.models.volumetric`, codec
:class:`pyhpe.codecs.volumetric.VolumetricC2F` whose depth resolutions, Gaussian width, depth
range and softmax sharpness default to the model config's; heatmaps a quarter of
``input_size``).

Evaluation, in millimetres: the predicted camera-frame joints relative to the root against
the ground truth's -- Human3.6M MPJPE / P-MPJPE per action (protocols 1 and 2,
:func:`pyhpe.eval.metrics.mpjpe_by_action`), MPI-INF-3DHP PCK3D@150mm, AUC and MPJPE
(:func:`pyhpe.eval.metrics.mpi_inf_3dhp_metrics`). 3DMPPE's joints are back-projected
(:func:`pyhpe.codecs.body3d.back_project`) at the root depth of ``eval.root``: ``"gt"`` (the
official PoseNet protocol) or ``"rootnet"``; the volumetric model's at the ground-truth root
depth (the paper's Human3.6M protocol); with RootNet the metrics also hold ``MRPE``
(the mean root position error of RootNet's back-projected root) and, with ``eval.root:
"rootnet"``, ``MPJPE_abs`` (absolute camera-frame MPJPE). VNect's
joints are its location-map read-out or, with ``eval.fit_skeleton``, its kinematic skeleton
fit (:func:`pyhpe.models.vnect.fit_skeleton`); DconvMP's its regressed root-relative joints;
ORPM's its read-out."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from ..engine.config import Config, ConfigError
from ..engine.trainer import TrainConfig, eval_mode
from .base import CodecConfig, ModelConfig, Task
from .common import ImageTaskConfig, check_downsample, check_subject_split


@dataclass
class H36MImages(Config):
    """Human3.6M: ``path`` (mmpose's ``h36m_*.npz``), ``cameras`` (``cameras.pkl``),
    ``images`` (the folder the npz's ``imgname`` is relative to); training frames of
    ``train_subjects``, test frames of ``test_subjects`` from ``test_path`` (default
    ``path``), every ``downsample``-th frame."""
    type: str = "h36m"
    path: str = ""
    cameras: str = ""
    images: str = ""
    test_path: str = ""
    train_subjects: Tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
    test_subjects: Tuple[str, ...] = ("S9", "S11")
    downsample: int = 1

    def __post_init__(self):
        if not self.path or not self.cameras or not self.images:
            raise ConfigError("data: type 'h36m' needs 'path', 'cameras' and 'images'")
        check_downsample(self.downsample)
        check_subject_split(self.train_subjects, self.test_subjects, self.path, self.test_path)


@dataclass
class MPIInf3DHPImages(Config):
    """MPI-INF-3DHP: training frames from ``train_path`` with ``train_cameras`` and
    ``train_images``, test frames from ``test_path`` with ``test_cameras`` and
    ``test_images`` (default: ``train_images``)."""
    type: str = "mpi_inf_3dhp"
    train_path: str = ""
    train_cameras: str = ""
    train_images: str = ""
    test_path: str = ""
    test_cameras: str = ""
    test_images: str = ""
    downsample: int = 1

    def __post_init__(self):
        need = ("train_path", "train_cameras", "train_images", "test_path", "test_cameras")
        missing = [k for k in need if not getattr(self, k)]
        if missing:
            raise ConfigError(f"data: type 'mpi_inf_3dhp' needs {missing}")
        check_downsample(self.downsample)


IMAGE3D_DATA = {"h36m": H36MImages, "mpi_inf_3dhp": MPIInf3DHPImages}
#: per data type: keypoint set, metric picking the best checkpoint, its mode
_DATA_METRIC = {"h36m": ("h36m17", "MPJPE", "min"), "mpi_inf_3dhp": ("mpi_inf_3dhp17", "PCK3D", "max")}


@dataclass
class Image3DEval(Config):
    batch_size: int = 64
    root: str = "gt"                 # root depth of the back-projection: 'gt' or 'rootnet'
    fit_skeleton: bool = False       # VNect: report the kinematic skeleton fit
    fit_steps: int = 100

    def __post_init__(self):
        if self.root not in ("gt", "rootnet"):
            raise ConfigError(f"eval.root: 'gt' or 'rootnet', got {self.root!r}")


@dataclass
class Image3DConfig(ImageTaskConfig):
    task: str = "image3d"
    keypoints: Optional[str] = None          # default: the data type's
    input_size: Tuple[int, int] = (64, 64)
    padding: float = 1.25
    model: ModelConfig = field(default_factory=lambda: ModelConfig("mppe3d", "tiny"))
    codec: CodecConfig = field(default_factory=lambda: CodecConfig(
        "mppe3d", {"volume_size": [16, 16, 16]}))
    data: Any = field(default_factory=lambda: None, metadata={"variants": IMAGE3D_DATA})
    eval: Image3DEval = field(default_factory=Image3DEval)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        super().__post_init__()
        if self.data is None:
            raise ConfigError("data: the image3d task needs a data section (type 'h36m' or "
                              "'mpi_inf_3dhp')")
        pairs = {"mppe3d": "mppe3d", "vnect": "vnect", "dconvmp": "dconvmp", "orpm": "orpm",
                 "volumetric": "volumetric"}
        want = pairs.get(self.model.name)
        if want is not None and self.codec.name != want:
            raise ConfigError(f"codec.name: model {self.model.name!r} uses the {want!r} codec, "
                              f"got {self.codec.name!r}")
        if self.eval.root == "rootnet" and (self.model.overrides.get("rootnet") is False
                                            or self.model.name != "mppe3d"):
            raise ConfigError("eval.root: 'rootnet' needs the model's RootNet (model.rootnet)")


class Image3DDataset(torch.utils.data.Dataset):
    """Top-down crops (:class:`pyhpe.data.TopDownDataset` items) plus each frame's
    ``keypoints_3d (K, 3)`` camera-frame mm and ``camera (4,)`` = (fx, fy, cx, cy)."""

    def __init__(self, frames: Dict, image_root: str, kset, input_size, padding: float):
        from ..data import CocoImageLoader, TopDownDataset, body3d_to_coco, records_from_coco
        coco = body3d_to_coco(frames)
        self.records = records_from_coco(coco, min_keypoints=0)
        if len(self.records) != len(frames["imgname"]):
            raise ValueError("image3d: every frame needs a non-empty person box")
        self.crops = TopDownDataset(self.records, CocoImageLoader(coco, image_root), kset,
                                    input_size, padding=padding)
        self.keypoints_3d = torch.as_tensor(np.asarray(frames["keypoints_3d"]) * 1000.0,
                                            dtype=torch.float32)
        cams = frames["cameras"]
        self.camera = torch.as_tensor(np.concatenate([cams["f"], cams["c"]], 1), dtype=torch.float32)
        self.visibility = torch.as_tensor(np.asarray(frames["visibility"]), dtype=torch.float32)
        act = frames.get("action", frames.get("subject"))
        self.actions = np.array([re.sub(r"_\d+$", "", str(a)) for a in act])

    def __len__(self):
        return len(self.records)

    def __getitem__(self, idx: int) -> Dict:
        item = self.crops[idx]
        item["keypoints_3d"] = self.keypoints_3d[idx]
        item["camera"] = self.camera[idx]
        return item


class Image3DTask(Task):
    name = "image3d"
    Config = Image3DConfig
    metric = "MPJPE"
    metric_mode = "min"

    def __init__(self, config):
        super().__init__(config)
        from ..keypoints import get_keypoint_set
        c = self.config
        kp, self.metric, self.metric_mode = _DATA_METRIC[c.data.type]
        try:
            self.kset = get_keypoint_set(c.keypoints or kp)
        except (KeyError, ValueError) as e:
            raise ConfigError(f"keypoints: {e}") from e
        self.root_index = self.kset.parents.index(-1)
        self.codec

    def build_codec(self):
        defaults = dict(input_size=list(self.config.input_size), root_index=self.root_index)
        if self.config.codec.name == "orpm":        # the limb chains of the keypoint set
            names = list(self.kset.names)
            torso = names.index("thorax") if "thorax" in names else names.index("neck")
            defaults.update(parents=list(self.kset.parents), torso=torso)
        if self.config.codec.name == "volumetric":  # the model config's levels, a quarter size
            from ..models.volumetric import CONFIGS
            m = self.config.model
            if m.name == "volumetric" and m.config not in CONFIGS:
                raise ConfigError(f"model: 'volumetric' has no config {m.config!r}")
            o = dict(CONFIGS.get(m.config, {}), **m.overrides) if m.name == "volumetric" else {}
            w, h = self.config.input_size
            defaults.update({k: o[k] for k in ("res_z", "sigma", "depth_range", "beta") if k in o},
                            heatmap_size=[w // 4, h // 4])
        return self.build_named_codec(**defaults)

    def build_model(self):
        return self.build_pose_model()

    def build_datasets(self):
        from ..data import read_h36m, read_mpi_inf_3dhp
        d, c = self.config.data, self.config
        make = lambda fr, root: Image3DDataset(fr, root, self.kset, c.input_size, c.padding)  # noqa: E731
        if isinstance(d, H36MImages):
            out = []
            for path, subjects in ((d.path, d.train_subjects),
                                   (d.test_path or d.path, d.test_subjects)):
                fr = read_h36m(path, d.cameras)
                keep = np.flatnonzero(np.isin(fr["subject"], list(subjects)))[::d.downsample]
                if not len(keep):
                    raise ValueError(f"image3d: no frames of subjects {list(subjects)} in {path!r}")
                out.append(make(_select(fr, keep), d.images))
            return tuple(out)
        tr = read_mpi_inf_3dhp(d.train_path, d.train_cameras)
        te = read_mpi_inf_3dhp(d.test_path, d.test_cameras)
        every = lambda fr: _select(fr, np.arange(0, len(fr["imgname"]), d.downsample))  # noqa: E731
        return make(every(tr), d.train_images), make(every(te), d.test_images or d.train_images)

    def collate(self, items):
        from ..data import collate_topdown
        return collate_topdown(items)

    def prepare(self, batch, device):
        from ..data import normalize_images
        scale = batch["scale"].to(device).float()
        targets = self.codec.encode(batch["keypoints"].to(device), batch["visibility"].to(device),
                                    keypoints_3d=batch["keypoints_3d"].to(device),
                                    camera=batch["camera"].to(device), area=scale[:, 0] * scale[:, 1])
        inputs = {"image": normalize_images(batch["image"].to(device))}
        if "k_value" in targets:
            inputs["k_value"] = targets.pop("k_value")
        return inputs, targets

    @torch.no_grad()
    def predict(self, model, dataset, device="cpu") -> Dict[str, np.ndarray]:
        """Camera-frame joints relative to the root ``pose_3d (N, K, 3)`` mm for every frame of
        ``dataset``; 3DMPPE also gives the absolute ``abs_3d`` and ``root_3d (N, 3)`` (at the
        root depth of ``eval.root``)."""
        from ..codecs.body3d import back_project
        from ..data import to_image_space
        e, c = self.config.eval, self.config
        loader = torch.utils.data.DataLoader(dataset, batch_size=e.batch_size, shuffle=False,
                                             collate_fn=self.collate, num_workers=0)
        r = self.root_index
        rel, absolute, roots = [], [], []
        with eval_mode(model):
            for batch in loader:
                inputs, _ = self.prepare(batch, device)
                pred = model.predict(inputs)
                if isinstance(pred, tuple):   # volumetric: (u, v, z - z_root mm), scores
                    kp3, scores = pred
                    pred = {"keypoints": kp3[..., :2], "depth": kp3[..., 2], "scores": scores}
                kp = to_image_space(pred["keypoints"].float().cpu(), batch["center"], batch["scale"],
                                    c.input_size)
                cam = batch["camera"].double()
                if "depth" in pred:           # 3DMPPE, volumetric: back-projection
                    if "root_depth" in pred:               # RootNet: its camera-frame root
                        root_uv = to_image_space(pred["root"].float().cpu()[:, None],
                                                 batch["center"], batch["scale"], c.input_size)
                        root_z = pred["root_depth"].double().cpu()
                        roots.append(back_project(root_uv.double(), root_z[:, None], cam)[:, 0].numpy())
                    if e.root != "rootnet":
                        root_z = batch["keypoints_3d"][:, r, 2].double()
                    X = back_project(kp.double(), pred["depth"].double().cpu() + root_z[:, None], cam)
                    absolute.append(X.numpy())
                    rel.append((X - X[:, r:r + 1]).numpy())
                else:                                     # VNect: the location-map read-out
                    P = pred["keypoints_3d"].double().cpu()
                    if e.fit_skeleton:
                        from ..models.vnect import fit_skeleton
                        fit = fit_skeleton(P, kp.double(), cam, self.kset.parents,
                                           weights=pred["scores"].double().cpu().clamp(0, 1),
                                           steps=e.fit_steps)
                        P = fit.joints - fit.joints[:, r:r + 1]
                        absolute.append(fit.joints.numpy())
                    rel.append(P.numpy())
        K = self.kset.num_keypoints
        out = {"pose_3d": np.concatenate(rel) if rel else np.zeros((0, K, 3))}
        if absolute:
            out["abs_3d"] = np.concatenate(absolute)
        if roots:
            out["root_3d"] = np.concatenate(roots)
        return out

    def metrics(self, pred: Dict[str, np.ndarray], dataset) -> Dict[str, float]:
        from ..eval.metrics import mpi_inf_3dhp_metrics, mpjpe, mpjpe_by_action
        r = self.root_index
        gt_abs = dataset.keypoints_3d.numpy().astype(np.float64)
        gt = gt_abs - gt_abs[:, r:r + 1]
        vis = dataset.visibility.numpy() > 0
        if self.config.data.type == "h36m":
            out = mpjpe_by_action(pred["pose_3d"], gt, dataset.actions, vis, protocols=(1, 2))
        else:
            out = mpi_inf_3dhp_metrics(pred["pose_3d"], gt, vis, threshold=150.0)
        if "root_3d" in pred:
            out["MRPE"] = float(np.linalg.norm(pred["root_3d"] - gt_abs[:, r], axis=-1).mean())
        if "abs_3d" in pred and self.config.eval.root == "rootnet":
            out["MPJPE_abs"] = float(mpjpe(pred["abs_3d"], gt_abs, vis))
        return {k: float(v) for k, v in out.items()}

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        val = self.val_dataset()
        if val is None or len(val) == 0:
            return None
        return self.metrics(self.predict(model, val, device), val)


def _select(frames: Dict, idx) -> Dict:
    """The frames ``idx`` of a read_h36m / read_mpi_inf_3dhp result (cameras included)."""
    n = len(frames["imgname"])
    out = {}
    for k, v in frames.items():
        if k == "cameras":
            out[k] = {ck: (cv[idx] if isinstance(cv, np.ndarray) and len(cv) == n else cv)
                      for ck, cv in v.items()}
        elif isinstance(v, np.ndarray) and v.ndim and len(v) == n:
            out[k] = v[idx]
        else:
            out[k] = v
    return out


__all__ = ["H36MImages", "IMAGE3D_DATA", "Image3DConfig", "Image3DDataset", "Image3DEval",
           "Image3DTask", "MPIInf3DHPImages"]
