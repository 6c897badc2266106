"""The contestants (sgdwalk and the peers), how each is run, and what a run returns.

Every run is a fresh process. Its peak resident memory is the VmHWM the process reads from
/proc/self/status at its end, the same way for all: os.wait4's ru_maxrss would include this
Python process's memory, which the child inherits when it is forked.
A run's result is a dict with at least: walkers, steps, seconds (simulation only),
walker_steps_per_second, p_flat, p_flat_stderr, mean_tf, mean_tf_stderr, mean_y_freeze,
peak_rss_bytes (reported by the process itself: VmHWM, peak resident memory since exec),
process_wall_seconds and process_cpu_seconds.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .environment import CPU_PROBES, GPU_PROBES

INITIAL_X = 0.01
INITIAL_Y = 5.0
HIST_RANGE = (-3.0, 3.0)
HIST_BINS = 200

# Keep CPU peers on one core: numpy is single-threaded anyway, and OpenMP or Eigen thread pools
# spin badly when the cores are shared with other work.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
JAX_CPU_ENV = {**ONE_THREAD_ENV, "JAX_PLATFORMS": "cpu",
               "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
JAX_GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


@dataclass(frozen=True)
class Case:
    """One simulation: the same for every contestant."""

    walkers: int
    steps: int
    eta: float
    sigma: float
    seed: int
    dtype: str  # "float64" or "float32"


@dataclass
class Contestant:
    """A way of running the simulation.

    kind: "sgdwalk" or "peer"; device: "cpu" or "gpu"; reference: the sgdwalk contestant a
    peer's speed is compared with; probe: Python code that must run for the peer to be available
    (None: always available).
    """

    name: str
    kind: str
    device: str
    reference: str = ""
    probe: str = None
    script: str = ""
    options: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    backend: str = ""
    threads: int = 0


class RunError(RuntimeError):
    """A contestant's run failed or produced no result."""


def sgdwalk_contestants(cores, gpu):
    """sgdwalk on one core, on all cores and, with a GPU, on CUDA."""
    contestants = [Contestant("sgdwalk-cpu-1t", "sgdwalk", "cpu", backend="cpu", threads=1)]
    if cores > 1:
        contestants.append(Contestant(f"sgdwalk-cpu-{cores}t", "sgdwalk", "cpu", backend="cpu",
                                      threads=cores))
    if gpu:
        contestants.append(Contestant("sgdwalk-cuda", "sgdwalk", "gpu", backend="cuda"))
    return contestants


def peer_contestants(gpu):
    """Every peer variant for this machine (whether its package works is checked later)."""
    cpu_ref = "sgdwalk-cpu-1t"
    peers = [
        Contestant("numpy", "peer", "cpu", cpu_ref, None, "numpy_peer.py", env=ONE_THREAD_ENV),
        Contestant("torch-eager-cpu", "peer", "cpu", cpu_ref, CPU_PROBES["torch"],
                   "torch_peer.py", ["--device", "cpu", "--mode", "eager", "--threads", "1"],
                   ONE_THREAD_ENV),
        Contestant("torch-compile-cpu", "peer", "cpu", cpu_ref, CPU_PROBES["torch"],
                   "torch_peer.py", ["--device", "cpu", "--mode", "compile", "--threads", "1"],
                   ONE_THREAD_ENV),
        Contestant("jax-cpu", "peer", "cpu", cpu_ref, CPU_PROBES["jax"], "jax_peer.py",
                   ["--device", "cpu"], JAX_CPU_ENV),
    ]
    if gpu:
        gpu_ref = "sgdwalk-cuda"
        peers += [
            Contestant("torch-eager-cuda", "peer", "gpu", gpu_ref, GPU_PROBES["torch"],
                       "torch_peer.py", ["--device", "cuda", "--mode", "eager"]),
            Contestant("torch-compile-cuda", "peer", "gpu", gpu_ref, GPU_PROBES["torch"],
                       "torch_peer.py", ["--device", "cuda", "--mode", "compile"]),
            Contestant("jax-gpu", "peer", "gpu", gpu_ref, GPU_PROBES["jax"], "jax_peer.py",
                       ["--device", "gpu"], JAX_GPU_ENV),
            Contestant("cupy-raw", "peer", "gpu", gpu_ref, GPU_PROBES["cupy"], "cupy_peer.py",
                       ["--mode", "raw"]),
            Contestant("cupy-elementwise", "peer", "gpu", gpu_ref, GPU_PROBES["cupy"],
                       "cupy_peer.py", ["--mode", "elementwise"]),
        ]
    return peers


