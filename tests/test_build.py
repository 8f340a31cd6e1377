import subprocess
import sys

import pyhpe
from conftest import expect_cuda_build


def test_info_reports_versions():
    info = pyhpe.info()
    assert info["pyhpe"] == pyhpe.__version__ == info["extension"]
    assert info["torch"].startswith(info["torch_compiled_against"])
    if info["cuda_compiled"]:
        assert info["cuda_version"] and info["cuda_archs"]


def test_cuda_kernels_compiled_when_ci_requires_it():
    if expect_cuda_build():
        assert pyhpe._C.has_cuda(), "CI builds with FORCE_CUDA=1: CUDA kernels must be compiled"


def test_cli_info_runs():
    out = subprocess.run([sys.executable, "-m", "pyhpe", "info"], capture_output=True, text=True,
                         check=True).stdout
    assert "cuda_compiled" in out
