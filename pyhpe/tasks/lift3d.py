"""2-D -> 3-D pose lifting (SimpleBaseline-3D, Martinez et al. 2017) on synthetic 3-D figures
seen by random cameras, Human3.6M (VideoPose3D npz layout or mmpose's npz layout),
MPI-INF-3DHP (mmpose's npz layout) or CMU Panoptic 3-D bodies seen by one HD camera.

Each data type has one row in :data:`LIFT_DATA` (its config, keypoint set, root joint and its
official metric): Human3.6M MPJPE / P-MPJPE per action (protocols 1 and 2,
:func:`pyhpe.eval.metrics.mpjpe_by_action`), MPI-INF-3DHP PCK3D@150mm, AUC and MPJPE
(:func:`pyhpe.eval.metrics.mpi_inf_3dhp_metrics`), Panoptic MPJPE over the visible joints;
all in millimetres, root-relative. The lift3d codec standardises with training-set
statistics.

Model options: ``model.poseaug: {...}`` trains the lifter with PoseAug
(:mod:`pyhpe.models.poseaug`; needs a keypoint set with a kinematic tree and the data's
cameras); ``model.name: "matching3d"`` is 2-D + matching (:mod:`pyhpe.models.matching3d`),
whose library is the training set (``fit`` evaluates it, nothing is trained)."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..engine.config import Config, ConfigError
from ..engine.trainer import TrainConfig, eval_mode
from .base import CodecConfig, ModelConfig, SyntheticData, Task, TaskConfig
from .common import build_checked, check_downsample, check_subject_split


@dataclass
class SyntheticLifting(SyntheticData):
    """Synthetic 3-D poses (COCO-17) seen by random pinhole cameras
    (:func:`pyhpe.data.synthetic_lifting_data`) for ``train_samples`` training and
    ``test_samples`` held-out poses."""
    train_samples: int = 20000
    test_samples: int = 2000
    noise_2d: float = 0.0


def _check_input_2d(value: str, has_cameras: bool, key: str) -> None:
    if value not in ("part", "projected"):
        raise ConfigError(f"data.input_2d: 'part' or 'projected', got {value!r}")
    if value == "projected" and not has_cameras:
        raise ConfigError(f"data.input_2d: 'projected' needs {key!r}")


@dataclass
class H36MLifting(Config):
    """Human3.6M in the VideoPose3D npz layout (:func:`pyhpe.data.load_h36m_npz`); protocol #1
    subjects by default. ``camera_2d``: the 2-D file in H36M joint order to fit the cameras
    with when ``path_2d`` holds detections in another order. Without it the samples carry each
    sequence's pinhole intrinsics (fitted to its 2-D / camera-frame 3-D pairs) and the
    camera-frame root, which PoseAug needs."""
    type: str = "h36m"
    path_3d: str = ""
    path_2d: str = ""
    camera_2d: Optional[str] = None
    train_subjects: Tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
    test_subjects: Tuple[str, ...] = ("S9", "S11")
    downsample: int = 1

    def __post_init__(self):
        if not self.path_3d or not self.path_2d:
            raise ConfigError("data: type 'h36m' needs 'path_3d' and 'path_2d'")


@dataclass
class H36MNpzLifting(Config):
    """Human3.6M in mmpose's npz layout (:func:`pyhpe.data.read_h36m`: ``part`` image pixels,
    ``S`` camera-frame metres): training poses of ``train_subjects`` from ``train_path``, test
    poses of ``test_subjects`` from ``test_path`` (default: ``train_path``); protocol #1
    subjects by default, every ``downsample``-th frame. ``cameras``: the dataset's
    ``cameras.pkl`` (each frame's intrinsics; the samples then carry ``camera`` and
    ``root_3d``, which PoseAug needs); ``input_2d``: ``"part"`` (the file's 2-D keypoints) or
    ``"projected"`` (the 3-D joints projected by the camera with its distortion, as the
    official SimpleBaseline-3D code makes its ground-truth 2-D inputs; needs ``cameras``)."""
    type: str = "h36m_npz"
    train_path: str = ""
    test_path: str = ""
    train_subjects: Tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
    test_subjects: Tuple[str, ...] = ("S9", "S11")
    downsample: int = 1
    cameras: str = ""
    input_2d: str = "part"

    def __post_init__(self):
        if not self.train_path:
            raise ConfigError("data: type 'h36m_npz' needs 'train_path'")
        _check_input_2d(self.input_2d, bool(self.cameras), "cameras")
        check_downsample(self.downsample)
        check_subject_split(self.train_subjects, self.test_subjects, self.train_path,
                            self.test_path)


@dataclass
class MPIInf3DHPLifting(Config):
    """MPI-INF-3DHP in mmpose's npz layout (:func:`pyhpe.data.read_mpi_inf_3dhp`): training
    poses from ``train_path`` (``mpi_inf_3dhp_train.npz``), test poses from ``test_path``
    (``mpi_inf_3dhp_test_valid.npz``), every ``downsample``-th pose; ``train_cameras`` /
    ``test_cameras`` (``cameras_train.pkl`` / ``cameras_test.pkl``) and ``input_2d`` as
    :class:`H36MNpzLifting`'s (pinhole projection)."""
    type: str = "mpi_inf_3dhp"
    train_path: str = ""
    test_path: str = ""
    downsample: int = 1
    train_cameras: str = ""
    test_cameras: str = ""
    input_2d: str = "part"

    def __post_init__(self):
        if not self.train_path or not self.test_path:
            raise ConfigError("data: type 'mpi_inf_3dhp' needs 'train_path' and 'test_path'")
        if bool(self.train_cameras) != bool(self.test_cameras):
            raise ConfigError("data: give both 'train_cameras' and 'test_cameras' or neither")
        _check_input_2d(self.input_2d, bool(self.train_cameras), "train_cameras")
        check_downsample(self.downsample)


@dataclass
class PanopticLifting(Config):
    """CMU Panoptic 3-D bodies (:func:`pyhpe.data.read_panoptic_body3d`, ``root``/<sequence>/
    ``hdPose3d_stage1_coco19``) seen by one HD camera of the sequence's calibration
    (``calibration_<sequence>*.json``, :func:`pyhpe.data.project_panoptic`): the 2-D input is
    the body projected into ``camera`` (``test_camera`` for the test sequences, default the
    same), the 3-D target the body in that camera's frame (mm, relative to mid-hip). Joints
    with confidence <= ``min_score`` are not visible (VoxelPose's 0.1); bodies without a
    visible mid-hip or behind the camera are left out."""
    type: str = "panoptic"
    root: str = ""
    train_sequences: Tuple[str, ...] = ()
    test_sequences: Tuple[str, ...] = ()
    camera: str = "00_16"
    test_camera: Optional[str] = None
    min_score: float = 0.1

    def __post_init__(self):
        if not self.root or not self.train_sequences:
            raise ConfigError("data: type 'panoptic' needs 'root' and 'train_sequences'")
        shared = sorted(set(self.train_sequences) & set(self.test_sequences))
        if shared and (self.test_camera or self.camera) == self.camera:
            raise ConfigError(f"data: sequences {shared} are in both splits seen by the same "
                              f"camera {self.camera!r}; give another 'test_camera'")


# ---------------------------------------------------------------------------- metrics
def lifting_metrics(pred: np.ndarray, gt: np.ndarray, actions=None) -> Dict[str, float]:
    """MPJPE, P-MPJPE, N-MPJPE (mm); with ``actions``, also their means over actions."""
    from ..eval.metrics import mpjpe, n_mpjpe, p_mpjpe
    out = {"mpjpe": float(mpjpe(pred, gt)), "p_mpjpe": float(p_mpjpe(pred, gt)),
           "n_mpjpe": float(n_mpjpe(pred, gt))}
    if actions is not None and len(actions):
        names = sorted(set(np.asarray(actions).tolist()))
        per = [(mpjpe(pred[actions == a], gt[actions == a]),
                p_mpjpe(pred[actions == a], gt[actions == a])) for a in names]
        out["mpjpe_action_mean"] = float(np.mean([p[0] for p in per]))
        out["p_mpjpe_action_mean"] = float(np.mean([p[1] for p in per]))
    return out


def _synthetic_metrics(pred, gt, actions, mask):
    return lifting_metrics(pred, gt, actions)


def _h36m_metrics(pred, gt, actions, mask):
    from ..eval.metrics import mpjpe_by_action
    return mpjpe_by_action(pred, gt, actions, mask, protocols=(1, 2))


def _h36m_videopose_metrics(pred, gt, actions, mask):
    out = lifting_metrics(pred, gt, actions)
    out.update(_h36m_metrics(pred, gt, actions, mask))
    return out


def _mpi_inf_3dhp_metrics(pred, gt, actions, mask):
    from ..eval.metrics import mpi_inf_3dhp_metrics
    return mpi_inf_3dhp_metrics(pred, gt, mask, threshold=150.0)


def _panoptic_metrics(pred, gt, actions, mask):
    from ..eval.metrics import mpjpe
    return {"MPJPE": mpjpe(pred, gt, mask)}


@dataclass(frozen=True)
class LiftData:
    """One data type: its config, default keypoint set, root joint(s) of the 3-D targets, the
    metric that picks the best checkpoint (and whether lower is better) and the function
    ``(pred, gt, actions, mask) -> metrics`` of its official evaluation."""
    config: type
    keypoints: str
    root: Union[int, Tuple[int, ...]]
    metric: str
    mode: str
    evaluate: Callable[..., Dict[str, float]]


#: The data types of the lift3d task and each dataset's official metric.
LIFT_DATA: Dict[str, LiftData] = {
    "synthetic": LiftData(SyntheticLifting, "coco17", (11, 12), "mpjpe", "min", _synthetic_metrics),
    "h36m": LiftData(H36MLifting, "h36m17", 0, "mpjpe", "min", _h36m_videopose_metrics),
    "h36m_npz": LiftData(H36MNpzLifting, "h36m17", 0, "MPJPE", "min", _h36m_metrics),
    "mpi_inf_3dhp": LiftData(MPIInf3DHPLifting, "mpi_inf_3dhp17", 14, "PCK3D", "max",
                             _mpi_inf_3dhp_metrics),
    "panoptic": LiftData(PanopticLifting, "panoptic19", 2, "MPJPE", "min", _panoptic_metrics),
}
LIFTING_DATA = {name: row.config for name, row in LIFT_DATA.items()}


@dataclass
class LiftEval(Config):
    batch_size: int = 1024
    flip_test: bool = False


@dataclass
class Lift3DConfig(TaskConfig):
    task: str = "lift3d"
    keypoints: Optional[str] = None     # default: the data type's (LIFT_DATA)
    model: ModelConfig = field(default_factory=lambda: ModelConfig("simple_baseline_3d", "tiny"))
    codec: CodecConfig = field(default_factory=lambda: CodecConfig("lift3d", {}))
    data: Any = field(default_factory=SyntheticLifting, metadata={"variants": LIFTING_DATA})
    eval: LiftEval = field(default_factory=LiftEval)
    train: TrainConfig = field(default_factory=TrainConfig)

    codec_name = "lift3d"

    def __post_init__(self):
        super().__post_init__()
        bad = set(self.codec.params) & {"mean_2d", "std_2d", "mean_3d", "std_3d", "root_index"}
        if bad:
            raise ConfigError(f"codec: {sorted(bad)} come from the training data, not the config")
        if "poseaug" in self.model.overrides:
            if self.model.name == "matching3d":
                raise ConfigError("model.poseaug: trains a lifter; matching3d has no weights")
            poseaug_config(self.model.overrides["poseaug"])


def poseaug_config(value):
    """``model.poseaug`` -> :class:`pyhpe.models.poseaug.PoseAugConfig`: a dict of its fields
    over the defaults of its ``config`` key (``"paper"``, the official settings, or
    ``"tiny"``), or ``true`` for the paper defaults."""
    from ..models.poseaug import POSEAUG_CONFIGS, PoseAugConfig
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"model.poseaug: a dict of PoseAug settings or true, got {value!r}")
    d = dict(value)
    preset = d.pop("config", "paper")
    if preset not in POSEAUG_CONFIGS:
        raise ConfigError(f"model.poseaug.config: one of {sorted(POSEAUG_CONFIGS)}, got {preset!r}")
    return PoseAugConfig.from_dict(dict(POSEAUG_CONFIGS[preset], **d), "model.poseaug")


