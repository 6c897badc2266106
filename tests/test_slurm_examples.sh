#!/usr/bin/env bash
# Runs examples/slurm/ without Slurm, so the job scripts cannot rot: shards.sbatch as a job array of
# 3 (SLURM_ARRAY_TASK_ID/COUNT set here), merge.sbatch, and mpi.sbatch with `srun` standing for
# `mpirun -np 2`; both results.h5 must equal a single run's, byte for byte.
#   tests/test_slurm_examples.sh SGDWALK WORK_DIR [MPIEXEC]   (without MPIEXEC: no MPI part)
set -euo pipefail
sgdwalk=$1
work=$2
mpiexec=${3:-}
examples=$(cd "$(dirname "$0")/../examples/slurm" && pwd)
rm -rf "$work"
mkdir -p "$work/bin"
cd "$work"
cat > config.toml <<'TOML'
[run]
walkers = 30
steps = 200
seed = 5
[dynamics]
learning_rate = 0.05
[observables]
sample_every = 50
per_walker = true
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 12
window = [100, 200]
every = 5
[sweep]
noise_strength = [0.01, 0.3]
TOML
export CONFIG=config.toml SGDWALK=$sgdwalk OMP_NUM_THREADS=1
"$sgdwalk" run config.toml --backend cpu -q --out single

# Tasks 0 and 2 as the array runs them; task 1 as a resubmitted task runs (sbatch --array=1: an
# array of one, SLURM_ARRAY_TASK_COUNT=1), which must still be shard 1 of 3.
for k in 0 2; do
  SLURM_ARRAY_TASK_ID=$k SLURM_ARRAY_TASK_COUNT=3 SHARDS=3 RUN=runs/array BACKEND=cpu \
    bash "$examples/shards.sbatch"
done
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=1 SHARDS=3 RUN=runs/array BACKEND=cpu \
  bash "$examples/shards.sbatch"
# Without SHARDS the script refuses instead of guessing N from the array.
if SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=1 RUN=runs/guess BACKEND=cpu \
  bash "$examples/shards.sbatch" 2> guess.log; then
  echo "shards.sbatch ran without SHARDS" >&2
  exit 1
fi
grep -q "set SHARDS to the number of shards" guess.log
RUN=runs/array bash "$examples/merge.sbatch" > merge.log
cmp single/results.h5 runs/array/results.h5
echo "shards.sbatch + merge.sbatch: results.h5 equals the single run's"

if [ -n "$mpiexec" ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  # srun --mpi=pmix ARGS... -> mpirun -np 2 ARGS...
  printf '#!/bin/sh\nshift\nexec "%s" --oversubscribe -np 2 "$@"\n' "$mpiexec" > bin/srun
  chmod +x bin/srun
  PATH="$work/bin:$PATH" RUN=runs/mpi BACKEND=cpu bash "$examples/mpi.sbatch" > mpi.log 2>&1
  cmp single/results.h5 runs/mpi/results.h5
  echo "mpi.sbatch: results.h5 equals the single run's"
fi
