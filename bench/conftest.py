"""Benchmarks reuse the tests' data helpers; `conftest` resolves to this file here, so it
re-exports the tests' conftest helpers too."""
import importlib.util
import os
import sys

_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
sys.path.insert(0, _TESTS)

_spec = importlib.util.spec_from_file_location("_pyhpe_tests_conftest",
                                               os.path.join(_TESTS, "conftest.py"))
_tests_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests_conftest)

HAS_CUDA = _tests_conftest.HAS_CUDA
needs_cuda = _tests_conftest.needs_cuda
cpu_and_cuda = _tests_conftest.cpu_and_cuda
rng = _tests_conftest.rng
