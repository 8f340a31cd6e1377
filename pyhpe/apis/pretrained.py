"""Published checkpoints into pyhpe's models, strictly: every checkpoint key is mapped to a
pyhpe parameter or buffer of the same shape and every pyhpe parameter / buffer is filled.

``load_pretrained(model, state_dict_or_path, layout='auto') -> LoadReport``:

* ``'hrnet_official'``: the layout of github.com/leoxiaobin/deep-high-resolution-net.pytorch
  (and of the SimpleBaseline ``pose_resnet_*`` checkpoints released with it): bare keys,
  ``conv1.weight``, ``layer1.0.conv1.weight``, ``stage2.0.branches...``, ``final_layer``,
  ``deconv_layers``. Into ``build_model('hrnet', 'w32'|'w48')`` / ``('simple_baseline',
  'paper'|'r101'|'r152')``.
* ``'mmpose'``: mmpose 1.x top-down heatmap checkpoints: ``backbone.*``, ``head.final_layer``,
  ``head.deconv_layers`` (HRNet, ResNet SimpleBaseline; ViTPose through mmpretrain's
  ``VisionTransformer``: ``backbone.layers.N.attn.qkv``, ``backbone.ln1``..., whose patch
  positions get pyhpe's zero class-token slot).
* ``'mmpose0'``: mmpose 0.x top-down checkpoints: ``backbone.*``, ``keypoint_head.final_layer``,
  ``keypoint_head.deconv_layers`` (HRNet, ResNet SimpleBaseline, ViTPose).
* ``'vitpose'``: the official ViTPose checkpoints (mmpose 0.x layout): ``backbone.patch_embed``,
  ``backbone.pos_embed``, ``backbone.blocks.N.attn.qkv``, ``backbone.last_norm``,
  ``keypoint_head.deconv_layers``, ``keypoint_head.final_layer``. Into ``build_model('vitpose',
  'paper')`` (ViTPose-B).
* ``'openpose_cmu'``: the CMU OpenPose COCO body model as converted to PyTorch by
  github.com/Hzzone/pytorch-openpose (``body_pose_model.pth``: ``model0.conv1_1``,
  ``model1_1.conv5_1_CPM_L1``, ``model2_2.Mconv1_stage2_L2``...). Into ``build_model('openpose',
  'paper', num_keypoints=18)``; ``L1`` branches are the PAFs, ``L2`` the 19 confidence maps
  (OpenPose's COCO-18 parts + background). The PAF channels are reordered into the codec's
  limb order (``paf_order='codec'``), so pyhpe's PAF decoding reads the loaded model's output.
* ``'tokenpose_official'``: github.com/leeyegy/TokenPose checkpoints (``features.conv1``,
  ``features.transformer.layers.N.0.fn.fn.to_qkv``, ``features.mlp_head``...). Into
  ``build_model('tokenpose', 'paper')`` (TokenPose-S-v2).

Checkpoint files are read with ``torch.load(weights_only=True)`` (numpy arrays allowed, as in
mmengine checkpoints' ``meta``); a ``state_dict`` / ``model`` entry and a DataParallel
``module.`` prefix are unwrapped. BatchNorm ``num_batches_tracked``
counters missing from old checkpoints keep the model's values (listed in the report).
"""
from __future__ import annotations

import math
import os
import pickle
import re
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

LAYOUTS = ("hrnet_official", "mmpose", "mmpose0", "vitpose", "openpose_cmu", "tokenpose_official")


_IMAGENET_RGB = {"channels": "rgb", "mean": (123.675, 116.28, 103.53),
                 "std": (58.395, 57.12, 57.375)}
