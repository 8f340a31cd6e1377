"""The engine on the real top-down task: exact resume with augmentation and EMA, crafted
checkpoints refused, AMP, every model family's heads (multi-stage intermediate supervision
included) training and evaluating, and a 2-process torchrun DDP run (gloo, CPU)."""
import json
import os

import pytest
import torch

from pyhpe.engine import CheckpointError, Trainer, load_checkpoint_file
from pyhpe.tasks import build_task
from test_engine import torchrun_two_processes

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = lambda *a: None  # noqa: E731


def _config(out_dir, model=None, codec=None, **train):
    return {"task": "topdown", "input_size": [48, 64],
            "model": model or {"name": "simple_baseline", "config": "tiny"},
            "codec": codec or {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0},
            "data": {"type": "synthetic", "num_images": 8, "val_images": 2, "image_size": 96},
            "train": dict({"epochs": 2, "batch_size": 4, "lr": 1e-3, "warmup_steps": 2,
                           "out_dir": str(out_dir), "progress": False, "eval_every": 0,
                           "seed": 0, "device": "cpu", "log_every": 1}, **train)}


def _trainer(out_dir, **train):
    return Trainer(build_task(_config(out_dir, **train)), log=QUIET)


def test_exact_resume_with_augmentation_and_ema(tmp_path):
    a = _trainer(tmp_path / "a")
    ra = a.fit()
    assert ra["step"] == 4 and ra["epoch"] == 2
    b = _trainer(tmp_path / "b", stop_at_step=3)         # interrupted mid-epoch 2
    assert b.fit()["step"] == 3
    c = _trainer(tmp_path / "b", resume=True)             # a new process
    assert c.step == 3 and c.step_in_epoch == 1
    rc = c.fit()
    for (k, va), vc in zip(a.model.state_dict().items(), c.model.state_dict().values()):
        assert torch.equal(va, vc), k
    for va, vc in zip(a.ema.module.state_dict().values(), c.ema.module.state_dict().values()):
        assert torch.equal(va, vc)
    assert a.lr == c.lr and ra["loss_log"] == rc["loss_log"]
    assert [dict(r, time_s=0) for r in ra["history"]] == [dict(r, time_s=0) for r in rc["history"]]


def test_same_seed_same_run(tmp_path):
    """seed fixes initialisation, data order and augmentation: two runs are bitwise equal."""
    a, b = _trainer(tmp_path / "a", seed=5), _trainer(tmp_path / "b", seed=5)
    ra, rb = a.fit(), b.fit()
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert ra["loss_log"] == rb["loss_log"]
    c = _trainer(tmp_path / "c", seed=6)
    assert not torch.equal(next(c.model.parameters()), next(_trainer(tmp_path / "d", seed=5).model.parameters()))


def test_checkpoint_is_weights_only_and_crafted_last_pth_is_refused(tmp_path):
    t = _trainer(tmp_path / "run", epochs=1)
    t.fit()
    ck = torch.load(tmp_path / "run" / "last.pth", weights_only=True)   # no custom classes
    assert ck["step"] == 2 and isinstance(ck["rng"]["numpy"]["keys"], torch.Tensor)
    assert ck["task_config"]["task"] == "topdown"

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "PWNED"), "w"))

    torch.save({"model": Evil()}, tmp_path / "run" / "last.pth")
    with pytest.raises(CheckpointError, match="last.pth"):
        _trainer(tmp_path / "run", resume=True)
    assert not (tmp_path / "PWNED").exists()


def test_amp_bf16_step_on_cpu(tmp_path):
    t = _trainer(tmp_path, amp=True, amp_dtype="bfloat16", max_steps=1, ema=False)
    assert t.amp_dtype == torch.bfloat16
    assert t.fit()["step"] == 1
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


@pytest.mark.parametrize("model,codec", [
    ({"name": "hourglass", "config": "tiny"}, {"name": "msra", "heatmap_size": [12, 16]}),
    ({"name": "cpm", "config": "tiny"}, {"name": "msra", "heatmap_size": [6, 8]}),
    ({"name": "deeppose", "config": "tiny"}, {"name": "regression"}),
    ({"name": "rtmpose", "config": "tiny"}, {"name": "simcc", "sigma": [2.0, 2.0]}),
    ({"name": "simple_baseline", "config": "tiny"}, {"name": "udp", "heatmap_size": [12, 16]}),
    ({"name": "simple_baseline", "config": "tiny"},
     {"name": "integral", "heatmap_size": [12, 16], "method": "dipr"}),
], ids=["hourglass", "cpm", "deeppose", "rtmpose", "udp", "integral_dipr"])
def test_every_head_trains_and_evaluates(tmp_path, model, codec):
    task = build_task(_config(tmp_path, model=model, codec=codec, epochs=1, eval_every=1))
    result = Trainer(task, log=QUIET).fit()
    row = result["history"][-1]
    assert result["step"] == 2 and 0.0 <= row["AP"] <= 1.0
    assert any(k.startswith("loss_") for k in row), row


def test_ddp_two_processes_gloo(tmp_path):
    """torchrun, 2 CPU processes: an Hourglass whose every stack is supervised (the losses come
    through forward, so DDP sees them); rank 0 evaluates and writes the checkpoints."""
    cfg = _config(tmp_path / "unused", model={"name": "hourglass", "config": "tiny"},
                  epochs=1, batch_size=2, max_steps=2, warmup_steps=1, eval_every=1)
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    torchrun_two_processes(["-m", "pyhpe", "train", "--config", str(p), "--out", str(tmp_path / "run")])
    ck = load_checkpoint_file(str(tmp_path / "run" / "last.pth"))
    assert ck["step"] == 2 and ck["finished"]   # 8 crops / 2 ranks / batch 2 = 2 steps per rank
    assert "AP" in ck["history"][-1] and os.path.exists(tmp_path / "run" / "best.pth")
