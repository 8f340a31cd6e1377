#!/usr/bin/env bash
# `make gpu-check`: everything that needs a CUDA GPU, in one short run (target: < 8 min on one
# H200), summarised in bench/RESULTS_gpu.md:
#   1. build pyhpe in place for the visible GPU only (TORCH_CUDA_ARCH_LIST = its capability);
#   2. the CUDA-parametrised tests (pytest -k cuda; tests whose reference package is absent skip);
#   3. compute-sanitizer --tool memcheck over tools/gpu_sanitize_ops.py (oks_matrix,
#      msra_heatmaps, soft_argmax fwd/bwd, oks_nms, find_peaks on CUDA, checked against the CPU);
#   4. a short speed table on the GPU (tools/gpu_bench.py; no pytest-benchmark needed): each
#      kernel's time and fraction of memory bandwidth, and the top-down inference path
#      (post-processing of 64 instances, the HRNet-W32 batched forward).
# It uses a plain python3 with torch (GPU_CHECK_PYTHON overrides; the venv's python only when
# no other has torch, GPU_CHECK_FALLBACK_PYTHON).
# Without a GPU it says so, runs the CPU-side steps (import/build check, the sanitizer script
# and the speed table on the CPU, the test selection) as a dry run, and exits 0.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOGDIR=${GPU_CHECK_LOGDIR:-build/gpu-check}
RESULTS=${GPU_CHECK_RESULTS:-bench/RESULTS_gpu.md}
mkdir -p "$LOGDIR"

pick_python() {
    local c
    for c in "${GPU_CHECK_PYTHON:-}" python3 /usr/bin/python3 /usr/local/bin/python3 \
             "${GPU_CHECK_FALLBACK_PYTHON:-}"; do
        [ -n "$c" ] || continue
        if "$c" -c "import torch" >/dev/null 2>&1; then echo "$c"; return 0; fi
    done
    return 1
}
if ! PY=$(pick_python); then
    echo "gpu-check: no python3 with torch found (set GPU_CHECK_PYTHON)"
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then exit 1; fi
    echo "gpu-check: NO CUDA GPU visible either (no nvidia-smi device): nothing to check"
    exit 0
fi