#: The input each layout's checkpoints were trained on: channel order and per-channel mean / std
#: on 0-255 pixel values. pyhpe's data pipeline feeds ImageNet-normalised RGB
#: (:func:`pyhpe.data.topdown.normalize_images`), which is what the HRNet, SimpleBaseline
#: and ViTPose checkpoints expect; CMU's OpenPose model wants BGR / 256 - 0.5.
INPUT_NORMALIZATION = {
    **{layout: _IMAGENET_RGB for layout in ("hrnet_official", "mmpose", "mmpose0", "vitpose",
                                            "tokenpose_official")},
    "openpose_cmu": {"channels": "bgr", "mean": (128.0, 128.0, 128.0), "std": (256.0, 256.0, 256.0)},
}


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the model (unmapped keys, missing keys, other shapes)."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did: ``mapping`` lists ``(checkpoint key, pyhpe key,
    shape)`` for every checkpoint tensor (the shape pyhpe receives); ``kept`` the pyhpe buffers
    the checkpoint does not carry (BatchNorm ``num_batches_tracked`` only); ``notes`` the value
    transformations (a channel reordering, a position slot)."""

    layout: str
    architecture: str
    mapping: List[Tuple[str, str, Tuple[int, ...]]] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def input_normalization(self) -> dict:
        """The input the checkpoint was trained on (:data:`INPUT_NORMALIZATION`)."""
        return dict(INPUT_NORMALIZATION[self.layout])

    @property
    def num_tensors(self) -> int:
        return len(self.mapping)

    @property
    def num_values(self) -> int:
        return sum(math.prod(s) for _, _, s in self.mapping)

    def __str__(self) -> str:
        lines = [f"{self.layout} checkpoint -> pyhpe {self.architecture}: {self.num_tensors} tensors "
                 f"({self.num_values:,} values) mapped, shapes equal"
                 + (f"; {len(self.kept)} num_batches_tracked kept" if self.kept else "")]
        norm = self.input_normalization
        lines.append(f"  input: {norm['channels'].upper()}, mean {norm['mean']}, std {norm['std']} "
                     f"(0-255 pixels)")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  {src} -> {dst} {list(shape)}" for src, dst, shape in self.mapping]
        return "\n".join(lines)


# ---------------------------------------------------------------- reading and unwrapping
def read_checkpoint(path_or_state: Union[str, os.PathLike, Mapping[str, torch.Tensor]],
                    map_location="cpu") -> Dict[str, torch.Tensor]:
    """A state dict from a file (``torch.load(weights_only=True)``) or a mapping; unwraps
    ``{'state_dict': ...}`` / ``{'model': ...}`` and a DataParallel ``module.`` prefix."""
    sd = path_or_state
    if isinstance(sd, (str, os.PathLike)):
        sd = _load_weights_only(os.fspath(sd), map_location)
    if not isinstance(sd, Mapping):
        raise TypeError(f"load_pretrained: expected a state dict or a checkpoint path, got "
                        f"{type(sd).__name__}")
    for wrapper in ("state_dict", "model"):
        if wrapper in sd and isinstance(sd[wrapper], Mapping):
            sd = sd[wrapper]
            break
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _numpy_safe_globals() -> list:
    """numpy arrays, scalars and dtypes (mmengine checkpoints keep the dataset's sigmas and
    flip indices as arrays in their ``meta``): reconstructing them runs no other code."""
    import numpy as np
    core = getattr(np, "_core", None) or np.core
    out = [np.ndarray, np.dtype]
    for fn in (core.multiarray._reconstruct, core.multiarray.scalar):
        out += [fn] + [(fn, f"numpy.{m}.multiarray.{fn.__name__}") for m in ("core", "_core")]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return out


def _load_weights_only(path: str, map_location):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        pass
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"load_pretrained: {path} holds Python objects other than tensors and numpy arrays "
            f"(e.g. a training run's message hub), which torch.load(weights_only=True) refuses; "
            f"save its state dict alone (torch.save(ckpt['state_dict'], ...)) from a trusted "
            f"copy.\n{str(e).splitlines()[-1] if str(e) else ''}") from None


def detect_layout(keys: Sequence[str]) -> str:
    keys = list(keys)
    if any(k.startswith("model0.") for k in keys):
        return "openpose_cmu"
    if any(k.startswith(("features.transformer.", "features.keypoint_token")) for k in keys):
        return "tokenpose_official"
    if any(re.search(r"(^|\.)blocks\.\d+\.attn\.qkv\.", k) for k in keys):
        return "vitpose"
    if any(k.startswith("keypoint_head.") for k in keys):
        return "mmpose0"
    if any(k.startswith(("backbone.", "head.")) for k in keys):
        return "mmpose"
    return "hrnet_official"


# ---------------------------------------------------------------- key translation
_P = r"(weight|bias|running_mean|running_var|num_batches_tracked)"


def _block(rest: str) -> Optional[str]:
    """A torchvision-style residual block's key (``conv1``/``bn1``/``downsample``) -> pyhpe's
    (``conv1.0``/``conv1.1``/``down``)."""
    m = re.fullmatch(r"conv(\d)\." + _P, rest)
    if m:
        return f"conv{m[1]}.0.{m[2]}"
    m = re.fullmatch(r"bn(\d)\." + _P, rest)
    if m:
        return f"conv{m[1]}.1.{m[2]}"
    m = re.fullmatch(r"downsample\.([01])\." + _P, rest)
    if m:
        return f"down.{m[1]}.{m[2]}"
    return None


def _head(key: str) -> Optional[str]:
    m = re.fullmatch(r"final_layer\." + _P, key)
    if m:
        return f"head.final.{m[1]}"
    m = re.fullmatch(r"deconv_layers\.(\d+)\." + _P, key)
    if m:
        return f"head.deconv.{m[1]}.{m[2]}"
    return None


def _hrnet_stem_key(key: str) -> Optional[str]:
    """HRNet's stem (two stride-2 convs + BN) and layer1 bottlenecks, which TokenPose reuses."""
    m = re.fullmatch(r"(conv|bn)([12])\." + _P, key)
    if m:
        return f"backbone.stem.{int(m[2]) - 1}.{0 if m[1] == 'conv' else 1}.{m[3]}"
    m = re.fullmatch(r"layer1\.(\d+)\.(.+)", key)
    if m:
        b = _block(m[2])
        return b and f"backbone.layer1.{m[1]}.{b}"
    return None