# ---------------------------------------------------------------------------- data
def _body3d_arrays(d: Dict, input_2d: str = "part"):
    """(pose_2d, pose_3d mm root-relative, visibility, actions, camera (N, 4) or None,
    root_3d (N, 3) mm or None) of a read_h36m / read_mpi_inf_3dhp result."""
    from ..data import body3d_lifting_arrays, project_h36m, project_pinhole
    from ..keypoints import get_keypoint_set
    p2, p3, vis, acts = body3d_lifting_arrays(d)
    cams = d.get("cameras")
    if cams is None:
        return p2, p3, vis, acts, None, None
    X = np.asarray(d["keypoints_3d"], np.float64)
    root = get_keypoint_set(d["keypoint_set"]).parents.index(-1)
    if input_2d == "projected":
        if "k" in cams and "p" in cams:
            p2 = project_h36m(X, cams["f"], cams["c"], cams["k"], cams["p"])
        else:
            p2 = project_pinhole(X, cams["f"], cams["c"])
        p2 = p2.astype(np.float32)
    camera = np.concatenate([cams["f"], cams["c"]], 1).astype(np.float32)
    return p2, p3, vis, acts, camera, (X[:, root] * 1000.0).astype(np.float32)


def _take(arrays, idx):
    return tuple(None if a is None else a[idx] for a in arrays)


