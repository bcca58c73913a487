#!/usr/bin/env bash
# One-call device check: what the GPU code paths do on a real GPU, in at most 8 minutes.
#
#   bash benchmarks/gpu_check.sh [--cpu] [--out DIR] [--wheels DIR] [--budget SECONDS]
#
# The target: one H100/H200, Python 3.12 with torch, torchvision, numpy, pandas, pyyaml,
# tabulate, scipy, matplotlib, pillow, click, filelock, tqdm and psutil; no Ray, MLflow or
# pydantic, and no network. Fetch the rest beforehand, where there is a network:
#
#   bash benchmarks/fetch_gpu_wheels.sh          # -> .whl/ (git-ignored, < 64 MiB)
#
# then, on the GPU machine, from the repository root (with .whl/ carried along):
#
#   bash benchmarks/gpu_check.sh                 # writes $OUT/gpu_check.json and the log
#
# Steps (see benchmarks/gpu_check.py): install the wheels into a temp dir; the
# environment; one multi-task trial of sweeps/smoke.yaml at 112 px through run_trial into
# a sqlite store, checked against the run contract; bench_trainable.py for ResNet-18 and
# ResNet-50 at 112 px, batch 256 (trainable vs random tensors, workers 0 vs 4, bf16 +
# channels_last vs fp32); train.compile on vs off. `--cpu` runs the same steps on the CPU
# at toy sizes, so CI proves the script works. Exit 0 when every step passed its checks.
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=cuda
OUT_DIR="${OUT:-$PWD/gpu_check_out}"
WHEELS="$PWD/.whl"
BUDGET=480  # seconds, for everything
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu; shift ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
LOG="$OUT_DIR/gpu_check.log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
exec > >(tee "$LOG") 2>&1

echo "gpu_check: mode $MODE, budget ${BUDGET}s, out $OUT_DIR, wheels $WHEELS, $("$PY" -V 2>&1)"
# The Python side stops starting steps before the budget runs out; the timeout is the
# backstop (the JSON is rewritten after every step, so a kill keeps what was measured).
export PYTHONUNBUFFERED=1 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
timeout -k 10 "$BUDGET" "$PY" benchmarks/gpu_check.py --mode "$MODE" --out "$OUT_DIR" \
  --wheels "$WHEELS" --work "$WORK" --budget "$((BUDGET - 20))"
rc=$?
[ "$rc" -eq 124 ] && echo "gpu_check: stopped at the ${BUDGET}s limit; the JSON holds the steps that ended"
echo "gpu_check: exit $rc; $OUT_DIR/gpu_check.json"
exit "$rc"
