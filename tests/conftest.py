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


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread; on a shared CPU a second OpenMP thread can make
    each small op wait for a descheduled peer (seconds per step). Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
