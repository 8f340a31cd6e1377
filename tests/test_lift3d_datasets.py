"""The lift3d task on the real samples of Human3.6M and MPI-INF-3DHP (mmpose's npz layouts) and
CMU Panoptic (3-D bodies seen by one HD camera): the shipped sample configs train from the
command line, and their evaluation is each dataset's official metric of the model's
predictions."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pyhpe.cli import main
from pyhpe.engine import load_weights
from pyhpe.engine.config import ConfigError
from pyhpe.eval.metrics import mpi_inf_3dhp_metrics, mpjpe, mpjpe_by_action
from pyhpe.tasks import build_task

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H36M = os.path.join(REPO, "tests", "data", "h36m", "test_h36m_body3d.npz")
CFG = {name: os.path.join(REPO, "configs", f"lift3d_{name}_sample.json")
       for name in ("h36m", "mpi_inf_3dhp", "panoptic")}
QUICK = ["--set", "train.max_steps=2", "--set", "train.progress=false",
         "--set", "train.device=cpu"]


def _reference(name, pred, val):
    """Each dataset's metric straight from pyhpe.eval.metrics."""
    gt, vis = val.pose_3d.numpy(), val.visibility.numpy() > 0
    if name == "h36m":
        return mpjpe_by_action(pred, gt, val.actions, vis, protocols=(1, 2))
    if name == "mpi_inf_3dhp":
        return mpi_inf_3dhp_metrics(pred, gt, vis, threshold=150.0)
    return {"MPJPE": mpjpe(pred, gt, vis)}


EXPECTED = {
    "h36m": ("MPJPE", "min", {"MPJPE", "P-MPJPE", "MPJPE_Greeting", "MPJPE_WalkDog",
                              "P-MPJPE_Greeting", "P-MPJPE_WalkDog"}),
    "mpi_inf_3dhp": ("PCK3D", "max", {"PCK3D", "AUC", "MPJPE", "P-PCK3D", "P-AUC", "P-MPJPE"}),
    "panoptic": ("MPJPE", "min", {"MPJPE"}),
}


