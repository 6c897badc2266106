#!/usr/bin/env bash
# Every test source with a case that needs a GPU (SGDWALK_BACKEND_OR_SKIP) builds a binary that
# the GPU kit carries (scripts/gpu-bundle.sh, cuda_tests), and every binary the kit carries
# exists: otherwise a GPU run of the kit passes without ever running that case (the FFS backend
# tests lived in test_ffs, which the kit did not carry, until 2026-12-05).
#
#   tests/test_gpu_kit_carries_gpu_tests.sh REPO
set -euo pipefail
repo=${1:?usage: test_gpu_kit_carries_gpu_tests.sh REPO}
kit_line=$(grep -E '^cuda_tests=\(' "$repo/scripts/gpu-bundle.sh") ||
  { echo "FAIL: no cuda_tests=(...) line in scripts/gpu-bundle.sh" >&2; exit 1; }
read -r -a carried <<<"$(sed -E 's/^cuda_tests=\((.*)\)$/\1/' <<<"$kit_line")"
[ ${#carried[@]} -gt 0 ] || { echo "FAIL: cuda_tests is empty" >&2; exit 1; }
status=0
for binary in "${carried[@]}"; do
  if [ ! -f "$repo/tests/$binary.cpp" ]; then
    echo "FAIL: the kit carries $binary, but tests/$binary.cpp does not exist" >&2
    status=1
  fi
done
needs_gpu=$(grep -l 'SGDWALK_BACKEND_OR_SKIP' "$repo"/tests/test_*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
for binary in $needs_gpu; do
  if [[ " ${carried[*]} " != *" $binary "* ]]; then
    echo "FAIL: tests/$binary.cpp has GPU cases (SGDWALK_BACKEND_OR_SKIP) but the kit does not" \
      "carry $binary: add it to cuda_tests in scripts/gpu-bundle.sh (it must name no path of the" \
      "build machine) or move the cases into a binary the kit carries" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "the kit carries every test binary with GPU cases: ${carried[*]}"
exit $status
