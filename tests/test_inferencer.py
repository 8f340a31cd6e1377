"""pyhpe.apis.inferencer.Inferencer and `pyhpe infer` on real inputs: the PoseTrack18 sample
video (annotated video with every frame, one result per frame and person), CrowdPose images
with the dataset's person-detection file (real image ids, accepted by `pyhpe eval`), folders,
bottom-up models without boxes, and the `pyhpe` console command."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pyhpe.apis.inferencer import Inferencer, collect_inputs
from pyhpe.vis import line_width

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
VIDEO = os.path.join(DATA, "posetrack18", "000001_mpiinew_test.mp4")   # 5 frames, 1280x720
CROWDPOSE = os.path.join(DATA, "crowdpose")
CROWDPOSE_GT = os.path.join(DATA, "crowdpose_sample.json")
CROWDPOSE_DETS = os.path.join(CROWDPOSE, "test_crowdpose_det_AP_40.json")
QUIET = lambda *a: None  # noqa: E731


def topdown_config(keypoints="coco17"):
    return {"task": "topdown", "keypoints": keypoints, "input_size": [48, 64],
            "model": {"name": "simple_baseline", "config": "tiny"},
            "codec": {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0},
            "train": {"device": "cpu"}}


def bottomup_config():
    return {"task": "bottomup_paf", "keypoints": "coco17", "input_size": [64, 64],
            "model": {"name": "openpose", "config": "tiny"},
            "codec": {"name": "paf", "heatmap_size": [8, 8], "sigma": 1.0},
            "train": {"device": "cpu"}}


def inferencer(cfg, **kw):
    import torch
    torch.manual_seed(0)
    return Inferencer(cfg, device="cpu", log=QUIET, **kw)


def video_frames(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def test_posetrack_video_annotated_with_one_result_per_frame_and_person(tmp_path):
    frames = video_frames(VIDEO)
    assert len(frames) == 5 and frames[0].shape == (720, 1280, 3)
    # two persons per frame, far apart (OKS-NMS keeps both); ids are the frame indices
    dets = [{"image_id": f, "category_id": 1, "bbox": b, "score": 0.9}
            for f in range(5) for b in ([100, 100, 200, 500], [900, 150, 220, 520])]
    dets.append({"image_id": 2, "category_id": 1, "bbox": [500, 100, 100, 200], "score": 0.1})
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    inf = inferencer(topdown_config(), det_score_thr=0.3, draw_thr=0.0)
    out = inf(VIDEO, boxes=str(tmp_path / "dets.json"), out_dir=str(tmp_path / "out"))
    assert out.videos == [str(tmp_path / "out" / "000001_mpiinew_test_pose.mp4")]
    drawn = video_frames(out.videos[0])
    assert len(drawn) == 5 and drawn[0].shape == (720, 1280, 3)
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert sorted((r["image_id"], r["bbox"][0]) for r in res) == \
        [(f, x) for f in range(5) for x in (100.0, 900.0)]
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in res)
    images = json.loads((tmp_path / "out" / "images.json").read_text())
    assert [im["frame"] for im in images] == list(range(5))
    assert out.num_boxes == 11 and out.unmatched_boxes == 0
    # the skeletons are drawn (every keypoint: draw_thr 0)
    assert (np.abs(drawn[0].astype(int) - frames[0].astype(int)).sum(-1) > 60).any()
    # without boxes: one whole-frame person per frame; ids start where asked
    out = inf(VIDEO, frame_id_start=1000, draw=False)
    assert [r["image_id"] for r in out.results] == [1000, 1001, 1002, 1003, 1004]


def test_cli_infer_video_and_console_command(tmp_path):
    from pyhpe.cli import main
    (tmp_path / "cfg.json").write_text(json.dumps(topdown_config()))
    assert main(["infer", "--config", str(tmp_path / "cfg.json"), "--device", "cpu",
                 "--out", str(tmp_path / "o"), VIDEO]) == 0
    assert len(video_frames(str(tmp_path / "o" / "000001_mpiinew_test_pose.mp4"))) == 5
    assert len(json.loads((tmp_path / "o" / "results.json").read_text())) == 5
    exe = shutil.which("pyhpe", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("no `pyhpe` console script next to this python (make build writes it)")
    r = subprocess.run([exe, "infer", "--help"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0 and "videos" in r.stdout


def test_crowdpose_images_with_detection_file_give_ids_pyhpe_eval_accepts(tmp_path, capsys):
    from pyhpe.cli import main
    dets = json.load(open(CROWDPOSE_DETS))
    inf = inferencer(topdown_config("crowdpose14"))
    # a folder in (the json in it is not an input); ids from the numeric file names
    out = inf(CROWDPOSE, boxes=CROWDPOSE_DETS, out_dir=str(tmp_path / "a"))
    assert sorted(im["id"] for im in out.images) == [103319, 106848]
    assert {r["image_id"] for r in out.results} <= {103319, 106848} and out.results
    assert out.num_boxes == len(dets) and out.unmatched_boxes == 0
    assert len(out.drawn) == 2 and all(os.path.exists(p) for p in out.drawn)
    # pyhpe eval takes the results as they are
    capsys.readouterr()
    assert main(["eval", CROWDPOSE_GT, str(tmp_path / "a" / "results.json"), "--mode", "crowdpose"]) == 0
    assert "AP" in capsys.readouterr().out
    # the same through `pyhpe infer` (this failed with KeyError: 785-style ids before)
    (tmp_path / "cp.json").write_text(json.dumps(topdown_config("crowdpose14")))
    assert main(["infer", "--config", str(tmp_path / "cp.json"), "--device", "cpu", "--boxes",
                 CROWDPOSE_DETS, "--out", str(tmp_path / "c"), "--no-draw",
                 os.path.join(CROWDPOSE, "103319.jpg"), os.path.join(CROWDPOSE, "106848.jpg")]) == 0
    cli = json.loads((tmp_path / "c" / "results.json").read_text())
    assert sorted({r["image_id"] for r in cli}) == [103319, 106848]
    assert main(["eval", CROWDPOSE_GT, str(tmp_path / "c" / "results.json"), "--mode", "crowdpose"]) == 0
    # score threshold: fewer poses; ids through a GT file for renamed images
    (tmp_path / "imgs").mkdir()
    for n in ("103319", "106848"):
        shutil.copy(os.path.join(CROWDPOSE, n + ".jpg"), tmp_path / "imgs" / f"img_{n}.jpg")
    gt = json.load(open(CROWDPOSE_GT))
    for im in gt["images"]:
        im["file_name"] = "imgs/img_" + im["file_name"]
    out2 = inf(str(tmp_path / "imgs"), boxes=CROWDPOSE_DETS, gt=gt)
    assert sorted(im["id"] for im in out2.images) == [103319, 106848]
    thr = inferencer(topdown_config("crowdpose14"), det_score_thr=0.9998, nms_thr=None)
    assert len(thr(CROWDPOSE, boxes=CROWDPOSE_DETS).results) == 3 < len(dets)


def test_posetrack_frames_ids_from_the_gt_file_and_its_detections(tmp_path):
    """PoseTrack18 frames all named 000000.jpg: the GT's file_name paths give their ids, the
    dataset's detection file its boxes (those of frames not given are left over)."""
    from pyhpe.cli import main
    pt = os.path.join(DATA, "posetrack18")
    gt, dets = os.path.join(pt, "test_posetrack18_val.json"), os.path.join(pt, "test_posetrack18_human_detections.json")
    frames = [os.path.join(pt, "images", "val", v, "000000.jpg")
              for v in ("009473_mpii_test", "012834_mpii_test")]
    ids = [10094730000, 10128340000]
    det_list = json.load(open(dets))
    inf = inferencer(topdown_config(), det_score_thr=0.5, nms_thr=None)
    out = inf(frames, boxes=dets, gt=gt, out_dir=str(tmp_path))
    assert [im["id"] for im in out.images] == ids
    per_image = [sum(d["image_id"] == i and d["score"] >= 0.5 for d in det_list) for i in ids]
    assert [sum(r["image_id"] == i for r in out.results) for i in ids] == per_image
    assert out.unmatched_boxes == sum(d["image_id"] not in ids for d in det_list) > 0
    assert len(set(out.drawn)) == 2                 # 009473_mpii_test_000000_pose.jpg, ...
    assert main(["eval", gt, str(tmp_path / "results.json"), "--mode", "xtcocotools_noarea"]) == 0