def _subjects(arrays, subject, subjects: Sequence[str], downsample: int, path: str, role: str):
    keep = np.isin(np.asarray(subject), list(subjects))
    if not keep.any():
        raise ValueError(f"lift3d: no {role} poses of subjects {list(subjects)} in {path!r} "
                         f"(it has {sorted(set(np.asarray(subject).tolist()))})")
    return _take(arrays, np.flatnonzero(keep)[::downsample])


def _every(arrays, downsample: int):
    return _take(arrays, slice(None, None, downsample))


def _panoptic_pairs(d: PanopticLifting, sequences: Sequence[str], camera: str):
    """(pose_2d, pose_3d mm root-relative camera frame, visibility, sequence names)."""
    from ..data import project_panoptic, read_panoptic_body3d, read_panoptic_calibration
    root = LIFT_DATA["panoptic"].root
    p2, p3, vis, acts = [], [], [], []
    for seq in sequences:
        folder = os.path.join(d.root, seq)
        calib = sorted(glob.glob(os.path.join(folder, f"calibration_{seq}*.json")))
        if not calib:
            raise FileNotFoundError(f"lift3d: no calibration_{seq}*.json in {folder!r}")
        cams = read_panoptic_calibration(calib[0])
        if camera not in cams:
            raise ValueError(f"lift3d: camera {camera!r} is not in {calib[0]!r} (it has "
                             f"{sorted(cams)[:8]}...)")
        cam = cams[camera]
        for fr in read_panoptic_body3d(os.path.join(folder, "hdPose3d_stage1_coco19")):
            for X, score in zip(fr["joints"], fr["scores"]):
                v = score > d.min_score
                Xc = X @ cam["R"].T + cam["t"]
                if not v[root] or (Xc[v, 2] <= 0).any():
                    continue
                x2 = project_panoptic(X, cam)
                rel = (Xc - Xc[root]) * 10.0            # cm -> mm
                rel[~v] = 0.0                           # missing joints: no made-up targets
                x2[~v] = x2[root]
                p2.append(x2)
                p3.append(rel)
                vis.append(v)
                acts.append(seq)
    K = 19
    if not p2:
        return (np.zeros((0, K, 2), np.float32), np.zeros((0, K, 3), np.float32),
                np.zeros((0, K), np.float32), np.array([], str))
    return (np.stack(p2).astype(np.float32), np.stack(p3).astype(np.float32),
            np.stack(vis).astype(np.float32), np.array(acts))


