#!/usr/bin/env bash
# Fuzzes the config parser and the checkpoint reader with libFuzzer (clang, ASan + UBSan).
#
#   scripts/fuzz.sh [SECONDS]     each target for SECONDS (default 60)
#
# Builds in build-fuzz (-DSGDWALK_FUZZ=ON), seeds from fuzz/corpus/<target>/ and writes new inputs
# to build-fuzz/fuzz/corpus/<target>/ (the source corpus is never modified) and crashes, leaks,
# timeouts and out-of-memory inputs to build-fuzz/fuzz/artifacts/. To keep an input as a
# regression test, copy it into fuzz/corpus/<target>/ (tests/test_fuzz_corpus.cpp replays every
# file there in the normal test suite), or merge the new coverage:
#   build-fuzz/fuzz/fuzz_config -merge=1 fuzz/corpus/config build-fuzz/fuzz/corpus/config
# `ctest -L fuzz` in build-fuzz runs the short fuzz runs (SGDWALK_FUZZ_SECONDS, default 25).
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/.."

packages=(clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "sgdwalk: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
./scripts/install-deps.sh

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSGDWALK_FUZZ=ON -DSGDWALK_TESTS=OFF -DSGDWALK_CUDA=OFF \
  -DSGDWALK_NATIVE=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_config fuzz_checkpoint

status=0
for target in config checkpoint; do
  work="build-fuzz/fuzz/corpus/$target"
  artifacts="build-fuzz/fuzz/artifacts"
  mkdir -p "$work" "$artifacts"
  echo "sgdwalk: fuzzing the $target reader for ${seconds}s" >&2
  dictionary=()
  if [ -f "fuzz/$target.dict" ]; then dictionary=(-dict="fuzz/$target.dict"); fi
  "build-fuzz/fuzz/fuzz_$target" "$work" "fuzz/corpus/$target" -max_total_time="$seconds" \
    -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 "${dictionary[@]}" \
    -artifact_prefix="$artifacts/$target-" || status=$?
done
if [ "$status" -ne 0 ]; then
  echo "sgdwalk: the fuzzer found a problem; see build-fuzz/fuzz/artifacts/" >&2
fi
exit "$status"
