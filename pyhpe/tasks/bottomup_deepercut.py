"""Bottom-up multi-person pose with DeeperCut (Insafutdinov et al. 2016): the bottom-up data
pipeline and evaluation of :mod:`pyhpe.tasks.bottomup_paf`, the ``deepercut`` codec (part
score maps, location refinement, pairwise offsets) and model; people are grouped by the
codec's ILP (:mod:`pyhpe.grouping.deepcut`). The pairwise offset statistics the targets are
normalised by are, unless the codec section gives them, those of the training poses at the
network input's scale (pose-tensorflow's ``pairwise_stats.py``). With
``pairwise_fit_images`` the spatial model (one logistic regression per part pair on the
distance / angle features of the regressed offsets) is learned, as the official model's, from
the network's outputs on training images before each evaluation; otherwise the codec's
(hand-set or given) weights are used."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from .base import CodecConfig, ModelConfig
from .bottomup_paf import BottomUpEval, BottomUpPAFConfig, BottomUpPAFTask
from .common import IMAGE_DATA


@dataclass
class BottomUpDeeperCutConfig(BottomUpPAFConfig):
    task: str = "bottomup_deepercut"
    model: ModelConfig = field(default_factory=lambda: ModelConfig("deepercut", "small"))
    codec: CodecConfig = field(default_factory=lambda: CodecConfig(
        "deepercut", {"heatmap_size": [16, 16], "pos_dist_thresh": 8.0}))
    data: Any = field(default_factory=lambda: IMAGE_DATA["synthetic"](max_persons=3),
                      metadata={"variants": IMAGE_DATA})
    eval: BottomUpEval = field(default_factory=BottomUpEval)
    # > 0: before each evaluation, fit the per-pair spatial model (the pairwise logistic
    # regressions) on the network's outputs for this many un-augmented training images
    pairwise_fit_images: int = 0

    codec_name = "deepercut"


def input_scale_poses(coco, input_size) -> Tuple[np.ndarray, np.ndarray]:
    """``(N, K, 2)`` poses and ``(N, K)`` visibility of a COCO dict's non-crowd persons,
    scaled as the bottom-up evaluation resize scales their image onto ``input_size``."""
    sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    kps, vis = [], []
    for a in coco["annotations"]:
        if a.get("iscrowd", 0) or a["image_id"] not in sizes:
            continue
        h, w = sizes[a["image_id"]]
        side = max(w / input_size[0], h / input_size[1])
        k = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        kps.append(k[:, :2] / side)
        vis.append(k[:, 2])
    return np.asarray(kps), np.asarray(vis)


class BottomUpDeeperCutTask(BottomUpPAFTask):
    name = "bottomup_deepercut"
    Config = BottomUpDeeperCutConfig
    metric = "AP"

    def build_codec(self):
        from ..codecs.deepercut import COCO17_SPARSE_GRAPH, COCO17_STAGES
        defaults = {"input_size": list(self.config.input_size)}
        if self.kset.name == "coco17":
            defaults.update(stages=[list(s) for s in COCO17_STAGES],
                            sparse_graph=[list(p) for p in COCO17_SPARSE_GRAPH])
        return self.build_named_codec(**defaults)

    def build_model(self):
        return self.build_pose_model()

    def build_datasets(self):
        from ..codecs.deepercut import pairwise_stats
        train, val = super().build_datasets()
        if self.codec.pairwise_mean is None:
            kps, vis = input_scale_poses(train.coco, self.config.input_size)
            if len(kps):
                self.codec.set_pairwise_stats(*pairwise_stats(kps, vis))
        return train, val

    def evaluate(self, model, device) -> Optional[Dict[str, float]]:
        """With ``pairwise_fit_images``, :meth:`fit_pairwise` first; then COCO AP."""
        if self.config.pairwise_fit_images > 0 and self.val_dataset() is not None:
            self.fit_pairwise(model, device, self.config.pairwise_fit_images)
        return super().evaluate(model, device)

    def fit_pairwise(self, model, device, num_images: int) -> int:
        """Fit the codec's spatial model (:meth:`DeeperCutLabel.fit_pairwise`) on the
        network's outputs for the first ``num_images`` training images, un-augmented;
        returns the number of candidate pairs it was fitted on."""
        from ..data import BottomUpDataset, collate_bottomup, normalize_images
        from ..engine.trainer import eval_mode
        train = self.train_dataset()
        ds = BottomUpDataset(train.coco, train.loader, self.kset, self.config.input_size,
                             train=False, max_persons=self.config.max_persons)
        subset = torch.utils.data.Subset(ds, list(range(min(int(num_images), len(ds)))))
        loader = torch.utils.data.DataLoader(subset, batch_size=self.config.eval.batch_size,
                                             shuffle=False, collate_fn=collate_bottomup)
        outs, kps, vis = [], [], []
        with torch.no_grad(), eval_mode(model):
            for batch in loader:
                outs.append(model.head.final_outputs(
                    model(normalize_images(batch["image"].to(device)))))
                kps.append(batch["keypoints"])
                vis.append(batch["visibility"])
        if not outs:
            return 0
        n = max(k.shape[1] for k in kps)
        kp = torch.cat([torch.cat([k, k.new_zeros(k.shape[0], n - k.shape[1], *k.shape[2:])], 1)
                        for k in kps])
        vs = torch.cat([torch.cat([v, v.new_zeros(v.shape[0], n - v.shape[1], *v.shape[2:])], 1)
                        for v in vis])
        fields = [None if outs[0][i] is None else torch.cat([o[i] for o in outs])
                  for i in range(len(outs[0]))]
        return self.codec.fit_pairwise(type(outs[0])(*fields), kp, vs)


__all__ = ["BottomUpDeeperCutConfig", "BottomUpDeeperCutTask", "input_scale_poses"]