class Lift3DTask(Task):
    name = "lift3d"
    Config = Lift3DConfig
    metric = "mpjpe"
    metric_mode = "min"

    def __init__(self, config):
        super().__init__(config)
        from ..keypoints import get_keypoint_set
        c = self.config
        self.data_kind = LIFT_DATA[c.data.type]
        self.kset = get_keypoint_set(c.keypoints or self.data_kind.keypoints)
        root = self.data_kind.root
        self.root_index = list(root) if isinstance(root, tuple) else root
        self.metric, self.metric_mode = self.data_kind.metric, self.data_kind.mode

    def build_datasets(self):
        from ..data import (LiftingDataset, h36m_arrays, load_h36m_npz, read_h36m,
                            read_mpi_inf_3dhp, synthetic_lifting_data)
        d = self.config.data
        if isinstance(d, SyntheticLifting):
            tr2, tr3 = synthetic_lifting_data(d.train_samples, d.seed, d.noise_2d)
            te2, te3 = synthetic_lifting_data(d.test_samples, d.heldout_seed, d.noise_2d)
            return LiftingDataset(tr2, tr3), LiftingDataset(te2, te3)
        if isinstance(d, H36MLifting):
            from ..data.lifting import h36m_camera_arrays
            out = []
            for subjects in (d.train_subjects, d.test_subjects):
                seqs = load_h36m_npz(d.path_3d, d.path_2d, list(subjects), camera_2d=d.camera_2d)
                p2, p3, acts = h36m_arrays(seqs, d.downsample)
                cam, root = h36m_camera_arrays(seqs, d.downsample) if d.camera_2d is None \
                    else (None, None)       # detections in another order: no pixel camera
                out.append(LiftingDataset(p2, p3, actions=acts, camera=cam, root_3d=root))
            return tuple(out)
        if isinstance(d, H36MNpzLifting):
            test_path = d.test_path or d.train_path
            cams = d.cameras or None
            tr, te = read_h36m(d.train_path, cams), read_h36m(test_path, cams)
            train = _subjects(_body3d_arrays(tr, d.input_2d), tr["subject"], d.train_subjects,
                              d.downsample, d.train_path, "training")
            test = _subjects(_body3d_arrays(te, d.input_2d), te["subject"], d.test_subjects,
                             d.downsample, test_path, "test")
        elif isinstance(d, MPIInf3DHPLifting):
            train = _every(_body3d_arrays(read_mpi_inf_3dhp(d.train_path, d.train_cameras or None),
                                          d.input_2d), d.downsample)
            test = _every(_body3d_arrays(read_mpi_inf_3dhp(d.test_path, d.test_cameras or None),
                                         d.input_2d), d.downsample)
        else:
            train = _panoptic_pairs(d, d.train_sequences, d.camera)
            test = _panoptic_pairs(d, d.test_sequences, d.test_camera or d.camera)
            if not len(train[0]):
                raise ValueError(f"lift3d: no Panoptic body of {list(d.train_sequences)} in "
                                 f"front of camera {d.camera!r}")
            train, test = train + (None, None), test + (None, None)
        return (LiftingDataset(train[0], train[1], train[2], actions=train[3], camera=train[4],
                               root_3d=train[5]),
                LiftingDataset(test[0], test[1], test[2], actions=test[3], camera=test[4],
                               root_3d=test[5]))

    def build_codec(self):
        from ..codecs import Lift3DCodec
        train = self.train_dataset()
        return build_checked("codec", Lift3DCodec.from_data, train.pose_2d.numpy(),
                             train.pose_3d.numpy(), root_index=self.root_index,
                             **self.config.codec.params)

    @property
    def poseaug(self):
        """The :class:`~pyhpe.models.poseaug.PoseAugConfig` of ``model.poseaug`` or None."""
        value = self.config.model.overrides.get("poseaug")
        return None if value is None or value is False else poseaug_config(value)

    @property
    def is_matching(self) -> bool:
        return self.config.model.name.lower().replace("-", "_") == "matching3d"

    def build_model(self):
        from ..models import build_model
        m = self.config.model
        if self.is_matching:      # no weights: not a PoseModel of the registry
            from ..models import matching3d
            if m.config not in matching3d.CONFIGS:
                raise ConfigError(f"model: matching3d has no config {m.config!r}; known: "
                                  f"{sorted(matching3d.CONFIGS)}")
            try:
                model = matching3d.build(self.kset.num_keypoints, self.codec,
                                         **dict(matching3d.CONFIGS[m.config], **m.overrides))
            except (TypeError, ValueError) as e:
                raise ConfigError(f"model: {e}") from e
            return model.set_library(self.train_dataset().pose_3d.numpy())
        overrides = {k: v for k, v in m.overrides.items() if k != "poseaug"}
        if overrides.get("bone_weight", 0) > 0:
            overrides.setdefault("bones", [list(b) for b in self.kset.limbs])
        try:
            model = build_model(m.name, m.config, num_keypoints=self.kset.num_keypoints,
                                codec=self.codec, **overrides)
        except TypeError as e:
            raise ConfigError(f"model: {e}") from e
        cfg = self.poseaug
        if cfg is None:
            return model
        from ..models.poseaug import KinematicChain, PoseAugLifter
        if self.kset.parents is None:
            raise ConfigError(f"model.poseaug: needs a keypoint set with a kinematic tree "
                              f"('parents'); {self.kset.name!r} has none")
        if self.train_dataset().camera is None:
            raise ConfigError("model.poseaug: needs the data's cameras (data.cameras / "
                              "train_cameras) to reproject the augmented poses")
        chain = KinematicChain(self.kset.parents, self.kset.flip_index())
        return PoseAugLifter(model, chain, cfg)

    def prepare(self, batch, device):
        targets = self.codec.encode(batch["keypoints"].to(device), batch["visibility"].to(device),
                                    keypoints_3d=batch["keypoints_3d"].to(device))
        if "camera" in batch and self.config.model.overrides.get("poseaug"):
            targets.update(keypoints_3d=batch["keypoints_3d"].to(device),
                           keypoints_2d=batch["keypoints"].to(device),
                           camera=batch["camera"].to(device), root_3d=batch["root_3d"].to(device))
        return targets.pop("inputs"), targets

    def fit(self, log=print, **train_overrides) -> Dict:
        """The engine's training; ``matching3d`` has no weights: its library is the training
        set, so fitting evaluates it and writes ``best.pth`` (the library) and the logs."""
        if not self.is_matching:
            return super().fit(log=log, **train_overrides)
        import json
        cfg = self.train_config(**train_overrides)
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available()
                                                          else "cpu")
        model = self.build_model().to(device)
        metrics = self.evaluate(model, device)
        best = None if metrics is None else metrics[self.metric]
        os.makedirs(cfg.out_dir, exist_ok=True)
        torch.save({"model": model.state_dict(), "metric": self.metric, "best": best,
                    "metrics": metrics}, os.path.join(cfg.out_dir, "best.pth"))
        result = {"task": self.name, "epoch": 0, "step": 0, "metric": self.metric,
                  "metric_mode": self.metric_mode, "best": best, "metrics": metrics,
                  "finished": True, "history": [dict(metrics or {}, step=0)], "loss_log": [],
                  "out_dir": cfg.out_dir}
        with open(os.path.join(cfg.out_dir, "log.json"), "w") as f:
            json.dump({"metric": self.metric, "metric_mode": self.metric_mode,
                       "rows": result["history"]}, f, indent=1)
        if log:
            log(f"matching3d: library of {len(model)} poses; {self.metric} {best}")
        return result

    @torch.no_grad()
    def predict(self, model, dataset, device="cpu") -> np.ndarray:
        """Root-relative 3-D keypoints ``(N, K, 3)`` mm for every pose of ``dataset``."""
        e = self.config.eval
        out = []
        with eval_mode(model):
            for i in range(0, len(dataset), e.batch_size):
                kp = dataset.pose_2d[i:i + e.batch_size].to(device)
                vis = dataset.visibility[i:i + e.batch_size].to(device)
                inputs = self.codec.encode(kp, vis)["inputs"]
                pred, _ = model.predict(inputs, flip_test=e.flip_test,
                                        flip_index=self.kset.flip_index())
                out.append(pred.float().cpu().numpy())
        K = self.kset.num_keypoints
        return np.concatenate(out) if out else np.zeros((0, K, 3), np.float32)

    def metrics(self, pred: np.ndarray, dataset) -> Dict[str, float]:
        """The data type's official metrics (:data:`LIFT_DATA`) of ``pred`` ``(N, K, 3)`` mm
        against ``dataset`` (its root-relative 3-D poses, visible joints and actions)."""
        vis = dataset.visibility.numpy() > 0
        out = self.data_kind.evaluate(pred, dataset.pose_3d.numpy(), dataset.actions, vis)
        return {k: float(v) for k, v in out.items()}

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        val = self.val_dataset()
        if val is None or len(val) == 0:
            return None
        return self.metrics(self.predict(model, val, device), val)


__all__ = ["H36MLifting", "H36MNpzLifting", "LIFT_DATA", "LiftData", "Lift3DConfig",
           "Lift3DTask", "LiftEval", "MPIInf3DHPLifting", "PanopticLifting", "SyntheticLifting",
           "lifting_metrics"]
