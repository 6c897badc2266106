#!/usr/bin/env python3
"""CuPy peer: hand-written CUDA kernels driven from CuPy (GPU only).

Two modes share one device function for the physics (`advance`, in cupy_kernels.py):

- raw: one RawKernel launch runs every step of every walker, one thread per walker with its state
  in registers. Normals come from a Philox4x32-10 counter-based generator in the kernel (key: the
  seed, counter: walker and step; Box–Muller), so no generator state lives in memory. The x
  histogram is accumulated in shared memory per block and added to global memory at the end. This
  is what an expert CuPy user writes, and the closest in design to sgdwalk's CUDA backend.
- elementwise: one ElementwiseKernel launch per step updates the walker arrays in global memory,
  with normals drawn by cuRAND (cupy.random.RandomState, Philox4_32_10) into a fresh buffer each
  step and histogram deposits by global atomics: the usual "vectorised, but on the GPU" style.

Kernel compilation and loading are timed apart (an untimed warm-up run). The physics and the
formulas are documented in peer_common.py, the kernels are in cupy_kernels.py.
"""

import time

import cupy
import numpy as np

from cupy_kernels import ELEMENTWISE_BODY, PHYSICS_SOURCE, RAW_SOURCE, constants_source
from peer_common import (MODEL, fold_histogram, histogram_window, initial_x, make_parser, report,
                         summarize)

THREADS_PER_BLOCK = 256


class Ensemble:
    """Walker arrays on the device and the raw histogram."""

    def __init__(self, args):
        dtype = np.dtype(args.dtype)
        self.x = cupy.asarray(initial_x(args.walkers, dtype))
        self.y = cupy.full(args.walkers, MODEL.y_start, dtype=dtype)
        self.flat = self.x >= 0
        self.crossings = cupy.zeros(args.walkers, dtype=np.int32)
        self.freeze_step = cupy.zeros(args.walkers, dtype=np.int64)
        self.y_freeze = self.y.copy()
        self.hist = cupy.zeros(MODEL.hist_bins + 2, dtype=np.uint64)

    def host(self):
        """Per-walker arrays copied to the host, in summarize()'s order."""
        arrays = (self.flat, self.crossings, self.freeze_step, self.y_freeze, self.x, self.y)
        return tuple(cupy.asnumpy(a) for a in arrays)


def run_raw(args, kernel, steps):
    """One launch for the whole run; returns the ensemble."""
    ensemble = Ensemble(args)
    window_lo, window_hi = histogram_window(steps)
    real = np.dtype(args.dtype).type
    blocks = (args.walkers + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    kernel((blocks,), (THREADS_PER_BLOCK,), (
        np.int64(args.walkers), np.int64(steps), np.int64(window_lo), np.int64(window_hi),
        np.uint64(args.seed), real(args.eta), real(2 * args.sigma), ensemble.x, ensemble.y,
        ensemble.flat, ensemble.crossings, ensemble.freeze_step, ensemble.y_freeze,
        ensemble.hist))
    return ensemble


def run_elementwise(args, kernel, deposit_initial, steps):
    """One launch per step, normals from cuRAND; returns the ensemble."""
    ensemble = Ensemble(args)
    window_lo, window_hi = histogram_window(steps)
    dtype = np.dtype(args.dtype)
    rng = cupy.random.RandomState(args.seed,
                                  method=cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
    eta, two_sigma = dtype.type(args.eta), dtype.type(2 * args.sigma)
    n = np.int64(args.walkers)
    if window_lo == 0:
        deposit_initial(ensemble.x, ensemble.hist)
    for step in range(1, steps + 1):
        z = rng.standard_normal(2 * args.walkers, dtype=dtype)
        kernel(z, n, np.int64(step), eta, two_sigma, np.bool_(window_lo <= step <= window_hi),
               ensemble.x, ensemble.y, ensemble.flat, ensemble.crossings, ensemble.freeze_step,
               ensemble.y_freeze, ensemble.hist)
    return ensemble


def make_runner(args):
    """Compile the kernels of the chosen mode; return run(steps) -> Ensemble."""
    source = constants_source(args.dtype) + PHYSICS_SOURCE
    if args.mode == "raw":
        kernel = cupy.RawKernel(source + RAW_SOURCE, "simulate")
        return lambda steps: run_raw(args, kernel, steps)
    real = args.dtype
    kernel = cupy.ElementwiseKernel(
        f"raw {real} z, int64 n, int64 step, {real} eta, {real} two_sigma, bool deposit",
        f"{real} x, {real} y, bool flat, int32 crossings, int64 freeze_step, {real} y_freeze, "
        "raw uint64 hist",
        ELEMENTWISE_BODY, "sgd_two_valley_step", preamble=source)
    deposit_initial = cupy.ElementwiseKernel(
        f"{real} x", "raw uint64 hist", "atomicAdd(&hist[hist_slot(x)], 1ull);",
        "deposit_x", preamble=source)
    return lambda steps: run_elementwise(args, kernel, deposit_initial, steps)


def main():
    """Command-line entry point."""
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("raw", "elementwise"), default="raw",
                        help="whole-run RawKernel, or one ElementwiseKernel launch per step")
    parser.add_argument("--warmup-steps", type=int, default=2,
                        help="steps of the untimed warm-up run (compiles and loads the kernels)")
    args = parser.parse_args()
    run = make_runner(args)
    device = cupy.cuda.Device()

    start = time.perf_counter()
    run(args.warmup_steps)
    device.synchronize()
    warmup_seconds = time.perf_counter() - start

    pool = cupy.get_default_memory_pool()
    start = time.perf_counter()
    ensemble = run(args.steps)
    device.synchronize()
    seconds = time.perf_counter() - start

    flat, crossings, freeze_step, y_freeze, x, y = ensemble.host()
    nonfinite = np.count_nonzero(~(np.isfinite(x) & np.isfinite(y)))
    stats = summarize(flat, crossings, freeze_step, y_freeze,
                      fold_histogram(cupy.asnumpy(ensemble.hist).astype(np.int64)), nonfinite)
    name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"].decode()
    report(args, "cupy", args.mode, f"cuda:{device.id} {name}", seconds, stats, {
        "warmup_seconds": warmup_seconds,
        "state_bytes_per_walker": sum(a.itemsize for a in (x, y, flat, crossings, freeze_step,
                                                           y_freeze)),
        "device_pool_bytes": pool.total_bytes(),
        "versions": {"cupy": cupy.__version__},
    })


if __name__ == "__main__":
    main()
