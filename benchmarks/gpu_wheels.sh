#!/usr/bin/env bash
# The few wheels benchmarks/gpu_check.sh installs on a GPU machine that has PyTorch, transformers, pyarrow and numpy
# but no network: jiwer with rapidfuzz, and pydantic with its core (the sweep spec). Run here, where PyPI is
# reachable; they go to build/gpu-wheels (ignored by git; carried to the GPU machine with the working tree).
# PY_VERSION is the GPU machine's Python (3.12 on this workplace's H200 image).
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=${PY_VERSION:-3.12}
OUT=${1:-build/gpu-wheels}
mkdir -p "$OUT"
python3 -m pip download -q --only-binary=:all: --no-deps --python-version "$PY_VERSION" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d "$OUT" \
    jiwer==4.0.0 rapidfuzz==3.14.6 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.7.0 typing-inspection==0.4.5
ls -la "$OUT"
