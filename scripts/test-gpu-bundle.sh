#!/usr/bin/env bash
# The GPU kit checked on a CPU machine (a ctest runs this): builds the bundle with
# scripts/gpu-bundle.sh, unpacks it into an unrelated directory, and runs its binaries there: they
# load (every shared library resolves from the bundle or the system), `sgdwalk info` answers, a
# short CPU run writes its results, the CUDA tests skip visibly without a device (or pass with one),
# and scripts/gpu-check.sh unpacks the bundle and writes its device report.
#
#   scripts/test-gpu-bundle.sh BUILD_DIR [CMAKE_ARG...]
#
# The kit's packaging is what this test checks, so one landscape's kernels stand for all, and the
# CMake arguments (ctest passes the main build's compiler, CMAKE_CXX_FLAGS and SGDWALK_NATIVE)
# replace the kit's portable host flags: the host objects are then the main build's, which the
# compiler cache scripts/test.sh sets up already holds (the main build compiles every landscape's
# kernels and the optimised host code; compiling them again here would only lengthen CI). What the
# portable flags change is checked on its own below.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${1:?usage: scripts/test-gpu-bundle.sh BUILD_DIR [CMAKE_ARG...]}
shift
bundle_dir=$(realpath -m "$build")/bundle-out
scripts/gpu-bundle.sh "$build" "$bundle_dir" -DSGDWALK_CUDA_LANDSCAPES=TwoValley \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@"

# The kit's own -march=x86-64-v3 selects the CPU backend's AVX2 paths, which a build for an
# AVX-512 machine does not compile: the one source that reads the target's macros
# (host/cpu/cpu_backend.cpp) is compiled with it, without code generation (seconds, not minutes).
portable_check=$(/usr/bin/python3 - "$build/compile_commands.json" <<'PY'
import json, re, shlex, sys
for entry in json.load(open(sys.argv[1])):
    if entry["file"].endswith("host/cpu/cpu_backend.cpp"):
        command = re.sub(r" -o \S+", "", entry["command"]).replace(" -c ", " ")
        print(f"cd {shlex.quote(entry['directory'])} && {command} -march=x86-64-v3 -fsyntax-only")
        break
PY
)
[ -n "$portable_check" ] || { echo "test-gpu-bundle: FAIL: no compile command for cpu_backend.cpp" >&2; exit 1; }
(eval "$portable_check") || { echo "test-gpu-bundle: FAIL: cpu_backend.cpp with -march=x86-64-v3" >&2; exit 1; }
echo "test-gpu-bundle: host/cpu/cpu_backend.cpp compiles with -march=x86-64-v3"

elsewhere=$(mktemp -d /tmp/sgdwalk-bundle-test.XXXXXX)
trap 'rm -rf "$elsewhere"' EXIT
tar -xJf "$bundle_dir/sgdwalk-gpu-bundle.tar.xz" -C "$elsewhere"
cd "$elsewhere"
bin=$elsewhere/sgdwalk-gpu-bundle/bin
fail() { echo "test-gpu-bundle: FAIL: $*" >&2; exit 1; }

for binary in "$bin"/*; do
  if ldd "$binary" | grep -v libcurand | grep -q "not found"; then
    ldd "$binary" >&2
    fail "$(basename "$binary") has unresolved shared libraries"
  fi
  # The bundle must not depend on the build directory or the checkout it came from: neither may
  # appear except as labels in the device line tables: the directories and sources of cuda/ and
  # include/sgdwalk/ (the registries' subfolders too), and the per-landscape sources that
  # cuda/CMakeLists.txt generates in the build directory (nvcc keeps the compiled file's own path
  # in the device line tables; -ffile-prefix-map does not reach them). The strings are read whole
  # first: a `strings | grep -q` pipeline under pipefail fails with SIGPIPE exactly when it matches.
  text=$(strings "$binary")
  generated="^$(realpath -m "$build")/cuda/generated/advance_[0-9]+_[A-Za-z0-9_]+\.cu\$"
  stray=$(grep -F "$(realpath -m "$build")" <<<"$text" | grep -vE "$generated" || true)
  if [ -n "$stray" ]; then
    echo "$stray" >&2
    fail "$(basename "$binary") contains the build directory path"
  fi
  stray=$(grep -F "$repo" <<<"$text" | grep -vE "^$repo/(cuda|include/sgdwalk)(/[a-z0-9_]+)*(\.(cu|cuh|hpp))?\$" |
    grep -vE "$generated" || true)
  if [ -n "$stray" ]; then
    echo "$stray" >&2
    fail "$(basename "$binary") names the checkout outside the device line tables"
  fi
done

"$bin/sgdwalk" info | tee info.txt
grep -q "^backends: cpu" info.txt || fail "sgdwalk info does not list the CPU backend"

"$bin/sgdwalk" run --backend cpu --threads 1 --out run --force >run.log 2>&1 || { cat run.log; fail "short CPU run"; }
[ -s run/summary.json ] && [ -s run/results.h5 ] || fail "the CPU run wrote no results"

export SGDWALK_SOURCE_DIR=$repo
for test in "$bin"/test_*; do
  name=$(basename "$test")
  "$test" --gtest_brief=1 >"$name.log" 2>&1 || { cat "$name.log"; fail "$name"; }
  if [ "$("$bin/sgdwalk" info | grep -c '^default backend here: cuda')" -eq 0 ] &&
     [ "$name" != test_cuda_schedule ]; then
    grep -q "SKIPPED" "$name.log" || { cat "$name.log"; fail "$name did not skip visibly without a GPU"; }
    grep -q "unavailable here" "$name.log" || fail "$name does not say why it skips"
  fi
  echo "test-gpu-bundle: $name: $(grep -E '^\[  (PASSED|SKIPPED) ' "$name.log" | tr '\n' ' ')"
done

# sgdwalk_bench: a clear message and exit status 2 for a backend that cannot run here or a bad
# list, never an abort.
has_gpu=$("$bin/sgdwalk" info | grep -c '^default backend here: cuda' || true)
set +e
"$bin/sgdwalk_bench" --backend cuda --landscapes double_well --noises isotropic --precisions float \
  --observables off --walkers 1e3 --steps 10 --repeats 1 >bench.log 2>&1
status=$?
"$bin/sgdwalk_bench" --backend cpu --walkers 1e3,lots >bad.log 2>&1
bad_status=$?
set -e
if [ "$has_gpu" -eq 0 ]; then
  [ $status -eq 2 ] && grep -q "no usable CUDA device" bench.log ||
    { cat bench.log; fail "sgdwalk_bench --backend cuda without a device: exit $status"; }
else
  [ $status -eq 0 ] || { cat bench.log; fail "sgdwalk_bench --backend cuda: exit $status"; }
fi
[ $bad_status -eq 2 ] && grep -q "'1e3,lots' is not a comma-separated list" bad.log ||
  { cat bad.log; fail "sgdwalk_bench --walkers 1e3,lots: exit $bad_status"; }

# The GPU machine's entry point, as far as it goes here: unpack, report, no missing library.
GPU_CHECK_STEPS=device GPU_BUNDLE="$bundle_dir/sgdwalk-gpu-bundle.tar.xz" \
  "$repo/scripts/gpu-check.sh" "$elsewhere/check" || fail "gpu-check.sh device step"
grep -q "sgdwalk GPU bundle" "$elsewhere/check/device.log" || fail "gpu-check.sh wrote no device report"
echo "test-gpu-bundle: PASS"
