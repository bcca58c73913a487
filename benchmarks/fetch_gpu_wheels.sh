#!/usr/bin/env bash
# Download, here (with PyPI), the wheels benchmarks/gpu_check.sh installs on the GPU
# machine, which has no network and no Ray, MLflow or pydantic. That machine has Python
# 3.12, torch, torchvision, numpy, pandas, pyyaml, tabulate, scipy, matplotlib, pillow,
# click, filelock, tqdm and psutil; we bring mlflow-skinny (the tracking client), its
# sqlite store (sqlalchemy, alembic), pydantic (+ pydantic-core), nvidia-ml-py (MLflow's
# system/gpu_* metrics) and every dependency of those that the target lacks.
#
#   bash benchmarks/fetch_gpu_wheels.sh [--python-version 3.12] [--dest .whl]
#
# Versions are the ones installed here, so the check runs what the tests ran. The total
# must stay under 64 MiB (what the device tool carries along with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."

PYVER=3.12
DEST=.whl
LIMIT_MIB=64
PY=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER="$2"; shift 2 ;;
    --dest) DEST="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "fetch_gpu_wheels.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# name==version for each package we bring, pinned to this machine's versions (mlflow-skinny
# follows the full mlflow installed here).
mapfile -t WANT < <("$PY" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version

for dist, local in (
    ("mlflow-skinny", "mlflow"),
    ("sqlalchemy", "sqlalchemy"),
    ("alembic", "alembic"),
    ("pydantic", "pydantic"),
    ("pydantic-core", "pydantic-core"),
    ("nvidia-ml-py", "nvidia-ml-py"),
):
    try:
        print(f"{dist}=={version(local)}")
    except PackageNotFoundError:
        print(dist)
EOF
)

mkdir -p "$DEST"
rm -f "$DEST"/*.whl
echo "+ pip download for CPython $PYVER, manylinux x86_64: ${WANT[*]}"
"$PY" -m pip download --quiet --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 -d "$DEST" "${WANT[@]}"

# Drop what the target already has (and the packages those pull in), by wheel name.
"$PY" - "$DEST" <<'EOF'
import re
import sys
from pathlib import Path

ON_TARGET = """
torch torchvision numpy pandas pyyaml tabulate scipy matplotlib pillow click filelock tqdm
psutil jinja2 markupsafe packaging python-dateutil six pytz tzdata fsspec sympy mpmath
networkx setuptools pyparsing cycler kiwisolver fonttools contourpy
""".split()
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    name = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    if name in ON_TARGET:
        wheel.unlink()
        print(f"  on the target already, dropped: {wheel.name}")
EOF

bytes=$(find "$DEST" -name '*.whl' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
count=$(find "$DEST" -name '*.whl' | wc -l)
mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
echo "$count wheels in $DEST: $mib MiB (limit $LIMIT_MIB MiB)"
if [ "$bytes" -ge $((LIMIT_MIB * 1048576)) ]; then
  echo "fetch_gpu_wheels.sh: $mib MiB is over the $LIMIT_MIB MiB limit" >&2
  exit 1
fi
