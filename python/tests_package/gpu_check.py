"""GPU check of the Python package (not part of CI: run by hand on a GPU machine where the package
was installed with the CUDA backend): the CUDA backend through sgdwalk.run gives the CPU backend's
bits, Ctrl-C during a GPU run raises KeyboardInterrupt promptly and resume finishes it with the
uninterrupted results, replay matches the per-walker output. Prints one line per check, writes
OUT_DIR/python_gpu_check.json, exits 1 if a check failed.

    python3 python/tests_package/gpu_check.py OUT_DIR

Ran on an H200 on 2026-12-04 with this branch on top of main 4b9b6cd (before main's shard and MPI
work; a cp312 wheel built on the CPU machine with SGDWALK_CUDA=ON, carried with the shared
libraries it loads): every check passed; the paper phase diagram took 0.23 s on the GPU against
6.4 s on its 16 CPU cores, KeyboardInterrupt came 0.76 s after SIGINT.
"""
import json, os, signal, sys, tempfile, threading, time
import numpy as np
import sgdwalk
from conftest import SMALL_CONFIG

out_dir = sys.argv[1]
report = {"info": sgdwalk.info()}
print(report["info"], flush=True)
signal.signal(signal.SIGINT, signal.default_int_handler)


def same(a, b):
    assert sorted(a.datasets) == sorted(b.datasets)
    bad = [k for k in a.datasets if a.datasets[k].dtype != b.datasets[k].dtype or
           a.datasets[k].tobytes() != b.datasets[k].tobytes()]
    return bad


def check(name, ok, detail=""):
    report[name] = {"ok": bool(ok), "detail": detail}
    print(("PASS " if ok else "FAIL ") + name + " " + str(detail), flush=True)


for precision in ("double", "float"):
    config = SMALL_CONFIG.replace("seed = 11", f'seed = 11\nprecision = "{precision}"')
    gpu = sgdwalk.run(config, backend="cuda", progress=False)
    cpu = sgdwalk.run(config, backend="cpu", progress=False)
    bad = same(gpu, cpu)
    check(f"small_{precision}_cuda_equals_cpu", not bad and gpu.provenance["backend"] == "cuda",
          f"backend {gpu.provenance['backend']}, differing: {bad}")
    walk = sgdwalk.replay(gpu, walker=1234, every=1000)
    real = np.float32 if precision == "float" else np.float64
    check(f"replay_{precision}_equals_gpu_final_state",
          walk["position"][-1].tobytes() == gpu.walkers["position"][1234].astype(real).tobytes())

PAPER = SMALL_CONFIG.split("[observables]")[0].replace("walkers = 300", "walkers = 2000").replace(
    "steps = 3000", "steps = 20000") + """
[observables]
sample_every = 2000

[sweep]
learning_rate = { logspace = [-2, -1, 10] }
noise_strength = { logspace = [-2, -1, 10] }
"""
start = time.time(); gpu = sgdwalk.run(PAPER, backend="cuda", progress=False); gpu_s = time.time() - start
start = time.time(); cpu = sgdwalk.run(PAPER, backend="cpu", progress=False); cpu_s = time.time() - start
bad = same(gpu, cpu)
check("paper_phase_diagram_cuda_equals_cpu", not bad,
      f"cuda {gpu_s:.2f} s, cpu {cpu_s:.2f} s (16 cores), P_flat max {gpu.variants['p_flat'].max()}, differing: {bad}")

BIG = PAPER.replace("walkers = 2000", "walkers = 40000")
workdir = tempfile.mkdtemp()
sent = []
def interrupt():
    sent.append(time.monotonic()); os.kill(os.getpid(), signal.SIGINT)
threading.Timer(1.5, interrupt).start()
try:
    sgdwalk.run(BIG, backend="cuda", out=f"{workdir}/big", progress=False)
    check("sigint_on_gpu", False, "finished before the interrupt")
except KeyboardInterrupt:
    delay = time.monotonic() - sent[0]
    partial = sgdwalk.load(f"{workdir}/big")
    check("sigint_on_gpu", delay < 1.5 and os.path.exists(f"{workdir}/big/checkpoint.bin"),
          f"KeyboardInterrupt {delay:.3f} s after SIGINT, progress {partial.provenance['progress']['fraction']:.3f}")
    start = time.time(); resumed = sgdwalk.resume(f"{workdir}/big", backend="cuda", progress=False)
    resume_s = time.time() - start
    start = time.time(); whole = sgdwalk.run(BIG, backend="cuda", out=f"{workdir}/whole", progress=False)
    whole_s = time.time() - start
    bad = same(resumed, whole)
    h5_same = open(f"{workdir}/big/results.h5", "rb").read() == open(f"{workdir}/whole/results.h5", "rb").read()
    check("gpu_resume_equals_uninterrupted", not bad and h5_same,
          f"resume {resume_s:.2f} s, uninterrupted {whole_s:.2f} s ({whole.provenance['timing']['walker_steps_per_second']:.3g} walker-steps/s), results.h5 bytes equal {h5_same}")
with open(os.path.join(out_dir, "python_gpu_check.json"), "w") as f:
    json.dump(report, f, indent=1, default=str)
sys.exit(0 if all(v.get("ok", True) for k, v in report.items() if k != "info") else 1)
