#!/usr/bin/env bash
# Forward flux sampling against brute force (issue 18): walker-steps and wall time of an FFS rate
# of the 1-D double well (isotropic noise, eta = 0.01, barrier beta Delta_S for beta = 10, 20, 30,
# 40) on the CPU backend, and the brute-force cost to reach the same relative error:
# measured at beta = 10 (a first-passage run), extrapolated from the rate elsewhere as
# 1/(err^2 k) walker-steps (each escape is one Poisson count) at the measured brute-force
# throughput.   bench/ffs_cost.sh [SGDWALK_BINARY] [WORK_DIR]
set -euo pipefail
sgdwalk=${1:-build/sgdwalk}
work=${2:-runs/bench_ffs}
mkdir -p "$work"
ms=-0.816496580927726   # the sharp minimum -sqrt(2/1.5)
for beta in 10 20 30 40; do
  python3 - "$beta" "$ms" > "$work/ffs_$beta.toml" <<'PY'
import math, sys
beta, ms = float(sys.argv[1]), float(sys.argv[2])
ds = 1 / beta; sd = math.sqrt(ds / 1.5)
print(f"""[run]
name = "ffs_beta{beta:g}"
walkers = 256
steps = 10000
seed = 11
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = 0.01
temperature = {ds}
[init]
positions = [{ms}]
[rare_event]
method = "ffs"
order_parameter = "x"
lambda_A = {ms + 0.5 * sd}
lambda_0 = {ms + 1.5 * sd}
lambda_B = 0.2
crossing_probability = 0.25
trials = 2000
replicas = 4
equilibration_steps = 2000""")
PY
  start=$(date +%s.%N)
  "$sgdwalk" run "$work/ffs_$beta.toml" --out "$work/ffs_$beta" --backend cpu --force -q 2>/dev/null
  end=$(date +%s.%N)
  echo "$beta $(echo "$end - $start" | bc)" >> "$work/ffs_times.txt"
done
# Brute force at beta = 10: 4096 walkers x 5e5 steps (2e9 walker-steps), first passage to x >= 0.2.
cat > "$work/brute_10.toml" <<EOF2
[run]
name = "brute_beta10"
walkers = 4096
steps = 500000
seed = 11
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = 0.01
temperature = 0.1
[init]
positions = [$ms]
[observables]
sample_steps = [0]
first_passage = {coordinate = 0, above = 0.2}
EOF2
start=$(date +%s.%N)
"$sgdwalk" run "$work/brute_10.toml" --out "$work/brute_10" --backend cpu --force -q
end=$(date +%s.%N)
echo "brute $(echo "$end - $start" | bc)" >> "$work/ffs_times.txt"
python3 - "$work" <<'PY'
import json, sys, os
work = sys.argv[1]
times = {}
for line in open(os.path.join(work, "ffs_times.txt")):
    k, t = line.split(); times[k] = float(t)
b = json.load(open(os.path.join(work, "brute_10", "summary.json")))["variants"][0]
fp = b["first_passage"]
exposure_steps = fp["arrived"] / fp["rate"] / 0.01
brute_rate_step = fp["rate"] * 0.01
brute_err = 1 / fp["arrived"] ** 0.5
throughput = 4096 * 5e5 / times["brute"]   # walker-steps per second of the whole run
print(f"brute force beta=10: {fp['arrived']} escapes, rate {brute_rate_step:.4g}/step +- {brute_err:.3f} rel, "
      f"{4096*5e5:.3g} walker-steps in {times['brute']:.1f} s ({throughput:.3g} walker-steps/s)")
print("| barrier | FFS rate per step | rel. error (replica s.e.) | AFtW rel. | FFS walker-steps | FFS wall s | brute-force walker-steps for that error | brute-force time at the measured throughput | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for beta in (10, 20, 30, 40):
    v = json.load(open(os.path.join(work, f"ffs_{beta}", "summary.json")))["rare_events"]["variants"][0]
    k, se, aftw, cost = v["rate_per_step"], v["rate_per_step_std_error"], v["rate_relative_error_aftw"], v["walker_steps"]
    err = max(se / k, aftw)
    brute = 1 / (err * err * k)
    t = brute / throughput
    years = t / 3.15e7
    print(f"| {beta} Δ_S | {k:.4g} | {se/k:.3f} | {aftw:.3f} | {cost:.3g} | {times[str(beta)]:.1f} | {brute:.3g} | "
          f"{t:.3g} s ({years:.2g} years) | {brute/cost:.2g} |")
PY