def _hrnet_key(key: str, model) -> Optional[str]:
    stem = _hrnet_stem_key(key)
    if stem is not None or re.match(r"(conv[12]|bn[12]|layer1)\.", key):
        return stem
    # a new branch: Sequential(Sequential(conv, bn, relu)); a changed width: Sequential(conv, bn, relu)
    m = re.fullmatch(r"transition(\d)\.(\d+)\.(?:0\.)?([01])\." + _P, key)
    if m:
        return f"backbone.transitions.{int(m[1]) - 1}.{m[2]}.{m[3]}.{m[4]}"
    m = re.fullmatch(r"stage(\d)\.(\d+)\.branches\.(\d+)\.(\d+)\.(.+)", key)
    if m:
        b = _block(m[5])
        return b and f"backbone.stages.{int(m[1]) - 2}.{m[2]}.branches.{m[3]}.{m[4]}.{b}"
    m = re.fullmatch(r"stage(\d)\.(\d+)\.fuse_layers\.(\d+)\.(\d+)\.(.+)", key)
    if m:
        return f"backbone.stages.{int(m[1]) - 2}.{m[2]}.fuse.{m[3]}.{m[4]}.{m[5]}"
    return _head(key)


def _resnet_key(key: str, model) -> Optional[str]:
    m = re.fullmatch(r"(conv1|bn1)\." + _P, key)
    if m:
        return f"backbone.stem.{0 if m[1] == 'conv1' else 1}.{m[2]}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(.+)", key)
    if m:
        b = _block(m[3])
        return b and f"backbone.stages.{int(m[1]) - 1}.{m[2]}.{b}"
    return _head(key)


_VIT_ATTN = {"attn.qkv.weight": "attn.in_proj_weight", "attn.qkv.bias": "attn.in_proj_bias",
             "attn.proj.weight": "attn.out_proj.weight", "attn.proj.bias": "attn.out_proj.bias"}
