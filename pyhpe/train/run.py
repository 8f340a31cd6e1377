"""Config-driven training and inference (``pyhpe train --config`` / ``pyhpe infer``).

A config is a json file or dict::

    {"model": "simple_baseline", "model_config": "tiny", "model_args": {},
     "keypoints": "coco17",
     "data": {"type": "synthetic", "num_images": 200, "val_images": 50, "image_size": 128,
              "seed": 0, "occlusion": 0.1}
           | {"type": "coco", "train_ann": "...json", "train_images": "dir",
              "val_ann": "...json", "val_images": "dir"},
     "input_size": [48, 64], "heatmap_size": [12, 16], "sigma": 1.0, "unbiased": true,
     "augment": {"rot_factor": 30, "half_body_prob": 0.3},
     "train": {<TrainConfig fields>}}
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

import numpy as np
import torch

from ..codecs import MSRAHeatmap, SimCCLabel
from ..data import (CocoImageLoader, SyntheticPoseDataset, TopDownAugment, TopDownDataset,
                    get_keypoint_set, keypoint_set_from_coco, load_coco, records_from_coco)
from ..models import build_model
from .trainer import TrainConfig, Trainer
from .utils import load_checkpoint_file

DEFAULT_CONFIG = {
    "model": "simple_baseline", "model_config": "tiny", "model_args": {}, "keypoints": "coco17",
    "data": {"type": "synthetic", "num_images": 200, "val_images": 50, "image_size": 128, "seed": 0,
             "occlusion": 0.1},
    "input_size": [48, 64], "heatmap_size": [12, 16], "sigma": 1.0, "unbiased": True,
    "augment": {"rot_factor": 20, "half_body_prob": 0.1}, "train": {},
}


def load_config(cfg) -> Dict:
    if isinstance(cfg, (str, os.PathLike)):
        with open(cfg) as f:
            cfg = json.load(f)
    out = json.loads(json.dumps(DEFAULT_CONFIG))
    for k, v in cfg.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "data":
            out[k].update(v)
        else:
            out[k] = v
    return out


def build_codec(cfg: Dict, model=None):
    if getattr(model, "output_kind", "heatmap") == "simcc":
        return SimCCLabel(cfg["input_size"], sigma=cfg.get("simcc_sigma", (4.9, 5.66)),
                          split_ratio=cfg.get("split_ratio", 2.0))
    return MSRAHeatmap(cfg["input_size"], cfg["heatmap_size"], sigma=cfg["sigma"],
                       unbiased=cfg.get("unbiased", False),
                       blur_kernel_size=cfg.get("blur_kernel_size", 5 if cfg["heatmap_size"][0] < 32 else 11))


def build_model_from_config(cfg: Dict, num_keypoints: int):
    args = dict(cfg.get("model_args", {}))
    if cfg["model"] in ("rtmpose", "simcc") and "input_size" not in args:
        args["input_size"] = tuple(cfg["input_size"])
    if cfg["model"] in ("vitpose", "tokenpose") and "img_size" not in args:
        args["img_size"] = tuple(cfg["input_size"])
    return build_model(cfg["model"], cfg.get("model_config", "tiny"), num_keypoints, **args)


def build_datasets(cfg: Dict):
    """(train TopDownDataset, val TopDownDataset or None, val COCO dict or None, keypoint set)."""
    d = cfg["data"]
    aug = TopDownAugment(**cfg.get("augment", {}))
    if d["type"] == "synthetic":
        size = (d.get("image_size", 128),) * 2
        tr = SyntheticPoseDataset(d.get("num_images", 200), seed=d.get("seed", 0), size=size,
                                  occlusion=d.get("occlusion", 0.1), max_persons=d.get("max_persons", 1))
        va = SyntheticPoseDataset(d.get("val_images", 50), seed=d.get("seed", 0) + 7919, size=size,
                                  occlusion=d.get("occlusion", 0.1), max_persons=d.get("max_persons", 1))
        kset = tr.keypoint_set
        val_gt = va.coco_dict()
        train = TopDownDataset(records_from_coco(tr.coco_dict()), tr.image_by_id, kset,
                               cfg["input_size"], augment=aug, seed=d.get("seed", 0))
        val = TopDownDataset(records_from_coco(val_gt), va.image_by_id, kset, cfg["input_size"])
        return train, val, val_gt, kset
    if d["type"] == "coco":
        tr_data = load_coco(d["train_ann"])
        kset = keypoint_set_from_coco(tr_data) if cfg.get("keypoints") in (None, "auto") else get_keypoint_set(cfg["keypoints"])
        train = TopDownDataset(records_from_coco(tr_data), CocoImageLoader(tr_data, d["train_images"]), kset,
                               cfg["input_size"], augment=aug, seed=d.get("seed", 0))
        val = val_gt = None
        if d.get("val_ann"):
            val_gt = load_coco(d["val_ann"])
            val = TopDownDataset(records_from_coco(val_gt), CocoImageLoader(val_gt, d["val_images"]),
                                 kset, cfg["input_size"])
        return train, val, val_gt, kset
    raise ValueError(f"config data.type must be 'synthetic' or 'coco', got {d['type']!r}")


def run_training(cfg, out_dir: Optional[str] = None, log=print) -> Dict:
    cfg = load_config(cfg)
    tcfg = dict(cfg.get("train", {}))
    if out_dir:
        tcfg["out_dir"] = out_dir
    train_cfg = TrainConfig.from_dict(tcfg)
    train, val, val_gt, kset = build_datasets(cfg)
    model = build_model_from_config(cfg, kset.num_keypoints)
    codec = build_codec(cfg, model)
    rank = int(os.environ.get("RANK", 0))
    if rank == 0:
        os.makedirs(train_cfg.out_dir, exist_ok=True)
        with open(os.path.join(train_cfg.out_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    trainer = Trainer(model, train, codec, train_cfg, val, val_gt, sigmas=kset.sigmas, log=log)
    result = trainer.fit()
    if trainer.ddp and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


def _load_weights(model, checkpoint: str, use_ema: bool = True):
    sd = load_checkpoint_file(checkpoint)
    if use_ema and sd.get("ema"):
        model.load_state_dict(sd["ema"]["module"])
    else:
        model.load_state_dict(sd["model"])
    return model


def run_inference(cfg, checkpoint: str, images: List[str], boxes: Optional[str] = None,
                  out_dir: str = "infer_out", flip_test: bool = True, log=print) -> List[Dict]:
    """Top-down inference on image files; ``boxes`` is a COCO detection json (with
    ``file_name`` or ``image_id`` = index into ``images``), else each whole image is one box."""
    import cv2
    from ..data.topdown import records_from_boxes
    from ..vis import draw_pose
    from .evaluation import predict_topdown
    cfg = load_config(cfg)
    kset = get_keypoint_set(cfg.get("keypoints", "coco17"))
    model = _load_weights(build_model_from_config(cfg, kset.num_keypoints), checkpoint).eval()
    codec = build_codec(cfg, model)
    loaded = {}
    for i, p in enumerate(images):
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"pyhpe infer: cannot read image {p!r}")
        loaded[i + 1] = img
    if boxes:
        with open(boxes) as f:
            dets = json.load(f)
        names = {os.path.basename(p): i + 1 for i, p in enumerate(images)}
        for d in dets:
            if "file_name" in d:
                d["image_id"] = names[os.path.basename(d["file_name"])]
    else:
        dets = [{"image_id": i, "bbox": [0, 0, im.shape[1], im.shape[0]], "score": 1.0}
                for i, im in loaded.items()]
    ds = TopDownDataset(records_from_boxes(dets, kset.num_keypoints), loaded.__getitem__, kset,
                        cfg["input_size"])
    results = predict_topdown(model, ds, codec, flip_test=flip_test)
    os.makedirs(out_dir, exist_ok=True)
    for i, p in enumerate(images):
        kps = [np.asarray(r["keypoints"]).reshape(-1, 3) for r in results if r["image_id"] == i + 1]
        drawn = draw_pose(loaded[i + 1], np.stack(kps) if kps else np.zeros((0, kset.num_keypoints, 3)), kset)
        cv2.imwrite(os.path.join(out_dir, os.path.splitext(os.path.basename(p))[0] + "_pose.png"), drawn)
    for r in results:
        r["file_name"] = images[r["image_id"] - 1]
    with open(os.path.join(out_dir, "keypoints.json"), "w") as f:
        json.dump(results, f)
    log(f"wrote {len(results)} poses to {out_dir}/keypoints.json and drawings to {out_dir}/")
    return results
