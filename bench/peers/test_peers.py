#!/usr/bin/env python3
"""Checks of the peers' physics: run with `python3 bench/peers/test_peers.py` (no framework needed).

1. The analytic gradient and Hessian in peer_common agree with central finite differences of L.
2. The numpy peer's vectorised gradient, Hessian and noise factor agree with that reference.
3. Every other peer whose package is importable agrees with the numpy peer on a short run
   (P_flat within binomial error, mean freezing time within 4 standard errors).
4. The CuPy peer's CUDA source (physics, Philox normals, whole-run kernel), compiled for the host
   by g++ through a small shim, agrees with the numpy peer the same way (no GPU needed).
5. With the CUDA toolkit installed, both CuPy kernels compile with nvcc for sm_90 without spills.

Run it with bench/.venv/bin/python to include the JAX and PyTorch peers.
"""

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from cupy_kernels import ELEMENTWISE_BODY, PHYSICS_SOURCE, RAW_SOURCE, constants_source
from numpy_peer import Stepper
from peer_common import (MODEL, fold_histogram, histogram_window, reference_gradient_hessian,
                         reference_loss, summarize)

HERE = Path(__file__).resolve().parent
POINTS = [(0.3, 5.0), (-0.2, 5.0), (0.7, 40.0), (-0.5, 12.0), (1e-3, 80.0), (-1.3, 0.5),
          (2.0, 150.0)]


def finite_difference(x, y, hx=1e-5, hy=1e-4):
    """Central-difference gradient and Hessian of reference_loss, staying on x's branch."""
    def loss(dx, dy):
        return reference_loss(x + dx, y + dy)

    gx = (loss(hx, 0) - loss(-hx, 0)) / (2 * hx)
    gy = (loss(0, hy) - loss(0, -hy)) / (2 * hy)
    h11 = (loss(hx, 0) - 2 * loss(0, 0) + loss(-hx, 0)) / hx ** 2
    h22 = (loss(0, hy) - 2 * loss(0, 0) + loss(0, -hy)) / hy ** 2
    h12 = (loss(hx, hy) - loss(hx, -hy) - loss(-hx, hy) + loss(-hx, -hy)) / (4 * hx * hy)
    return (gx, gy), (h11, h12, h22)


def check_close(name, got, want, rtol, atol):
    """Raise AssertionError with a readable message unless got ≈ want elementwise."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        raise AssertionError(f"{name}: got {got}, want {want}")


def test_reference_against_finite_differences():
    """Analytic derivatives match finite differences on both branches."""
    for x, y in POINTS:
        gradient, hessian = reference_gradient_hessian(x, y)
        fd_gradient, fd_hessian = finite_difference(x, y)
        check_close(f"gradient at {(x, y)}", gradient, fd_gradient, 1e-6, 1e-8)
        check_close(f"hessian at {(x, y)}", hessian, fd_hessian, 1e-4, 1e-5)


def test_numpy_peer_against_reference():
    """The vectorised numpy code reproduces the reference derivatives and Σ^{1/2}."""
    sigma = 0.07
    x = np.array([p[0] for p in POINTS])
    y = np.array([p[1] for p in POINTS])
    stepper = Stepper(x.size, np.float64, 0.1, sigma, np.random.default_rng(0))
    n = x.size
    stepper.gradient_hessian(x, y, x >= 0, n)
    for i, (xi, yi) in enumerate(POINTS):
        (gx, gy), (h11, h12, h22) = reference_gradient_hessian(xi, yi)
        got = [stepper.gx[i], stepper.gy[i], stepper.h11[i], stepper.h12[i], stepper.h22[i]]
        check_close(f"numpy peer at {(xi, yi)}", got, [gx, gy, h11, h12, h22], 1e-12, 1e-14)
    hessians = np.stack([[stepper.h11, stepper.h12], [stepper.h12, stepper.h22]]).transpose(2, 0, 1)
    stepper.noise(n)
    root = np.empty((n, 2, 2))
    z = stepper.z.reshape(2, n).T
    for i, h in enumerate(hessians):
        lam, vec = np.linalg.eigh(h)
        sigma_matrix = 2 * sigma * (vec * np.maximum(lam, 0)) @ vec.T + MODEL.epsilon * np.eye(2)
        lam_s, vec_s = np.linalg.eigh(sigma_matrix)
        root[i] = (vec_s * np.sqrt(lam_s)) @ vec_s.T
    want = np.einsum("nij,nj->ni", root, z)
    check_close("noise vector", np.stack([stepper.t1, stepper.t2], axis=1), want, 1e-10, 1e-12)


# The short agreement case: escapes decide the outcome (P_flat ≈ 0.73, <t_f> ≈ 260 steps).
CASE = {"walkers": 4000, "steps": 4000, "eta": 0.02, "sigma": 0.04}


def run_peer(script, *options):
    """Run one peer on the short agreement case; return its JSON result."""
    command = [sys.executable, str(HERE / script), "--seed", "3", "--json", *options]
    for name, value in CASE.items():
        command += [f"--{name}", str(value)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def agree(a, b):
    """True when two results agree in P_flat and mean freezing time within 4 standard errors."""
    p = 0.5 * (a["p_flat"] + b["p_flat"])
    p_err = math.sqrt(max(p * (1 - p), 1e-12) * (1 / a["walkers"] + 1 / b["walkers"]))
    tf_err = math.hypot(a["mean_tf_stderr"], b["mean_tf_stderr"])
    return (abs(a["p_flat"] - b["p_flat"]) < 4 * p_err
            and abs(a["mean_tf"] - b["mean_tf"]) < 4 * tf_err)


def test_other_peers_agree_with_numpy():
    """Importable peers reproduce the numpy peer's P_flat and mean t_f on a short run."""
    cases = [("jax", "jax_peer.py", ["--device", "cpu"]),
             ("torch", "torch_peer.py", ["--device", "cpu", "--mode", "eager"])]
    available = [case for case in cases if importlib.util.find_spec(case[0]) is not None]
    if not available:
        print("  (no other peer's package is importable; skipped)")
        return
    reference = run_peer("numpy_peer.py")
    for name, script, options in available:
        result = run_peer(script, *options)
        print(f"  {name}: p_flat {result['p_flat']:.4f} vs {reference['p_flat']:.4f}, "
              f"mean_tf {result['mean_tf']:.1f} vs {reference['mean_tf']:.1f}")
        if not agree(result, reference):
            raise AssertionError(f"{name} disagrees with numpy: {result} vs {reference}")


