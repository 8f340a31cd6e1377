"""Checkpoints and data files are read without running code they carry.

Every entry point that reads a checkpoint (training resume and ``--load-from``, ``pyhpe infer``
and ``pyhpe eval --checkpoint``) and the Human3.6M npz reader gets a crafted pickle whose
unpickling would create a marker file: each must refuse it with an error naming the file, and
the marker must never appear.
"""
import ast
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from pyhpe.engine import CheckpointError, load_checkpoint_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Payload:
    """Unpickling this calls ``exec``, which creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def _evil_checkpoints(tmp_path):
    """The same payload in the three containers torch.load accepts (zip, legacy, raw pickle)."""
    marker = tmp_path / "PWNED"
    obj = {"model": _Payload(marker), "epoch": 0}
    paths = {}
    paths["zip"] = tmp_path / "zip.pth"
    torch.save(obj, paths["zip"])
    paths["legacy"] = tmp_path / "legacy.pth"
    torch.save(obj, paths["legacy"], _use_new_zipfile_serialization=False)
    paths["pickle"] = tmp_path / "raw.pth"
    with open(paths["pickle"], "wb") as f:
        pickle.dump(obj, f)
    return marker, paths


def _check_payload_works(tmp_path):
    # the payload is real: a plain pickle.load would run it
    marker = tmp_path / "PROBE"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()
    marker.unlink()


@pytest.fixture
def evil(tmp_path):
    _check_payload_works(tmp_path)
    marker, paths = _evil_checkpoints(tmp_path)
    yield marker, paths
    assert not marker.exists(), "a crafted checkpoint ran code"


@pytest.mark.parametrize("kind", ["zip", "legacy", "pickle"])
def test_load_checkpoint_file_refuses_code(evil, kind):
    marker, paths = evil
    with pytest.raises(CheckpointError, match=r"pyhpe: cannot load checkpoint '.*%s'" % paths[kind].name):
        load_checkpoint_file(str(paths[kind]))
    assert not marker.exists()


def _config(tmp_path, **train):
    """A tiny synthetic top-down config (a few steps on the CPU)."""
    return {
        "task": "topdown", "keypoints": "coco17", "input_size": [48, 64],
        "model": {"name": "simple_baseline", "config": "tiny"},
        "codec": {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0},
        "data": {"type": "synthetic", "num_images": 2, "val_images": 0, "image_size": 64},
        "train": {"epochs": 1, "batch_size": 2, "eval_every": -1, "progress": False,
                  "out_dir": str(tmp_path / "run"), **train},
    }


def _write_config(tmp_path, **train):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(_config(tmp_path, **train)))
    return str(path)


def test_load_checkpoint_file_missing_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint_file(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_checkpoint_file(str(tmp_path / "junk.pth"))
    from pyhpe.cli import main
    assert main(["infer", "--config", _write_config(tmp_path), "--checkpoint",
                 str(tmp_path / "nope.pth"), str(tmp_path / "x.png")]) == 1


def test_training_refuses_crafted_resume_and_load_from(evil, tmp_path):
    from pyhpe.tasks import build_task
    marker, paths = evil
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for p in paths.values():
        (run_dir / "last.pth").write_bytes(p.read_bytes())
        with pytest.raises(CheckpointError, match="last.pth"):
            build_task(_config(tmp_path, resume=True)).fit(log=lambda *a: None)
        with pytest.raises(CheckpointError, match=p.name):
            build_task(_config(tmp_path, out_dir=str(tmp_path / "fresh"),
                               load_from=str(p))).fit(log=lambda *a: None)
        assert not marker.exists()


def test_training_checkpoint_is_weights_only(tmp_path):
    from pyhpe.tasks import build_task
    build_task(_config(tmp_path)).fit(log=lambda *a: None)
    ck = torch.load(tmp_path / "run" / "last.pth", weights_only=True)  # no custom classes
    assert isinstance(ck, dict) and ck


def test_infer_and_eval_refuse_crafted_checkpoint(evil, tmp_path):
    import cv2
    from pyhpe.cli import main
    marker, paths = evil
    img = tmp_path / "img.png"
    cv2.imwrite(str(img), np.zeros((64, 48, 3), np.uint8))
    cfg = _write_config(tmp_path)
    for p in paths.values():
        assert main(["infer", "--config", cfg, "--checkpoint", str(p), "--out",
                     str(tmp_path / "out"), str(img)]) == 1
        assert main(["eval", "--config", cfg, "--checkpoint", str(p)]) == 1
    assert not marker.exists()


def test_cli_refuses_crafted_checkpoint_without_traceback(evil, tmp_path):
    marker, paths = evil
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "pyhpe", "train", "--config",
                        _write_config(tmp_path), "--out", str(tmp_path / "td"), "--load-from",
                        str(paths["zip"])],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "pyhpe: cannot load checkpoint" in r.stderr and "zip.pth" in r.stderr
    assert "Traceback" not in r.stderr
    assert not marker.exists()


def test_h36m_npz_refuses_pickled_code(tmp_path):
    from pyhpe.data.lifting import load_h36m_npz
    from pyhpe.data.safe_npz import load_npz_member
    _check_payload_works(tmp_path)
    marker = tmp_path / "PWNED"
    bad = tmp_path / "bad.npz"
    payload = np.array({"S1": _Payload(marker)}, dtype=object)
    np.savez(bad, positions_2d=payload, positions_3d=payload)
    with pytest.raises(ValueError, match="bad.npz"):
        load_npz_member(str(bad), "positions_2d")
    with pytest.raises(ValueError, match="bad.npz"):
        load_h36m_npz(str(bad), str(bad))
    assert not marker.exists()
    # plain nested data still loads
    good = tmp_path / "good.npz"
    data = {"S1": {"Walk": [np.arange(6, dtype=np.float32).reshape(3, 2)]}, "n": 17}
    np.savez_compressed(good, positions_2d=data, plain=np.arange(4))
    back = load_npz_member(str(good), "positions_2d").item()
    np.testing.assert_array_equal(back["S1"]["Walk"][0], data["S1"]["Walk"][0])
    assert back["n"] == 17
    np.testing.assert_array_equal(load_npz_member(str(good), "plain"), np.arange(4))
    with pytest.raises(KeyError, match="missing"):
        load_npz_member(str(good), "missing")


def test_no_unsafe_loading_in_the_package():
    """No torch.load(weights_only=False), pickle.load(s) or np.load(allow_pickle=True) in pyhpe/."""
    offenders = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "pyhpe")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                fn = ast.unparse(node.func)
                kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                where = f"{os.path.relpath(path, ROOT)}:{node.lineno} {fn}"
                if fn.endswith("torch.load") and kw.get("weights_only") != "True":
                    offenders.append(where)
                if fn in ("pickle.load", "pickle.loads", "marshal.loads", "dill.load"):
                    offenders.append(where)
                if fn.endswith("np.load") and kw.get("allow_pickle") not in (None, "False"):
                    offenders.append(where)
    assert offenders == []
