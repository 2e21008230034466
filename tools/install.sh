#!/usr/bin/env bash
# Creates .venv and installs mmincseg with its pinned OpenMMLab stack (CPU torch + mmcv built with ops).
# The mmcv wheel is built once (~7 min on 2 cores) and cached outside the repository, keyed by
# mmcv/torch/python versions, so later installs take seconds. Idempotent: a stamp file records the
# hash of the install recipe and skips everything when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
MMCV_VERSION=2.1.0
CACHE=${MMINCSEG_CACHE:-$HOME/.cache/mmincseg}
STAMP="$VENV/.mmincseg-install-stamp"
RECIPE_HASH=$(cat tools/install.sh setup.py requirements.txt | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$RECIPE_HASH" ] && "$VENV/bin/python" -c "import mmincseg" 2>/dev/null; then
  echo "[install] $VENV is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null 2>&1 || true
$PIP install -q "torch==$TORCH_VERSION" numpy
# setuptools<70 keeps pkg_resources for mmcv's setup.py (torch warns that it wants newer; harmless).
$PIP install -q "setuptools<70" wheel 2>&1 | grep -v "dependency conflicts\|requires setuptools\|resolver does not" || true

PYTAG=$("$VENV/bin/python" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
TORCH_TAG=$("$VENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])")
WHEELS="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_TAG-$PYTAG"
if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
  echo "[install] building mmcv $MMCV_VERSION with ops for torch $TORCH_TAG ($PYTAG); ~7 min on 2 cores"
  mkdir -p "$WHEELS.tmp"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} $PIP wheel -q --no-build-isolation --no-deps \
    "mmcv==$MMCV_VERSION" -w "$WHEELS.tmp"
  mv "$WHEELS.tmp" "$WHEELS"
fi
$PIP install -q "$WHEELS"/mmcv-*.whl
$PIP install -q -r requirements.txt
# OpenMMLab's `mim` (mim train/test mmincseg; tests/test_packaging.py) without its dataset-download
# extra (opendatalab -> openxlab pins setuptools~=60.2, which mmcv's build and torch do not want)
$PIP install -q --no-deps openmim
$PIP install -q click colorama model-index pandas requests rich tabulate
$PIP install -q --no-build-isolation --no-deps -e .
"$VENV/bin/python" -c "import mmcv.ops, mmseg, mmincseg; print('[install] ok: mmincseg', mmincseg.__version__, '| mmcv', mmcv.__version__, '| mmseg', mmseg.__version__)"
echo "$RECIPE_HASH" > "$STAMP"
