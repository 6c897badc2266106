#!/bin/bash
# Submits N shards as a job array and the merge that runs once they have all succeeded.
#   examples/slurm/submit-shards.sh 16
set -euo pipefail
N=${1:?usage: submit-shards.sh N (the number of shards)}
here=$(dirname "$0")
array=$(sbatch --parsable --array=0-$((N - 1)) "$here/shards.sbatch")
sbatch --dependency=afterok:"$array" "$here/merge.sbatch"