#: official ViTPose: top-level names, and the names inside ``blocks.<i>``
_VIT_TOP = {"patch_embed.proj.weight": "backbone.patch.weight",
            "patch_embed.proj.bias": "backbone.patch.bias", "pos_embed": "backbone.pos",
            "last_norm.weight": "backbone.encoder.norm.weight",
            "last_norm.bias": "backbone.encoder.norm.bias"}
_VIT_BLOCK = dict(_VIT_ATTN, **{
    "mlp.fc1.weight": "mlp.0.weight", "mlp.fc1.bias": "mlp.0.bias",
    "mlp.fc2.weight": "mlp.2.weight", "mlp.fc2.bias": "mlp.2.bias",
    "norm1.weight": "norm1.weight", "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight", "norm2.bias": "norm2.bias"})
#: mmpretrain's VisionTransformer (mmpose 1.x ViTPose), same roles
_MMPRETRAIN_TOP = {"patch_embed.projection.weight": "backbone.patch.weight",
                   "patch_embed.projection.bias": "backbone.patch.bias",
                   "ln1.weight": "backbone.encoder.norm.weight",
                   "ln1.bias": "backbone.encoder.norm.bias"}
_MMPRETRAIN_BLOCK = dict(_VIT_ATTN, **{
    "ffn.layers.0.0.weight": "mlp.0.weight", "ffn.layers.0.0.bias": "mlp.0.bias",
    "ffn.layers.1.weight": "mlp.2.weight", "ffn.layers.1.bias": "mlp.2.bias",
    "ln1.weight": "norm1.weight", "ln1.bias": "norm1.bias",
    "ln2.weight": "norm2.weight", "ln2.bias": "norm2.bias"})


def _vit_encoder_key(key: str, top: dict, block_prefix: str, block: dict) -> Optional[str]:
    """A ViT checkpoint key -> pyhpe's: ``top`` names, ``<block_prefix>.<i>.<name>`` by
    ``block``, else the head's."""
    if key in top:
        return top[key]
    m = re.fullmatch(re.escape(block_prefix) + r"\.(\d+)\.(.+)", key)
    if m:
        sub = block.get(m[2])
        return sub and f"backbone.encoder.blocks.{m[1]}.{sub}"
    return _head(key)


def _vit_key(key: str, model) -> Optional[str]:
    return _vit_encoder_key(key, _VIT_TOP, "blocks", _VIT_BLOCK)


def _with_class_slot(pos: torch.Tensor) -> torch.Tensor:
    """mmpretrain's patch positions (its ViT adds no class-token position; a checkpoint's
    class slot is dropped on load) -> pyhpe's ``pos`` with a zero class slot."""
    return torch.cat([torch.zeros_like(pos[:, :1]), pos], 1)


def _mmpretrain_vit_key(key: str, model):
    """mmpose 1.x ViTPose (``mmpretrain.VisionTransformer``) -> pyhpe."""
    if key == "pos_embed":
        n = model.backbone.pos.shape[1]
        return ("backbone.pos", lambda t: _with_class_slot(t[:, 1:] if t.shape[1] == n else t),
                "a zero class-token position slot prepended (mmpretrain adds none)")
    return _vit_encoder_key(key, _MMPRETRAIN_TOP, "layers", _MMPRETRAIN_BLOCK)


def _tokenpose_key(key: str, model) -> Optional[str]:
    """The official TokenPose (``features.*`` of pose_tokenpose_*.py) -> pyhpe."""
    if not key.startswith("features."):
        return None
    key = key[len("features."):]
    simple = {"keypoint_token": "backbone.kp_tokens", "pos_embedding": "backbone.pos",
              "patch_to_embedding.weight": "backbone.embed.weight",
              "patch_to_embedding.bias": "backbone.embed.bias"}
    if key in simple:
        return simple[key]
    stem = _hrnet_stem_key(key)
    if stem is not None or re.match(r"(conv[12]|bn[12]|layer1)\.", key):
        return stem
    m = re.fullmatch(r"transformer\.layers\.(\d+)\.([01])\.fn\.(.+)", key)
    if m:
        sub = ({"norm.weight": "norm1.weight", "norm.bias": "norm1.bias",
                "fn.to_qkv.weight": "attn.qkv.weight", "fn.to_out.0.weight": "attn.out.weight",
                "fn.to_out.0.bias": "attn.out.bias"} if m[2] == "0" else
               {"norm.weight": "norm2.weight", "norm.bias": "norm2.bias",
                "fn.net.0.weight": "mlp.0.weight", "fn.net.0.bias": "mlp.0.bias",
                "fn.net.3.weight": "mlp.2.weight", "fn.net.3.bias": "mlp.2.bias"}).get(m[3])
        return sub and f"backbone.blocks.{m[1]}.{sub}"
    m = re.fullmatch(r"mlp_head\.(\d+)\.(weight|bias)", key)
    if m:
        return f"head.mlp.{m[1]}.{m[2]}"
    return None


