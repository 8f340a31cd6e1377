import json
import os
import shutil
import subprocess
import sys

import pytest

import pyhpe
from conftest import expect_cuda_build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def _run_console(script, *args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([script, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_console_script_in_venv(tmp_path):
    """`make build` (or pip install) puts a `pyhpe` command next to the venv's python."""
    script = os.path.join(os.path.dirname(sys.executable), "pyhpe")
    if not os.path.exists(script):
        pytest.skip(f"no console script at {script} (this environment was not set up by make build)")
    r = _run_console(script, "info", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["pyhpe"] == pyhpe.__version__


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_writes_console_script(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    subprocess.run(["make", "-s", "-C", ROOT, "console-script", f"VENV={venv}",
                    f"VPY={sys.executable}"], check=True, capture_output=True, text=True)
    script = venv / "bin" / "pyhpe"
    assert os.access(script, os.X_OK)
    r = _run_console(str(script), "info", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cuda_compiled" in r.stdout
    r = _run_console(str(script), "eval", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "xtcocotools_noarea" in r.stdout
    # the same entry point pip would install
    with open(os.path.join(ROOT, "setup.py")) as f:
        assert '"pyhpe=pyhpe.cli:main"' in f.read()
