#!/usr/bin/env bash
# Regenerates docs/figures/ffs_sharp_to_flat_2d_arrhenius.{png,md}: the sharp -> flat escape rate
# on the FULL 2-D two-valley landscape by forward flux sampling, against brute force and the
# adiabatic guide (docs/VALIDATION.md section 10, "The full 2-D landscape"):
#   scripts/ffs-sharp-to-flat-2d.sh [SGDWALK_BINARY] [RUNS_DIR]
# (defaults: build/sgdwalk, which scripts/build.sh or the README's presets make, and
# runs/validation, relative to the repository root). Plots with Debian's /usr/bin/python3 (numpy,
# matplotlib: scripts/install-deps.sh). 2e9 walker-steps of brute force and 1e9 of FFS: about
# 2 CPU-minutes. SGDWALK_THREADS sets the thread count (default: all cores); results do not
# depend on it. docs/figures/regenerate.sh calls this script too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sgdwalk=${1:-build/sgdwalk}
runs=${2:-runs/validation}
threads=${SGDWALK_THREADS:-0}
mkdir -p "$runs"
for name in escape_rates_sharp_to_flat_2d ffs_sharp_to_flat_2d; do
  /usr/bin/time -f "$name: %U s user CPU, %e s wall" \
    "$sgdwalk" run "examples/$name.toml" --out "$runs/$name" --backend cpu --threads "$threads" \
    --force -q
done
PYTHONPATH=python /usr/bin/python3 -m sgdwalk_plot.rare_events "$runs/ffs_sharp_to_flat_2d" \
  --brute-force "$runs/escape_rates_sharp_to_flat_2d" --out docs/figures --formats png -q
