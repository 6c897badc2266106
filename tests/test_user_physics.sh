#!/usr/bin/env bash
# Out-of-tree physics (docs/EXTENDING.md), as a user does it: configure a separate CPU-only build
# with -DSGDWALK_USER_PHYSICS=examples/user_physics/quartic_well.hpp, build the CLI and the generic
# registry tests, and check that the user's landscape is listed, passes the generic tests (its
# derivatives, description, config round trips and known stationary points) and runs its example
# config; and (with nvcc) that a CUDA build generates the user's kernels. The build has two
# landscapes, as a user developing one configures it (-DSGDWALK_LANDSCAPES=
# "DoubleWell;mylab::QuarticWell": a built-in one and the user's, 71 s to build against 114 s with
# every landscape): a config naming another is refused, naming the build, and a name that is no
# registry entry stops the configure.
# Usage: test_user_physics.sh SOURCE_DIR WORK_DIR [CMAKE_ARGS...]
set -euo pipefail
source_dir=$1
work_dir=$2
shift 2
header="$source_dir/examples/user_physics/quartic_well.hpp"
build="$work_dir/build"
mkdir -p "$work_dir"
configure=(cmake -S "$source_dir" -DCMAKE_BUILD_TYPE=Release -DSGDWALK_CUDA=OFF -DSGDWALK_MPI=OFF
  -DSGDWALK_PYTHON=OFF -DSGDWALK_USER_PHYSICS="$header" "$@")
# A name that is no registry entry stops the configure, naming the entries.
if "${configure[@]}" -B "$work_dir/bad-build" -DSGDWALK_LANDSCAPES="DoubleWell;mylab::QuarticWel" \
  > "$work_dir/bad-configure.log" 2>&1; then
  echo "configure accepted SGDWALK_LANDSCAPES=DoubleWell;mylab::QuarticWel"; exit 1
fi
grep -q "SGDWALK_LANDSCAPES: no landscape 'mylab::QuarticWel' in the registry" "$work_dir/bad-configure.log" ||
  { cat "$work_dir/bad-configure.log"; exit 1; }
grep -q "mylab::QuarticWell" "$work_dir/bad-configure.log" || { cat "$work_dir/bad-configure.log"; exit 1; }
# With nvcc, the CUDA sources generated for the user's landscape name it as registered (configure
# only: the kernels' compile takes half a minute; the generated source's static_asserts check the
# registry index when it is compiled).
"${configure[@]}" -B "$work_dir/cuda-build" -DSGDWALK_CUDA=AUTO \
  -DSGDWALK_LANDSCAPES="DoubleWell;mylab::QuarticWell" > "$work_dir/cuda-configure.log"
if grep -q "sgdwalk: CUDA backend ON" "$work_dir/cuda-configure.log"; then
  generated="$work_dir/cuda-build/cuda/generated"
  grep -q "SGDWALK_INSTANTIATE_ADVANCE_NOISE(float, mylab::QuarticWell<float>, " \
    "$generated/advance_1_mylab__QuarticWell.cu" || { ls "$generated"; exit 1; }
  grep -q "kHasKernels<mylab::QuarticWell<double>> = true" "$generated/cuda_kernels.hpp" ||
    { cat "$generated/cuda_kernels.hpp"; exit 1; }
  if ls "$generated" | grep -q TwoValley; then echo "kernels for a landscape left out"; exit 1; fi
  echo "CUDA sources generated for DoubleWell and mylab::QuarticWell"
else
  echo "no CUDA compiler: the CUDA sources of the user's landscape are not checked"
fi
"${configure[@]}" -B "$build" -DSGDWALK_LANDSCAPES="DoubleWell;mylab::QuarticWell" > "$work_dir/configure.log"
grep -q "user physics $header" "$work_dir/configure.log" || { echo "configure did not take the header"; exit 1; }
start=$(date +%s)
cmake --build "$build" -j"${SGDWALK_TEST_JOBS:-2}" --target sgdwalk test_registry > "$work_dir/build.log" 2>&1 ||
  { tail -50 "$work_dir/build.log"; exit 1; }
echo "built sgdwalk and test_registry in $(( $(date +%s) - start )) s"

"$build/sgdwalk" info --landscapes | grep "quartic_well (dimension 1)"
"$build/sgdwalk" info | grep -x 'landscapes: double_well, quartic_well (built with -DSGDWALK_LANDSCAPES="DoubleWell;mylab::QuarticWell")'
if "$build/sgdwalk" info --landscapes | grep -q "two_valley"; then
  echo "two_valley is listed by a build without it"; exit 1
fi
"$build/tests/test_registry" --gtest_brief=1
rm -rf "$work_dir/run" "$work_dir/default-run"
"$build/sgdwalk" run "$source_dir/examples/user_physics/quartic_well.toml" --out "$work_dir/run" --quiet
test -s "$work_dir/run/results.h5"
grep -q '"kind": "quartic_well"' "$work_dir/run/summary.json"
# The embedded default (two_valley) is not in this build: refused, naming the build.
if "$build/sgdwalk" run --out "$work_dir/default-run" --quiet > "$work_dir/default-run.log" 2>&1; then
  echo "a build without two_valley ran the embedded two_valley config"; exit 1
fi
grep -q 'landscape.kind.*"two_valley" is a landscape this sgdwalk was built without (configured with -DSGDWALK_LANDSCAPES="DoubleWell;mylab::QuarticWell")' \
  "$work_dir/default-run.log" || { cat "$work_dir/default-run.log"; exit 1; }
echo "quartic_well ran: $work_dir/run"
