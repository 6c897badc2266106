#!/usr/bin/env bash
# `srun` on a one-machine Slurm: starts munged, slurmctld and slurmd (Debian's slurm-wlm and munge,
# a private configuration in a temporary directory), runs MPI jobs of sgdwalk with
# `srun --mpi=pmix` and checks that their results.h5 equal a single run's, byte for byte:
#   1. srun -n 2 sgdwalk run;
#   2. srun -n 2 sgdwalk run stopped by `scancel --signal=TERM` (SIGTERM to every task, what
#      Slurm sends before a time limit with --signal=TERM@T), then srun -n 3 --overcommit resume;
#   3. srun --mpi=pmi2 (expected to fail with Debian's Open MPI, which is built with PMIx only).
# Stops every daemon it started when it ends. Not a ctest: it needs root and starts daemons.
#   scripts/check-srun-local.sh [BUILD_DIR]     (needs: apt-get install slurm-wlm munge)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
sgdwalk=$build/sgdwalk
[ "$(id -u)" -eq 0 ] || { echo "check-srun-local: needs root (starts slurmd)" >&2; exit 1; }
for tool in slurmctld slurmd munged srun; do
  command -v "$tool" >/dev/null ||
    { echo "check-srun-local: $tool missing: apt-get install slurm-wlm munge" >&2; exit 1; }
done
"$sgdwalk" info | grep -q '^mpi: built' || { echo "check-srun-local: $sgdwalk has no MPI" >&2; exit 1; }

work=$(mktemp -d /tmp/sgdwalk-srun.XXXXXX)
started=()
stop_daemons() {
  local pid
  # Jobs first (a step's slurmstepd outlives slurmd), then the daemons.
  if [ -n "${SLURM_CONF:-}" ] && [ ${#started[@]} -ge 3 ]; then
    scancel --full --quiet --user=root 2>/dev/null || true
    for _ in $(seq 30); do
      [ -z "$(squeue -h 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${started[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
trap 'stop_daemons; echo "check-srun-local: logs and runs in $work" >&2' EXIT

# munge: a private socket, key and log (a running system munged is left alone).
mkdir -p "$work/munge"
chown munge:munge "$work/munge" 2>/dev/null || true
[ -f /etc/munge/munge.key ] || { echo "check-srun-local: /etc/munge/munge.key missing" >&2; exit 1; }
socket=$work/munge/munge.socket
munged --force --socket="$socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed"
sleep 1
started+=("$(cat "$work/munge/munged.pid")")

node=$(hostname)
cpus=$(nproc)
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<EOF
ClusterName=sgdwalk-check
SlurmctldHost=$node
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=16917
SlurmdPort=16918
MpiDefault=none
ReturnToService=2
NodeName=$node CPUs=$cpus State=UNKNOWN
PartitionName=check Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
slurmctld
sleep 1
started+=("$(cat "$work/slurmctld.pid")")
slurmd
sleep 2
started+=("$(cat "$work/slurmd.pid")")
for _ in $(seq 30); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo
srun --mpi=list

# As in the tests: shared memory and loopback only (containers forbid cross-memory attach).
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMP_NUM_THREADS=1
cd "$work"
cat > config.toml <<'TOML'
[run]
walkers = 37
steps = 2000
seed = 31
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
learning_rate = 0.05
[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]
[observables]
sample_every = 500
per_walker = true
[observables.first_passage]
target = "flat"
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 20
window = [100, 2000]
every = 4
[sweep]
noise_strength = [0.01, 0.2, 0.6]
TOML
"$sgdwalk" run config.toml --backend cpu -q --out single

echo "== 1. srun -n 2 --mpi=pmix sgdwalk run"
srun -n 2 --mpi=pmix "$sgdwalk" run config.toml --backend cpu --threads 1 -q --out srun2
cmp single/results.h5 srun2/results.h5
echo "srun -n 2: results.h5 equals the single run's"

echo "== 2. scancel --signal=TERM to srun -n 2, then srun -n 3 --overcommit sgdwalk resume"
SGDWALK_TEST_SEGMENT_DELAY_MS=20 srun -n 2 --mpi=pmix --job-name=sgdwalk-stop "$sgdwalk" run \
  config.toml --backend cpu --threads 1 --segment-steps 10 --batch-walkers 10 --out stopped \
  > stopped.log 2>&1 &
srun_pid=$!
for _ in $(seq 600); do
  # More than the 64-byte header: part 0 has finished walkers.
  [ "$(stat -c %s stopped/parts/0-of-2/walkers.bin 2>/dev/null || echo 0)" -gt 64 ] && break
  sleep 0.1
done
scancel --signal=TERM --name=sgdwalk-stop
status=0
wait "$srun_pid" || status=$?
cat stopped.log
[ "$status" -ne 0 ] || { echo "check-srun-local: the job finished before SIGTERM" >&2; exit 1; }
grep -q "interrupted by SIGTERM" stopped.log
grep -q '"partial": true' stopped/summary.json
ls stopped/parts/*/checkpoint.bin stopped/results.h5
srun -n 3 --overcommit --mpi=pmix "$sgdwalk" resume stopped --backend cpu --threads 1 -q
cmp single/results.h5 stopped/results.h5
echo "SIGTERM + resume with 3 ranks: results.h5 equals the single run's"

echo "== 3. srun --mpi=pmi2 (Debian's Open MPI has no Slurm PMI-2 support)"
if srun -n 2 --mpi=pmi2 "$sgdwalk" run config.toml --backend cpu --threads 1 -q --out pmi2 \
  > pmi2.log 2>&1; then
  cmp single/results.h5 pmi2/results.h5
  echo "srun --mpi=pmi2 works here too"
else
  grep -m1 -i "PMI support\|OPAL ERROR" pmi2.log || tail -3 pmi2.log
  echo "srun --mpi=pmi2 does not start MPI here (use --mpi=pmix)"
fi
echo "check-srun-local: passed"
