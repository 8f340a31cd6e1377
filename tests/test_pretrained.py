"""Published checkpoints load into pyhpe's models strictly (no downloads): state-dict
manifests of the official models (tests/data/manifests/*.json, recorded from the official
definitions by record_manifests.py there) map key by key with equal shapes, and reduced
instances of the same official classes give the recorded outputs once their deterministic
weights go through load_pretrained."""
import argparse
import glob
import json
import os

import numpy as np
import pytest
import torch

from pyhpe.apis import CheckpointMismatch, LoadReport, load_pretrained, map_state_dict
from pyhpe.apis.pretrained import detect_layout, read_checkpoint, synthetic_state_dict
from pyhpe.models import build_model
from pyhpe.ops.paf import COCO18_PAF_CHANNELS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HERE = os.path.join(os.path.dirname(__file__), "data", "manifests")
MANIFESTS = sorted(glob.glob(os.path.join(HERE, "*.json")))
EQUIV = np.load(os.path.join(HERE, "equivalence.npz"))
CASES = sorted({k.split("/")[0] for k in EQUIV.files if "/" in k} - {"litepose_backbone"})


def _manifest(path):
    with open(path) as f:
        return json.load(f)


def _meta_model(spec):
    with torch.device("meta"):
        return build_model(spec["name"], spec["config"], **spec["kwargs"])


def test_every_published_checkpoint_has_a_manifest():
    names = {os.path.basename(p)[:-5] for p in MANIFESTS}
    assert names == {"hrnet_w32_official", "hrnet_w32_mmpose", "hrnet_w48_official",
                     "hrnet_w48_mmpose", "simplebaseline_r50_official", "simplebaseline_r50_mmpose",
                     "simplebaseline_r101_official", "simplebaseline_r101_mmpose",
                     "simplebaseline_r152_official", "simplebaseline_r152_mmpose",
                     "openpose_body_cmu", "vitpose_b_official", "vitpose_b_mmpose",
                     "vitpose_b_simple_mmpose",
                     "tokenpose_s_v2_official"}
    assert set(CASES) == {"hrnet_official", "hrnet_mmpose", "simplebaseline_official",
                          "simplebaseline_mmpose", "openpose_cmu", "vitpose_official",
                          "vitpose_mmpose", "vitpose_simple_mmpose", "tokenpose_official"}


@pytest.mark.parametrize("path", MANIFESTS, ids=[os.path.basename(p)[:-5] for p in MANIFESTS])
def test_published_checkpoint_maps_strictly_onto_the_paper_config(path):
    doc = _manifest(path)
    model = _meta_model(doc["pyhpe"])
    sd = synthetic_state_dict(doc["keys"], device="meta")
    assert detect_layout(sd) == doc["layout"]
    report = load_pretrained(model, sd)   # layout 'auto'; meta tensors: shapes only
    assert isinstance(report, LoadReport) and report.layout == doc["layout"]
    assert report.num_tensors == len(doc["keys"])
    assert {src for src, _, _ in report.mapping} == {k for k, _, _ in doc["keys"]}
    own = model.state_dict()
    assert len({dst for _, dst, _ in report.mapping}) == len(report.mapping)
    assert set(dst for _, dst, _ in report.mapping) | set(report.kept) == set(own)
    assert all(k.endswith("num_batches_tracked") for k in report.kept)
    # the official model's size is pyhpe's (mmpretrain's ViT has no class-token position slot;
    # TokenPose's fixed sine positions are an official Parameter and a pyhpe buffer)
    slot = doc["pyhpe"]["name"] == "vitpose" and doc["layout"] == "mmpose"
    params = dict(model.named_parameters())
    pyhpe_params = sum(p.numel() for p in params.values())
    fixed = sum(int(np.prod(shape)) for src, dst, shape in report.mapping
                if dst not in params and "running_" not in src and "num_batches" not in src)
    assert pyhpe_params + fixed == doc["num_params"] + (model.backbone.pos.shape[-1] if slot else 0)
    text = str(report)
    assert doc["layout"] in text and doc["keys"][0][0] in text
    norm = report.input_normalization
    assert norm["channels"] == ("bgr" if doc["layout"] == "openpose_cmu" else "rgb")


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_the_official_model_on_deterministic_weights(case):
    manifest = json.loads(str(EQUIV[case + "/manifest"]))
    spec = json.loads(str(EQUIV[case + "/pyhpe"]))
    torch.manual_seed(0)
    model = build_model(spec["name"], spec["config"], **spec["kwargs"]).eval()
    report = load_pretrained(model, synthetic_state_dict(manifest))
    assert report.num_tensors == len(manifest)
    x = torch.from_numpy(EQUIV["input"])
    with torch.no_grad():
        y = model(x)
    wants = [torch.from_numpy(EQUIV[f"{case}/output{i}"]) for i in range(2 if case == "openpose_cmu" else 1)]
    if spec["name"] == "openpose":
        last = y[-1]
        got = [last.pafs, last.heatmaps]
        # pyhpe's PAF channels are the codec's limbs in order (limb l: 2l, 2l + 1)
        assert any("PAF channels reordered" in n for n in report.notes)
        perm = [c for pair in COCO18_PAF_CHANNELS for c in pair]
        wants[0] = wants[0][:, perm]
        # Hzzone's conversion lists 'Mconv7_stage6_L1' twice among the layers without ReLU, so
        # its last heatmap conv has a ReLU that CMU's model has not
        got[1] = torch.relu(got[1])
    else:
        got = [y]
    for g, want in zip(got, wants):
        assert g.shape == want.shape
        scale = float(want.abs().max())
        assert scale > 1e-3
        torch.testing.assert_close(g, want, rtol=0, atol=2e-4 * scale)


