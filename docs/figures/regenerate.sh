#!/usr/bin/env bash
# Regenerates every figure and table of docs/VALIDATION.md on the CPU backend:
#   docs/figures/regenerate.sh [SGDWALK_BINARY] [RUNS_DIR]
# (defaults: build/sgdwalk and runs/validation, relative to the repository root). Each run is one
# `sgdwalk run` of an example config; each figure is one `python3 -m sgdwalk_plot` of its run
# directory (PNG into docs/figures, with the markdown tables next to them). Prints the CPU time of
# every run: about 4 minutes in all. SGDWALK_THREADS sets the thread count (default: all
# cores); results do not depend on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
sgdwalk=${1:-build/sgdwalk}
runs=${2:-runs/validation}
python=/usr/bin/python3   # Debian's python3 with numpy, h5py and matplotlib (not a pyenv/venv one)
threads=${SGDWALK_THREADS:-0}
configs=(
  examples/small/paper_phase_diagram.toml
  examples/small/paper_phase_diagram_hessian_squared.toml
  examples/p_flat_along_training.toml
  examples/small/freezing_point.toml
  examples/small/effective_potential.toml
  examples/small/escape_rates_sharp_to_flat.toml
  examples/small/escape_rates_flat_to_sharp.toml
  examples/small/isotropic_control.toml
  examples/heavy_tailed_escape.toml
)
mkdir -p "$runs"
for config in "${configs[@]}"; do
  name=$(basename "$config" .toml)
  /usr/bin/time -f "$name: %U s user CPU, %e s wall" \
    "$sgdwalk" run "$config" --out "$runs/$name" --backend cpu --threads "$threads" --force -q
  PYTHONPATH=python "$python" -m sgdwalk_plot "$runs/$name" --out docs/figures --formats png -q
done

# Forward flux sampling (VALIDATION.md section 10): the sharp -> flat escape to small noise, with
# the brute-force points of the escape_rates_sharp_to_flat run above (~1 CPU-minute).
/usr/bin/time -f "ffs_sharp_to_flat: %U s user CPU, %e s wall" \
  "$sgdwalk" run examples/ffs_sharp_to_flat.toml --out "$runs/ffs_sharp_to_flat" --backend cpu \
  --threads "$threads" --force -q
PYTHONPATH=python "$python" -m sgdwalk_plot.rare_events "$runs/ffs_sharp_to_flat" \
  --brute-force "$runs/escape_rates_sharp_to_flat" --out docs/figures --formats png -q

# The same escape on the full 2-D landscape (y drifts; VALIDATION.md section 10, "The full 2-D
# landscape"): brute force and FFS over the same window (~2 CPU-minutes).
scripts/ffs-sharp-to-flat-2d.sh "$sgdwalk" "$runs"

# The figures of issue 17 (VALIDATION.md sections 9, 11, 12 and 13: the alpha-stable generator and
# exit time, learning-rate decay freezing, momentum's exact variances and effective learning rate,
# the optimizers against numpy bit for bit): small fixed-seed runs of their own plus the examples
# momentum_effective_learning_rate and learning_rate_decay_freezing (~25 CPU-seconds).
/usr/bin/time -f "validation-figures-optimizers: %U s user CPU, %e s wall" \
  "$python" scripts/validation-figures-optimizers.py "$sgdwalk" "$runs/optimizers" docs/figures
