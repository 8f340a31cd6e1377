"""2-D pose + matching (Chen & Ramanan 2017): exact recovery when the pose is in the library
(orthographic and perspective), chunked nearest-neighbour search equal to brute force, and the
lift3d task's matching3d model on the real Human3.6M sample (MPJPE / P-MPJPE)."""
import math
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import cpu_and_cuda

from pyhpe.data import synthetic_lifting_data
from pyhpe.eval.metrics import mpjpe_by_action
from pyhpe.models.matching3d import Matching3D, normalize_2d, project_library
from pyhpe.tasks import build_task

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H36M = os.path.join(REPO, "tests", "data", "h36m", "test_h36m_body3d.npz")
CFG = os.path.join(REPO, "configs", "lift3d_h36m_matching_sample.json")


def _library(n=300, seed=0):
    _, p3 = synthetic_lifting_data(n, seed)
    return torch.tensor(p3)


def _yaw(a):
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@cpu_and_cuda()
@pytest.mark.parametrize("projection", ["orthographic", "perspective"])
def test_exact_pose_in_library_is_recovered(device, projection):
    lib = _library()
    m = Matching3D(17, projection=projection, depth=5000.0, num_views=4, root_index=[11, 12],
                   chunk=37).to(device).set_library(lib)
    assert len(m) == 4 * 300
    idx = torch.tensor([3, 77, 150, 299])
    X = lib[idx] @ _yaw(math.pi / 2).T                       # seen from the second view
    if projection == "orthographic":
        x2 = 0.37 * X[..., :2] + torch.tensor([400.0, 300.0])   # weak perspective: scale + shift
    else:
        x2 = 1100.0 * X[..., :2] / (X[..., 2:] + 5000.0) + torch.tensor([512.0, 500.0])
    _, nn_idx = m.nearest(normalize_2d(x2.to(device))[0])
    assert nn_idx[:, 0].cpu().tolist() == (idx + 300).tolist()
    pred = m.match(x2.to(device)).cpu()
    gt = X - X[:, [11, 12]].mean(1, keepdim=True)
    assert (pred - gt).norm(dim=-1).mean() < 0.05           # mm: the depth recovery is exact


def test_depth_recovery_copies_the_exemplar_depth():
    """A 2-D input near (not at) a library pose: x, y follow the input at the exemplar's
    scale, z is the exemplar's; 'exemplar' returns the library pose itself."""
    lib = _library(50)
    X = lib[7].clone()
    x2 = X[:, :2].clone()
    x2[9] += torch.tensor([30.0, -20.0])                      # a moved wrist
    m = Matching3D(17, root_index=[11, 12]).set_library(lib)
    pred = m.match(x2[None])[0]
    torch.testing.assert_close(pred[:, 2], X[:, 2], rtol=0, atol=1e-3)
    assert (pred[9, :2] - X[9, :2] - torch.tensor([30.0, -20.0])).norm() < 5.0
    ex = Matching3D(17, root_index=[11, 12], depth_recovery="exemplar").set_library(lib)
    torch.testing.assert_close(ex.match(x2[None])[0], X, rtol=0, atol=1e-3)


def test_chunked_search_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    lib = torch.randn(500, 17, 3, generator=g) * 300
    m = Matching3D(17, top_k=3, chunk=64, root_index=0).set_library(lib)
    q = normalize_2d(torch.randn(40, 17, 2, generator=g))[0]
    d, i = m.nearest(q)
    full = torch.cdist(q.reshape(40, -1), m.library_2d.reshape(500, -1))
    ref_d, ref_i = full.topk(3, dim=1, largest=False)
    assert torch.equal(i, ref_i)
    torch.testing.assert_close(d, ref_d, rtol=1e-5, atol=1e-5)
    # with hidden joints: the distance over each query's visible joints
    w = (torch.rand(40, 17, generator=g) > 0.2).float()
    d, i = m.nearest(q, w)
    diff = (q[:, None] - m.library_2d[None]) * w[:, None, :, None]
    ref = diff.pow(2).sum((-1, -2)).sqrt().topk(3, dim=1, largest=False)
    assert torch.equal(i, ref.indices)
    torch.testing.assert_close(d, ref.values, rtol=1e-4, atol=1e-4)
    # the projections of the library are normalised (centred, unit RMS radius)
    p = project_library(m.library_3d, "orthographic", 1.0)
    torch.testing.assert_close(m.library_2d, normalize_2d(p)[0])


