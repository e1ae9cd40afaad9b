#!/usr/bin/env bash
# One short GPU check (under 8 minutes on one GPU): see benchmarks/gpu_check.py for what it measures; writes
# reports/benchmarks-gpu.md. For a machine with one GPU where only PyTorch, transformers, pyarrow and numpy are
# installed and nothing can be downloaded: it installs prunelab from this working tree without dependencies, plus
# the wheels of benchmarks/gpu_wheels.sh (prepared where PyPI is reachable, in build/gpu-wheels). Ray, Optuna and
# W&B are not needed: the trial function runs without Ray. Without CUDA it runs the same steps on the CPU as a dry
# run (a smaller model, fewer repeats) and says so in its report.
#
#   benchmarks/gpu_check.sh [WHEELS_DIR]        PYTHON=.venv/bin/python benchmarks/gpu_check.sh   (dry run here)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=${1:-build/gpu-wheels}
if ! "$PYTHON" -c "import prunelab, jiwer, pydantic" 2>/dev/null; then
    if [ -d "$WHEELS" ]; then
        "$PYTHON" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation -e .
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# 470 s on a GPU; the CPU dry run on 2 cores takes longer (GPU_CHECK_TIMEOUT=1200 there)
timeout "${GPU_CHECK_TIMEOUT:-470}" "$PYTHON" benchmarks/gpu_check.py "${@:2}"