def _conv_indices(seq: nn.Module) -> List[str]:
    return [name for name, mod in seq.named_children() if isinstance(mod, nn.Conv2d)]


def _openpose_names(model) -> Dict[str, str]:
    """The CMU names of the backbone convs (``conv1_1`` ... ``conv4_2``, then ``conv4_3_CPM``,
    ``conv4_4_CPM``) -> pyhpe keys, from the pyhpe model's own VGG layout."""
    names, block, idx = {}, 1, 0
    for name, mod in model.backbone.vgg.named_children():
        if isinstance(mod, nn.MaxPool2d):
            block, idx = block + 1, 0
        elif isinstance(mod, nn.Conv2d):
            idx += 1
            names[f"conv{block}_{idx}"] = f"backbone.vgg.{name}"
    for name in _conv_indices(model.backbone.reduce):
        idx += 1
        names[f"conv{block}_{idx}_CPM"] = f"backbone.reduce.{name}"
    return names


def _openpose_key(key: str, model) -> Optional[str]:
    m = re.fullmatch(r"model0\.(\w+?)\.(weight|bias)", key)
    if m:
        base = _openpose_names(model).get(m[1])
        return base and f"{base}.{m[2]}"
    head = model.head
    m = re.fullmatch(r"model1_([12])\.conv\d+_(\d+)_CPM_L([12])\.(weight|bias)", key)
    if m and m[1] == m[3]:
        branch, name = ("paf1", head.paf1) if m[1] == "1" else ("hm1", head.hm1)
        convs = _conv_indices(name)
        k = int(m[2]) - 1
        return f"head.{branch}.{convs[k]}.{m[4]}" if k < len(convs) else None
    m = re.fullmatch(r"model(\d+)_([12])\.Mconv(\d+)_stage(\d+)_L([12])\.(weight|bias)", key)
    if m and m[1] == m[4] and m[2] == m[5]:
        s = int(m[1]) - 2
        branch = "paf_refine" if m[2] == "1" else "hm_refine"
        mods = getattr(head, branch)
        if not 0 <= s < len(mods):
            return None
        convs = _conv_indices(mods[s])
        k = int(m[3]) - 1
        return f"head.{branch}.{s}.{convs[k]}.{m[6]}" if k < len(convs) else None
    return None


def _reorder_openpose_pafs(model, mapped: Dict[str, torch.Tensor], report: "LoadReport") -> None:
    """CMU's 38 PAF channels (``getPoseMapIndex(COCO_18)``) -> the codec's limb order (limb l
    in channels 2l, 2l + 1): the rows of each stage's last PAF conv and the matching input
    channels of the next stage's first convs, so the network is the same function with its
    PAF outputs in the order pyhpe's PAF decoding reads."""
    from ..ops.paf import COCO18_LIMBS, COCO18_PAF_CHANNELS
    head = model.head
    if [tuple(l) for l in head.codec.limbs] != [tuple(l) for l in COCO18_LIMBS]:
        report.notes.append("PAF channels kept in CMU's order: the codec's limbs are not "
                            "OpenPose's COCO-18 limbs")
        return
    perm = torch.tensor([c for pair in COCO18_PAF_CHANNELS for c in pair])
    P = len(perm)
    pafs = [("head.paf1", head.paf1)] + [(f"head.paf_refine.{i}", m) for i, m in enumerate(head.paf_refine)]
    for name, seq in pafs:
        last = _conv_indices(seq)[-1]
        for leaf in ("weight", "bias"):
            t = mapped[f"{name}.{last}.{leaf}"]
            mapped[f"{name}.{last}.{leaf}"] = t.index_select(0, perm.to(t.device))
    for i in range(len(head.paf_refine)):
        for branch in ("paf_refine", "hm_refine"):
            first = _conv_indices(getattr(head, branch)[i])[0]
            k = f"head.{branch}.{i}.{first}.weight"
            w = mapped[k]
            mapped[k] = torch.cat([w[:, :P].index_select(1, perm.to(w.device)), w[:, P:]], 1)
    report.notes.append("PAF channels reordered from CMU's getPoseMapIndex(COCO_18) to the codec's "
                        "limb order (limb l in channels 2l, 2l + 1)")


