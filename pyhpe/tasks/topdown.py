"""Top-down single-person pose: heatmap (msra / unbiased / udp), SimCC, regression and
integral (ipr / dipr / dsnt) heads chosen by the config's codec, on synthetic figures or
COCO-format data; evaluated by flip-test prediction -> COCO results (mmpose rescoring: box
score x mean keypoint score above ``eval.score_thr``) -> COCO AP. Also inference on detector
boxes with OKS-NMS (:func:`infer_detections`)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..engine.config import ConfigError
from ..engine.trainer import TrainConfig, eval_mode
from .base import CodecConfig, ModelConfig
from .common import IMAGE_DATA, CocoEval, ImageTask, ImageTaskConfig, build_checked, image_sources

#: codecs whose maps are smaller than the input: they take the config's ``heatmap_size``
_MAP_CODECS = ("msra", "unbiased", "udp", "integral")


@dataclass
class TopDownEval(CocoEval):
    flip_test: bool = True
    batch_size: int = 128
    score_thr: float = 0.2        # mmpose rescoring: mean of the keypoint scores above this
    # validation on a person detector's boxes (mmpose's bbox_file): a COCO detection json,
    # category 1, boxes scoring at least det_score_thr, results OKS-NMS'd (nms_thr, vis 0.2)
    bbox_file: Optional[str] = None
    det_score_thr: float = 0.0
    nms_thr: float = 0.9


def _default_augment() -> Dict[str, Any]:
    return {"rot_factor": 20, "half_body_prob": 0.1}


@dataclass
class TopDownConfig(ImageTaskConfig):
    task: str = "topdown"
    keypoints: str = "coco17"                 # a keypoint-set name, or 'auto' (COCO data)
    input_size: Tuple[int, int] = (48, 64)    # (W, H) of the person crops
    model: ModelConfig = field(default_factory=ModelConfig)
    codec: CodecConfig = field(default_factory=lambda: CodecConfig(
        "msra", {"heatmap_size": [12, 16], "sigma": 1.0}))
    data: Any = field(default_factory=lambda: IMAGE_DATA["synthetic"](),
                      metadata={"variants": IMAGE_DATA})
    augment: Optional[Dict[str, Any]] = field(default_factory=_default_augment)  # TopDownAugment
    eval: TopDownEval = field(default_factory=TopDownEval)
    train: TrainConfig = field(default_factory=TrainConfig)


class TopDownTask(ImageTask):
    name = "topdown"
    Config = TopDownConfig
    metric = "AP"

    def __init__(self, config):
        super().__init__(config)
        from .datasets import METRIC_KINDS, metric_kind
        fmt = getattr(self.config.data, "format", "coco")
        self.metric_kind = metric_kind(fmt)
        self.metric, needs_gt_boxes = METRIC_KINDS[self.metric_kind]
        if needs_gt_boxes and self.config.eval.bbox_file:
            raise ConfigError(f"eval.bbox_file: the {fmt} metric ({self.metric}) compares each "
                              "prediction with the annotation of its GT box; it cannot use "
                              "detections")
        self.augment, self._pgpg = None, None
        if self.config.augment is not None:
            from ..data import TopDownAugment
            augment = dict(self.config.augment)
            self._pgpg = augment.pop("pgpg", None)   # RMPE's pose-guided proposals (data/pgpg.py)
            self.augment = build_checked("augment", TopDownAugment, **augment)
            if self._pgpg is not None:
                from ..data.pgpg import check_pgpg_options
                try:
                    check_pgpg_options(self._pgpg)
                except ValueError as e:
                    raise ConfigError(f"augment.{e}") from e

    def build_codec(self):
        return self.build_named_codec(input_size=list(self.config.input_size))

    #: model-section keys the task handles itself (the head's bone loss), not the model
    _BONE_KEYS = ("bone_weight", "bones", "bone_beta")

    def build_model(self):
        """The config's model; ``model.bone_weight`` (> 0) turns on every head's 2-D bone
        loss (``bones`` default to the keypoint set's skeleton, ``bone_beta`` the soft-argmax
        sharpness for heatmap heads); ``model.scai`` attaches SCAI
        (:func:`pyhpe.models.scai.attach_scai`)."""
        from ..models import build_model
        m = self.config.model
        bone = {k: m.overrides[k] for k in self._BONE_KEYS if k in m.overrides}
        overrides = {k: v for k, v in m.overrides.items()
                     if k not in self._BONE_KEYS and k != "scai"}
        try:
            model = build_model(m.name, m.config, num_keypoints=self.kset.num_keypoints,
                                codec=self.codec, **dict(
                                    {"joint_weights": self.kset.joint_weights.tolist()},
                                    **overrides))
        except TypeError as e:
            raise ConfigError(f"model: {e}") from e
        weight = float(bone.get("bone_weight", 0.0))
        if weight:
            head = getattr(model, "head", None)
            if head is None or not hasattr(head, "set_bone_loss"):
                raise ConfigError(f"model.bone_weight: {m.name} has no BaseHead head")
            bones = bone.get("bones") or self.kset.skeleton
            try:
                head.set_bone_loss(weight, bones, float(bone.get("bone_beta", 10.0)))
            except ValueError as e:
                raise ConfigError(f"model: {e}") from e
            self._bone_loss = True
        if m.overrides.get("scai") is not None:     # SCAI nets trained on GT heatmaps
            from ..models.scai import attach_scai
            try:
                attach_scai(model, m.overrides["scai"], self.kset.num_keypoints)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"model.scai: {e}") from e
        return model

    def prepare(self, batch, device):
        inputs, targets = super().prepare(batch, device)
        if getattr(self, "_bone_loss", False):
            size = torch.tensor(self.config.input_size, dtype=torch.float32, device=inputs.device)
            targets = dict(targets, keypoints_frac=batch["keypoints"].to(inputs.device).float() / size)
        return inputs, targets

    def build_datasets(self):
        from ..data import TopDownDataset, records_from_coco
        c = self.config
        tr_gt, tr_load, va_gt, va_load, _ = image_sources(c.data, c.keypoints)
        udp = self.codec.udp_transform
        if self._pgpg is not None:
            from ..data.pgpg import pgpg_from_options
            augment = {k: v for k, v in c.augment.items() if k != "pgpg"}
            self.augment = pgpg_from_options(self._pgpg, tr_gt, c.input_size[0] / c.input_size[1],
                                             **augment)
        train = TopDownDataset(records_from_coco(tr_gt), tr_load, self.kset, c.input_size,
                               augment=self.augment, seed=c.data.seed, udp=udp)
        val = None
        if va_gt is not None:
            self.set_val_gt(va_gt)
            if c.eval.bbox_file:
                from ..data import records_from_boxes
                boxes = load_detections(c.eval.bbox_file, 1, c.eval.det_score_thr,
                                        [im["id"] for im in va_gt["images"]])
                records = records_from_boxes(boxes, self.kset.num_keypoints)
            else:
                records = records_from_coco(va_gt)
            val = TopDownDataset(records, va_load, self.kset, c.input_size, udp=udp)
        return train, val

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        """The dataset's official metric (:data:`pyhpe.tasks.datasets.DATASET_METRICS`) of the
        flip-test predictions on the validation boxes (GT, or ``eval.bbox_file``'s detections
        with OKS-NMS per image)."""
        from .datasets import dataset_stats
        val = self.val_dataset()
        if val is None:
            return None
        results = self.predict(model, val, device) if len(val) else []
        e = self.config.eval
        if e.bbox_file:
            results = apply_oks_nms(results, e.nms_thr, self.kset.sigmas, 0.2)
        return dataset_stats(self.metric_kind, results, self.val_gt, val.records, self.coco_stats)

    def collate(self, items):
        from ..data import collate_topdown
        return collate_topdown(items)

    def predict(self, model, dataset, device="cpu", flip_test: Optional[bool] = None,
                autocast_dtype=None) -> List[Dict]:
        e = self.config.eval
        return predict_topdown(model, dataset, device=device,
                               flip_test=e.flip_test if flip_test is None else flip_test,
                               batch_size=e.batch_size, score_thr=e.score_thr,
                               autocast_dtype=autocast_dtype)


@torch.no_grad()
def predict_topdown(model, dataset, *, device="cpu", flip_test: bool = True, batch_size: int = 64,
                    score_thr: float = 0.2, autocast_dtype=None) -> List[Dict]:
    """COCO result dicts for every record of a (non-augmenting) TopDownDataset, through
    ``model.predict`` (flip test with the keypoint set's flip index).

    Scores follow mmpose's top-down rescoring: box score x mean of the keypoint scores above
    ``score_thr``. Each result also carries its record's ``bbox`` and ``area`` (for OKS-NMS).
    """
    from ..data import collate_topdown, normalize_images, to_image_space
    flip_index = dataset.kset.flip_index()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate_topdown, num_workers=0)
    device = torch.device(device)
    results = []
    with eval_mode(model):
        for batch in loader:
            x = normalize_images(batch["image"].to(device))
            ctx = torch.autocast(device_type=device.type, dtype=autocast_dtype) \
                if autocast_dtype is not None else contextlib.nullcontext()
            with ctx:
                coords, scores = model.predict(x, flip_test=flip_test, flip_index=flip_index)
            coords = to_image_space(coords.float().cpu(), batch["center"], batch["scale"],
                                    dataset.input_size, udp=dataset.udp)
            scores = scores.float().cpu().numpy()
            for i in range(coords.shape[0]):
                sc = scores[i]
                valid = sc > score_thr
                kp_score = float(sc[valid].mean()) if valid.any() else 0.0
                kps = np.concatenate([coords[i].numpy().astype(np.float64), sc[:, None]], 1)
                rec = dataset.records[int(batch["index"][i])]
                results.append({"image_id": int(batch["image_id"][i]), "category_id": 1,
                                "keypoints": [float(v) for v in kps.reshape(-1)],
                                "score": float(batch["score"][i]) * kp_score,
                                "bbox": [float(v) for v in rec["bbox"]],
                                "area": float(rec["bbox"][2] * rec["bbox"][3])})
    return results


# ---------------------------------------------------------------------------- detections
def load_detections(dets, category_id: Optional[int] = 1, score_thr: float = 0.0,
                    image_ids=None) -> List[Dict]:
    """Person boxes from a COCO bbox results file or list (or a COCO annotation dict, whose
    GT boxes are used), filtered by category, score and image ids; empty boxes dropped."""
    import json
    import os
    if isinstance(dets, (str, os.PathLike)):
        with open(dets) as f:
            dets = json.load(f)
    if isinstance(dets, dict):
        dets = [dict(a, score=a.get("score", 1.0)) for a in dets.get("annotations", [])]
    ids = None if image_ids is None else set(int(i) for i in image_ids)
    out = []
    for d in dets:
        if category_id is not None and int(d.get("category_id", category_id)) != category_id:
            continue
        if float(d.get("score", 1.0)) < score_thr:
            continue
        if ids is not None and int(d["image_id"]) not in ids:
            continue
        x, y, w, h = (float(v) for v in d["bbox"])
        if w <= 0 or h <= 0:
            continue
        out.append({"image_id": int(d["image_id"]), "bbox": [x, y, w, h],
                    "score": float(d.get("score", 1.0))})
    return out


def simulate_detections(gt: Dict, seed: int = 0, jitter: float = 0.08, duplicate_prob: float = 0.5,
                        false_positives: float = 0.3) -> List[Dict]:
    """COCO bbox results imitating a detector: every GT person box jittered (score 0.6-1.0),
    a second jittered box for ``duplicate_prob`` of them (lower score), and on average
    ``false_positives`` random boxes per image (score < 0.5)."""
    rng = np.random.default_rng([seed, 4242])
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    dets = []

    def jittered(b):
        x, y, w, h = b
        dx, dy, dw, dh = rng.normal(0, jitter, size=4)
        return [x + dx * w, y + dy * h, w * float(np.exp(dw)), h * float(np.exp(dh))]

    for a in gt["annotations"]:
        if a.get("iscrowd", 0):
            continue
        s = float(rng.uniform(0.6, 1.0))
        dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": jittered(a["bbox"]), "score": s})
        if rng.random() < duplicate_prob:
            dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": jittered(a["bbox"]),
                         "score": s * float(rng.uniform(0.5, 0.95))})
    for image_id, (W, H) in sizes.items():
        for _ in range(int(rng.poisson(false_positives))):
            w, h = rng.uniform(0.1, 0.4) * W, rng.uniform(0.2, 0.6) * H
            dets.append({"image_id": image_id, "category_id": 1,
                         "bbox": [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), float(w), float(h)],
                         "score": float(rng.uniform(0.05, 0.5))})
    return dets


def apply_oks_nms(results: List[Dict], thr: float = 0.9, sigmas=None,
                  vis_thr: Optional[float] = 0.2) -> List[Dict]:
    """OKS-NMS per image over COCO pose results (each with ``area``; mmpose ``oks_nms``:
    threshold 0.9, ``vis_thr`` 0.2, area = box area) by :func:`pyhpe.ops.oks_nms`."""
    from .. import ops
    if not results:
        return []
    order = sorted(range(len(results)), key=lambda i: results[i]["image_id"])  # stable
    grouped = [results[i] for i in order]
    image_ids = np.array([r["image_id"] for r in grouped])
    starts = np.flatnonzero(np.r_[True, image_ids[1:] != image_ids[:-1]])
    offsets = torch.as_tensor(np.r_[starts, len(grouped)], dtype=torch.int64)
    K = len(grouped[0]["keypoints"]) // 3
    kps = torch.tensor([r["keypoints"] for r in grouped], dtype=torch.float64).view(-1, K, 3)
    scores = torch.tensor([r["score"] for r in grouped], dtype=torch.float64)
    areas = torch.tensor([r["area"] for r in grouped], dtype=torch.float64)
    if sigmas is not None:
        sigmas = torch.as_tensor(np.asarray(sigmas), dtype=torch.float64)
    keep = ops.oks_nms(kps, scores, areas, thr=thr, sigmas=sigmas, vis_thr=vis_thr,
                       image_offsets=offsets).keep
    return [grouped[i] for i in keep.tolist()]


def infer_detections(task: TopDownTask, model, gt: Dict, image_loader: Callable, dets,
                     *, device="cpu", det_score_thr: float = 0.0, nms: bool = True,
                     nms_thr: float = 0.9, vis_thr: float = 0.2, flip_test: bool = True,
                     log: Callable = print) -> Dict:
    """Top-down keypoints on detector boxes: crops -> ``model.predict`` (flip test) ->
    rescoring -> OKS-NMS per image -> COCO stats against ``gt`` (with and without NMS)."""
    import time
    from ..data import TopDownDataset, records_from_boxes
    boxes = load_detections(dets, 1, det_score_thr, [im["id"] for im in gt["images"]])
    ds = TopDownDataset(records_from_boxes(boxes, task.kset.num_keypoints), image_loader,
                        task.kset, task.config.input_size, udp=task.codec.udp_transform)
    t0 = time.time()
    results = task.predict(model, ds, device, flip_test=flip_test) if len(ds) else []
    infer_s = time.time() - t0
    kept = apply_oks_nms(results, nms_thr, task.kset.sigmas, vis_thr) if nms else results
    stats = task.coco_stats(kept, gt)
    stats_all = task.coco_stats(results, gt) if nms else stats
    log(f"top-down on {len(boxes)} boxes: {len(kept)} poses after OKS-NMS "
        f"({len(results) - len(kept)} suppressed) in {infer_s:.2f}s")
    log("COCO keypoint stats: " + " ".join(f"{k} {v:.4f}" for k, v in stats.items()))
    return {"stats": stats, "stats_without_nms": stats_all, "num_boxes": len(boxes),
            "num_poses": len(kept), "infer_s": infer_s, "results": kept}


__all__ = ["TopDownConfig", "TopDownEval", "TopDownTask", "apply_oks_nms", "infer_detections",
           "load_detections", "predict_topdown", "simulate_detections"]