HOST_SHIM = r"""
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>
using namespace std;
#define __device__
#define __forceinline__ inline
#define __global__
#define __shared__ static
struct Dim { unsigned x; };
static Dim threadIdx, blockIdx, blockDim;
static void __syncthreads() {}
static unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  const unsigned long long old = *a;
  *a += v;
  return old;
}
static void sincospi(double a, double* s, double* c) { sincos(M_PI * a, s, c); }
static void sincospif(float a, float* s, float* c) { sincosf(float(M_PI) * a, s, c); }
"""

HOST_MAIN = r"""
// Runs the kernel as blocks of one thread, then writes the per-walker results and the histogram.
int main(int, char** argv) {
  const long long n = atoll(argv[1]), steps = atoll(argv[2]);
  const long long window_lo = atoll(argv[3]), window_hi = atoll(argv[4]);
  const double eta = atof(argv[5]), sigma = atof(argv[6]);
  const unsigned long long seed = strtoull(argv[7], 0, 10);
  std::vector<sw_real> x(n), y(n), y_freeze(n);
  bool* flat = new bool[n];
  std::vector<int> crossings(n);
  std::vector<long long> freeze_step(n);
  std::vector<unsigned long long> hist(HIST_BINS + 2);
  blockDim.x = 1;
  threadIdx.x = 0;
  for (long long i = 0; i < n; ++i) {
    blockIdx.x = (unsigned)i;
    simulate(n, steps, window_lo, window_hi, seed, sw_real(eta), sw_real(2 * sigma), x.data(),
             y.data(), flat, crossings.data(), freeze_step.data(), y_freeze.data(), hist.data());
  }
  FILE* out = fopen(argv[8], "wb");
  fwrite(x.data(), sizeof(sw_real), n, out);
  fwrite(y.data(), sizeof(sw_real), n, out);
  fwrite(flat, 1, n, out);
  fwrite(crossings.data(), sizeof(int), n, out);
  fwrite(freeze_step.data(), sizeof(long long), n, out);
  fwrite(y_freeze.data(), sizeof(sw_real), n, out);
  fwrite(hist.data(), sizeof(unsigned long long), HIST_BINS + 2, out);
  fclose(out);
  delete[] flat;
  return 0;
}
"""