def test_boxes_by_file_name_unmatched_boxes_and_positional_ids(tmp_path):
    img = cv2.imread(os.path.join(CROWDPOSE, "103319.jpg"))
    cv2.imwrite(str(tmp_path / "b.png"), img)
    cv2.imwrite(str(tmp_path / "a.png"), img[:200, :300])
    boxes = [{"file_name": "b.png", "bbox": [10, 10, 100, 200], "score": 0.8},
             {"file_name": "elsewhere/c.png", "bbox": [10, 10, 100, 200], "score": 0.8},
             {"image_id": 785, "category_id": 1, "bbox": [10, 10, 100, 200], "score": 0.8}]
    inf = inferencer(topdown_config())
    out = inf(str(tmp_path), boxes=boxes)                       # folder: a.png (1), b.png (2)
    assert [(im["file_name"][-5:], im["id"]) for im in out.images] == [("a.png", 1), ("b.png", 2)]
    assert [r["image_id"] for r in out.results] == [2]          # a.png has no box: no person
    assert out.unmatched_boxes == 2
    assert [k for k, _ in collect_inputs([str(tmp_path / "a.png"), VIDEO])] == ["image", "video"]
    with pytest.raises(FileNotFoundError):
        collect_inputs(str(tmp_path / "missing.jpg"))


