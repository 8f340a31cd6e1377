"""Each 2-D dataset's shipped sample config trains and evaluates from the command line on the
real samples in tests/data, reporting the dataset's official metric; the metric of each format
scores ground-truth predictions perfectly; top-down validation on a detection file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pyhpe.cli import main
from pyhpe.engine import ConfigError
from pyhpe.tasks import build_task
from pyhpe.tasks.datasets import DATASET_METRICS, FORMATS, dataset_stats

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")

COCO = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
CROWD = ["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"]
PCKH = ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "PCKh", "PCKh@0.1"]
PCK = [f"{j} {s}" for s in ("PCK", "tPCK") for j in ("Head", "Sho", "Elb", "Wri", "Hip", "Knee", "Ank")]
PCK = PCK[:7] + ["PCK"] + PCK[7:] + ["tPCK"]
POSETRACK = ["Head AP", "Shou AP", "Elb AP", "Wri AP", "Hip AP", "Knee AP", "Ankl AP", "Total AP"]
WHOLEBODY = COCO + [f"{p}_{k}" for p in ("body", "foot", "face", "lefthand", "righthand")
                    for k in COCO]

#: sample config -> (metric the run is judged by, stats it reports)
SAMPLES = {"ochuman": ("AP", COCO), "crowdpose": ("AP", CROWD), "aic": ("AP", COCO),
           "mpii": ("PCKh", PCKH), "jhmdb": ("PCK", PCK), "posetrack18": ("Total AP", POSETRACK)}


def _config(name):
    return os.path.join(ROOT, "configs", f"{name}_sample.json")


def _train(tmp_path, name, *extra):
    out = tmp_path / name
    rc = main(["train", "--config", _config(name), "--set", "train.max_steps=2",
               "--set", "train.device=cpu", "--set", "train.eval_every=0",
               "--set", "train.batch_size=2", "--set", "input_size=[32,32]",
               "--set", "codec.heatmap_size=[8,8]", "--out", str(out), *extra])
    assert rc == 0
    return json.load(open(out / "log.json"))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_config_trains_and_evaluates_from_cli(tmp_path, monkeypatch, capsys, name):
    """`pyhpe train --config configs/<dataset>_sample.json` (paths relative to the repository
    root, as in a fresh clone): 2 steps, then the dataset's official metric in log.json; `pyhpe
    eval` of the run's config and best checkpoint reports the same numbers."""
    monkeypatch.chdir(ROOT)
    log = _train(tmp_path, name)
    metric, names = SAMPLES[name]
    assert log["metric"] == metric and log["metric_mode"] == "max"
    row = log["rows"][-1]
    assert row["step"] == 2
    assert [k for k in row if k in names] == names, row
    assert np.isfinite(row[metric])
    run = tmp_path / name
    capsys.readouterr()
    assert main(["eval", "--config", str(run / "config.json"), "--checkpoint",
                 str(run / "best.pth"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"{metric} {row[metric]:.4f}" in printed, (printed, row)


def test_sample_config_runs_as_a_fresh_process(tmp_path):
    """The console entry point (`python -m pyhpe train`) from the repository root."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "jhmdb"
    r = subprocess.run([sys.executable, "-m", "pyhpe", "train", "--config",
                        "configs/jhmdb_sample.json", "--set", "train.max_steps=1",
                        "--set", "train.device=cpu", "--set", "input_size=[32,32]",
                        "--set", "codec.heatmap_size=[8,8]", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "best PCK" in r.stdout
    assert json.load(open(out / "log.json"))["rows"][-1]["PCK"] >= 0


def _ground_truth_results(task):
    """COCO results placing every validation record's labelled keypoints exactly (score 1;
    the unlabelled ones at (0, 0) with score 0)."""
    val = task.val_dataset()
    out = []
    for rec in val.records:
        lab = (rec["visibility"] > 0)[:, None]
        kps = np.concatenate([rec["keypoints"] * lab, lab], 1)
        out.append({"image_id": rec["image_id"], "category_id": 1, "score": 1.0,
                    "keypoints": kps.reshape(-1).astype(float).tolist(),
                    "bbox": list(rec["bbox"]), "area": rec["area"]})
    return out


GT_CASES = {  # format: (annotation file, keypoint set, metric, perfect value)
    "mpii": ("mpii_sample.json", "mpii16", "PCKh", 100.0),
    "jhmdb": ("jhmdb/test_jhmdb_sub1.json", "jhmdb15", "PCK", 1.0),
    "posetrack18": ("posetrack18/test_posetrack18_val.json", "posetrack17", "Total AP", 100.0),
    "coco_wholebody": ("coco_wholebody/coco_wholebody_test.json", "coco_wholebody133", "AP", 1.0),
    "halpe26": ("halpe/test_halpe.json", "halpe26", "AP", 1.0),
    "halpe136": ("halpe/test_halpe.json", "halpe136", "AP", 1.0),
    "aic": ("aic_sample.json", "aic14", "AP", 1.0),
    "crowdpose": ("crowdpose_sample.json", "crowdpose14", "AP", 1.0),
}


def _task(fmt, ann, kset, **over):
    path = os.path.join(DATA, ann)
    cfg = json.load(open(_config("ochuman")))
    cfg["keypoints"] = kset
    cfg["data"] = {"type": "coco", "format": fmt, "train_ann": path, "train_images": DATA,
                   "val_ann": path, "val_images": DATA}
    cfg["eval"].update(over)
    return build_task(cfg)


@pytest.mark.parametrize("fmt", sorted(GT_CASES))
def test_official_metric_of_each_format_scores_ground_truth_perfectly(fmt):
    """Reader -> validation records -> the format's official metric: the annotations' own
    keypoints score 100% / AP 1 (COCO-WholeBody: the 133 points split back into its parts;
    Halpe's images are COCO's and not in the samples, so this needs none)."""
    ann, kset, metric, perfect = GT_CASES[fmt]
    task = _task(fmt, ann, kset)
    assert task.metric == metric and task.kset.name == kset
    assert task.val_dataset().records[0]["keypoints"].shape[0] == task.kset.num_keypoints
    stats = dataset_stats(task.metric_kind, _ground_truth_results(task), task.val_gt,
                          task.val_dataset().records, task.coco_stats)
    assert stats[metric] == pytest.approx(perfect), stats
    if fmt == "coco_wholebody":
        assert list(stats) == WHOLEBODY and stats["body_AP"] == pytest.approx(1.0)
    if fmt == "crowdpose":
        assert list(stats) == CROWD
    if fmt == "jhmdb":
        assert list(stats) == PCK and stats["tPCK"] == 1.0
    if fmt == "mpii":
        assert list(stats) == PCKH and stats["PCKh@0.1"] == pytest.approx(100.0)


def test_formats_and_metrics_are_one_table():
    assert set(DATASET_METRICS) == set(FORMATS)
    with pytest.raises(ConfigError, match="data.format: one of"):
        _task("lsp", "aic_sample.json", "aic14")


def test_bbox_file_validation_uses_detections(tmp_path):
    """eval.bbox_file: the validation crops are the detector's person boxes above
    det_score_thr (OKS-NMS on the results); PCK metrics refuse it."""
    dets = json.load(open(os.path.join(DATA, "crowdpose", "test_crowdpose_det_AP_40.json")))
    task = build_task(_config("crowdpose"))
    assert task.config.eval.bbox_file
    persons = [d for d in dets if d.get("category_id", 1) == 1]
    assert len(task.val_dataset()) == len(persons) and len(persons) != len(task.val_gt["annotations"])
    thr = float(np.median([d["score"] for d in persons]))
    task = build_task(_config("crowdpose"), [f"eval.det_score_thr={thr}"])
    assert len(task.val_dataset()) == sum(d["score"] >= thr for d in persons)
    assert all(r["score"] >= thr for r in task.val_dataset().records)
    with pytest.raises(ConfigError, match="bbox_file"):
        build_task(_config("mpii"), ['eval.bbox_file="x.json"'])
    log = _train(tmp_path, "posetrack18")           # PoseTrack18: detections, poseval AP
    assert log["rows"][-1]["Total AP"] >= 0


PAPER = {"crowdpose": "AP", "aic": "AP", "mpii": "PCKh", "posetrack18": "Total AP",
         "jhmdb": "PCK", "coco_wholebody": "AP", "halpe136": "AP", "coco": "AP"}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_full_dataset_configs_validate(name):
    """The full-dataset recipes (dataset paths under data/) validate and evaluate by the
    dataset's official metric; the datasets themselves are not here."""
    task = build_task(os.path.join(ROOT, "configs", f"topdown_{name}.json"))
    assert task.metric == PAPER[name]
    assert task.config.data.type == "coco" and task.config.data.train_ann.startswith("data/")


def test_mpii_mat_release_trains_with_its_head_boxes(tmp_path, monkeypatch):
    """data.format 'mpii' reads the official .mat release too; its head boxes give PCKh's
    normaliser (0.6 x the box diagonal)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_readers import _write_release
    entries = json.load(open(os.path.join(DATA, "mpii_sample.json")))
    for e in entries:
        j = np.asarray(e["joints"])
        e["headbox"] = [list(np.minimum(j[9], j[8]) - 10), list(np.maximum(j[9], j[8]) + 10)]
    mat = tmp_path / "mpii_human_pose_v1_u12_1.mat"
    _write_release(mat, entries)
    cfg = json.load(open(_config("mpii")))
    cfg["data"].update(train_ann=str(mat), val_ann=str(mat))
    path = tmp_path / "mpii_mat.json"
    path.write_text(json.dumps(cfg))
    task = build_task(str(path))
    heads = [a["head_size"] for a in task.val_gt["annotations"] if "head_size" in a]
    assert len(heads) == len(entries)
    box = np.asarray(entries[0]["headbox"])
    assert heads[0] == pytest.approx(0.6 * np.linalg.norm(box[1] - box[0]))
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--set", "train.max_steps=1", "--set",
                 "train.device=cpu", "--set", "input_size=[32,32]", "--set",
                 "codec.heatmap_size=[8,8]", "--out", str(out)]) == 0
    assert "PCKh" in json.load(open(out / "log.json"))["rows"][-1]


@pytest.mark.parametrize("fmt", ["coco_wholebody", "halpe26"])
def test_evaluation_without_sample_images_runs_the_model(fmt):
    """COCO-WholeBody and Halpe annotate COCO images, which the samples do not hold: the
    task's evaluation (crops -> tiny model -> flip test -> the set's metric) runs on blank
    images of the annotated sizes."""
    ann, kset, metric, _ = GT_CASES[fmt]
    task = _task(fmt, ann, kset)
    sizes = {im["id"]: (im["height"], im["width"]) for im in task.val_gt["images"]}
    task.val_dataset().image_loader = lambda i: np.zeros(sizes[i] + (3,), np.uint8)
    stats = task.evaluate(task.build_model(), "cpu")
    assert list(stats) == (WHOLEBODY if fmt == "coco_wholebody" else COCO)
    assert 0.0 <= stats[metric] <= 1.0