def test_matching3d_errors():
    with pytest.raises(ValueError, match="projection"):
        Matching3D(17, projection="fisheye")
    with pytest.raises(ValueError, match="chunk"):
        Matching3D(17, chunk=0)
    with pytest.raises(ValueError, match="empty"):
        Matching3D(17).match(torch.zeros(2, 17, 2))
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        Matching3D(17).set_library(np.zeros((4, 16, 3)))
    with pytest.raises(ValueError, match="NaN"):
        Matching3D(17).set_library(np.full((4, 17, 3), np.nan))
    with pytest.raises(RuntimeError, match="no weights"):
        Matching3D(17)(torch.zeros(2, 17, 2), {"x": 1})
    with pytest.raises(Exception, match="fisheye"):
        build_task(CFG, ['model.projection="fisheye"']).build_model()
    with pytest.raises(Exception, match="no config 'huge'"):
        build_task(CFG, ['model.config="huge"']).build_model()


def test_matching3d_on_the_real_h36m_sample(tmp_path, monkeypatch, capsys):
    """Library: the S1/S5 training poses; test: S7/S8 through the task (protocols 1 and 2).
    With the test poses in the library, the exemplar recovery is exact on real data."""
    from pyhpe.cli import main
    from pyhpe.engine import load_weights
    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    assert main(["train", "--config", CFG, "--set", "train.device=cpu", "--out", str(out)]) == 0
    assert "best MPJPE" in capsys.readouterr().out
    task = build_task(CFG)
    model = task.build_model()
    assert len(model) == 2 and not list(model.parameters())
    load_weights(model, str(out / "best.pth"))
    val = task.val_dataset()
    pred = task.predict(model, val)
    ref = mpjpe_by_action(pred, val.pose_3d.numpy(), val.actions, val.visibility.numpy() > 0,
                          protocols=(1, 2))
    ckpt = torch.load(out / "best.pth", weights_only=True)
    assert ckpt["metrics"] == pytest.approx(ref)
    assert 50 < ref["MPJPE"] < 400 and ref["P-MPJPE"] <= ref["MPJPE"]
    assert main(["eval", "--config", CFG, "--checkpoint", str(out / "best.pth"),
                 "--device", "cpu"]) == 0
    shown = capsys.readouterr().out.split()
    assert float(shown[shown.index("MPJPE") + 1]) == pytest.approx(ref["MPJPE"], abs=1e-3)

    # the test poses in the library (a copy of the file for the test split)
    shutil.copy(H36M, tmp_path / "test.npz")
    over = ['data.train_subjects=["S1", "S5", "S7", "S8"]',
            f'data.test_path="{tmp_path / "test.npz"}"', f'train.out_dir="{tmp_path / "r2"}"']
    exact = build_task(CFG, over + ['model.depth_recovery="exemplar"']).fit(log=None)
    assert exact["metrics"]["MPJPE"] < 1e-3 and exact["metrics"]["P-MPJPE"] < 1e-3
    # copying depths onto the real (perspective) 2-D input: close, not exact
    for projection, bound in (("orthographic", 40.0), ("perspective", 30.0)):
        r = build_task(CFG, over + [f'model.projection="{projection}"']).fit(log=None)
        assert 1.0 < r["metrics"]["MPJPE"] < bound, (projection, r["metrics"])
    with pytest.raises(Exception, match="poseaug"):
        build_task(CFG, ['model.poseaug={"config": "tiny"}'])
