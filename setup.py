"""Build pyhpe and its C++/CUDA extension pyhpe._C.

CUDA kernels are compiled when torch is a CUDA build and nvcc is found.
  FORCE_CUDA=1     build them anyway (fails loudly if nvcc is missing)
  PYHPE_NO_CUDA=1  never build them
Without a visible GPU and without TORCH_CUDA_ARCH_LIST, a short default arch list is used.
Everything decided here is printed, and is reported at run time by `pyhpe info`.
"""
import glob
import os
import re
import shutil
import sys

from setuptools import find_packages, setup


def _find_cuda_home():
    """CUDA_HOME for torch: honour the env, else the toolkit that owns nvcc.

    nvcc on PATH may be a wrapper script (e.g. /usr/local/bin/nvcc exec'ing the real one),
    so prefer the conventional /usr/local/cuda when it has headers.
    """
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    candidates = ["/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for home in candidates:
        if os.path.exists(os.path.join(home, "include", "cuda_runtime.h")) and \
                os.path.exists(os.path.join(home, "bin", "nvcc")):
            os.environ["CUDA_HOME"] = home
            return


_find_cuda_home()

import torch  # noqa: E402
from torch.utils.cpp_extension import (  # noqa: E402
    CUDA_HOME, BuildExtension, CppExtension, CUDAExtension)

ROOT = os.path.dirname(os.path.abspath(__file__))
# Without a visible GPU: sm_75 (T4, Turing), sm_80 (A100; its code also runs natively on
# sm_86/87/89 cards: A10, RTX 30xx/40xx, L4, Jetson Orin), sm_90 (H100/H200), and PTX of
# sm_90 that newer GPUs (Blackwell) compile at first load. Three images keep CI's build short.
DEFAULT_ARCHS = "7.5;8.0;9.0+PTX"

# What the package imports (tests/test_build.py checks these against every import in pyhpe/).
INSTALL_REQUIRES = [
    "torch>=2.4",
    "numpy",
    "opencv-python-headless",   # cv2: image reading, affine crops, synthetic rendering, drawing
    "tqdm",                     # training progress bars
    "matplotlib",               # training curves (pyhpe.vis, pyhpe demo)
    "pycocotools",              # the demo's and `pyhpe eval --compare-pycocotools` cross-check
]
EXTRAS_REQUIRE = {
    # the other references pyhpe.reference / pyhpe.eval compare against (tests, benchmarks)
    "reference": ["faster-coco-eval", "xtcocotools", "scipy", "kornia", "dsntnn"],
    # pyhpe.apis.export.export_onnx and its ONNX Runtime checks
    "export": ["onnx", "onnxruntime"],
    # pyhpe.fitting: SMPLify / SMPLify-X over the SMPL body model (bring your own model files)
    "smpl": ["smplx"],
}


def read_version():
    with open(os.path.join(ROOT, "pyhpe", "_version.py")) as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


def nvcc_path():
    if CUDA_HOME and os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc")):
        return os.path.join(CUDA_HOME, "bin", "nvcc")
    return shutil.which("nvcc")


def decide_cuda():
    if os.environ.get("PYHPE_NO_CUDA", "0") == "1":
        return False, "PYHPE_NO_CUDA=1"
    nvcc = nvcc_path()
    if os.environ.get("FORCE_CUDA", "0") == "1":
        if nvcc is None:
            raise RuntimeError("FORCE_CUDA=1 but nvcc was not found (set CUDA_HOME or PATH)")
        if torch.version.cuda is None:
            raise RuntimeError("FORCE_CUDA=1 but torch %s is a CPU-only build" % torch.__version__)
        return True, "FORCE_CUDA=1"
    if torch.version.cuda is None:
        return False, "torch %s is a CPU-only build" % torch.__version__
    if nvcc is None:
        return False, "nvcc not found (set CUDA_HOME or put nvcc on PATH)"
    return True, "torch CUDA %s and nvcc at %s" % (torch.version.cuda, nvcc)


def decide_archs():
    if os.environ.get("TORCH_CUDA_ARCH_LIST"):
        return os.environ["TORCH_CUDA_ARCH_LIST"], "TORCH_CUDA_ARCH_LIST"
    if torch.cuda.is_available():
        caps = sorted({"%d.%d" % torch.cuda.get_device_capability(i)
                       for i in range(torch.cuda.device_count())})
        return ";".join(caps), "visible GPUs"
    return DEFAULT_ARCHS, "default (no GPU visible)"


def sources(with_cuda):
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cpp = [s for s in cpp if os.sep + "tests" + os.sep not in s]
    cu = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True)) if with_cuda else []
    return cpp + cu


def make_extension():
    with_cuda, why = decide_cuda()
    define_macros = [("PYHPE_VERSION", '"%s"' % read_version()),
                     ("PYHPE_TORCH_VERSION", '"%s"' % torch.__version__.split("+")[0])]
    # -g0 overrides the -g in Python's CFLAGS: debug info triples the .so and slows the build.
    cxx_flags = ["-O3", "-g0", "-fvisibility=hidden"]
    link_args = []
    if sys.platform.startswith("linux") and "OpenMP" in torch.__config__.parallel_info():
        # at::parallel_for is inline OpenMP: without -fopenmp every CPU kernel runs serially.
        # The libgomp.so.1 torch already loaded satisfies the link at run time.
        cxx_flags.append("-fopenmp")
        link_args.append("-fopenmp")
    extra = {"cxx": cxx_flags}
    if with_cuda:
        archs, arch_why = decide_archs()
        os.environ["TORCH_CUDA_ARCH_LIST"] = archs
        define_macros += [("PYHPE_WITH_CUDA", None), ("PYHPE_CUDA_ARCHS", '"%s"' % archs)]
        extra["nvcc"] = ["-O3", "-lineinfo", "--expt-relaxed-constexpr", "-Xcompiler", "-fvisibility=hidden"]
        print("pyhpe setup: building CUDA kernels (%s); archs %s (%s)" % (why, archs, arch_why))
        cls = CUDAExtension
    else:
        define_macros += [("PYHPE_CUDA_ARCHS", '""')]
        print("pyhpe setup: CPU only (%s)" % why)
        cls = CppExtension
    return cls(
        name="pyhpe._C",
        sources=sources(with_cuda),
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=define_macros,
        extra_compile_args=extra,
        extra_link_args=link_args,
    )


setup(
    name="pyhpe",
    version=read_version(),
    description="Human pose estimation toolkit with C++/CUDA kernels as PyTorch ops",
    packages=find_packages(include=["pyhpe", "pyhpe.*"]),
    ext_modules=[make_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    entry_points={"console_scripts": ["pyhpe=pyhpe.cli:main"]},
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    zip_safe=False,
)