def test_bottomup_needs_no_boxes(tmp_path):
    import torch
    from pyhpe.cli import main
    inf = inferencer(bottomup_config())
    out = inf([os.path.join(CROWDPOSE, "103319.jpg"), VIDEO], out_dir=str(tmp_path / "a"))
    assert len(out.images) == 6 and len(out.drawn) == 1 and len(out.videos) == 1
    assert [im["id"] for im in out.images] == list(range(103319, 103325))   # frames follow
    assert {r["image_id"] for r in out.results} <= set(range(103319, 103325))
    assert len(video_frames(out.videos[0])) == 5
    # a bottom-up config + checkpoint through `pyhpe infer`; --boxes are not needed
    (tmp_path / "bu.json").write_text(json.dumps(bottomup_config()))
    torch.save(inf.model.state_dict(), tmp_path / "bu.pth")
    assert main(["infer", "--config", str(tmp_path / "bu.json"), "--checkpoint",
                 str(tmp_path / "bu.pth"), "--device", "cpu", "--out", str(tmp_path / "b"),
                 VIDEO]) == 0
    assert len(video_frames(str(tmp_path / "b" / "000001_mpiinew_test_pose.mp4"))) == 5
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert res == [dict(r, image_id=r["image_id"] - 103320) for r in out.results
                   if r["image_id"] > 103319]


def test_line_width_scales_with_the_image():
    assert line_width((96, 72)) == 1 and line_width((480, 640)) == 2
    assert line_width((720, 1280)) == 4 and line_width((1080, 1920)) == 5


@pytest.mark.parametrize("shape", [(96, 72), (720, 1280)])
def test_drawing_uses_the_palette_and_scales(shape):
    """A horizontal limb in the set's colour, as thick as line_width says."""
    inf = inferencer(topdown_config("crowdpose14"))
    kset = inf.kset
    (a, b), colour = kset.skeleton[0], kset.colors[0]
    H, W = shape
    kps = np.zeros((kset.num_keypoints, 3))
    kps[a] = [W * 0.2, H / 2, 1.0]
    kps[b] = [W * 0.8, H / 2, 1.0]
    img = inf.draw(np.zeros((H, W, 3), np.uint8), [{"keypoints": kps.reshape(-1).tolist()}])
    column = img[:, W // 2].astype(float)
    c = np.array(colour, float)
    # the colour's hue (anti-aliased: scaled copies of it) and a coverage of line_width pixels
    coverage = column.sum(0)[c > 0] / c[c > 0]
    assert np.allclose(coverage, coverage.mean(), atol=0.1), coverage
    lw = line_width(shape)           # cv2 draws thick anti-aliased lines about one pixel wider
    assert lw - 0.5 <= coverage.mean() <= lw + 2, (coverage, lw)
