"""Records the state-dict manifests (key names, shapes, dtypes) of the official pose models and
forward-pass references on deterministic weights, for tests/test_pretrained.py.

Never run by the tests; run by hand in a scratch environment that has the official model
definitions (nothing of them is vendored into pyhpe):

  * mmpose 1.3.2 (``../shared/tools/mmpose-reference/setup.sh SCRATCH python``),
  * ``lib/models/pose_hrnet.py`` and ``pose_resnet.py`` of
    github.com/leoxiaobin/deep-high-resolution-net.pytorch (the official HRNet / SimpleBaseline),
  * ``src/model.py`` of github.com/Hzzone/pytorch-openpose (the PyTorch conversion of the CMU
    OpenPose body model, ``body_pose_model.pth``),
  * ``mmpose/models/backbones/vit.py`` of github.com/ViTAE-Transformer/ViTPose (official ViTPose),
  * mmpretrain 1.2.0 (``pip install --target SCRATCH2 --no-deps mmpretrain==1.2.0 einops``), whose
    ``VisionTransformer`` is mmpose 1.x's ViTPose backbone (only its backbone modules are
    imported, see :func:`mmpretrain_vit`).

Usage (from the repository root)::

  PYTHONPATH=.:SCRATCH python tests/data/manifests/record_manifests.py \
      --mmpose-stubs ../shared/tools/mmpose-reference/mmpose_stubs.py --official DIR \
      --mmpretrain SCRATCH2

where DIR holds ``pose_hrnet.py``, ``pose_resnet.py``, ``openpose_model.py`` (Hzzone's
``src/model.py``), ``vitpose_vit.py`` and, from github.com/mit-han-lab/litepose,
``litepose_pose_mobilenet.py`` (``lib/models/pose_mobilenet.py``), ``litepose_layers.py``
(``lib/models/layers/layers.py``) and, from github.com/leeyegy/TokenPose, ``tokenpose_base.py``
(``lib/models/tokenpose_base.py``; needs einops, installed with mmpretrain): Lite Pose has no checkpoint layout here, but its backbone
and fusion deconvolutions are checked against the official ones (``litepose_backbone``).

Outputs, next to this script: ``<name>.json`` manifests of the published configurations
(``{"source", "layout", "pyhpe": {name, config, kwargs}, "num_params", "keys": [[key, shape,
dtype], ...]}``) and ``equivalence.npz``: for reduced instances of the same official classes
(same key layout, small widths), the manifest, the fixed input and the official output on the
weights of :func:`pyhpe.apis.pretrained.synthetic_state_dict`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def manifest(state_dict):
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in state_dict.items()]


def write(name, sd, source, layout, pyhpe):
    n = sum(v.numel() for k, v in sd.items() if "running_" not in k and "num_batches" not in k)
    doc = {"source": source, "layout": layout, "pyhpe": pyhpe, "num_params": int(n),
           "keys": manifest(sd)}
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        f.write("{" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items()) + "}\n")
    print(f"{name}: {len(sd)} keys, {n / 1e6:.3f} M parameters")


def load_module(path, name, prelude=None):
    src = open(path).read()
    if prelude is not None:
        src = prelude(src)
    mod = types.ModuleType(name)
    mod.__file__ = path
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod


class Attr(dict):
    """yacs-like config: item and attribute access."""
    def __getattr__(self, k):
        return self[k]


def hrnet_cfg(width, modules=(1, 4, 3), blocks=4, joints=17):
    stage = lambda n, m: Attr(NUM_MODULES=m, NUM_BRANCHES=n, BLOCK="BASIC", NUM_BLOCKS=[blocks] * n,
                              NUM_CHANNELS=[width * 2 ** i for i in range(n)], FUSE_METHOD="SUM")
    extra = Attr(STAGE2=stage(2, modules[0]), STAGE3=stage(3, modules[1]), STAGE4=stage(4, modules[2]),
                 FINAL_CONV_KERNEL=1, PRETRAINED_LAYERS=["*"])
    return Attr(MODEL=Attr(EXTRA=extra, NUM_JOINTS=joints))


def resnet_cfg(depth, deconv=(256, 256, 256), joints=17):
    extra = Attr(NUM_LAYERS=depth, DECONV_WITH_BIAS=False, NUM_DECONV_LAYERS=len(deconv),
                 NUM_DECONV_FILTERS=list(deconv), NUM_DECONV_KERNELS=[4] * len(deconv),
                 FINAL_CONV_KERNEL=1)
    return Attr(MODEL=Attr(EXTRA=extra, NUM_JOINTS=joints))


def vit_prelude(src):
    """The official file imports timm and mmpose 0.x registries: replaced by equivalents."""
    src = src.replace("from timm.models.layers import drop_path, to_2tuple, trunc_normal_",
                      "from torch.nn.init import trunc_normal_\n"
                      "to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)\n"
                      "def drop_path(x, p=0., training=False):\n    return x\n")
    src = src.replace("from ..builder import BACKBONES", "")
    src = src.replace("from .base_backbone import BaseBackbone", "BaseBackbone = nn.Module")
    src = src.replace("@BACKBONES.register_module()", "")
    return src


def mmpose_model(cfg_name, **changes):
    from mmengine.config import Config
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmpose
    root = os.path.join(os.path.dirname(mmpose.__file__), ".mim", "configs", "body_2d_keypoint",
                        "topdown_heatmap", "coco")
    cfg = Config.fromfile(os.path.join(root, cfg_name))
    cfg.model.backbone.pop("init_cfg", None)
    for path, value in changes.items():
        node = cfg.model
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return MODELS.build(cfg.model).eval()


def mmpretrain_vit(path, **kw):
    """mmpretrain's VisionTransformer without mmpretrain's package imports (its inferencer
    needs packages that the model does not)."""
    import importlib
    sys.modules.setdefault("importlib_metadata", importlib.import_module("importlib.metadata"))
    for name in ("mmpretrain", "mmpretrain.models", "mmpretrain.models.backbones"):
        if name not in sys.modules:
            m = types.ModuleType(name)
            m.__path__ = [os.path.join(path, *name.split("."))]
            sys.modules[name] = m
    vt = importlib.import_module("mmpretrain.models.backbones.vision_transformer")
    return vt.VisionTransformer(**kw)


def vitpose_mmpose(path, img=(256, 192), arch="base", deconv=(256, 256), dim=768, simple=False):
    """td-hm_ViTPose-base_8xb64-210e_coco-256x192.py's model (``simple``: -base-simple's, with
    its FeatureMapProcessor neck): its backbone settings and mmpose's HeatmapHead."""
    from mmpose.models.heads import HeatmapHead
    from mmpose.models.necks import FeatureMapProcessor
    m = torch.nn.Module()
    m.backbone = mmpretrain_vit(path, arch=arch, img_size=img, patch_size=16, qkv_bias=True,
                                drop_path_rate=0.3, with_cls_token=False, out_type="featmap",
                                patch_cfg=dict(padding=2))
    if simple:
        m.neck = FeatureMapProcessor(scale_factor=4.0, apply_relu=True)
        m.head = HeatmapHead(in_channels=dim, out_channels=17, deconv_out_channels=[],
                             deconv_kernel_sizes=[], final_layer=dict(kernel_size=3, padding=1))
    else:
        m.head = HeatmapHead(in_channels=dim, out_channels=17, deconv_out_channels=deconv,
                             deconv_kernel_sizes=(4,) * len(deconv))
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmpose-stubs", required=True)
    ap.add_argument("--official", required=True)
    ap.add_argument("--mmpretrain", required=True)
    args = ap.parse_args()
    exec(open(args.mmpose_stubs).read(), {})
    sys.path.append(args.mmpretrain)   # einops, for TokenPose
    from pyhpe.apis.pretrained import synthetic_state_dict
    torch.set_grad_enabled(False)
    off = args.official
    hr = load_module(os.path.join(off, "pose_hrnet.py"), "pose_hrnet")
    pr = load_module(os.path.join(off, "pose_resnet.py"), "pose_resnet")
    op = load_module(os.path.join(off, "openpose_model.py"), "openpose_model")
    vt = load_module(os.path.join(off, "vitpose_vit.py"), "vitpose_vit", vit_prelude)
    HR = "leoxiaobin/deep-high-resolution-net.pytorch lib/models/pose_hrnet.py"
    PR = "leoxiaobin/deep-high-resolution-net.pytorch lib/models/pose_resnet.py"
    OP = "Hzzone/pytorch-openpose src/model.py bodypose_model (body_pose_model.pth)"
    VT = ("ViTAE-Transformer/ViTPose mmpose/models/backbones/vit.py ViT + TopdownHeatmapSimpleHead "
          "(ViTPose_base_coco_256x192.py)")
    MM = "mmpose 1.3.2 configs/body_2d_keypoint/topdown_heatmap/coco/"

    def vitpose_official(img=(256, 192), patch=16, dim=768, depth=12, heads=12, deconv=(256, 256)):
        """The official ViT; its TopdownHeatmapSimpleHead (deconv_layers: ConvTranspose2d, BN,
        ReLU per layer, final_layer: 1x1 conv) is the same module structure as mmpose 1.x's
        HeatmapHead, built here as ``keypoint_head``."""
        from mmpose.models.heads import HeatmapHead
        m = torch.nn.Module()
        m.backbone = vt.ViT(img_size=img, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads,
                            ratio=1, use_checkpoint=False, mlp_ratio=4, qkv_bias=True,
                            drop_path_rate=0.3)
        m.keypoint_head = HeatmapHead(in_channels=dim, out_channels=17, deconv_out_channels=deconv,
                                      deconv_kernel_sizes=(4,) * len(deconv))
        return m.eval()

    # -- manifests of the published configurations
    for w in (32, 48):
        write(f"hrnet_w{w}_official", hr.PoseHighResolutionNet(hrnet_cfg(w)).state_dict(),
              f"{HR} (pose_hrnet_w{w}_256x192.pth)", "hrnet_official",
              {"name": "hrnet", "config": f"w{w}", "kwargs": {}})
        cfgname = f"td-hm_hrnet-w{w}_8xb{64 if w == 32 else 32}-210e_coco-256x192.py"
        write(f"hrnet_w{w}_mmpose", mmpose_model(cfgname).state_dict(), MM + cfgname, "mmpose",
              {"name": "hrnet", "config": f"w{w}", "kwargs": {}})
    for d, cfgname in ((50, "td-hm_res50_8xb64-210e_coco-256x192.py"),
                       (101, "td-hm_res101_8xb64-210e_coco-256x192.py"),
                       (152, "td-hm_res152_8xb32-210e_coco-256x192.py")):
        config = "paper" if d == 50 else f"r{d}"
        write(f"simplebaseline_r{d}_official", pr.get_pose_net(resnet_cfg(d), False).state_dict(),
              f"{PR} (pose_resnet_{d}_256x192.pth)", "hrnet_official",
              {"name": "simple_baseline", "config": config, "kwargs": {}})
        write(f"simplebaseline_r{d}_mmpose", mmpose_model(cfgname).state_dict(), MM + cfgname,
              "mmpose", {"name": "simple_baseline", "config": config, "kwargs": {}})
    tp = load_module(os.path.join(off, "tokenpose_base.py"), "tokenpose_base",
                     lambda src: src.replace("from timm.models.layers.weight_init import trunc_normal_",
                                             "from torch.nn.init import trunc_normal_"))

    def tokenpose_s(img=(256, 192), hm=(64, 48), dim=192, depth=12, heads=8):
        """pose_tokenpose_s.TokenPose_S (its ``features``) with tokenpose_s_v2_256_192_patch22_
        dim192_depth12_heads8.yaml's settings."""
        m = torch.nn.Module()
        m.features = tp.TokenPose_S_base(
            image_size=list(img), patch_size=[2, 2], num_keypoints=17, dim=dim, channels=256,
            depth=depth, heads=heads, mlp_dim=dim * 3, apply_init=True,
            hidden_heatmap_dim=hm[0] * hm[1] // 8, heatmap_dim=hm[0] * hm[1], heatmap_size=list(hm),
            pos_embedding_type="sine-full")
        return m.eval()
    write("tokenpose_s_v2_official", tokenpose_s().state_dict(),
          "leeyegy/TokenPose lib/models/tokenpose_base.py TokenPose_S_base "
          "(tokenpose_s_v2_256_192_patch22_dim192_depth12_heads8.yaml)", "tokenpose_official",
          {"name": "tokenpose", "config": "paper", "kwargs": {}})
    write("openpose_body_cmu", op.bodypose_model().state_dict(), OP, "openpose_cmu",
          {"name": "openpose", "config": "paper", "kwargs": {"num_keypoints": 18}})
    write("vitpose_b_official", vitpose_official().state_dict(), VT, "vitpose",
          {"name": "vitpose", "config": "paper", "kwargs": {}})
    write("vitpose_b_mmpose", vitpose_mmpose(args.mmpretrain).state_dict(),
          MM + "td-hm_ViTPose-base_8xb64-210e_coco-256x192.py (mmpretrain 1.2.0 VisionTransformer)",
          "mmpose", {"name": "vitpose", "config": "paper", "kwargs": {}})
    write("vitpose_b_simple_mmpose", vitpose_mmpose(args.mmpretrain, simple=True).state_dict(),
          MM + "td-hm_ViTPose-base-simple_8xb64-210e_coco-256x192.py (mmpretrain 1.2.0 "
          "VisionTransformer)", "mmpose",
          {"name": "vitpose", "config": "paper", "kwargs": {"decoder": "simple"}})

    # -- forward equivalence on reduced instances of the same classes, deterministic weights
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 64, 64, generator=g)   # HRNet: a multiple of 32
    out = {"input": x.numpy()}

    def record(name, model, fwd, pyhpe):
        sd = model.state_dict()
        model.load_state_dict(synthetic_state_dict(manifest(sd)))
        y = fwd(model.eval(), x)
        ys = y if isinstance(y, (list, tuple)) else [y]
        out[name + "/manifest"] = np.array(json.dumps(manifest(sd)))
        out[name + "/pyhpe"] = np.array(json.dumps(pyhpe))
        for i, t in enumerate(ys):
            out[f"{name}/output{i}"] = t.numpy().astype(np.float32)
        print(name, [tuple(t.shape) for t in ys], f"{sum(v.numel() for v in sd.values()) / 1e6:.3f} M")

    hr_small = dict(width=8, modules=(1, 2, 1), num_blocks=2)
    record("hrnet_official", hr.PoseHighResolutionNet(hrnet_cfg(8, (1, 2, 1), 2)), lambda m, x: m(x),
           {"name": "hrnet", "config": "w32", "kwargs": {**hr_small, "input_size": [64, 64]}})
    record("hrnet_mmpose",
           mmpose_model("td-hm_hrnet-w32_8xb64-210e_coco-256x192.py",
                        **{"backbone.extra": dict(
                            stage1=dict(num_modules=1, num_branches=1, block="BOTTLENECK",
                                        num_blocks=(4,), num_channels=(64,)),
                            stage2=dict(num_modules=1, num_branches=2, block="BASIC",
                                        num_blocks=(2, 2), num_channels=(8, 16)),
                            stage3=dict(num_modules=2, num_branches=3, block="BASIC",
                                        num_blocks=(2, 2, 2), num_channels=(8, 16, 32)),
                            stage4=dict(num_modules=1, num_branches=4, block="BASIC",
                                        num_blocks=(2, 2, 2, 2), num_channels=(8, 16, 32, 64))),
                           "head.in_channels": 8}),
           lambda m, x: m.head.forward(m.extract_feat(x)),
           {"name": "hrnet", "config": "w32", "kwargs": {**hr_small, "input_size": [64, 64]}})
    sb_small = {"depth": 18, "deconv_channels": [32, 32, 32], "input_size": [64, 64]}
    record("simplebaseline_official", pr.get_pose_net(resnet_cfg(18, (32, 32, 32)), False),
           lambda m, x: m(x), {"name": "simple_baseline", "config": "paper", "kwargs": sb_small})
    record("simplebaseline_mmpose",
           mmpose_model("td-hm_res50_8xb64-210e_coco-256x192.py",
                        **{"backbone.depth": 18, "head.in_channels": 512,
                           "head.deconv_out_channels": (32, 32, 32)}),
           lambda m, x: m.head.forward(m.extract_feat(x)),
           {"name": "simple_baseline", "config": "paper", "kwargs": sb_small})
    record("openpose_cmu", op.bodypose_model(), lambda m, x: m(x),
           {"name": "openpose", "config": "paper", "kwargs": {"num_keypoints": 18, "input_size": [64, 64]}})
    vit = vitpose_official(img=(64, 64), dim=32, depth=2, heads=2, deconv=(16, 16))
    record("vitpose_official", vit, lambda m, x: m.keypoint_head.forward([m.backbone(x)]),
           {"name": "vitpose", "config": "paper",
            "kwargs": {"img_size": [64, 64], "dim": 32, "depth": 2, "heads": 2,
                       "deconv_channels": [16, 16]}})
    # Lite Pose: the refined stride-4 features after the second fusion deconvolution
    sys.modules["layers"] = load_module(os.path.join(off, "litepose_layers.py"), "layers")
    lp = load_module(os.path.join(off, "litepose_pose_mobilenet.py"), "pose_mobilenet",
                     lambda src: src.replace("from lib.models.layers.layers import", "from layers import"))
    lp_cfg = Attr(MODEL=Attr(EXTRA=Attr(NUM_DECONV_LAYERS=3, NUM_DECONV_KERNELS=[4, 4, 4]),
                             NUM_JOINTS=17, TAG_PER_JOINT=True),
                  LOSS=Attr(WITH_HEATMAPS_LOSS=[True, True], WITH_AE_LOSS=[True, False]))
    lp_arch = {"input_channel": 8, "deconv_setting": [16, 24, 16], "backbone_setting": [
        {"num_blocks": n, "stride": st, "channel": c, "block_setting": [[6, 7]] * n}
        for n, st, c in ((2, 2, 8), (2, 2, 16), (2, 2, 24), (2, 1, 32))]}

    def lp_features(m, x):
        feats = []
        hook = m.deconv_bnrelu[1].register_forward_hook(lambda mod, i, o: feats.append(o))
        m(x)
        hook.remove()
        return feats[0]
    record("litepose_backbone", lp.LitePose(lp_cfg, cfg_arch=lp_arch), lp_features,
           {"name": "litepose", "config": "paper",
            "kwargs": {"stem_channels": 8, "stages": [[8, 2, 2], [16, 2, 2], [24, 2, 2], [32, 2, 1]],
                       "deconv_channels": [16, 24], "input_size": [64, 64]}})
    record("tokenpose_official", tokenpose_s(img=(64, 64), hm=(16, 16), dim=16, depth=2, heads=2),
           lambda m, x: m.features(x),
           {"name": "tokenpose", "config": "paper",
            "kwargs": {"img_size": [64, 64], "dim": 16, "depth": 2, "heads": 2}})
    small = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=128)
    record("vitpose_mmpose", vitpose_mmpose(args.mmpretrain, img=(64, 64), arch=small, deconv=(16, 16), dim=32),
           lambda m, x: m.head.forward(m.backbone(x)),
           {"name": "vitpose", "config": "paper",
            "kwargs": {"img_size": [64, 64], "dim": 32, "depth": 2, "heads": 2,
                       "deconv_channels": [16, 16]}})
    record("vitpose_simple_mmpose",
           vitpose_mmpose(args.mmpretrain, img=(64, 64), arch=small, dim=32, simple=True),
           lambda m, x: m.head.forward(m.neck(m.backbone(x))),
           {"name": "vitpose", "config": "paper",
            "kwargs": {"img_size": [64, 64], "dim": 32, "depth": 2, "heads": 2, "decoder": "simple"}})
    np.savez_compressed(os.path.join(HERE, "equivalence.npz"), **out)


if __name__ == "__main__":
    main()
