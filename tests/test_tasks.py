"""Tasks built from validated configs and trained by the one engine: the registry, the shipped
recipes, one learning test per task type (AP up for top-down heatmap / SimCC / regression /
integral and bottom-up PAF, MPJPE down for lifting), top-down inference on detector boxes with
OKS-NMS, and the `pyhpe train/eval/infer` command lines."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import topdown_config as _topdown
from pyhpe.engine import ConfigError, Trainer
from pyhpe.keypoints import COCO17, CROWDPOSE14
from pyhpe.tasks import TASKS, build_task, task_names
from pyhpe.tasks.topdown import apply_oks_nms, load_detections, simulate_detections

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.json")))
QUIET = lambda *a: None  # noqa: E731


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))




# ---------------------------------------------------------------------------- registry, configs
def test_registry_and_config_errors(tmp_path):
    assert task_names() == ["bottomup_ae", "bottomup_deepercut", "bottomup_paf", "image3d",
                            "lift3d", "topdown"]
    assert set(TASKS) == set(task_names())
    with pytest.raises(ConfigError, match="task: one of"):
        build_task({"task": "nope"})
    base = _topdown(tmp_path)
    for path, value, match in (("bogus", 1, "unknown key 'bogus'"),
                               ("train.epoch", 1, "train: unknown key 'epoch'"),
                               ("eval.flip", True, "eval: unknown key 'flip'"),
                               ("data.num_imgs", 3, "data: unknown key 'num_imgs'"),
                               ("data.type", "lmdb", "data.type: must be one of"),
                               ("codec.sigmaa", 2, "codec: .*sigmaa"),
                               ("augment.rot", 2, "augment: .*rot"),
                               ("input_size", [48], "input_size")):
        with pytest.raises(ConfigError, match=match):
            build_task(base, [f"{path}={json.dumps(value)}"])
    task = build_task(base, ["model.widthz=3"])        # model overrides go to the model
    with pytest.raises(ConfigError, match="model: .*widthz"):
        task.build_model()
    # a config round-trips through its dict (what a run writes to config.json)
    task = build_task(base, ["train.epochs=7", "codec.sigma=1.5"])
    again = build_task(task.config.to_dict())
    assert again.config == task.config and again.config.train.epochs == 7
    assert again.codec.sigma == 1.5


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p)[:-5] for p in CONFIGS])
def test_shipped_configs_build(path):
    """Every recipe validates; its codec and (where the data is not needed) model build."""
    task = build_task(path)
    cfg = json.load(open(path))
    assert task.name == cfg["task"] and task.config.to_dict()["train"]["out_dir"]
    if task.name == "lift3d":
        if cfg["data"]["type"] != "synthetic":
            return    # its codec statistics come from the Human3.6M files
        task = build_task(path, ["data.train_samples=64", "data.test_samples=8"])
    assert task.codec.to_config()["name"] == cfg["codec"]["name"]
    model = task.build_model()
    assert sum(p.numel() for p in model.parameters()) > 0


def test_expected_recipes_are_shipped():
    names = {os.path.basename(p)[:-5] for p in CONFIGS}
    assert names >= {"topdown_simplebaseline_synthetic", "topdown_simcc_synthetic",
                     "topdown_regression_synthetic", "topdown_integral_ipr_synthetic",
                     "topdown_integral_dsnt_synthetic", "topdown_udp_synthetic",
                     "bottomup_paf_synthetic", "lift3d_synthetic", "lift3d_h36m", "topdown_coco",
                     "topdown_crowdpose", "topdown_aic", "topdown_mpii", "topdown_posetrack18",
                     "topdown_jhmdb", "topdown_coco_wholebody", "topdown_halpe136",
                     "ochuman_sample", "crowdpose_sample", "aic_sample", "mpii_sample",
                     "posetrack18_sample", "jhmdb_sample", "lift3d_h36m_sample",
                     "lift3d_mpi_inf_3dhp_sample", "lift3d_panoptic_sample"}


# ---------------------------------------------------------------------------- top-down learning
@pytest.fixture(scope="module")
def trained_topdown(tmp_path_factory):
    """A tiny SimpleBaseline trained for 120 steps on synthetic figures (seconds on one CPU
    thread): (task, trainer, result, untrained metrics). Measured held-out AP 0.23-0.31
    (seeds 0-2); untrained 0."""
    out = tmp_path_factory.mktemp("trained_topdown")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        task = build_task(_topdown(out, steps=120, images=64, val=8))
        trainer = Trainer(task, log=QUIET)
        untrained = trainer.evaluate()
        result = trainer.fit()
    finally:
        torch.set_num_threads(n)
    return task, trainer, result, untrained


TRAINED_TOPDOWN_MIN_AP = 0.08


def test_topdown_heatmap_learns(trained_topdown):
    task, trainer, result, untrained = trained_topdown
    assert untrained["AP"] < 0.02, untrained
    assert result["step"] == 120 and result["finished"]
    assert result["best"] == result["metrics"]["AP"] >= TRAINED_TOPDOWN_MIN_AP, result["metrics"]
    curve = [p["loss"] for p in result["loss_log"]]
    assert np.mean(curve[-3:]) < 0.8 * np.mean(curve[:3]), curve
    best = torch.load(os.path.join(result["out_dir"], "best.pth"), weights_only=True)
    assert best["value"] == result["best"] and best["metric"] == "AP" and best["step"] == 120


# (codec, model, steps, lr, AP floor) on 64 images; measured AP after training, seeds 0-2:
# SimCC 0.05-0.15, regression 0.10-0.31, IPR 0.15-0.36, DSNT 0.09-0.13; untrained: 0.
LEARNERS = {
    "simcc": ({"name": "simcc", "sigma": [2.0, 2.0]},
              {"name": "rtmpose", "config": "tiny", "widths": [16, 32, 48, 64], "stem_channels": 16},
              120, 4e-3, 0.02),
    "regression": ({"name": "regression"},
                   {"name": "deeppose", "config": "tiny", "num_stages": 1}, 120, 4e-3, 0.03),
    "integral_ipr": ({"name": "integral", "heatmap_size": [12, 16], "method": "ipr"},
                     {"name": "simple_baseline", "config": "tiny"}, 120, 4e-3, 0.05),
    "integral_dsnt": ({"name": "integral", "heatmap_size": [12, 16], "method": "dsnt"},
                      {"name": "simple_baseline", "config": "tiny"}, 120, 4e-3, 0.03),
}


@pytest.mark.parametrize("kind", sorted(LEARNERS))
def test_topdown_heads_learn(tmp_path, kind):
    codec, model, steps, lr, floor = LEARNERS[kind]
    task = build_task(_topdown(tmp_path, codec=codec, model=model, steps=steps, lr=lr))
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    assert after > before and after >= floor, (before, after)
    names = {k for k in result["history"][-1] if k.startswith("loss_")}
    assert names, result["history"][-1]


def _coco_files(tmp_path, name, num, seed, max_persons=1):
    """Synthetic figures written as a COCO-format dataset (annotation json + image dir)."""
    import cv2
    from pyhpe.data import SyntheticPoseDataset
    src = SyntheticPoseDataset(num, seed=seed, size=(96, 96), max_persons=max_persons)
    gt = src.coco_dict()
    img_dir = tmp_path / f"{name}_images"
    img_dir.mkdir()
    for im in gt["images"]:
        cv2.imwrite(str(img_dir / im["file_name"]), src.image_by_id(im["id"]))
    ann = tmp_path / f"{name}.json"
    ann.write_text(json.dumps(gt))
    return str(ann), str(img_dir)


def test_coco_format_data_for_topdown_and_bottomup(tmp_path):
    """The same pipelines read COCO-format files (keypoints 'auto': the set comes from the
    annotation's category); the evaluation scores the files' ground truth."""
    tr_ann, tr_dir = _coco_files(tmp_path, "train", 8, 0, max_persons=2)
    va_ann, va_dir = _coco_files(tmp_path, "val", 2, 1, max_persons=2)
    data = {"type": "coco", "train_ann": tr_ann, "train_images": tr_dir, "val_ann": va_ann,
            "val_images": va_dir}
    td = build_task(_topdown(tmp_path / "td", steps=2, data=data, keypoints="auto"))
    assert td.kset.num_keypoints == 17 and len(td.train_dataset()) == len(json.load(open(tr_ann))["annotations"])
    result = td.fit(log=QUIET, batch_size=4)
    assert result["step"] == 2 and 0.0 <= result["metrics"]["AP"] <= 1.0
    bu = build_task(_bottomup(tmp_path / "bu", steps=2, data=data,
                              model={"name": "openpose", "config": "tiny"},
                              codec={"name": "paf", "heatmap_size": [8, 8]}))
    result = bu.fit(log=QUIET)
    assert result["step"] == 2 and len(bu.val_dataset()) == 2 and "AP" in result["metrics"]
    with pytest.raises(ConfigError, match="val_images"):
        build_task(_topdown(tmp_path, data=dict(data, val_images=None)))
    with pytest.raises(ConfigError, match="'auto' needs COCO-format data"):
        build_task(_topdown(tmp_path, keypoints="auto"))


# ---------------------------------------------------------------------------- real COCO-format data
# Real images with their annotations (mmpose's test data, Apache-2.0; see tests/data/README.md):
# OCHuman (3 images, COCO-17, 5 persons, with 'area') and CrowdPose (2 images, CrowdPose-14,
# 5 persons, no 'area', images with 'crowdIndex'). Train and validation are the same file.
DATA = os.path.join(ROOT, "tests", "data")
REAL = {"ochuman": ("ochuman_sample.json", "ochuman"),
        "crowdpose": ("crowdpose_sample.json", "crowdpose")}


def _real(name):
    ann, images = (os.path.join(DATA, p) for p in REAL[name])
    return {"type": "coco", "train_ann": ann, "train_images": images, "val_ann": ann,
            "val_images": images}


def _topdown_oracle(task):
    """A model whose predictions are the validation crops' own (input-pixel) keypoints, in
    the order ``predict`` reads the crops, score 1."""
    val = task.val_dataset()
    kps = torch.stack([val[i]["keypoints"] for i in range(len(val))])

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = 0

        def predict(self, x, flip_test=False, flip_index=None):
            out = kps[self.pos:self.pos + x.shape[0]]
            self.pos += x.shape[0]
            return out, torch.ones(out.shape[:2])

    return Oracle()


REAL_RUNS = {  # (data, config): tiny networks, 2 steps of 2 crops / images
    "topdown_msra": ("ochuman", lambda out, data: _topdown(
        out, steps=2, data=data, keypoints="auto", batch_size=2, warmup_steps=0)),
    "topdown_integral_dsnt": ("ochuman", lambda out, data: _topdown(
        out, steps=2, data=data, keypoints="auto", batch_size=2, warmup_steps=0,
        codec={"name": "integral", "heatmap_size": [12, 16], "method": "dsnt"})),
    "bottomup_paf": ("ochuman", lambda out, data: _bottomup(
        out, steps=2, data=data, keypoints="auto", model={"name": "openpose", "config": "tiny"},
        codec={"name": "paf", "heatmap_size": [8, 8]}, batch_size=2)),
    "bottomup_paf_crowdpose": ("crowdpose", lambda out, data: _bottomup(
        out, steps=2, data=data, keypoints="auto", model={"name": "openpose", "config": "tiny"},
        codec={"name": "paf", "heatmap_size": [8, 8]}, batch_size=2)),
    "topdown_msra_crowdpose": ("crowdpose", lambda out, data: _topdown(
        out, steps=2, data=data, keypoints="auto", batch_size=2, warmup_steps=0)),
}
COCO_STATS = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
CROWDPOSE_STATS = ["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"]


@pytest.mark.parametrize("run", sorted(REAL_RUNS))
def test_real_coco_format_data_trains_and_evaluates(tmp_path, run):
    """Real images through build_task + the engine: 2 training steps, then COCO AP on the
    validation file (OCHuman: pycocotools stats; CrowdPose, whose GT has no 'area': keypoint
    set picked by 'auto', xtcocotools' crowdpose stats)."""
    name, make = REAL_RUNS[run]
    task = build_task(make(tmp_path, _real(name)))
    gt = json.load(open(os.path.join(DATA, REAL[name][0])))
    assert task.kset.num_keypoints == len(gt["categories"][0]["keypoints"])
    assert task.kset.names == (CROWDPOSE14.names if name == "crowdpose" else COCO17.names)
    result = task.fit(log=QUIET)
    assert result["step"] == 2 and result["finished"]
    m = result["metrics"]
    assert list(m) == (CROWDPOSE_STATS if name == "crowdpose" else COCO_STATS), m
    assert 0.0 <= m["AP"] <= 1.0 and result["best"] == m["AP"]
    persons = [a for a in gt["annotations"] if not a.get("iscrowd") and max(a["keypoints"][2::3]) > 0]
    expect = len(gt["images"]) if task.name == "bottomup_paf" else len(persons)
    assert len(task.val_dataset()) == expect


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_topdown_crops_map_back_and_ground_truth_scores_one(name):
    """The real-data path of top-down evaluation is exact: images load as cv2 reads them (BGR,
    normalised to RGB), each crop holds the image's pixels where ``to_image_space`` says, its
    keypoints map back onto the annotation, and predicting them scores AP 1.0 on the file."""
    import cv2
    from pyhpe.data import normalize_images, to_image_space
    task = build_task(_topdown("unused", data=_real(name), keypoints="auto"))
    val = task.val_dataset()
    gt = task.val_gt
    files = {im["id"]: os.path.join(DATA, REAL[name][1], im["file_name"]) for im in gt["images"]}
    W, H = task.config.input_size
    grid = torch.stack(torch.meshgrid(torch.arange(W, dtype=torch.float64),
                                      torch.arange(H, dtype=torch.float64), indexing="xy"), -1)
    for i, rec in enumerate(val.records):
        item = val[i]
        image = cv2.imread(files[item["image_id"]], cv2.IMREAD_COLOR)
        assert np.array_equal(val.image_loader(item["image_id"]), image)
        back = to_image_space(item["keypoints"][None].double(), item["center"][None],
                              item["scale"][None], (W, H))[0].numpy()
        labelled = rec["visibility"] > 0
        np.testing.assert_allclose(back[labelled], rec["keypoints"][labelled], atol=1e-3)
        src = to_image_space(grid.reshape(1, -1, 2), item["center"][None], item["scale"][None],
                             (W, H))[0].reshape(H, W, 2).numpy().astype(np.float32)
        sampled = cv2.remap(image, src[..., 0], src[..., 1], cv2.INTER_LINEAR)
        assert np.abs(sampled.astype(int) - item["image"].numpy().astype(int)).mean() < 1.0
        rgb = normalize_images(item["image"][None])[0] * 58.395 + 123.675   # red channel
        np.testing.assert_allclose(rgb[0].numpy(), item["image"][..., 2].numpy(), atol=1e-3)
    stats = task.evaluate(_topdown_oracle(task), "cpu")
    assert stats["AP"] == 1.0 and stats["AR"] == 1.0, stats


def test_real_bottomup_ground_truth_maps_group_into_people():
    """Codec targets of the real images -> grouping -> image space -> COCO AP: the overlapping,
    occluded people of OCHuman are mostly recovered (measured AP 0.88, AP50 1.0); CrowdPose's
    group along the spanning tree of its skeleton: measured AP 0.65 at 512 x 512 (the two
    fully labelled, overlapping people whole; the one whose shoulder is unlabelled in pieces),
    0.26 at 256 x 256 where the overlapping pair is too small for stride-4 maps."""
    stats = _perfect_paf_stats(_real("ochuman"), keypoints="auto")
    assert stats["AP"] > 0.8 and stats["AP50"] > 0.9, stats
    stats = _perfect_paf_stats(_real("crowdpose"), size=512, keypoints="auto")
    assert stats["AP"] > 0.6 and stats["AR"] >= 0.5, stats


def test_paf_tree_spans_the_skeleton():
    """Default PAF limbs: pyhpe's COCO-17 tree; for other sets a tree over the skeleton's
    edges reaching every keypoint, each limb's parent reached before it."""
    from pyhpe.keypoints import get_keypoint_set
    from pyhpe.ops.paf import COCO17_LIMBS
    from pyhpe.tasks.bottomup_paf import paf_tree
    assert paf_tree(COCO17) == list(COCO17_LIMBS)
    for name in ("crowdpose14", "mpii16", "h36m17"):
        kset = get_keypoint_set(name)
        tree = paf_tree(kset)
        edges = {frozenset(l) for l in kset.limbs}
        assert len(tree) == kset.num_keypoints - 1 and all(frozenset(l) in edges for l in tree)
        reached = {tree[0][0]}
        for a, b in tree:
            assert a in reached and b not in reached, (name, tree)
            reached.add(b)
        assert reached == set(range(kset.num_keypoints))


def test_real_crowdpose_evaluation_modes_and_detector_boxes(tmp_path):
    """CrowdPose GT has no 'area': 'auto' evaluates in xtcocotools' crowdpose mode (OKS area
    0.53 x box), a mode that needs the area fails before training naming the field; top-down
    inference on the file's detector boxes is scored the same way."""
    from pyhpe.tasks.topdown import infer_detections
    data = _real("crowdpose")
    for mode in ("pycocotools", "xtcocotools"):
        task = build_task(_topdown(tmp_path, data=data, keypoints="auto"), [f"eval.mode={mode}"])
        with pytest.raises(ConfigError, match="'area'"):
            task.fit(log=QUIET)
    with pytest.raises(ConfigError, match="eval.mode: one of"):
        build_task(_topdown(tmp_path, data=data), ["eval.mode=coco"])
    task = build_task(_topdown(tmp_path, data=data, keypoints="auto"), ["eval.mode=xtcocotools_noarea"])
    assert list(task.evaluate(_topdown_oracle(task), "cpu")) == COCO_STATS
    task = build_task(_topdown(tmp_path, data=data, keypoints="auto"))
    from pyhpe.data import CocoImageLoader
    out = infer_detections(task, task.build_model(), task.val_gt,
                           CocoImageLoader(task.val_gt, data["val_images"]),
                           os.path.join(DATA, "crowdpose", "test_crowdpose_det_AP_40.json"),
                           log=QUIET)
    assert out["num_boxes"] > 0 and list(out["stats"]) == CROWDPOSE_STATS
    assert 0.0 <= out["stats"]["AP"] <= 1.0


# ---------------------------------------------------------------------------- bottom-up
def _bottomup(out_dir, steps=300, batch_size=8, **over):
    cfg = {"task": "bottomup_paf", "input_size": [64, 64],
           "model": {"name": "openpose", "config": "small"},
           "codec": {"name": "paf", "heatmap_size": [16, 16], "sigma": 1.5},
           "data": {"type": "synthetic", "num_images": 48, "val_images": 8, "image_size": 64,
                    "max_persons": 1, "occlusion": 0.0, "seed": 0},
           "train": {"epochs": 1000, "max_steps": steps, "batch_size": batch_size, "lr": 4e-3,
                     "warmup_steps": 10, "eval_every": 0, "progress": False, "seed": 0,
                     "ema": False, "device": "cpu", "out_dir": str(out_dir)}}
    cfg.update(over)
    return cfg


def _perfect_paf_stats(data, size=256, **over):
    """COCO stats of the validation set of ``data`` when the network outputs exactly the paf
    codec's targets (stride-4 maps of ``size`` x ``size`` inputs) of each image."""
    task = build_task(_bottomup("unused", data=data, input_size=[size, size], **over,
                                codec={"name": "paf", "heatmap_size": [size // 4, size // 4],
                                       "sigma": 1.5, "heatmap_encoding": "unbiased",
                                       "min_parts": 2}))
    val = task.val_dataset()

    class LastStage:
        @staticmethod
        def final_outputs(outputs):
            return outputs

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            batch = task.collate([val[i] for i in range(len(val))])
            t = task.codec.encode(batch["keypoints"], batch["visibility"])
            self.maps, self.pos = (t["heatmaps"], t["pafs"]), 0
            self.head = LastStage()

        def forward(self, x):
            b = x.shape[0]
            out = tuple(m[self.pos:self.pos + b] for m in self.maps)
            self.pos += b
            return out

    return task.evaluate(Oracle(), "cpu")


def test_bottomup_paf_grouping_of_perfect_maps_scores_high():
    """Codec targets -> the codec's grouping -> image space -> COCO AP validates the chain
    (not 1.0: the maps are quantised at stride 4 and the synthetic faces are tiny)."""
    stats = _perfect_paf_stats({"type": "synthetic", "num_images": 1, "val_images": 12,
                                "image_size": 192, "max_persons": 3, "occlusion": 0.0, "seed": 3})
    assert stats["AP"] > 0.75 and stats["AP50"] > 0.9, stats


def test_bottomup_paf_learns(tmp_path):
    """300 steps of a small OpenPose network on 64x64 single-figure images: measured AP
    0.04-0.17 after 250 steps (seeds 0-2), 0.11 after 400; the untrained network scores 0."""
    task = build_task(_bottomup(tmp_path))
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()
    result = trainer.fit()
    after = result["metrics"]
    assert {"loss_heatmap", "loss_paf"} <= set(result["history"][-1])
    assert before["AP"] == 0.0 and after["AP"] > 0.01, (before, after)
    curve = [p["loss"] for p in result["loss_log"]]
    assert np.mean(curve[-3:]) < 0.5 * np.mean(curve[:3]), curve


# ---------------------------------------------------------------------------- lifting
def _lift3d(out_dir, **over):
    cfg = {"task": "lift3d", "model": {"name": "simple_baseline_3d", "config": "tiny"},
           "codec": {"name": "lift3d"},
           "data": {"type": "synthetic", "train_samples": 1500, "test_samples": 300, "seed": 0},
           "train": {"epochs": 8, "batch_size": 64, "lr": 1e-3, "warmup_steps": 0, "ema": False,
                     "eval_every": 4, "progress": False, "seed": 0, "device": "cpu",
                     "out_dir": str(out_dir)}}
    cfg.update(over)
    return cfg


def test_lift3d_learns(tmp_path):
    from pyhpe.eval import mpjpe
    task = build_task(_lift3d(tmp_path, model={"name": "simple_baseline_3d", "config": "tiny",
                                               "bone_weight": 0.5}))
    trainer = Trainer(task, log=QUIET)
    before = trainer.evaluate()
    result = trainer.fit()
    m = result["metrics"]
    assert task.metric_mode == "min" and result["best"] == min(r["mpjpe"] for r in result["history"] if "mpjpe" in r)
    assert "loss_bone" in result["history"][0] and "loss_mse" in result["history"][0]
    assert 0 < m["p_mpjpe"] <= m["mpjpe"] < 0.8 * before["mpjpe"], (before, m)
    train, val = task.datasets()
    mean_pose = mpjpe(np.broadcast_to(train.pose_3d.numpy().mean(0), val.pose_3d.shape),
                      val.pose_3d.numpy())
    assert m["mpjpe"] < 0.8 * mean_pose, (m, mean_pose)


def test_lift3d_h36m_end_to_end(tmp_path):
    from test_lifting import _fake_h36m
    p3, p2, _ = _fake_h36m(tmp_path, frames=(60, 20))
    task = build_task(_lift3d(tmp_path / "run", data={
        "type": "h36m", "path_3d": p3, "path_2d": p2, "train_subjects": ["S1"],
        "test_subjects": ["S9"]}, train={"epochs": 1, "batch_size": 16, "progress": False,
                                         "out_dir": str(tmp_path / "run")}))
    assert task.kset.num_keypoints == 17 and task.root_index == 0
    result = task.fit(log=QUIET)
    assert len(task.val_dataset()) == 2 * 2 * 20
    assert {"mpjpe", "p_mpjpe", "n_mpjpe", "mpjpe_action_mean"} <= set(result["metrics"])
    with pytest.raises(ConfigError, match="path_3d"):
        build_task(_lift3d(tmp_path, data={"type": "h36m"}))
    with pytest.raises(ConfigError, match="training data"):
        build_task(_lift3d(tmp_path, codec={"name": "lift3d", "mean_2d": [0, 0]}))


# ---------------------------------------------------------------------------- detector boxes
def _gt_results(gt, dup_scale=0.7):
    res = []
    for a in gt["annotations"]:
        kp = np.array(a["keypoints"], np.float64).reshape(17, 3)
        kp[:, 2] = 1.0
        base = {"image_id": a["image_id"], "category_id": 1, "area": a["area"]}
        res.append(dict(base, keypoints=kp.reshape(-1).tolist(), score=0.5 + 0.4 * (a["id"] % 3) / 3))
        dup = kp.copy()
        dup[:, :2] += 0.5
        res.append(dict(base, keypoints=dup.reshape(-1).tolist(), score=0.95 * dup_scale))
    return res


def test_oks_nms_removes_duplicates_and_restores_ap():
    from pyhpe.data import SyntheticPoseDataset
    from pyhpe.eval import coco_keypoint_stats
    gt = SyntheticPoseDataset(6, seed=5, size=(128, 128), max_persons=3, occlusion=0.0).coco_dict()
    res = _gt_results(gt)
    kept = apply_oks_nms(res, 0.9)
    assert len(kept) == len(gt["annotations"])
    assert coco_keypoint_stats(gt, kept)["AP"] == 1.0 > coco_keypoint_stats(gt, res)["AP"]
    assert apply_oks_nms([], 0.9) == []


def test_load_and_simulate_detections(tmp_path):
    from pyhpe.data import SyntheticPoseDataset
    gt = SyntheticPoseDataset(5, seed=2, size=(96, 96), max_persons=2).coco_dict()
    dets = simulate_detections(gt, 0)
    assert len(dets) >= len(gt["annotations"])
    dets.append({"image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "score": 1.0})
    dets.append({"image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 5], "score": 1.0})
    dets.append({"image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1.0})
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    boxes = load_detections(str(path), 1, 0.3, image_ids=[1, 2, 3, 4, 5])
    assert all(b["score"] >= 0.3 and b["bbox"][2] > 0 and b["image_id"] != 99 for b in boxes)
    assert len(boxes) < len(dets)


TRAINED_TOPDOWN_INFER_MIN_AP = 0.08


def test_infer_on_detector_boxes_with_trained_model(tmp_path, trained_topdown):
    """Detections -> crops -> trained model -> OKS-NMS -> COCO AP on new multi-person images,
    through `pyhpe infer` with the run's config.json and best.pth; untrained weights score 0."""
    from pyhpe.cli import main
    _, _, result, _ = trained_topdown
    run = result["out_dir"]
    args = ["infer", "--config", os.path.join(run, "config.json"), "--synthetic", "8",
            "--max-persons", "2", "--image-size", "96"]
    assert main(args + ["--checkpoint", os.path.join(run, "best.pth"), "--out", str(tmp_path / "a")]) == 0
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["stats"]["AP"] >= TRAINED_TOPDOWN_INFER_MIN_AP, m
    assert m["stats"]["AP"] >= m["stats_without_nms"]["AP"] - 0.02
    assert 0 < m["num_poses"] <= m["num_boxes"]
    dets = json.loads((tmp_path / "a" / "detections.json").read_text())
    assert len(dets) == m["num_boxes"]
    assert main(args + ["--out", str(tmp_path / "b")]) == 0       # no checkpoint: untrained
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["stats"]["AP"] < 0.02


def test_cli_infer_images_and_refused_checkpoints(tmp_path, trained_topdown):
    import cv2
    from pyhpe.cli import main
    _, _, result, _ = trained_topdown
    cfg = os.path.join(result["out_dir"], "config.json")
    cv2.imwrite(str(tmp_path / "x.png"), np.full((96, 72, 3), 127, np.uint8))
    assert main(["infer", "--config", cfg, "--checkpoint", os.path.join(result["out_dir"], "last.pth"),
                 "--out", str(tmp_path / "inf"), str(tmp_path / "x.png")]) == 0
    res = json.load(open(tmp_path / "inf" / "results.json"))
    assert len(res) == 1 and len(res[0]["keypoints"]) == 51 and res[0]["image_id"] == 1
    assert (tmp_path / "inf" / "x_pose.jpg").exists()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert main(["infer", "--config", cfg, "--checkpoint", str(tmp_path / "junk.pth"),
                 str(tmp_path / "x.png")]) == 1
    assert main(["infer", "--config", cfg, "--checkpoint", str(tmp_path / "nope.pth"),
                 str(tmp_path / "x.png")]) == 1


def test_cli_eval_checkpoint_on_the_config(trained_topdown, capsys):
    from pyhpe.cli import main
    _, _, result, _ = trained_topdown
    assert main(["eval", "--config", os.path.join(result["out_dir"], "config.json"),
                 "--checkpoint", os.path.join(result["out_dir"], "best.pth")]) == 0
    assert f"AP {result['best']:.4f}" in capsys.readouterr().out


# ---------------------------------------------------------------------------- pyhpe train
def test_cli_train_resume_finished_and_load_from(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(_topdown(tmp_path / "unused", steps=4, images=8, val=2)))
    out = tmp_path / "run"
    base = [sys.executable, "-m", "pyhpe", "train", "--config", str(cfg), "--out", str(out),
            "--set", "train.batch_size=4", "--set", "train.eval_every=1"]
    r = subprocess.run(base, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "best AP" in r.stdout and (out / "last.pth").exists() and (out / "config.json").exists()
    assert json.loads((out / "config.json").read_text())["train"]["batch_size"] == 4
    r = subprocess.run(base + ["--resume"], capture_output=True, text=True, env=_env(), cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0 and "already finished" in r.stdout, r.stdout + r.stderr[-2000:]
    r = subprocess.run(base + ["--out", str(tmp_path / "ft"), "--load-from", str(out / "best.pth")],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
    assert r.returncode == 0 and f"loaded weights from {out / 'best.pth'}" in r.stdout, r.stderr[-2000:]
    bad = subprocess.run(base + ["--set", "train.epoch=3"], capture_output=True, text=True,
                         env=_env(), cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "unknown key 'epoch'" in bad.stderr
    assert "Traceback" not in bad.stderr
    evil = tmp_path / "evil.pth"
    evil.write_bytes(b"PK\x03\x04 not a checkpoint")
    r = subprocess.run(base + ["--out", str(tmp_path / "x"), "--load-from", str(evil)],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
    assert r.returncode == 1 and "pyhpe: cannot load checkpoint" in r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------------------- pyhpe eval
def _write_eval_set(tmp_path, **kw):
    from pyhpe.testing import synthetic_keypoint_eval_set
    gt, dt = synthetic_keypoint_eval_set(12, 3, **kw)
    gp, dp = tmp_path / "gt.json", tmp_path / "dt.json"
    gp.write_text(json.dumps(gt))
    dp.write_text(json.dumps(dt))
    return gt, dt, str(gp), str(dp)


@pytest.mark.parametrize("mode", ["pycocotools", "xtcocotools", "xtcocotools_noarea", "crowdpose"])
def test_cli_eval_every_offered_mode_runs(tmp_path, capsys, mode):
    from pyhpe.cli import build_parser, main
    from pyhpe.eval import EVAL_MODES, FILE_MODES, COCOKeypointEval
    from pyhpe.keypoints import get_keypoint_set
    offered = next(a for a in build_parser()._subparsers._group_actions[0].choices["eval"]._actions
                   if a.dest == "mode").choices
    assert sorted(offered) == sorted(FILE_MODES) and set(EVAL_MODES) < set(FILE_MODES)
    kw = dict(num_keypoints=14, crowd_index=True) if mode == "crowdpose" else {}
    gt, dt, gp, dp = _write_eval_set(tmp_path, **kw)
    assert main(["eval", gp, dp, "--mode", mode]) == 0
    out = capsys.readouterr().out
    ev_mode, use_area = EVAL_MODES[mode]
    kset = "crowdpose14" if mode == "crowdpose" else "coco17"   # recognised from the GT
    ref = COCOKeypointEval(gt, dt, sigmas=get_keypoint_set(kset).sigmas, mode=ev_mode,
                           use_area=use_area).run()
    assert f"{ref[0]:.3f}" in out and 0 < ref[0] < 1   # the printed AP is that mode's AP
    assert len(ref) == (9 if mode == "crowdpose" else 10)


def test_cli_eval_modes_differ_where_they_should(tmp_path, capsys):
    from pyhpe.cli import main
    _, _, gp, dp = _write_eval_set(tmp_path)
    outs = {}
    for mode in ("pycocotools", "xtcocotools_noarea"):
        assert main(["eval", gp, dp, "--mode", mode]) == 0
        outs[mode] = capsys.readouterr().out
    assert outs["pycocotools"] != outs["xtcocotools_noarea"]   # the 0.53 box area is used


def test_cli_eval_compare_with_empty_results(tmp_path):
    _, _, gp, _ = _write_eval_set(tmp_path)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    r = subprocess.run([sys.executable, "-m", "pyhpe", "eval", gp, str(empty), "--compare-pycocotools"],
                       capture_output=True, text=True, timeout=300, env=_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "0.000" in r.stdout
    assert "the results hold no detections" in r.stdout
    assert "pycocotools stats identical: True" in r.stdout   # pycocotools scores none alike


def test_cli_eval_compares_with_the_matching_reference(tmp_path, capsys):
    from pyhpe.cli import main
    _, _, gp, dp = _write_eval_set(tmp_path)
    assert main(["eval", gp, dp, "--sigmas", "coco17", "--compare-reference"]) == 0
    assert "pycocotools stats identical: True" in capsys.readouterr().out
    pytest.importorskip("xtcocotools")
    assert main(["eval", gp, dp, "--mode", "xtcocotools", "--compare-reference"]) == 0
    assert "xtcocotools stats identical: True" in capsys.readouterr().out


def test_cli_eval_keypoint_set_and_bad_input(tmp_path, capsys):
    """--keypoints picks the sigmas by name; an unknown set or an unreadable file is one line
    naming the problem, exit status 1 (SystemExit), no traceback."""
    from pyhpe.cli import main
    _, _, gp, dp = _write_eval_set(tmp_path)
    assert main(["eval", gp, dp, "--keypoints", "coco17"]) == 0
    assert "keypoints coco17" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown keypoint set 'nope'"):
        main(["eval", gp, dp, "--keypoints", "nope"])
    with pytest.raises(SystemExit, match="^pyhpe.eval: cannot read results"):
        main(["eval", gp, str(tmp_path / "missing.json")])


def test_cli_train_missing_data_file_is_one_line(tmp_path, capsys):
    """A data file a config names that does not exist: one line naming it and where relative
    paths are read from, exit status 1, no traceback."""
    from pyhpe.cli import main
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"task": "topdown", "data": {
        "type": "coco", "train_ann": "no/such/train.json", "train_images": "no/such/images"}}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no such file 'no/such/train.json'" in err and "relative paths are read from" in err
