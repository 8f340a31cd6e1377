# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv, install everything (torch included) and build the extension in place.
PYTHON ?= python3
VENV ?= .venv
VPY := $(abspath $(VENV))/bin/python
SITE = $(shell $(VPY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MAX_JOBS ?= 2
PYTEST_ARGS ?=

.PHONY: all venv build console-script test test-py test-cpp demo bench gpu-check clean

all: build

$(VENV)/.deps-stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -r requirements-dev.txt
	touch $@

venv: $(VENV)/.deps-stamp

# In-place build (incremental through ninja) plus a .pth so the venv imports this tree, and
# the `pyhpe` command in the venv (what `pip install -e .` would write, without a rebuild).
build: venv
	$(VPY) setup.py build_ext --inplace
	echo "$(CURDIR)" > "$(SITE)/pyhpe-dev.pth"
	$(MAKE) --no-print-directory console-script

console-script:
	printf '#!%s\n# pyhpe console script (written by make build)\nimport sys\nfrom pyhpe.cli import main\nsys.exit(main())\n' "$(VPY)" > "$(VENV)/bin/pyhpe"
	chmod +x "$(VENV)/bin/pyhpe"

test: test-cpp test-py

test-py: build
	$(VPY) -m pytest tests -q -ra $(PYTEST_ARGS)

# Torch-free tests of the *_math.h headers (plain g++, seconds).
test-cpp:
	mkdir -p build/cpp-tests
	@for t in csrc/tests/test_*.cpp; do \
		n=build/cpp-tests/$$(basename $$t .cpp); \
		c++ -std=c++17 -O2 -Wall -Werror -Icsrc $$t -o $$n -lm && ./$$n || exit 1; \
	done

demo: build
	$(VPY) -m pyhpe demo

bench: build
	$(VPY) -m pytest bench/bench_*.py -q --benchmark-only --benchmark-columns=min,median,rounds --benchmark-sort=name $(PYTEST_ARGS)

# On a CUDA machine: build for its GPU, CUDA tests, compute-sanitizer, GPU benches ->
# bench/RESULTS_gpu.md. Without a GPU: a dry run of the CPU-side steps. Uses a plain python3
# with torch (GPU_CHECK_PYTHON=... to choose; the venv's only when no other has torch).
gpu-check:
	GPU_CHECK_FALLBACK_PYTHON="$(VPY)" bash tools/gpu_check.sh

clean:
	rm -rf build pyhpe/*.so
