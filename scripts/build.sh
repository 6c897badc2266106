#!/usr/bin/env bash
# Configures and builds sgdwalk in ./build (Release; the CUDA backend too when nvcc is found).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
