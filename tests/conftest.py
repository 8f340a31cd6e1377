"""Shared test helpers: device parametrization and seeded data."""
import os

import numpy as np
import pytest
import torch

import pyhpe  # noqa: F401  (loads torch.ops.pyhpe)

HAS_CUDA = torch.cuda.is_available() and pyhpe._C.has_cuda()

needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU and a CUDA build of pyhpe")


def cpu_and_cuda():
    """Parametrize a test over 'cpu' and, when a GPU is usable, 'cuda'."""
    return pytest.mark.parametrize(
        "device", ["cpu", pytest.param("cuda", marks=needs_cuda)])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def expect_cuda_build() -> bool:
    return os.environ.get("PYHPE_EXPECT_CUDA_BUILD") == "1"


def _single_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread; on a shared CPU a second OpenMP thread can make
    each small op wait for a descheduled peer (seconds per step). Restored afterwards."""
    yield from _single_torch_thread()


@pytest.fixture(scope="module")
def one_torch_thread_per_module():
    """:func:`one_torch_thread` for a whole test module (its module-scoped fixtures included:
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")``)."""
    yield from _single_torch_thread()


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails the test (code that must never download)."""
    import socket

    def refuse(*a, **k):
        raise AssertionError("the network was touched")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def topdown_config(out_dir, codec=None, model=None, steps=60, images=64, val=8, lr=2e-3, data=None,
             keypoints="coco17", **train):
    """A small synthetic top-down config (tiny SimpleBaseline by default)."""
    cfg = {"task": "topdown", "input_size": [48, 64], "keypoints": keypoints,
           "model": model or {"name": "simple_baseline", "config": "tiny"},
           "codec": codec or {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0,
                              "decode": "dark", "blur_kernel_size": 5},
           "data": data or {"type": "synthetic", "num_images": images, "val_images": val,
                            "image_size": 96, "seed": 0},
           "train": dict({"epochs": 1000, "max_steps": steps, "batch_size": 16, "lr": lr,
                          "warmup_steps": 10, "eval_every": 0, "progress": False, "seed": 0,
                          "log_every": 5, "device": "cpu", "out_dir": str(out_dir)}, **train)}
    return cfg


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A test module that cannot be imported because a third-party package is missing (e.g. a
    reference implementation on a bare GPU machine, see `make gpu-check`) is reported as
    skipped with the package's name instead of as a collection error."""
    outcome = yield
    report = outcome.get_result()
    if not (report.failed and isinstance(collector, pytest.Module)):
        return
    import re
    match = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", report.longreprtext or "")
    if match and match.group(1).split(".")[0] != "pyhpe":
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), 0,
                           f"Skipped: needs {match.group(1)!r}, which is not installed")