def test_litepose_backbone_is_the_official_one():
    """No Lite Pose checkpoint layout is loaded, but the backbone and the fusion deconvolutions
    are the official modules (same names, shapes and output); the official final layers are
    what pyhpe's heatmap head replaces."""
    manifest = json.loads(str(EQUIV["litepose_backbone/manifest"]))
    spec = json.loads(str(EQUIV["litepose_backbone/pyhpe"]))
    model = build_model(spec["name"], spec["config"], **spec["kwargs"]).eval()
    sd = synthetic_state_dict(manifest)
    own = model.backbone.state_dict()
    rest = set(sd) - set(own)
    assert all(k.startswith(("final_", "deconv_refined.2.", "deconv_raw.2.", "deconv_bnrelu.2."))
               for k in rest)
    model.backbone.load_state_dict({k: sd[k] for k in own}, strict=True)
    with torch.no_grad():
        got = model.backbone(torch.from_numpy(EQUIV["input"]))
    want = torch.from_numpy(EQUIV["litepose_backbone/output0"])
    torch.testing.assert_close(got, want, rtol=0, atol=2e-4 * float(want.abs().max()))


def test_mmpose0_layout_is_mmpose_with_keypoint_head():
    """mmpose 0.x checkpoints: the same backbones, the head under ``keypoint_head``."""
    manifest = json.loads(str(EQUIV["hrnet_mmpose/manifest"]))
    spec = json.loads(str(EQUIV["hrnet_mmpose/pyhpe"]))
    sd = {("keypoint_" + k if k.startswith("head.") else k): v
          for k, v in synthetic_state_dict(manifest).items()}
    model = build_model(spec["name"], spec["config"], **spec["kwargs"]).eval()
    report = load_pretrained(model, sd)
    assert report.layout == "mmpose0"
    with torch.no_grad():
        y = model(torch.from_numpy(EQUIV["input"]))
    want = torch.from_numpy(EQUIV["hrnet_mmpose/output0"])
    torch.testing.assert_close(y, want, rtol=0, atol=2e-4 * float(want.abs().max()))


def test_load_from_a_file_with_wrappers(tmp_path):
    doc = json.loads(str(EQUIV["hrnet_official/manifest"]))
    spec = json.loads(str(EQUIV["hrnet_official/pyhpe"]))
    sd = synthetic_state_dict(doc)
    # old checkpoints have no num_batches_tracked; DataParallel adds 'module.'
    wrapped = {"state_dict": {"module." + k: v for k, v in sd.items()
                              if not k.endswith("num_batches_tracked")}, "epoch": 3}
    path = tmp_path / "pose_hrnet.pth"
    torch.save(wrapped, path)
    model = build_model(spec["name"], spec["config"], **spec["kwargs"])
    report = load_pretrained(model, str(path), layout="hrnet_official")
    assert report.kept and all(k.endswith("num_batches_tracked") for k in report.kept)
    torch.testing.assert_close(model.state_dict()["head.final.weight"], sd["final_layer.weight"])
    assert set(read_checkpoint(path)) == {k[len("module."):] for k in wrapped["state_dict"]}