def run_process(argv, env, timeout, cwd=None):
    """Run a command; return (returncode, stdout, stderr, process measurements).

    The measurements are the wall time and CPU time (user + system) of the whole process,
    start-up included.

    Raises RunError on timeout (the process group is killed).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd,
                                   env={**os.environ, **env}, start_new_session=True)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid != 0:
                break
            if time.perf_counter() - start > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                os.wait4(process.pid, 0)
                raise RunError(f"timed out after {timeout:.0f} s: {' '.join(map(str, argv))}")
            time.sleep(0.01)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
        out.seek(0)
        err.seek(0)
        return (process.returncode, out.read(), err.read(),
                {"process_wall_seconds": wall,
                 "process_cpu_seconds": usage.ru_utime + usage.ru_stime})


def sgdwalk_config(case):
    """The TOML config of one sgdwalk run (the run contract of the CLI)."""
    precision = "double" if case.dtype == "float64" else "float"
    window = (case.steps // 2, case.steps)
    return f"""\
[run]
walkers = {case.walkers}
steps = {case.steps}
seed = {case.seed}
precision = "{precision}"

[landscape]
kind = "two_valley"

[dynamics]
noise = "hessian"
learning_rate = {case.eta!r}
noise_strength = {case.sigma!r}

[init]
positions = [[{-INITIAL_X!r}, {INITIAL_Y!r}], [{INITIAL_X!r}, {INITIAL_Y!r}]]

[observables]
sample_steps = [{case.steps}]

[[observables.histogram]]
name = "x"
kind = "x"
x_range = [{HIST_RANGE[0]!r}, {HIST_RANGE[1]!r}]
bins = {HIST_BINS}
window = [{window[0]}, {window[1]}]
every = 1
"""


def run_sgdwalk(contestant, case, binary, timeout):
    """Run sgdwalk on a case; return its result dict."""
    with tempfile.TemporaryDirectory(prefix="sgdwalk-compare-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(sgdwalk_config(case))
        run_dir = Path(tmp) / "run"
        argv = [str(binary), "run", str(config), "--out", str(run_dir),
                "--backend", contestant.backend, "--force", "--quiet"]
        if contestant.threads:
            argv += ["--threads", str(contestant.threads)]
        code, out, err, measured = run_process(argv, contestant.env, timeout)
        summary_path = run_dir / "summary.json"
        if code != 0 or not summary_path.exists():
            raise RunError(f"{contestant.name} exited with {code}:\n{(out + err)[-2000:]}")
        summary = json.loads(summary_path.read_text())
    timing, variant = summary["timing"], summary["variants"][0]
    return {
        "walkers": variant["walkers"],
        "steps": case.steps,
        "seconds": timing["simulate_seconds"],
        "walker_steps_per_second": timing["walker_steps_per_second"],
        "p_flat": variant["p_flat"],
        "p_flat_stderr": variant["p_flat_stderr"],
        "mean_tf": variant["mean_freezing_time"],
        "mean_tf_stderr": variant["mean_freezing_time_stderr"],
        "mean_y_freeze": variant["mean_y_freeze"],
        "warmup_seconds": 0.0,
        # RunData per walker (host/run/memory.hpp): position (2 x 8), y_freeze 8, three step
        # counters 3 x 8, basin and crossings 4 + 4, and float y + loss (8) per sample step (1).
        "state_bytes_per_walker": 2 * 8 + 8 + 3 * 8 + 4 + 4 + 8,
        "peak_rss_bytes": timing.get("peak_host_memory_bytes"),
        "backend": summary.get("backend", {}).get("description", contestant.backend),
        **measured,
    }


def run_peer(contestant, case, python, peers_dir, timeout):
    """Run a peer script on a case; return its JSON result plus the process measurements."""
    argv = [str(python), str(peers_dir / contestant.script),
            "--walkers", str(case.walkers), "--steps", str(case.steps),
            "--eta", repr(case.eta), "--sigma", repr(case.sigma), "--seed", str(case.seed),
            "--dtype", case.dtype, "--json", *contestant.options]
    code, out, err, measured = run_process(argv, contestant.env, timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        raise RunError(f"{contestant.name} exited with {code}:\n{(out + err)[-2000:]}")
    return {**json.loads(lines[-1]), **measured}


def run(contestant, case, setup):
    """Run any contestant; setup holds binary, python, peers_dir and timeout."""
    if contestant.kind == "sgdwalk":
        return run_sgdwalk(contestant, case, setup["binary"], setup["timeout"])
    return run_peer(contestant, case, setup["python"], setup["peers_dir"], setup["timeout"])
