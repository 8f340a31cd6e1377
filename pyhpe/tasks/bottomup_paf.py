"""Bottom-up multi-person pose with Part Affinity Fields (OpenPose; Cao et al. 2017): the
paf codec encodes heatmaps (+ background) and PAFs of whole collated batches, every stage is
supervised through the model's forward, people are grouped by the codec's decode
(:func:`pyhpe.ops.paf_group`), mapped back to the image and scored with COCO AP."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from ..engine.config import ConfigError
from ..engine.trainer import TrainConfig, eval_mode
from .base import CodecConfig, ModelConfig
from .common import IMAGE_DATA, CocoEval, ImageTask, ImageTaskConfig, image_sources


@dataclass
class BottomUpEval(CocoEval):
    batch_size: int = 16


@dataclass
class BottomUpPAFConfig(ImageTaskConfig):
    task: str = "bottomup_paf"
    keypoints: str = "coco17"
    input_size: Tuple[int, int] = (128, 128)
    model: ModelConfig = field(default_factory=lambda: ModelConfig("openpose", "small"))
    codec: CodecConfig = field(default_factory=lambda: CodecConfig(
        "paf", {"heatmap_size": [32, 32], "sigma": 1.5}))
    data: Any = field(default_factory=lambda: IMAGE_DATA["synthetic"](max_persons=3),
                      metadata={"variants": IMAGE_DATA})
    augment: bool = True          # random flip, scale and rotation of the training images
    max_persons: int = 20         # persons per training image
    eval: BottomUpEval = field(default_factory=BottomUpEval)
    train: TrainConfig = field(default_factory=TrainConfig)

    codec_name = "paf"


def paf_tree(kset) -> List[Tuple[int, int]]:
    """The default PAF limbs of a keypoint set. Grouping assembles people along a tree (a
    skeleton with cycles is not one), parents before children: pyhpe's COCO-17 tree for
    COCO-17, else the breadth-first spanning tree of the set's skeleton from its best connected
    keypoint (e.g. CrowdPose-14 from the left shoulder)."""
    from ..ops.paf import COCO17_LIMBS
    if kset.name == "coco17":
        return list(COCO17_LIMBS)
    K = kset.num_keypoints
    neighbours: List[List[int]] = [[] for _ in range(K)]
    for a, b in kset.limbs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    root = max(range(K), key=lambda k: (len(neighbours[k]), -k))
    tree, seen, queue = [], {root}, [root]
    for parent in queue:
        for child in neighbours[parent]:
            if child not in seen:
                seen.add(child)
                queue.append(child)
                tree.append((parent, child))
    if len(seen) < K:
        raise ConfigError(f"codec.limbs: the skeleton of {kset.name!r} does not connect keypoints "
                          f"{sorted(set(range(K)) - seen)}; give the PAF limbs as [a, b] pairs")
    return tree


class BottomUpTask(ImageTask):
    """What the bottom-up tasks share: whole-image datasets (:class:`pyhpe.data.BottomUpDataset`),
    the person-padding collate and COCO results of the grouped people mapped back to the
    image; subclasses give the codec and :meth:`decode_batch`."""

    metric = "AP"

    def build_model(self):
        return self.build_pose_model()

    def build_datasets(self):
        from ..data import BottomUpDataset
        c = self.config
        tr_gt, tr_load, va_gt, va_load, _ = image_sources(c.data, c.keypoints)
        train = BottomUpDataset(tr_gt, tr_load, self.kset, c.input_size, train=c.augment,
                                seed=c.data.seed, max_persons=c.max_persons)
        val = None
        if va_gt is not None:
            self.set_val_gt(va_gt)
            val = BottomUpDataset(va_gt, va_load, self.kset, c.input_size, train=False,
                                  max_persons=c.max_persons)
        return train, val

    def collate(self, items):
        from ..data import collate_bottomup
        return collate_bottomup(items)

    def decode_batch(self, model, inputs) -> Tuple[List, List, List]:
        """Per image of a normalised batch: input-pixel keypoints ``(P, K, 2)``, keypoint
        scores ``(P, K)`` and person scores ``(P,)``."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, model, dataset, device="cpu") -> List[Dict]:
        """COCO results of every image of a (non-augmenting) BottomUpDataset: the people of
        :meth:`decode_batch` mapped back to the image; a part that was not found gets the
        person's centroid (score 0)."""
        from ..data import collate_bottomup, normalize_images, to_image_space
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.config.eval.batch_size,
                                             shuffle=False, collate_fn=collate_bottomup)
        results = []
        with eval_mode(model):
            for batch in loader:
                kps, scores, person_scores = self.decode_batch(
                    model, normalize_images(batch["image"].to(device)))
                for b in range(len(kps)):
                    if kps[b].shape[0] == 0:
                        continue
                    xy = to_image_space(kps[b].float().cpu(), batch["center"][b:b + 1].expand(kps[b].shape[0], 2),
                                        batch["scale"][b:b + 1].expand(kps[b].shape[0], 2),
                                        dataset.input_size).double().numpy()
                    sc = scores[b].double().cpu().numpy()
                    for p in range(xy.shape[0]):
                        found = sc[p] > 0
                        if not found.any():
                            continue
                        pts = xy[p].copy()
                        pts[~found] = pts[found].mean(0)
                        kp = np.concatenate([pts, sc[p][:, None]], 1)
                        results.append({"image_id": int(batch["image_id"][b]), "category_id": 1,
                                        "keypoints": [float(v) for v in kp.reshape(-1)],
                                        "score": float(person_scores[b][p])})
        return results


class BottomUpPAFTask(BottomUpTask):
    name = "bottomup_paf"
    Config = BottomUpPAFConfig

    def build_codec(self):
        limbs = self.config.codec.params.get("limbs")
        if limbs is None:
            limbs = [list(l) for l in paf_tree(self.kset)]
        return self.build_named_codec(input_size=list(self.config.input_size), limbs=limbs)

    def decode_batch(self, model, inputs):
        """The last stage's maps grouped by the codec."""
        outputs = model.head.final_outputs(model(inputs))
        return self.codec.decode_instances(outputs, self.kset.num_keypoints)


__all__ = ["BottomUpEval", "BottomUpPAFConfig", "BottomUpPAFTask", "BottomUpTask", "paf_tree"]
