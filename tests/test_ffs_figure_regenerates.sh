#!/usr/bin/env bash
# Issue 18's "the example and its figure regenerate from a fresh clone": runs
# examples/ffs_sharp_to_flat.toml and the brute-force run it is plotted with
# (examples/small/escape_rates_sharp_to_flat.toml) on the CPU backend, draws the Arrhenius plot as
# docs/figures/regenerate.sh does, and requires its table (every rate, error, walker-step count and
# theory value) to equal the committed docs/figures/ffs_sharp_to_flat_arrhenius.md byte for byte.
# The PNG is drawn too but not compared (its bytes depend on the matplotlib version).
#   tests/test_ffs_figure_regenerates.sh SGDWALK_BINARY SOURCE_DIR SCRATCH_DIR PYTHON
set -euo pipefail
sgdwalk=$1 source=$2 scratch=$3 python=$4
rm -rf "$scratch"
mkdir -p "$scratch/figures"
cd "$source"
"$sgdwalk" run examples/small/escape_rates_sharp_to_flat.toml --out "$scratch/brute" --backend cpu -q
"$sgdwalk" run examples/ffs_sharp_to_flat.toml --out "$scratch/ffs" --backend cpu -q
PYTHONPATH=python MPLBACKEND=Agg "$python" -m sgdwalk_plot.rare_events "$scratch/ffs" \
  --brute-force "$scratch/brute" --out "$scratch/figures" --formats png -q
test -s "$scratch/figures/ffs_sharp_to_flat_arrhenius.png" || {
  echo "FAIL: no figure drawn" >&2
  exit 1
}
if ! diff -u docs/figures/ffs_sharp_to_flat_arrhenius.md "$scratch/figures/ffs_sharp_to_flat_arrhenius.md"; then
  echo "FAIL: the regenerated table differs from docs/figures/ffs_sharp_to_flat_arrhenius.md" >&2
  exit 1
fi
echo "ffs_sharp_to_flat: the example and its figure regenerate; the table equals the committed one"