probe=$("$PY" - <<'EOF'
import torch
if torch.cuda.is_available() and torch.version.cuda:
    p = torch.cuda.get_device_properties(0)
    print("gpu", "%d.%d" % torch.cuda.get_device_capability(0), torch.__version__, torch.version.cuda,
          p.name.replace(" ", "_"), sep="|")
else:
    why = "torch %s is a CPU-only build" % torch.__version__ if torch.version.cuda is None \
        else "no CUDA device visible (torch %s, CUDA %s)" % (torch.__version__, torch.version.cuda)
    print("none", why, torch.__version__, torch.version.cuda, "", sep="|")
EOF
)
IFS='|' read -r KIND CAP TORCH_V CUDA_V GPU_NAME <<<"$probe"
GPU_NAME=${GPU_NAME//_/ }
echo "gpu-check: python $PY, torch $TORCH_V"

plan() {
    cat <<EOF
plan:
  1. build:     TORCH_CUDA_ARCH_LIST=<capability> FORCE_CUDA=1 $PY setup.py build_ext --inplace
  2. tests:     PYTHONPATH=. $PY -m pytest tests -k cuda  (reference packages absent: skipped)
  3. memcheck:  compute-sanitizer --tool memcheck $PY tools/gpu_sanitize_ops.py --device cuda
  4. bench:     $PY tools/gpu_bench.py --device cuda
  5. report:    $RESULTS
EOF
}

# --------------------------------------------------------------------------------- no GPU
if [ "$KIND" != "gpu" ]; then
    echo "gpu-check: NO CUDA GPU: $CAP"
    echo "gpu-check: dry run of the CPU-side steps (nothing is written to $RESULTS)"
    plan
    echo "--- build check"
    if PYTHONPATH="$ROOT" "$PY" -c "import pyhpe; i = pyhpe.info(); print('pyhpe', i['pyhpe'], 'extension', i['extension'], 'cuda_compiled', i['cuda_compiled'], 'archs', repr(i['cuda_archs']))"; then
        echo "build check: ok (the GPU run rebuilds for its own GPU)"
    else
        echo "build check: pyhpe is not built here (make build); the GPU run builds it"
    fi
    echo "--- sanitizer script on the CPU (compute-sanitizer: $(command -v compute-sanitizer || echo 'not installed'))"
    PYTHONPATH="$ROOT" "$PY" tools/gpu_sanitize_ops.py --device cpu 2>"$LOGDIR/sanitize_cpu.err"
    echo "sanitizer script exit status on cpu: $?"
    echo "--- CUDA test selection"
    if "$PY" -c "import pytest" >/dev/null 2>&1; then
        PYTHONPATH="$ROOT" "$PY" -m pytest tests -k cuda --collect-only -q -p no:cacheprovider 2>&1 | tail -3
    else
        echo "pytest is not installed for $PY: the GPU run would report the tests as not run"
    fi
    echo "--- speed table on the CPU"
    PYTHONPATH="$ROOT" "$PY" tools/gpu_bench.py --device cpu --repeat 1 --markdown "$LOGDIR/bench_cpu.md" 2>/dev/null
    echo "gpu-check: dry run done; run 'make gpu-check' on a machine with a CUDA GPU for the real check"
    exit 0
fi

# ---------------------------------------------------------------------------------- GPU
echo "gpu-check: $GPU_NAME (sm_${CAP/./}), CUDA $CUDA_V"
plan
status=0
T0=$(date +%s)
now() { echo $(( $(date +%s) - T0 )); }

echo "--- 1. build for $CAP ($(nproc) jobs)"
if ! command -v ninja >/dev/null 2>&1 && ! "$PY" -c "import ninja" >/dev/null 2>&1; then
    echo "gpu-check: warning: ninja not found, the extension compiles one file at a time (slower)"
fi
t=$(date +%s)
if TORCH_CUDA_ARCH_LIST="$CAP" FORCE_CUDA=1 MAX_JOBS=$(nproc) timeout 420 "$PY" setup.py build_ext --inplace \
        >"$LOGDIR/build.log" 2>&1; then
    BUILD="ok ($(( $(date +%s) - t )) s, TORCH_CUDA_ARCH_LIST=$CAP)"
else
    BUILD="FAILED (see $LOGDIR/build.log)"
    tail -30 "$LOGDIR/build.log"
    status=1
fi
grep "pyhpe setup:" "$LOGDIR/build.log" || true
echo "build: $BUILD"

TESTS="not run"
SANITIZER="not run"
if [ $status -eq 0 ]; then
    echo "--- 2. CUDA tests"
    if "$PY" -c "import pytest" >/dev/null 2>&1; then
        PYTHONPATH="$ROOT" PYHPE_EXPECT_CUDA_BUILD=1 timeout 300 "$PY" -m pytest tests -k cuda -q -rs \
            -p no:cacheprovider --junitxml="$LOGDIR/tests.xml" >"$LOGDIR/tests.log" 2>&1
        rc=$?
        tail -25 "$LOGDIR/tests.log"
        TESTS=$("$PY" - "$LOGDIR/tests.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    print("no report (%s)" % e); raise SystemExit
s = root if root.tag == "testsuite" else root.find("testsuite")
n, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print("%d passed, %d failed, %d errors, %d skipped (of %d selected)" % (n - f - e - sk, f, e, sk, n))
EOF
)
        [ $rc -eq 0 ] || status=1
    else
        TESTS="not run: pytest is not installed for $PY"
    fi
    echo "tests: $TESTS"

    echo "--- 3. compute-sanitizer memcheck"
    if command -v compute-sanitizer >/dev/null 2>&1; then
        # without the caching allocator every tensor is its own allocation, so memcheck sees
        # an out-of-bounds access even where a cached block would have absorbed it
        PYTHONPATH="$ROOT" PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 300 \
            compute-sanitizer --tool memcheck --error-exitcode 99 \
            --print-limit 20 "$PY" tools/gpu_sanitize_ops.py --device cuda >"$LOGDIR/memcheck.log" 2>&1
        rc=$?
        tail -20 "$LOGDIR/memcheck.log"
        summary=$(grep -o "ERROR SUMMARY: [0-9]* error[s]*" "$LOGDIR/memcheck.log" | tail -1)
        cases=$(grep -o "[0-9]*/[0-9]* cases ok" "$LOGDIR/memcheck.log" | tail -1)
        SANITIZER="exit $rc; ${summary:-no summary}; ${cases:-cases not reported}"
        [ $rc -eq 0 ] || status=1
    else
        SANITIZER="not run: compute-sanitizer not found"
    fi
    echo "memcheck: $SANITIZER"

    echo "--- 4. GPU speed table"
    PYTHONPATH="$ROOT" timeout 300 "$PY" tools/gpu_bench.py --device cuda --markdown "$LOGDIR/bench.md" \
        2>"$LOGDIR/bench.err" || status=1
fi

{
    echo "# GPU check"
    echo
    echo "Written by \`make gpu-check\` (tools/gpu_check.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), $(now) s in all."
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| device | $GPU_NAME (compute capability $CAP) |"
    echo "| torch / CUDA | $TORCH_V / $CUDA_V |"
    echo "| python | $("$PY" -c 'import sys; print(sys.version.split()[0])') |"
    echo "| build | $BUILD |"
    echo "| CUDA tests (pytest -k cuda) | $TESTS |"
    echo "| compute-sanitizer memcheck | $SANITIZER |"
    echo
    echo "## Speed (median of timed repeats, CUDA-synchronized)"
    echo
    if [ -s "$LOGDIR/bench.md" ]; then cat "$LOGDIR/bench.md"; else echo "not run"; fi
    if [ -s "$LOGDIR/tests.log" ] && grep -q "SKIPPED" "$LOGDIR/tests.log"; then
        echo
        echo "## Skipped tests"
        echo
        grep "SKIPPED" "$LOGDIR/tests.log" | head -40 | sed 's/^/    /'
    fi
} >"$RESULTS"
echo "gpu-check: wrote $RESULTS in $(now) s (exit status $status)"
exit $status