@pytest.mark.parametrize("name", sorted(CFG))
def test_sample_config_trains_and_evaluates_from_the_cli(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)          # the configs name the samples relative to the repository
    out = tmp_path / "run"
    assert main(["train", "--config", CFG[name], *QUICK, "--out", str(out)]) == 0
    metric, mode, names = EXPECTED[name]
    assert f"best {metric} " in capsys.readouterr().out
    log = json.load(open(out / "log.json"))
    assert (log["metric"], log["metric_mode"]) == (metric, mode)
    ckpt = torch.load(out / "best.pth", weights_only=True)
    assert ckpt["metric"] == metric and set(ckpt["metrics"]) == names
    assert log["rows"][-1]["step"] == 2 and names <= set(log["rows"][-1])

    # the recorded numbers are the metric functions applied to the model's predictions
    task = build_task(CFG[name], ["train.device=cpu"])
    assert (task.metric, task.metric_mode) == (metric, mode)
    model = task.build_model()
    load_weights(model, str(out / "best.pth"))
    val = task.val_dataset()
    pred = task.predict(model, val)
    assert pred.shape == tuple(val.pose_3d.shape) and np.isfinite(pred).all()
    ref = _reference(name, pred, val)
    assert set(ref) == names
    for k in names:
        assert ckpt["metrics"][k] == pytest.approx(ref[k], rel=1e-6, abs=1e-6), k
    assert task.evaluate(model, "cpu") == pytest.approx(ref, rel=1e-6, abs=1e-6)

    # `pyhpe eval --config` prints the same metrics for the checkpoint
    assert main(["eval", "--config", CFG[name], "--checkpoint", str(out / "best.pth"),
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out.split()
    shown = dict(zip(printed[::2], map(float, printed[1::2])))
    assert set(shown) == names
    for k in names:
        assert shown[k] == pytest.approx(ref[k], abs=1e-4), k


def test_h36m_sample_poses_and_subject_split(monkeypatch):
    monkeypatch.chdir(REPO)
    task = build_task(CFG["h36m"])
    train, val = task.datasets()
    d = np.load(H36M)
    subjects = np.array([str(n).split("/")[0] for n in d["imgname"]])
    S = d["S"][..., :3].astype(np.float64)
    rel = (S - S[:, :1]) * 1000.0                  # metres, hip joint 0 -> root-relative mm
    for ds, keep in ((train, ("S1", "S5")), (val, ("S7", "S8"))):
        sel = np.isin(subjects, keep)
        np.testing.assert_allclose(ds.pose_3d.numpy(), rel[sel], atol=1e-3)
        np.testing.assert_allclose(ds.pose_2d.numpy(), d["part"][sel, :, :2], atol=1e-3)
    assert val.actions.tolist() == ["Greeting", "WalkDog"]
    assert task.kset.name == "h36m17" and task.root_index == 0
    # the test split defaults to protocol #1's subjects, absent from the sample
    with pytest.raises(ValueError, match=r"no test poses of subjects \['S9', 'S11'\]"):
        build_task(CFG["h36m"], ["data.test_subjects=[\"S9\", \"S11\"]"]).datasets()


def test_panoptic_sample_pairs(monkeypatch):
    from pyhpe.data import project_panoptic, read_panoptic_body3d, read_panoptic_calibration
    monkeypatch.chdir(REPO)
    task = build_task(CFG["panoptic"])
    train, val = task.datasets()
    seq = os.path.join("tests", "data", "panoptic_body3d", "160906_band1")
    cams = read_panoptic_calibration(os.path.join(seq, "calibration_160906_band1_hd.json"))
    frames = read_panoptic_body3d(os.path.join(seq, "hdPose3d_stage1_coco19"))
    bodies = [(X, s) for fr in frames for X, s in zip(fr["joints"], fr["scores"])]
    assert len(train) == len(val) == len(bodies) == 6     # every body is in front of both cameras
    for ds, cam in ((train, cams["00_03"]), (val, cams["00_16"])):
        for i, (X, s) in enumerate(bodies):
            vis = s > 0.1
            np.testing.assert_array_equal(ds.visibility[i].numpy() > 0, vis)
            np.testing.assert_allclose(ds.pose_2d[i].numpy()[vis], project_panoptic(X, cam)[vis],
                                       rtol=1e-5)
            Xc = X @ cam["R"].T + cam["t"]
            np.testing.assert_allclose(ds.pose_3d[i].numpy()[vis], 10 * (Xc - Xc[2])[vis],
                                       atol=1e-2)
    # two cameras see the same bodies: the 3-D targets differ by a rotation only
    a, b = train.pose_3d.numpy(), val.pose_3d.numpy()
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1), atol=1e-2)
    assert task.kset.name == "panoptic19" and val.actions.tolist() == ["160906_band1"] * 6


def test_lift3d_data_config_errors(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = json.load(open(CFG["h36m"]))
    with pytest.raises(ConfigError, match="train_path"):
        build_task(dict(cfg, data={"type": "h36m_npz"}))
    with pytest.raises(ConfigError, match=r"subjects \['S5'\] are in both"):
        build_task(CFG["h36m"], ['data.test_subjects=["S5", "S7"]'])
    with pytest.raises(ConfigError, match="test_path"):
        build_task(dict(cfg, data={"type": "mpi_inf_3dhp", "train_path": "x.npz"}))
    with pytest.raises(ConfigError, match="test_camera"):
        build_task(CFG["panoptic"], ['data.test_camera="00_03"'])
    with pytest.raises(ValueError, match="camera '99_99'"):
        build_task(CFG["panoptic"], ['data.camera="99_99"']).datasets()
    with pytest.raises(ConfigError, match="data"):
        build_task(dict(cfg, data={"type": "nope"}))


def test_python_m_pyhpe_train_runs_a_sample_config(tmp_path):
    """As a new user would, in the repository: ``python -m pyhpe train --config ...``."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "pyhpe", "train", "--config",
                        "configs/lift3d_mpi_inf_3dhp_sample.json", *QUICK, "--out",
                        str(tmp_path / "run")], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "best PCK3D" in r.stdout and (tmp_path / "run" / "best.pth").exists()