def _architecture(model) -> Tuple[str, Callable]:
    from ..models.common import ResNet
    from ..models.hrnet import HRNet
    from ..models.openpose import OpenPoseBackbone
    from ..models.tokenpose import TokenPoseBackbone
    from ..models.vitpose import ViT
    bb = getattr(model, "backbone", None)
    for cls, name, fn in ((HRNet, "hrnet", _hrnet_key), (ResNet, "simple_baseline", _resnet_key),
                          (ViT, "vitpose", _vit_key), (OpenPoseBackbone, "openpose", _openpose_key),
                          (TokenPoseBackbone, "tokenpose", _tokenpose_key)):
        if isinstance(bb, cls):
            return name, fn
    raise TypeError(f"load_pretrained: no published checkpoint layout for a "
                    f"{type(bb).__name__} backbone (HRNet, ResNet SimpleBaseline, ViTPose, OpenPose, TokenPose)")


_LAYOUT_ARCH = {"hrnet_official": ("hrnet", "simple_baseline"),
                "mmpose": ("hrnet", "simple_baseline", "vitpose"),
                "mmpose0": ("hrnet", "simple_baseline", "vitpose"),
                "vitpose": ("hrnet", "simple_baseline", "vitpose"), "openpose_cmu": ("openpose",),
                "tokenpose_official": ("tokenpose",)}


def _bare(key: str, layout: str) -> Optional[str]:
    """A checkpoint key without its layout's prefixes (official names), None if foreign."""
    if layout in ("hrnet_official", "openpose_cmu", "tokenpose_official"):
        return key
    if key.startswith("backbone."):
        return key[len("backbone."):]
    head = "head." if layout == "mmpose" else "keypoint_head."
    if key.startswith(head):
        rest = key[len(head):]
        return rest if rest.startswith(("final_layer.", "deconv_layers.")) else None
    return None


