#!/bin/bash
# Submits N shards as a job array and the merge that runs once they have all succeeded.
#   examples/slurm/submit-shards.sh 16
# A shard stopped by the time limit fails its task, so that merge never starts: resubmit the
# stopped tasks and the merge after them (the job id is what sbatch prints):
#   SHARDS=16 sbatch --parsable --array=K,... examples/slurm/shards.sbatch
#   sbatch --dependency=afterok:JOBID examples/slurm/merge.sbatch
set -euo pipefail
N=${1:?usage: submit-shards.sh N (the number of shards)}
here=$(dirname "$0")
array=$(sbatch --parsable --export=ALL,SHARDS="$N" --array=0-$((N - 1)) "$here/shards.sbatch")
sbatch --dependency=afterok:"$array" "$here/merge.sbatch"
