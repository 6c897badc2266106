#!/usr/bin/env bash
# Tests the Python package as a user gets it: a virtual environment under the build directory,
# `pip install` of this checkout (the build requirements, runtime dependencies and pytest come from
# PyPI), then pytest against this build's CLI. Run by ctest (the python_package test), or by hand:
#   scripts/test-python.sh [BUILD_DIR]        (default: build; its sgdwalk CLI must be built)
# The extension is built once into BUILD_DIR/python-build and rebuilt incrementally after that.
# CPU backend only unless SGDWALK_CUDA says otherwise (nvcc adds minutes and the tests do not need
# it); SGDWALK_PYTHON picks the interpreter for the environment (default: python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
venv=$build/python-venv
if [ ! -x "$venv/bin/python" ]; then
  "${SGDWALK_PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install "scikit-build-core>=0.10" "nanobind>=2.0"
# The module is compiled by the CLI build's compiler (scikit-build-core would otherwise take
# Python's, e.g. g++ where CMake found c++: the same program, but a compiler cache keys on the name).
compiler=()
cli_compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if [ -n "$cli_compiler" ]; then
  compiler=("-Ccmake.define.CMAKE_CXX_COMPILER=$cli_compiler")
fi
SGDWALK_CUDA=${SGDWALK_CUDA:-OFF} CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  "${pip[@]}" install --no-build-isolation -Cbuild-dir="$build/python-build" "${compiler[@]}" \
  "$root[test]"
cd "$build"
SGDWALK_CLI=${SGDWALK_CLI:-$build/sgdwalk} "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$root/python/tests_package"
