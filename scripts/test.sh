#!/usr/bin/env bash
# Sets up sgdwalk, builds it and runs the whole test suite (GPU tests skip visibly without a GPU;
# SGDWALK_REQUIRE_GPU=1 makes such a skip a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
# A compiler cache (ccache, installed by scripts/install-deps.sh) under build/: the Python package's
# test and the GPU kit's test compile the C++ core a second time with the CLI's flags, and take
# those objects from the cache instead (about 6 and 4 CPU-minutes less). Results do not depend on it. The environment reaches
# every CMake configure of the run, the nested ones of the tests too; a launcher or cache directory
# set by the caller is kept.
./scripts/install-deps.sh
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
  export CCACHE_DIR=${CCACHE_DIR:-$PWD/build/ccache}
fi
./scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
