#!/usr/bin/env bash
# Sets up sgdwalk, builds it and runs the whole test suite (GPU tests skip visibly without a GPU;
# SGDWALK_REQUIRE_GPU=1 makes such a skip a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
