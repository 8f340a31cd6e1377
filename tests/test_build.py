import json
import os
import re
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


# import name -> distribution name, where they differ
_DIST_OF = {"cv2": "opencv-python-headless", "PIL": "pillow", "faster_coco_eval": "faster-coco-eval"}


def _setup_literal(name):
    import ast
    with open(os.path.join(ROOT, "setup.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py has no {name} literal")


def _third_party_imports():
    """{(top-level module, at module level?)} over every file in pyhpe/."""
    import ast
    found = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, "pyhpe")):
        for name in files:
            if not name.endswith(".py"):
                continue
            with open(os.path.join(dirpath, name)) as f:
                tree = ast.parse(f.read())
            module_level = set()
            for node in tree.body:   # module level, including module-level try/if blocks
                module_level.update(id(n) for n in ast.walk(node)
                                    if not isinstance(node, (ast.FunctionDef, ast.ClassDef)))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    mods = [node.module]
                else:
                    continue
                for m in mods:
                    top = m.split(".")[0]
                    if top != "pyhpe" and top not in sys.stdlib_module_names and top != "__future__":
                        found.add((top, id(node) in module_level))
    return found


def _dist(req):
    import re
    return re.split(r"[<>=!~\[; ]", req, 1)[0].lower()


def test_imports_are_declared_dependencies():
    required = {_dist(r) for r in _setup_literal("INSTALL_REQUIRES")}
    extras = {_dist(r) for reqs in _setup_literal("EXTRAS_REQUIRE").values() for r in reqs}
    with open(os.path.join(ROOT, "requirements-dev.txt")) as f:
        dev = {_dist(l.strip()) for l in f if l.strip() and not l.startswith("#")}
    imports = _third_party_imports()
    assert {m for m, _ in imports} >= {"torch", "numpy", "cv2"}   # the walk sees the package
    for module, at_module_level in sorted(imports):
        dist = _DIST_OF.get(module, module).lower()
        if at_module_level:
            assert dist in required, f"{module} is imported at module level but {dist} is not in install_requires"
        else:
            assert dist in required | extras, f"{module} is imported but {dist} is not declared"
        assert dist in dev, f"{dist} missing from requirements-dev.txt"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_dry_run_without_gpu(tmp_path):
    """`make gpu-check` on a machine without a GPU: says so, runs its CPU-side steps, exits 0."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: `make gpu-check` would run the real check")
    env = dict(os.environ, GPU_CHECK_PYTHON=sys.executable, GPU_CHECK_LOGDIR=str(tmp_path),
               GPU_CHECK_RESULTS=str(tmp_path / "RESULTS_gpu.md"), PYTHONPATH=ROOT)
    r = subprocess.run(["bash", os.path.join(ROOT, "tools", "gpu_check.sh")], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "NO CUDA GPU" in out and "dry run" in out
    assert "build check: ok" in out
    assert re.search(r"gpu_sanitize_ops on cpu: (\d+)/\1 cases ok", out)
    assert "tests collected" in out or "pytest is not installed" in out
    assert "| oks_matrix |" in out and (tmp_path / "bench_cpu.md").exists()
    assert not (tmp_path / "RESULTS_gpu.md").exists()   # the dry run writes no results
