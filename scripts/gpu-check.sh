#!/usr/bin/env bash
# The one command on a GPU machine: verifies and measures the CUDA backend from the bundle that
# scripts/gpu-bundle.sh built on a CPU machine (the GPU machine has no -dev packages and no
# network). Run from the repository root, with gpu-bundle/ present:
#
#   scripts/gpu-check.sh OUTDIR            # every step; all logs and JSON go to OUTDIR
#   GPU_CHECK_STEPS="tests bench" scripts/gpu-check.sh OUTDIR    # only some steps
#
# Steps (each with its own timeout; the whole script ends within about 8 minutes on an H200):
#   device    nvidia-smi, driver, the bundle's manifest, missing shared libraries
#   tests     every CUDA test with SGDWALK_REQUIRE_GPU=1 (a skip is a failure)
#   examples  every example config (64 walkers per variant) on the CPU and on the GPU: equal
#             summary.json but for provenance (scripts/compare-backends.py)
#   phase     examples/paper_phase_diagram.toml end to end on the GPU, timed (start-up and files)
#   bench     sgdwalk_bench: two_valley hessian, float and double; observables off (1e6..1e9
#             walkers) and on (1e6, 1e7)
#   fine      examples/fine_phase_diagram.toml end to end (1600 variants, 3.2e11 walker-steps), timed
#   scale     a driver run with every observable at GPU_CHECK_SCALE_WALKERS (default 3e8) walkers,
#             several batches with streamed statistics: wall time and peak host memory
#   sanitizer compute-sanitizer memcheck and racecheck on a small run; memcheck on a small Adam run
#             with a schedule and alpha-stable noise, and on a small FFS run with momentum
#   compare   bench/compare's GPU contestants with this machine's python3 (torch, jax, CuPy)
# No step runs past the script's budget (GPU_CHECK_BUDGET seconds, default 450): a step that would
# is cut to what is left, and one that finds no time left is skipped and counted as failed.
# The exit status is the number of failed steps (0: all passed). OUTDIR/summary.txt lists them.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
steps=${GPU_CHECK_STEPS:-"device tests examples sanitizer bench phase fine scale compare"}
bundle_archive=${GPU_BUNDLE:-$repo/gpu-bundle/sgdwalk-gpu-bundle.tar.xz}
summary=$out/summary.txt
: >"$summary"
failures=0
script_start=$(date +%s)
budget=${GPU_CHECK_BUDGET:-450}

note() { echo "[gpu-check $(($(date +%s) - script_start))s] $*" | tee -a "$summary"; }

# run_step NAME TIMEOUT_SECONDS COMMAND...: runs a step with its own timeout and log.
run_step() {
  local name=$1 limit=$2
  shift 2
  local start status
  start=$(date +%s)
  local left=$((budget - (start - script_start)))
  if [ "$left" -lt 15 ]; then
    note "SKIP $name: the budget of ${budget}s is spent"
    failures=$((failures + 1))
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (timeout ${limit}s): $*" | tee -a "$out/$name.log"
  timeout --kill-after=10 "$limit" "$@" >>"$out/$name.log" 2>&1
  status=$?
  local took=$(($(date +%s) - start))
  if [ $status -eq 0 ]; then
    note "PASS $name (${took}s)"
  else
    [ $status -eq 124 ] && note "TIMEOUT $name after ${limit}s" || note "FAIL $name: exit $status (${took}s)"
    failures=$((failures + 1))
    tail -n 40 "$out/$name.log"
  fi
  return 0
}

wants() { [[ " $steps " == *" $1 "* ]]; }

# ---- the bundle ----------------------------------------------------------------------------------
if [ ! -f "$bundle_archive" ]; then
  echo "gpu-check: no bundle at $bundle_archive: run scripts/gpu-bundle.sh on a CPU machine first" >&2
  exit 2