def map_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], layout: str = "auto",
                   paf_order: str = "codec") -> Tuple[Dict[str, torch.Tensor], LoadReport]:
    """``state_dict`` (a published checkpoint's) renamed to ``model``'s keys, checked strictly
    (raises :class:`CheckpointMismatch` naming every problem); shapes only, so it also works
    for models and tensors on the meta device. ``paf_order`` (OpenPose): ``'codec'`` reorders
    CMU's PAF channels into the codec's limb order, ``'cmu'`` keeps them."""
    if paf_order not in ("codec", "cmu"):
        raise ValueError(f"load_pretrained: 'paf_order' must be 'codec' or 'cmu', got {paf_order!r}")
    state_dict = read_checkpoint(state_dict)
    if layout == "auto":
        layout = detect_layout(state_dict)
    if layout not in LAYOUTS:
        raise ValueError(f"load_pretrained: unknown layout {layout!r}; known: {LAYOUTS} or 'auto'")
    arch, translate = _architecture(model)
    if arch not in _LAYOUT_ARCH[layout]:
        raise CheckpointMismatch(f"load_pretrained: a {layout!r} checkpoint does not hold a pyhpe "
                                 f"{arch!r} model (it holds {', '.join(_LAYOUT_ARCH[layout])})")
    own = model.state_dict()
    report = LoadReport(layout, arch)
    mapped: Dict[str, torch.Tensor] = {}
    unmapped, shapes, twice = [], [], []
    if arch == "vitpose" and layout == "mmpose":
        translate = _mmpretrain_vit_key
    for key, value in state_dict.items():
        bare = _bare(key, layout)
        dst = translate(bare, model) if bare is not None else None
        if isinstance(dst, tuple):
            dst, fn, note = dst
            value = fn(value)
            report.notes.append(f"{key}: {note}")
        if dst is None or dst not in own:
            unmapped.append(key if dst is None else f"{key} (-> {dst}, not in the model)")
            continue
        if tuple(own[dst].shape) != tuple(value.shape):
            shapes.append(f"{key} {list(value.shape)} -> {dst} {list(own[dst].shape)}")
            continue
        if dst in mapped:
            twice.append(f"{key} -> {dst}")
            continue
        mapped[dst] = value
        report.mapping.append((key, dst, tuple(value.shape)))
    missing = [k for k in own if k not in mapped]
    report.kept = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    problems = []
    for title, items in (("checkpoint keys without a place in the model", unmapped),
                         ("shapes that differ", shapes), ("model keys filled twice", twice),
                         ("model keys the checkpoint does not fill", missing)):
        if items:
            shown = "\n  ".join(items[:20]) + (f"\n  ... ({len(items) - 20} more)" if len(items) > 20 else "")
            problems.append(f"{len(items)} {title}:\n  {shown}")
    if problems:
        raise CheckpointMismatch(f"load_pretrained: the {layout!r} checkpoint does not fit this pyhpe "
                                 f"{arch!r} model:\n" + "\n".join(problems))
    for k in report.kept:
        mapped[k] = own[k]
    if layout == "openpose_cmu" and paf_order == "codec":
        _reorder_openpose_pafs(model, mapped, report)
    return mapped, report


def load_pretrained(model: nn.Module,
                    state_dict_or_path: Union[str, os.PathLike, Mapping[str, torch.Tensor]],
                    layout: str = "auto", map_location="cpu", paf_order: str = "codec"
                    ) -> LoadReport:
    """Load a published checkpoint (path or state dict) of ``layout`` (``'auto'`` detects it)
    into ``model`` strictly; returns the :class:`LoadReport` of the mapping (see
    :func:`map_state_dict` for ``paf_order``)."""
    sd = read_checkpoint(state_dict_or_path, map_location)
    mapped, report = map_state_dict(model, sd, layout, paf_order)
    on_meta = any(t.is_meta for t in model.state_dict().values())
    model.load_state_dict(mapped, strict=True, assign=on_meta)
    return report


# ---------------------------------------------------------------- manifests
def synthetic_state_dict(manifest: Sequence[Sequence], device=None) -> Dict[str, torch.Tensor]:
    """Deterministic tensors of a manifest's ``[key, shape, dtype]`` entries (each from a
    generator seeded by the key's CRC32; He-scaled weights, BatchNorm statistics near the
    identity), so that a checkpoint layout and a forward pass can be checked without the
    checkpoint. ``device='meta'``: shapes only."""
    out = {}
    for key, shape, dtype in manifest:
        dt = getattr(torch, dtype)
        if device == "meta":
            out[key] = torch.empty(shape, dtype=dt, device="meta")
            continue
        if not dt.is_floating_point:
            out[key] = torch.zeros(shape, dtype=dt)
            continue
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        r = torch.randn(shape, generator=g)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "running_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif len(shape) >= 2 and "pos" not in leaf:
            t = r * math.sqrt(2.0 / max(math.prod(shape[1:]), 1))
        elif len(shape) == 1 and leaf == "weight":
            t = 1.0 + 0.1 * r
        else:
            t = 0.1 * r
        out[key] = t.to(dt)
    return out


__all__ = ["INPUT_NORMALIZATION", "LAYOUTS", "CheckpointMismatch", "LoadReport", "detect_layout", "load_pretrained",
           "map_state_dict", "read_checkpoint", "synthetic_state_dict"]
