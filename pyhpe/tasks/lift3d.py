"""2-D -> 3-D pose lifting (SimpleBaseline-3D, Martinez et al. 2017) on synthetic 3-D figures
seen by random cameras or on Human3.6M npz files (VideoPose3D layout); MPJPE / P-MPJPE /
N-MPJPE in mm (lower is better). The lift3d codec standardises with training-set statistics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from ..engine.config import Config, ConfigError
from ..engine.trainer import TrainConfig, eval_mode
from .base import CodecConfig, ModelConfig, SyntheticData, Task, TaskConfig
from .common import build_checked


@dataclass
class SyntheticLifting(SyntheticData):
    """Synthetic 3-D poses (COCO-17) seen by random pinhole cameras
    (:func:`pyhpe.data.synthetic_lifting_data`) for ``train_samples`` training and
    ``test_samples`` held-out poses."""
    train_samples: int = 20000
    test_samples: int = 2000
    noise_2d: float = 0.0


@dataclass
class H36MLifting(Config):
    """Human3.6M in the VideoPose3D npz layout (:func:`pyhpe.data.load_h36m_npz`); protocol #1
    subjects by default. ``camera_2d``: the 2-D file in H36M joint order to fit the cameras
    with when ``path_2d`` holds detections in another order."""
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


LIFTING_DATA = {"synthetic": SyntheticLifting, "h36m": H36MLifting}


@dataclass
class LiftEval(Config):
    batch_size: int = 1024
    flip_test: bool = False


@dataclass
class Lift3DConfig(TaskConfig):
    task: str = "lift3d"
    keypoints: Optional[str] = None     # default: coco17 (synthetic) / h36m17 (h36m)
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


class Lift3DTask(Task):
    name = "lift3d"
    Config = Lift3DConfig
    metric = "mpjpe"
    metric_mode = "min"

    def __init__(self, config):
        super().__init__(config)
        from ..keypoints import get_keypoint_set
        c = self.config
        default = "coco17" if isinstance(c.data, SyntheticLifting) else "h36m17"
        self.kset = get_keypoint_set(c.keypoints or default)
        # synthetic poses are relative to the hip centre, Human3.6M's to the hip joint
        self.root_index = [11, 12] if isinstance(c.data, SyntheticLifting) else 0

    def build_datasets(self):
        from ..data import (LiftingDataset, h36m_arrays, load_h36m_npz, synthetic_lifting_data)
        d = self.config.data
        if isinstance(d, SyntheticLifting):
            tr2, tr3 = synthetic_lifting_data(d.train_samples, d.seed, d.noise_2d)
            te2, te3 = synthetic_lifting_data(d.test_samples, d.heldout_seed, d.noise_2d)
            return LiftingDataset(tr2, tr3), LiftingDataset(te2, te3)
        tr2, tr3, _ = h36m_arrays(load_h36m_npz(d.path_3d, d.path_2d, list(d.train_subjects),
                                                camera_2d=d.camera_2d), d.downsample)
        te2, te3, acts = h36m_arrays(load_h36m_npz(d.path_3d, d.path_2d, list(d.test_subjects),
                                                   camera_2d=d.camera_2d), d.downsample)
        return LiftingDataset(tr2, tr3), LiftingDataset(te2, te3, actions=acts)

    def build_codec(self):
        from ..codecs import Lift3DCodec
        train = self.train_dataset()
        return build_checked("codec", Lift3DCodec.from_data, train.pose_2d.numpy(),
                             train.pose_3d.numpy(), root_index=self.root_index,
                             **self.config.codec.params)

    def build_model(self):
        bone_loss = self.config.model.overrides.get("bone_weight", 0) > 0
        return self.build_pose_model(**({"bones": [list(b) for b in self.kset.limbs]}
                                        if bone_loss else {}))

    def prepare(self, batch, device):
        targets = self.codec.encode(batch["keypoints"].to(device), batch["visibility"].to(device),
                                    keypoints_3d=batch["keypoints_3d"].to(device))
        return targets.pop("inputs"), targets

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

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        val = self.val_dataset()
        if val is None or len(val) == 0:
            return None
        return lifting_metrics(self.predict(model, val, device), val.pose_3d.numpy(), val.actions)


def lifting_metrics(pred: np.ndarray, gt: np.ndarray, actions=None) -> Dict[str, float]:
    """MPJPE, P-MPJPE, N-MPJPE (mm); with ``actions``, also their means over actions."""
    from ..eval.metrics import mpjpe, n_mpjpe, p_mpjpe
    out = {"mpjpe": float(mpjpe(pred, gt)), "p_mpjpe": float(p_mpjpe(pred, gt)),
           "n_mpjpe": float(n_mpjpe(pred, gt))}
    if actions is not None and len(actions):
        names = sorted(set(np.asarray(actions).tolist()))
        per = [(mpjpe(pred[actions == a], gt[actions == a]), p_mpjpe(pred[actions == a], gt[actions == a]))
               for a in names]
        out["mpjpe_action_mean"] = float(np.mean([p[0] for p in per]))
        out["p_mpjpe_action_mean"] = float(np.mean([p[1] for p in per]))
    return out


__all__ = ["H36MLifting", "Lift3DConfig", "Lift3DTask", "LiftEval", "SyntheticLifting",
           "lifting_metrics"]
