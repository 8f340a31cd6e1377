"""The training engine (pyhpe.engine) on a minimal in-test task: schedules, EMA, atomic and
safe checkpoints, configs that reject unknown keys, seeded initialisation, exact resume
(mid-epoch, logs included), finished runs, --load-from, best-by-metric, time budget, AMP and
a 2-process torchrun DDP run (gloo, CPU)."""
import json
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn as nn

from pyhpe.engine import (CheckpointError, Config, ConfigError, ModelEMA, TrainConfig, Trainer,
                          apply_overrides, atomic_save, load_checkpoint_file, lr_lambda_factory)
from pyhpe.tasks.base import Task

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------- the toy task
@dataclass
class ToyConfig(Config):
    task: str = "toy"
    num_train: int = 48
    num_val: int = 32
    data_seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)


class ToyModel(nn.Module):
    """A small MLP with a supervised auxiliary output (both losses come from forward, as with
    intermediate supervision) and dropout (so resume must restore the RNG)."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1))
        self.out = nn.Linear(16, 2)
        self.aux = nn.Linear(16, 2)

    def forward(self, inputs, targets=None):
        h = self.hidden(inputs)
        pred = self.out(h)
        if targets is None:
            return pred
        return {"loss_main": ((pred - targets["y"]) ** 2).mean(),
                "loss_aux": 0.5 * ((self.aux(h) - targets["y"]) ** 2).mean()}


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    w = torch.tensor([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.3], [2.0, 0.0]])
    return [{"x": x[i], "y": 0.5 * x[i] @ w} for i in range(n)]


class ToyTask(Task):
    name = "toy"
    Config = ToyConfig
    metric = "mse"
    metric_mode = "min"

    def build_datasets(self):
        c = self.config
        return _data(c.num_train, c.data_seed), _data(c.num_val, c.data_seed + 1)

    def build_model(self):
        return ToyModel()

    def prepare(self, batch, device):
        return batch["x"].to(device), {"y": batch["y"].to(device)}

    @torch.no_grad()
    def evaluate(self, model, device):
        x, t = self.prepare(self.collate(self.val_dataset()), device)
        mse = float(((model(x) - t["y"]) ** 2).mean())
        return {"mse": mse, "score": 1.0 / (1.0 + mse)}


class ToyMaxTask(ToyTask):
    name = "toy_max"
    metric = "score"
    metric_mode = "max"


def _task(out_dir, cls=ToyTask, **train):
    t = dict(epochs=3, batch_size=8, lr=3e-2, warmup_steps=2, out_dir=str(out_dir), progress=False,
             eval_every=1, seed=0, log_every=2, ema_decay=0.9)
    t.update(train)
    return cls({"train": t})


def _fit(out_dir, cls=ToyTask, log=None, **train):
    lines = []
    tr = Trainer(_task(out_dir, cls, **train), log=log or (lambda *a: lines.append(" ".join(map(str, a)))))
    return tr, tr.fit(), lines


def _state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


# ---------------------------------------------------------------------------- pieces
def test_lr_schedules():
    f = lr_lambda_factory(100, warmup_steps=10, policy="cosine", warmup_ratio=0.0)
    assert f(0) == 0.0 and f(5) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0, abs=1e-12)
    g = lr_lambda_factory(100, warmup_steps=0, policy="step", milestones=[30, 60], gamma=0.1)
    assert g(29) == 1.0 and g(30) == pytest.approx(0.1) and g(99) == pytest.approx(0.01)
    assert lr_lambda_factory(10, policy="constant")(7) == 1.0
    with pytest.raises(ValueError, match="lr policy"):
        lr_lambda_factory(10, policy="bad")


def test_ema_update_rule():
    m = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(m.weight)
    ema = ModelEMA(m, decay=0.9, tau=1.0)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)
    d = 0.9 * (1 - math.exp(-1.0))
    torch.testing.assert_close(ema.module.weight, torch.full((1, 2), 1 - d))


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path):
    p = str(tmp_path / "ck.pth")
    atomic_save({"a": torch.arange(3)}, p)
    atomic_save({"a": torch.arange(4)}, p)
    assert load_checkpoint_file(p)["a"].tolist() == [0, 1, 2, 3]
    with pytest.raises(Exception):
        atomic_save({"bad": lambda: 0}, p)  # unpicklable: the old file must survive intact
    assert load_checkpoint_file(p)["a"].tolist() == [0, 1, 2, 3]
    assert os.listdir(tmp_path) == ["ck.pth"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoints_are_read_with_weights_only(tmp_path):
    p = tmp_path / "evil.pth"
    torch.save({"model": _Evil()}, p)
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_checkpoint_file(str(p))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint_file(str(tmp_path / "missing.pth"))
    # a training run refuses it as --load-from too
    with pytest.raises(CheckpointError):
        Trainer(_task(tmp_path / "run", load_from=str(p)), log=lambda *a: None)


# ---------------------------------------------------------------------------- configs
def test_config_rejects_unknown_keys_at_every_level():
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        ToyTask({"bogus": 1})
    with pytest.raises(ConfigError, match=r"train: unknown key 'epoch'"):
        ToyTask({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="train.lr_policy"):
        ToyTask({"train": {"lr_policy": "linear"}})
    with pytest.raises(ConfigError, match="train.batch_size: expected int"):
        ToyTask({"train": {"batch_size": "eight"}})
    t = ToyTask({"train": {"lr": 1, "lr_milestones": [2, 3]}})
    assert t.config.train.lr == 1.0 and isinstance(t.config.train.lr, float)
    assert t.config.train.lr_milestones == (2, 3)
    assert ToyTask(t.config.to_dict()).config == t.config   # round trip


def test_overrides():
    cfg = apply_overrides({"train": {"epochs": 1}}, ["train.epochs=5", "train.amp=true",
                                                     "train.out_dir=runs/x", "num_train=8",
                                                     "train.lr_milestones=[1, 2]"])
    assert cfg == {"train": {"epochs": 5, "amp": True, "out_dir": "runs/x",
                             "lr_milestones": [1, 2]}, "num_train": 8}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"train": 3}, ["train.epochs=1"])
    with pytest.raises(ConfigError, match="unknown key 'epochz'"):
        ToyTask(apply_overrides({}, ["train.epochz=1"]))


# ---------------------------------------------------------------------------- training
def test_same_seed_runs_are_bitwise_equal_and_seed_fixes_init(tmp_path):
    a, ra, _ = _fit(tmp_path / "a", seed=3)
    b, rb, _ = _fit(tmp_path / "b", seed=3)
    _state_equal(a.model.state_dict(), b.model.state_dict())
    _state_equal(a.ema.module.state_dict(), b.ema.module.state_dict())
    assert _without_time(ra["history"]) == _without_time(rb["history"])
    assert ra["loss_log"] == rb["loss_log"]
    c = Trainer(_task(tmp_path / "c", seed=4), log=lambda *a: None)
    d = Trainer(_task(tmp_path / "d", seed=3), log=lambda *a: None)
    assert not torch.equal(c.model.out.weight, d.model.out.weight)
    e = Trainer(_task(tmp_path / "e", seed=3), log=lambda *a: None)
    _state_equal(d.model.state_dict(), e.model.state_dict())


def test_training_learns_logs_named_losses_and_keeps_best(tmp_path):
    tr, res, lines = _fit(tmp_path, epochs=6, lr_policy="step", lr_milestones=[4])
    hist = res["history"]
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4, 5, 6] and res["step"] == 36
    assert {"loss", "loss_main", "loss_aux", "lr", "mse", "score", "time_s"} <= set(hist[0])
    assert hist[0]["loss"] == pytest.approx(hist[0]["loss_main"] + hist[0]["loss_aux"])
    assert hist[-1]["mse"] < 0.5 * hist[0]["mse"], [r["mse"] for r in hist]
    assert res["best"] == min(r["mse"] for r in hist) and res["metric"] == "mse"
    assert res["finished"] and res["metrics"]["mse"] == hist[-1]["mse"]
    best = load_checkpoint_file(str(tmp_path / "best.pth"))
    assert best["value"] == res["best"] and best["metric"] == "mse"
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,step,lr,loss,loss_main,loss_aux,mse,score,time_s" and len(rows) == 7
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["rows"] == hist and log["loss_curve"] == res["loss_log"] and log["metric_mode"] == "min"
    assert len(res["loss_log"]) == 18 and res["loss_log"][0]["step"] == 2
    assert any(l.startswith("epoch 6 step 36") for l in lines)
    assert hist[-1]["lr"] == pytest.approx(3e-3) and hist[2]["lr"] == pytest.approx(3e-2)


def test_best_by_max_metric(tmp_path):
    _, res, _ = _fit(tmp_path, ToyMaxTask, epochs=3)
    assert res["best"] == max(r["score"] for r in res["history"])
    assert load_checkpoint_file(str(tmp_path / "best.pth"))["metric"] == "score"


def test_exact_resume_mid_epoch_with_logs(tmp_path):
    a, ra, _ = _fit(tmp_path / "a", save_every_steps=1)
    b, rb, _ = _fit(tmp_path / "b", stop_at_step=10)      # interrupted in epoch 2 (6 steps/epoch)
    assert rb["step"] == 10 and not rb["finished"] and len(rb["history"]) == 1
    c = Trainer(_task(tmp_path / "b", resume=True), log=lambda *a: None)   # a new process
    assert c.step == 10 and c.step_in_epoch == 4 and c.epoch == 1
    rc = c.fit()
    assert rc["step"] == 18 and rc["finished"]
    _state_equal(a.model.state_dict(), c.model.state_dict())
    _state_equal(a.ema.module.state_dict(), c.ema.module.state_dict())
    assert a.optimizer.state_dict()["state"][0]["exp_avg"].equal(c.optimizer.state_dict()["state"][0]["exp_avg"])
    assert a.lr == c.lr
    assert _without_time(ra["history"]) == _without_time(rc["history"])
    assert ra["loss_log"] == rc["loss_log"]
    for name in ("log.csv",):
        strip = [",".join(l.split(",")[:-1]) for l in (tmp_path / "a" / name).read_text().splitlines()]
        strip_c = [",".join(l.split(",")[:-1]) for l in (tmp_path / "b" / name).read_text().splitlines()]
        assert strip == strip_c
    ja, jc = (json.loads((tmp_path / d / "log.json").read_text()) for d in ("a", "b"))
    assert ja["loss_curve"] == jc["loss_curve"] and _without_time(ja["rows"]) == _without_time(jc["rows"])
    # the best checkpoint is the same too
    _state_equal(load_checkpoint_file(str(tmp_path / "a" / "best.pth"))["model"],
                 load_checkpoint_file(str(tmp_path / "b" / "best.pth"))["model"])


def test_resume_restores_the_logs_of_the_checkpoint(tmp_path):
    _fit(tmp_path, stop_at_step=12, save_every_steps=1)   # two epochs, rows written
    ck = load_checkpoint_file(str(tmp_path / "last.pth"))
    (tmp_path / "log.csv").write_text("garbage\n")
    Trainer(_task(tmp_path, resume=True), log=lambda *a: None)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + len(ck["history"]) == 3 and rows[0].startswith("epoch,step")


def test_finished_run_says_so_and_does_not_train(tmp_path):
    _, first, _ = _fit(tmp_path)
    mtime = os.path.getmtime(tmp_path / "last.pth")
    tr, again, lines = _fit(tmp_path, resume=True)
    assert any("already finished" in l for l in lines), lines
    assert again["finished"] and again["step"] == first["step"] and again["best"] == first["best"]
    assert _without_time(again["history"]) == _without_time(first["history"])
    assert os.path.getmtime(tmp_path / "last.pth") == mtime
    # more epochs: the same run continues
    _, longer, lines = _fit(tmp_path, resume=True, epochs=4)
    assert longer["step"] == 24 and not any("already finished" in l for l in lines)
    # without resume the directory is trained again from scratch
    _, fresh, _ = _fit(tmp_path)
    assert fresh["step"] == 18 and len(fresh["history"]) == 3


def test_load_from_starts_from_trained_weights(tmp_path):
    a, _, _ = _fit(tmp_path / "a", epochs=4)
    b = Trainer(_task(tmp_path / "b", load_from=str(tmp_path / "a" / "last.pth"), seed=9),
                log=lambda *a: None)
    _state_equal(b.model.state_dict(), a.ema.module.state_dict())  # last.pth: its EMA weights
    c = Trainer(_task(tmp_path / "c", load_from=str(tmp_path / "a" / "best.pth")), log=lambda *a: None)
    before = c.evaluate()["mse"]
    fresh = Trainer(_task(tmp_path / "d"), log=lambda *a: None).evaluate()["mse"]
    assert before < 0.5 * fresh and c.step == 0
    with pytest.raises(CheckpointError, match="does not fit"):
        torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "other.pth")
        Trainer(_task(tmp_path / "e", load_from=str(tmp_path / "other.pth")), log=lambda *a: None)


def test_time_budget_calibrates_and_stops(tmp_path):
    _, res, lines = _fit(tmp_path, epochs=100000, time_budget_s=1.0, calibrate_steps=5,
                         eval_every=0, ema=False)
    assert any(l.startswith("calibrated:") for l in lines), lines
    assert 5 <= res["step"] < 600000 and res["finished"]
    assert len(res["history"]) >= 1 and "mse" in res["history"][-1]   # final evaluation
    ck = load_checkpoint_file(str(tmp_path / "last.pth"))
    # the schedule was fitted to the budget: it ends (nearly) annealed
    assert ck["total_steps"] <= res["step"] + 5 * 2 + 50
    # the budget is spent: resuming the same run trains nothing
    _, again, lines = _fit(tmp_path, epochs=100000, time_budget_s=1.0, calibrate_steps=5,
                           eval_every=0, ema=False, resume=True)
    assert again["step"] == res["step"] and any("already finished" in l for l in lines)


def test_amp_bf16_step_on_cpu(tmp_path):
    tr, res, _ = _fit(tmp_path, amp=True, amp_dtype="bfloat16", max_steps=2, ema=False)
    assert tr.amp_dtype == torch.bfloat16 and res["step"] == 2
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_model_must_return_a_loss_dict(tmp_path):
    class Bad(ToyTask):
        def build_model(self):
            return nn.Linear(4, 2)

        def prepare(self, batch, device):
            return batch["x"], None

    class LinearLoss(nn.Linear):
        def forward(self, x, targets=None):
            return super().forward(x).sum()

    class Bad2(Bad):
        def build_model(self):
            return LinearLoss(4, 2)

    with pytest.raises(TypeError):
        Trainer(Bad({"train": {"out_dir": str(tmp_path), "progress": False}}), log=lambda *a: None).fit()
    with pytest.raises(TypeError, match="dict of named losses"):
        Trainer(Bad2({"train": {"out_dir": str(tmp_path), "progress": False}}), log=lambda *a: None).fit()


DDP_SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
import torch
from test_engine import ToyTask
from pyhpe.engine import Trainer
torch.set_num_threads(1)
task = ToyTask({{"num_train": 32, "train": {{"epochs": 2, "batch_size": 4, "out_dir": {out!r},
                "progress": False, "device": "cpu", "warmup_steps": 1, "seed": 0}}}})
tr = Trainer(task, log=lambda *a: None)
res = tr.fit()
w = [float(p.detach().double().sum()) for p in tr.model.parameters()]
with open(os.path.join({out!r}, "rank%s.json" % os.environ["RANK"]), "w") as f:
    json.dump({{"step": res["step"], "weights": w}}, f)
torch.distributed.destroy_process_group()
"""


def torchrun_two_processes(args):
    """``torchrun --nproc_per_node=2 ARGS`` on a free local port, one OpenMP thread each;
    asserts it succeeds."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={port}", *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_ddp_two_processes_gloo(tmp_path):
    """Both losses (main and auxiliary) come through forward, so DDP averages the gradient of
    every supervised output; the ranks stay identical."""
    script = tmp_path / "ddp_run.py"
    out = tmp_path / "run"
    script.write_text(DDP_SCRIPT.format(tests=os.path.join(ROOT, "tests"), out=str(out)))
    torchrun_two_processes([str(script)])
    r0, r1 = (json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["step"] == r1["step"] == 8           # 32 items / 2 ranks / batch 4 = 4 per epoch
    assert r0["weights"] == r1["weights"]
    ck = load_checkpoint_file(str(out / "last.pth"))
    assert ck["step"] == 8 and ck["finished"] and os.path.exists(out / "best.pth")
    assert [row["epoch"] for row in ck["history"]] == [1, 2] and "mse" in ck["history"][-1]