def run_cupy_source_on_host(dtype, walkers, steps, eta, sigma, seed):
    """Compile the CuPy peer's raw kernel for the host, run it, return summarize()'s stats."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "kernel.cpp"
        binary = Path(tmp) / "kernel"
        output = Path(tmp) / "out.bin"
        source.write_text(HOST_SHIM + constants_source(dtype) + PHYSICS_SOURCE + RAW_SOURCE
                          + HOST_MAIN)
        subprocess.run(["g++", "-O2", "-std=c++17", "-o", str(binary), str(source)], check=True)
        window_lo, window_hi = histogram_window(steps)
        subprocess.run([str(binary), str(walkers), str(steps), str(window_lo), str(window_hi),
                        repr(eta), repr(sigma), str(seed), str(output)], check=True)
        raw = output.read_bytes()
    fields = [(dtype, walkers), (dtype, walkers), (np.bool_, walkers), (np.int32, walkers),
              (np.int64, walkers), (dtype, walkers), (np.uint64, MODEL.hist_bins + 2)]
    arrays, offset = [], 0
    for field_dtype, count in fields:
        array = np.frombuffer(raw, dtype=field_dtype, count=count, offset=offset)
        offset += array.nbytes
        arrays.append(array)
    x, y, flat, crossings, freeze_step, y_freeze, hist = arrays
    nonfinite = np.count_nonzero(~(np.isfinite(x) & np.isfinite(y)))
    return {"walkers": walkers, **summarize(flat, crossings, freeze_step, y_freeze,
                                            fold_histogram(hist.astype(np.int64)), nonfinite)}


def test_cupy_source_on_host_agrees_with_numpy():
    """The CuPy peer's kernel source, built for the host, reproduces the numpy peer's results."""
    if shutil.which("g++") is None:
        print("  (g++ not found; skipped)")
        return
    for dtype in ("float64", "float32"):
        reference = run_peer("numpy_peer.py", "--dtype", dtype)
        result = run_cupy_source_on_host(dtype, CASE["walkers"], CASE["steps"], CASE["eta"],
                                         CASE["sigma"], 5)
        print(f"  {dtype}: p_flat {result['p_flat']:.4f} vs {reference['p_flat']:.4f}, "
              f"mean_tf {result['mean_tf']:.1f} vs {reference['mean_tf']:.1f}")
        window_lo, window_hi = histogram_window(CASE["steps"])
        if result["hist_total"] != CASE["walkers"] * (window_hi - window_lo + 1):
            raise AssertionError(f"histogram holds {result['hist_total']} deposits")
        if not agree(result, reference):
            raise AssertionError(f"CuPy source disagrees with numpy: {result} vs {reference}")


NVCC = Path("/usr/local/cuda/bin/nvcc")
ELEMENTWISE_MOCK = r"""
// Stand-in for the wrapper CuPy generates around an ElementwiseKernel body.
template <class T> struct CArray {
  T* data;
  __device__ T& operator[](long long i) const { return data[i]; }
};
extern "C" __global__ void elementwise(CArray<const sw_real> z, long long n, long long step, sw_real eta,
                                       sw_real two_sigma, bool deposit, sw_real* xs, sw_real* ys,
                                       bool* flats, int* crossing_counts, long long* freeze_steps,
                                       sw_real* y_freezes, CArray<unsigned long long> hist) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  sw_real& x = xs[i];
  sw_real& y = ys[i];
  bool& flat = flats[i];
  int& crossings = crossing_counts[i];
  long long& freeze_step = freeze_steps[i];
  sw_real& y_freeze = y_freezes[i];
"""


def test_cupy_source_compiles_for_the_gpu():
    """Both CuPy kernels compile for sm_90 without register spills (needs only the toolkit)."""
    if not NVCC.exists():
        print(f"  ({NVCC} not found; skipped)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float64", "float32"):
            source = Path(tmp) / f"kernels_{dtype}.cu"
            source.write_text(constants_source(dtype) + PHYSICS_SOURCE + RAW_SOURCE
                              + ELEMENTWISE_MOCK + ELEMENTWISE_BODY + "}\n")
            result = subprocess.run([str(NVCC), "-arch=sm_90", "-c", "--ptxas-options=-v",
                                     "-o", str(source.with_suffix(".o")), str(source)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise AssertionError(f"nvcc failed for {dtype}:\n{result.stderr}")
            if any(int(n) for n in re.findall(r"(\d+) bytes spill stores", result.stderr)):
                raise AssertionError(f"register spills for {dtype}:\n{result.stderr}")
            registers = re.findall(r"Used (\d+) registers", result.stderr)
            print(f"  {dtype}: {' and '.join(registers)} registers per thread")


def main():
    """Run every test; exit non-zero on the first failure."""
    tests = [test_reference_against_finite_differences, test_numpy_peer_against_reference,
             test_other_peers_agree_with_numpy, test_cupy_source_on_host_agrees_with_numpy,
             test_cupy_source_compiles_for_the_gpu]
    for test in tests:
        print(test.__name__)
        test()
    print("all peer checks passed")


if __name__ == "__main__":
    main()
