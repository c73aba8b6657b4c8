#!/usr/bin/env bash
# Every figure issue 16's acceptance needs, in one run on a CUDA machine (under 8 minutes on an H100/H200):
#
#   1. python -m gpu.smoke             the reference code on CuPy equals NumPy (table; exit 1 on a failure)
#   2. bench/gpu_throughput.py         clearform on CuPy vs PyTorch eager, GPT-2 small and medium, fp32 and tf32:
#                                      tokens/s, ratio, MFU against a matmul peak measured in the same run
#   3. pytest (gpu tests + the guard)  tests/test_gpu.py, tests/test_gpu_smoke.py, and tests/test_backend_guard.py
#                                      against the installed CuPy's live namespace
#
# Run from the repository root:  bash gpu/run_device_checks.sh [OUT_DIR]
# The package need not be installed (PYTHONPATH is the checkout). The device image has CuPy, PyTorch, SciPy,
# safetensors, tqdm, threadpoolctl, hypothesis and pytest, but not autograd (the golden files' oracle): carry its
# wheel in build/whl (ignored by git), made here with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d build/whl autograd==1.9.1
# and name build/whl in the device tool's `carry`. Logs and the smoke's JSON go to OUT_DIR (default: $OUT, else
# /tmp/clearform-gpu). Exit status: 0 when every step passed or skipped for want of a device, else 1.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-/tmp/clearform-gpu}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
start=$SECONDS
status=0

echo "== clearform device checks: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not available"
"$py" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "scipy", "cupy", "torch", "autograd", "safetensors", "tqdm", "threadpoolctl", "hypothesis", "pytest"):
    try:
        module = importlib.import_module(name)
        print(f"  {name:<14} {getattr(module, '__version__', '?')}")
    except Exception as exc:
        print(f"  {name:<14} MISSING ({exc.__class__.__name__})")
EOF

if ! "$py" -c "import autograd" 2>/dev/null; then
    if compgen -G "build/whl/*.whl" >/dev/null; then
        echo "== installing carried wheels into /tmp/site: $(ls build/whl)"
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site build/whl/*.whl \
            && export PYTHONPATH="$PYTHONPATH:/tmp/site"
    else
        echo "== autograd is missing and build/whl has no wheels: the golden sections will fail (see this script's header)"
    fi
fi

step() {  # step NAME TIMEOUT_S COMMAND...: run, log to $out/NAME.log, remember a failure
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name ($(( SECONDS - start )) s so far): $*"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
}

step smoke 200 "$py" -m gpu.smoke --json "$out/smoke.json"
step throughput 180 "$py" bench/gpu_throughput.py --steps 6 --warmup 2
step pytest 90 "$py" -m pytest -q -p no:cacheprovider -rA tests/test_gpu.py tests/test_gpu_smoke.py tests/test_backend_guard.py

echo
echo "== done in $(( SECONDS - start )) s, status $status (logs in $out)"
exit $status
