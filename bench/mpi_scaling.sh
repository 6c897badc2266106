#!/usr/bin/env bash
# Strong scaling of MPI jobs on one machine (issue 14): walker-steps/s of 1 process x T threads
# against T ranks x 1 thread on the paper phase diagram, the start-up overhead of a job and its
# results exchange (summary.json's parallel.results), and the merge of 64 shards' tallies.
# Writes bench/results/mpi-scaling-<date>.json.
#   bench/mpi_scaling.sh [BUILD_DIR] [REPEATS] [CONFIG...]
# Defaults: build, 2 repeats, examples/small/paper_phase_diagram.toml then
# examples/paper_phase_diagram.toml (the full one once). Needs an MPI build (sgdwalk info).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(examples/small/paper_phase_diagram.toml examples/paper_phase_diagram.toml)
sgdwalk=$build/sgdwalk
"$sgdwalk" info | grep -q '^mpi: built' || { echo "mpi_scaling: $sgdwalk has no MPI" >&2; exit 1; }
threads=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
records=$work/records.jsonl

now() { date +%s.%N; }
# record NAME CONFIG PROCESSES THREADS WALL RUN_DIR
record() {
  python3 - "$@" >> "$records" <<'PY'
import json, os, sys
name, config, processes, threads, wall, run = sys.argv[1:7]
s = json.load(open(os.path.join(run, "summary.json")))
steps = s["timing"]["walker_steps"]
row = {"case": name, "config": config, "processes": int(processes),
       "threads_per_process": int(threads), "wall_seconds": float(wall),
       "walker_steps": steps, "walker_steps_per_second": steps / float(wall),
       "load_average_1min": os.getloadavg()[0]}
# A job's results exchange (counts reduced, partials gathered, as rank 0 timed them).
if "results" in s.get("parallel", {}):
    row["results_exchange"] = s["parallel"]["results"]
print(json.dumps(row))
PY
}

for config in "${configs[@]}"; do
  reps=$repeats
  case $config in *small*) ;; *) reps=1 ;; esac
  for r in $(seq "$reps"); do
    t0=$(now); "$sgdwalk" run "$config" --backend cpu --threads "$threads" -q --out "$work/one" --force
    t1=$(now); record "1 process x $threads threads" "$config" 1 "$threads" "$(python3 -c "print($t1 - $t0)")" "$work/one"
    t0=$(now); mpirun -np "$threads" "$sgdwalk" run "$config" --backend cpu --threads 1 -q --out "$work/mpi" --force
    t1=$(now); record "$threads ranks x 1 thread" "$config" "$threads" 1 "$(python3 -c "print($t1 - $t0)")" "$work/mpi"
    cmp -s <(python3 -c "import json,sys; s=json.load(open('$work/one/summary.json')); print(json.dumps(s['variants']))") \
           <(python3 -c "import json,sys; s=json.load(open('$work/mpi/summary.json')); print(json.dumps(s['variants']))") ||
      { echo "mpi_scaling: the job's results differ from the single run's" >&2; exit 1; }
  done
done

# Overheads: a run of one walker and one step, alone and as a job of $threads ranks.
tiny=$work/tiny.toml
printf '[run]\nwalkers = 2\nsteps = 1\n[dynamics]\nlearning_rate = 0.1\nnoise_strength = 0.01\n' > "$tiny"
for r in 1 2 3 4 5; do
  t0=$(now); "$sgdwalk" run "$tiny" --backend cpu -q --out "$work/tiny1" --force; t1=$(now)
  record "startup: 1 process" tiny 1 1 "$(python3 -c "print($t1 - $t0)")" "$work/tiny1"
  t0=$(now); mpirun -np "$threads" "$sgdwalk" run "$tiny" --backend cpu -q --out "$work/tinyN" --force; t1=$(now)
  record "startup: $threads ranks" tiny "$threads" 1 "$(python3 -c "print($t1 - $t0)")" "$work/tinyN"
done
# The merge of the fine phase diagram's 64 parts (steps cut to 20: the tallies have the full
# shape: 1600 variants, 2 samples), timed, and the bytes rank 0 reads.
fine=$work/fine.toml
sed -e 's/^steps = 20000/steps = 20/' -e 's/^sample_every = 20000/sample_every = 20/' \
  examples/fine_phase_diagram.toml > "$fine"
for k in $(seq 0 63); do
  "$sgdwalk" run "$fine" --backend cpu --threads "$threads" -q --shard "$k/64" --out "$work/fine-$k" --force
done
tallies=$(du -cb "$work"/fine-*/tallies.bin | tail -1 | cut -f1)
t0=$(now); "$sgdwalk" merge "$work/fine" "$work"/fine-* -q; t1=$(now)
python3 - "$records" "$tallies" "$(python3 -c "print($t1 - $t0)")" "$work/fine-1/tallies.bin" <<'PY' >> "$records"
import json, os, sys
print(json.dumps({"case": "merge: fine phase diagram, 64 parts", "tallies_bytes_total": int(sys.argv[2]),
                  "tallies_bytes_per_part": os.path.getsize(sys.argv[4]), "wall_seconds": float(sys.argv[3])}))
PY

out=bench/results/mpi-scaling-$(date -u +%Y-%m-%d-%H%M%S).json
python3 - "$records" "$out" "$("$sgdwalk" info | head -1)" "$(git rev-parse --short HEAD)" <<'PY'
import json, platform, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
json.dump({"sgdwalk": sys.argv[3], "commit": sys.argv[4], "machine": platform.processor() or platform.machine(),
           "cpus": __import__("os").cpu_count(), "rows": rows}, open(sys.argv[2], "w"), indent=1)
for r in rows:
    print(json.dumps(r))
PY
echo "wrote $out"