def test_openpose_paf_order_cmu_keeps_the_checkpoint_channels():
    manifest = json.loads(str(EQUIV["openpose_cmu/manifest"]))
    spec = json.loads(str(EQUIV["openpose_cmu/pyhpe"]))
    sd = synthetic_state_dict(manifest, device="meta")
    model = _meta_model(spec)
    mapped, report = map_state_dict(model, sd, paf_order="cmu")
    assert not report.notes
    # 'codec': the last PAF conv's rows in the codec's limb order
    last = [m for m in manifest if m[0].startswith("model6_1.Mconv7")]
    sd.update(synthetic_state_dict(last))
    mapped, report = map_state_dict(model, sd)
    assert report.notes
    w = sd["model6_1.Mconv7_stage6_L1.weight"]
    perm = [c for pair in COCO18_PAF_CHANNELS for c in pair]
    torch.testing.assert_close(mapped["head.paf_refine.4.12.weight"], w[perm])
    with pytest.raises(ValueError, match="paf_order"):
        map_state_dict(model, sd, paf_order="x")


def test_mmengine_checkpoint_with_numpy_meta_loads_weights_only(tmp_path):
    """mmengine keeps the dataset's sigmas as numpy arrays in 'meta': allowed; other Python
    objects are refused with an explanation."""
    doc = json.loads(str(EQUIV["hrnet_mmpose/manifest"]))
    sd = synthetic_state_dict(doc)
    meta = {"dataset_meta": {"sigmas": np.linspace(0.025, 0.107, 17).astype(np.float32),
                             "flip_indices": [0, 2, 1], "num_keypoints": np.int64(17)}}
    torch.save({"meta": meta, "state_dict": sd}, tmp_path / "mmpose.pth")
    assert set(read_checkpoint(tmp_path / "mmpose.pth")) == set(sd)

    # any other Python object (here an argparse Namespace) is what weights_only refuses
    torch.save({"args": argparse.Namespace(lr=0.1), "state_dict": sd}, tmp_path / "run.pth")
    with pytest.raises(ValueError, match="state dict alone"):
        read_checkpoint(tmp_path / "run.pth")


def test_mismatches_are_named():
    doc = json.loads(str(EQUIV["simplebaseline_official/manifest"]))
    spec = json.loads(str(EQUIV["simplebaseline_official/pyhpe"]))
    model = _meta_model(spec)
    sd = synthetic_state_dict(doc, device="meta")
    bad = dict(sd)
    bad["final_layer.weight"] = torch.empty(16, 32, 1, 1, device="meta")   # 16 keypoints
    bad["extra.weight"] = torch.empty(3, device="meta")
    del bad["layer1.0.conv1.weight"]
    with pytest.raises(CheckpointMismatch) as e:
        map_state_dict(model, bad)
    msg = str(e.value)
    assert "extra.weight" in msg and "final_layer.weight [16, 32, 1, 1]" in msg
    assert "backbone.stages.0.0.conv1.0.weight" in msg
    # a checkpoint of another architecture
    hr = json.loads(str(EQUIV["openpose_cmu/manifest"]))
    with pytest.raises(CheckpointMismatch, match="openpose"):
        map_state_dict(model, synthetic_state_dict(hr, device="meta"))
    # the W32 checkpoint into a W48 model
    w32 = _manifest(os.path.join(HERE, "hrnet_w32_official.json"))
    with pytest.raises(CheckpointMismatch, match="shapes that differ"):
        map_state_dict(_meta_model({"name": "hrnet", "config": "w48", "kwargs": {}}),
                       synthetic_state_dict(w32["keys"], device="meta"))
    with pytest.raises(ValueError, match="unknown layout"):
        map_state_dict(model, sd, layout="caffe")
    with torch.device("meta"):
        other = build_model("cpm", "tiny")
    with pytest.raises(TypeError, match="no published checkpoint layout"):
        map_state_dict(other, sd)