fi
work=$(mktemp -d /tmp/sgdwalk-gpu-check.XXXXXX)
tar -xJf "$bundle_archive" -C "$work" || { echo "gpu-check: cannot unpack $bundle_archive" >&2; exit 2; }
bin=$work/sgdwalk-gpu-bundle/bin
# The bundle's own libraries first (RPATH $ORIGIN/../lib says so too), then the machine's CUDA
# toolkit for libcurand (the tests' host oracle; too large to carry).
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$dir" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"
done
export SGDWALK_SOURCE_DIR=$repo  # test data (golden normals, examples) from this checkout
export SGDWALK_REQUIRE_GPU=1
cp "$work/sgdwalk-gpu-bundle/MANIFEST" "$out/" 2>/dev/null

if wants device; then
  {
    date -u
    nvidia-smi || true
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm --format=csv || true
    echo "--- CPU: $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo)"
    echo "--- manifest"
    cat "$work/sgdwalk-gpu-bundle/MANIFEST"
    echo "--- shared libraries the loader cannot resolve (none listed: all resolved)"
    for binary in "$bin"/*; do ldd "$binary" | grep "not found" | sed "s|^|$(basename "$binary"): |"; done
    "$bin/sgdwalk" info
  } >"$out/device.log" 2>&1
  note "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  grep -q "=> not found" "$out/device.log" && { note "FAIL device: missing shared libraries (device.log)"; failures=$((failures + 1)); }
fi

if wants tests; then
  # 200 s per run: a binary cut short writes no JSON at all, so test_backend_equivalence (~700
  # tests: every landscape, every optimizer × noise, the dense-deposit and checkpoint tests)
  # runs in two halves, its optimizer cases apart, each with its own limit and report.
  for test in "$bin"/test_*; do
    name=$(basename "$test")
    if [ "$name" = test_backend_equivalence ]; then
      run_step "$name-optimizers" 200 "$test" --gtest_brief=1 --gtest_filter='cuda_optimizers/*' \
        --gtest_output="json:$out/$name-optimizers.json"
      run_step "$name-rest" 200 "$test" --gtest_brief=1 --gtest_filter='-cuda_optimizers/*' \
        --gtest_output="json:$out/$name-rest.json"
    else
      run_step "$name" 200 "$test" --gtest_brief=1 --gtest_output="json:$out/$name.json"
    fi
  done
fi

if wants examples; then
  run_step examples 150 python3 -u scripts/compare-backends.py "$bin/sgdwalk" examples \
    "$work/examples" --backends cpu,cuda
fi

if wants bench; then
  # Quiet steps (no observables) up to 1e9 walkers; with every observable to 1e7 (the host still
  # summarises per-walker sample values, which takes longer than the GPU's steps at 1e8).
  run_step bench-quiet 150 "$bin/sgdwalk_bench" --backend cuda --landscapes two_valley \
    --noises hessian --precisions float,double --observables off \
    --walkers "${GPU_CHECK_BENCH_WALKERS:-1e6,1e7,1e8,1e9}" --steps "${GPU_CHECK_BENCH_STEPS:-200}" \
    --repeats 1 --json "$out/bench-quiet.json"
  run_step bench-observed 90 "$bin/sgdwalk_bench" --backend cuda --landscapes two_valley \
    --noises hessian --precisions float,double --observables on \
    --walkers "${GPU_CHECK_BENCH_OBSERVED_WALKERS:-1e6,1e7}" --steps "${GPU_CHECK_BENCH_STEPS:-200}" \
    --repeats 1 --json "$out/bench-observed.json"
fi

if wants phase; then
  start_ns=$(date +%s%N)
  run_step phase 90 "$bin/sgdwalk" run examples/paper_phase_diagram.toml --out "$work/phase" \
    --backend cuda --force
  note "phase diagram end to end: $(((($(date +%s%N) - start_ns) / 1000000)))ms wall"
  cp "$work/phase/summary.json" "$out/phase-summary.json" 2>/dev/null
fi

if wants fine; then
  start_ns=$(date +%s%N)
  run_step fine 90 "$bin/sgdwalk" run examples/fine_phase_diagram.toml --out "$work/fine" \
    --backend cuda --force
  note "fine phase diagram end to end: $(((($(date +%s%N) - start_ns) / 1000000)))ms wall"
  cp "$work/fine/summary.json" "$out/fine-summary.json" 2>/dev/null
fi

if wants scale; then
  # Host memory must stay bounded by the batch, not the walker count (issue 12): the peak resident
  # set of the run is read from the kernel after it ends.
  scale_walkers=${GPU_CHECK_SCALE_WALKERS:-3e8}
  cat >"$out/scale.toml" <<EOF
[run]
name = "scale"
walkers = $(python3 -c "print(int(float('$scale_walkers')))")
steps = 200
seed = 12
precision = "float"
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
learning_rate = 0.05
noise_strength = 0.05
[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]
[observables]
sample_every = 50
[observables.first_passage]
target = "flat"
[[observables.histogram]]
x_range = [-3.0, 3.0]
bins = 64
window = [100, 200]
every = 10
EOF
  start_ns=$(date +%s%N)
  run_step scale 120 python3 -c '
import resource, subprocess, sys
status = subprocess.run(sys.argv[1:]).returncode
print("peak host memory (max RSS): %.0f MiB" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
sys.exit(status)' "$bin/sgdwalk" run "$out/scale.toml" --out "$work/scale" --backend cuda --force
  note "scale run ($scale_walkers walkers x 200 steps, every observable): $(((($(date +%s%N) - start_ns) / 1000000)))ms wall; $(grep -h '^peak host memory' "$out/scale.log")"
  cp "$work/scale/summary.json" "$out/scale-summary.json" 2>/dev/null
fi

# A small run for the sanitizers: every observable, a few launches.
small=$out/sanitizer.toml
cat >"$small" <<'EOF'
[run]
walkers = 3000
steps = 400
seed = 3
precision = "float"
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
learning_rate = 0.05
noise_strength = 0.05
[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]
[observables]
sample_every = 50
[observables.first_passage]
target = "flat"
[[observables.histogram]]
x_range = [-3.0, 3.0]
bins = 64
window = [200, 400]
every = 1
[sweep]
noise_strength = [0.02, 0.05]
EOF
# The stateful kernel (Adam, a warmup + cosine schedule: the step table) with alpha-stable noise,
# and forward flux sampling with momentum (the FFS kernels): memcheck only (the shared-memory
# code racecheck looks at is the plain run's).
sed -e 's/^noise_strength = 0.05$/noise_strength = 0.05\noptimizer = "adam"\nnoise_distribution = "alpha_stable"\nalpha = 1.5/' \
  -e 's/^\[init\]$/[dynamics.learning_rate_schedule]\nkind = "cosine"\nwarmup_steps = 20\nfloor = 0.1\n[init]/' \
  "$small" >"$out/sanitizer-stateful.toml"
cat >"$out/sanitizer-ffs.toml" <<'EOF'
[run]
walkers = 64
steps = 3000
seed = 5
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
optimizer = "momentum"
momentum = 0.5
learning_rate = 0.02
noise_strength = 2.5
[init]
positions = [-1.1547005383792515]
[rare_event]
method = "ffs"
order_parameter = "x"
lambda_A = -1.0
interfaces = [-0.8, -0.5, -0.2, 0.2]
trials = 100
replicas = 1
EOF
if wants sanitizer; then
  if command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck; do
      run_step "sanitizer-$tool" 90 compute-sanitizer --tool "$tool" --error-exitcode 3 \
        "$bin/sgdwalk" run "$small" --out "$work/sanitizer-$tool" --backend cuda --force
    done
    for config in stateful ffs; do
      run_step "sanitizer-memcheck-$config" 90 compute-sanitizer --tool memcheck --error-exitcode 3 \
        "$bin/sgdwalk" run "$out/sanitizer-$config.toml" --out "$work/sanitizer-$config" \
        --backend cuda --force
    done
  else
    note "SKIP sanitizer: compute-sanitizer not found"
  fi
fi

if wants compare; then
  run_step compare 150 python3 bench/compare --peer-python "$(command -v python3)" \
    --sgdwalk "$bin/sgdwalk" --quick --precisions float32 --max-walkers 1e3 --threads "$(nproc)" \
    --max-gpu-walkers "${GPU_CHECK_COMPARE_WALKERS:-1e7}" --timeout 100 --out-dir "$out" \
    --only torch-eager-cuda,torch-compile-cuda,jax-gpu,cupy-raw,cupy-elementwise
fi

note "done: $failures failed step(s) in $(($(date +%s) - script_start))s"
rm -rf "$work"
exit "$failures"
