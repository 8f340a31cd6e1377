"""Bottom-up multi-person pose with Associative Embedding (Newell et al. 2017; HigherHRNet, Lite
Pose): the associative_embedding codec encodes heatmaps (at every supervised resolution) and
the keypoint positions the tag loss reads for whole collated batches; the head aggregates its
resolutions (and the flipped input's maps), the codec groups people by tags
(:func:`pyhpe.ops.ae_group`); results are mapped back to the image and scored with COCO AP.
Data pipeline and evaluation are the bottom-up ones shared with ``bottomup_paf``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Tuple

from ..engine.config import ConfigError
from ..engine.trainer import TrainConfig
from .base import CodecConfig, ModelConfig
from .bottomup_paf import BottomUpEval, BottomUpTask
from .common import IMAGE_DATA, ImageTaskConfig


@dataclass
class BottomUpAEEval(BottomUpEval):
    flip_test: bool = True        # average with the mirrored input, tags concatenated


@dataclass
class BottomUpAEConfig(ImageTaskConfig):
    task: str = "bottomup_ae"
    keypoints: str = "coco17"
    input_size: Tuple[int, int] = (64, 64)
    model: ModelConfig = field(default_factory=lambda: ModelConfig("higherhrnet", "small"))
    codec: CodecConfig = field(default_factory=lambda: CodecConfig("associative_embedding", {}))
    data: Any = field(default_factory=lambda: IMAGE_DATA["synthetic"](max_persons=3),
                      metadata={"variants": IMAGE_DATA})
    augment: bool = True          # random flip, scale and rotation of the training images
    max_persons: int = 30         # persons per training image (the official MAX_NUM_PEOPLE)
    eval: BottomUpAEEval = field(default_factory=BottomUpAEEval)
    train: TrainConfig = field(default_factory=TrainConfig)

    codec_name = "associative_embedding"


class BottomUpAETask(BottomUpTask):
    """Codec defaults not given in the config: the input size, the model's stride-4 heatmap
    (and, for a multi-resolution head, the finer target sizes) and the keypoint set's
    grouping order (``decode_keypoint_order``: 0..K-1)."""

    name = "bottomup_ae"
    Config = BottomUpAEConfig

    def build_codec(self):
        from ..codecs import AssociativeEmbedding
        from ..models import build_model
        c = self.config
        params = dict(c.codec.params)
        defaults = {"input_size": list(c.input_size)}
        if "heatmap_size" not in params or "extra_heatmap_sizes" not in params:
            # the model's own default codec knows its resolutions
            m = c.model
            probe = build_model(m.name, m.config, num_keypoints=self.kset.num_keypoints,
                                input_size=list(c.input_size),
                                **{k: v for k, v in m.overrides.items() if k != "input_size"})
            own = probe.codec
            if not isinstance(own, AssociativeEmbedding):
                raise ConfigError(f"model: {m.name!r} ({m.config!r}) has no associative-embedding "
                                  "head; use 'higherhrnet' or a Lite Pose '*_ae' config, or give "
                                  "the codec's 'heatmap_size' and 'extra_heatmap_sizes'")
            defaults["heatmap_size"] = list(own.heatmap_size)
            defaults["extra_heatmap_sizes"] = [list(s) for s in own.extra_heatmap_sizes]
            defaults["sigma"] = own.sigma
        return self.build_named_codec(**defaults)

    def decode_batch(self, model, inputs):
        """Outputs of the input (and its mirror with ``eval.flip_test``) aggregated by the
        head and grouped by the codec."""
        flip = self.config.eval.flip_test
        outputs = model(inputs)
        flipped, idx = None, None
        if flip:
            idx = self.kset.flip_index()
            flipped = model(self.codec.flip_inputs(inputs, idx))
        return model.head.predict_instances(outputs, flipped, idx)


__all__ = ["BottomUpAEConfig", "BottomUpAEEval", "BottomUpAETask"]
