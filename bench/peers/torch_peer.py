#!/usr/bin/env python3
"""PyTorch peer: batched tensors over walkers, eager or torch.compile (CUDA or CPU).

One step is a function of the walker tensors returning new ones; --mode compile wraps it in
torch.compile (inductor fuses the elementwise work and the Philox normals into few kernels).
The step counter lives on the device so that the compiled graph never recompiles; the histogram is
a scatter_add into a device tensor (bincount's data-dependent size would break the graph).
Warm-up (compilation, kernel loading) is measured apart. The physics and the formulas are
documented in peer_common.py.
"""

import time

import numpy as np
import torch

from peer_common import (MODEL, fold_histogram, histogram_window, initial_x, make_parser, report,
                         summarize)


def make_step(args, dtype):
    """Return step(state) and step_deposit(state, hist) for these arguments (not yet compiled).

    state = (x, y, flat, crossings, freeze_step, y_freeze, step): step is a 0-d int64 tensor
    holding the index of the state; each call produces the next one.
    """
    eta, two_sigma, epsilon = args.eta, 2 * args.sigma, MODEL.epsilon
    q_flat, q_sharp = MODEL.q_flat, MODEL.q_sharp
    ik_flat, ik_sharp = MODEL.inv_k(q_flat), MODEL.inv_k(q_sharp)
    c_hp = 2 * (MODEL.y_f - MODEL.y_b)
    nbins = MODEL.hist_bins
    hist_scale = MODEL.hist_inv_width
    hist_shift = 1 - MODEL.hist_lo * MODEL.hist_inv_width

    def step(x, y, flat, crossings, freeze_step, y_freeze, step_index):
        """One SGD step of every walker and its trackers."""
        step_index = step_index + 1
        z = torch.randn((2, x.shape[0]), dtype=dtype, device=x.device)
        # branch constants selected arithmetically: torch.where on two Python floats would
        # return the default dtype (float32) even in a float64 run
        flat_real = flat.to(dtype)
        q = q_sharp + (q_flat - q_sharp) * flat_real
        ik = ik_sharp + (ik_flat - ik_sharp) * flat_real
        u, v = y + MODEL.y_b, y + MODEL.y_f
        iuv = 1 / (u * v)
        h = ik * (u / v) ** 2
        hp = h * c_hp * iuv
        hpp = hp * (v - 3 * u) * iuv
        a = 2 * q * y / u
        ap = 2 * MODEL.y_b * q / (u * u)
        app = -2 * ap / u
        e = torch.exp(-y / MODEL.y_d)
        w = 2 * x - a
        p = x * (x - a)
        gx = w * h
        gy = -MODEL.l_d / MODEL.y_d * e + p * hp - x * ap * h
        h11 = 2 * h
        h12 = w * hp - ap * h
        h22 = MODEL.l_d / MODEL.y_d ** 2 * e + p * hpp - 2 * x * ap * hp - x * app * h
        m, d = (h11 + h22) / 2, (h11 - h22) / 2
        r = torch.sqrt(d * d + h12 * h12)
        s_plus = torch.sqrt(two_sigma * torch.clamp(m + r, min=0) + epsilon)
        s_minus = torch.sqrt(two_sigma * torch.clamp(m - r, min=0) + epsilon)
        c = torch.where(r > 0, (s_plus - s_minus) / torch.where(r > 0, 2 * r, 1), 0)
        s0 = (s_plus + s_minus) / 2
        xi1 = (s0 + c * d) * z[0] + c * h12 * z[1]
        xi2 = c * h12 * z[0] + (s0 - c * d) * z[1]
        x = x - eta * (gx + xi1)
        y = y - eta * (gy + xi2)
        now_flat = x >= 0
        changed = now_flat != flat
        return (x, y, now_flat, crossings + changed.to(crossings.dtype),
                torch.where(changed, step_index, freeze_step), torch.where(changed, y, y_freeze),
                step_index)

    def deposit(hist, x):
        """Histogram slot 0 below the range, 1..nbins inside, nbins + 1 above."""
        slot = torch.clamp(x * hist_scale + hist_shift, 0, nbins + 1).to(torch.int64)
        return hist.scatter_add(0, slot, torch.ones_like(slot))

    def step_deposit(state, hist):
        """step() followed by a histogram deposit of the new x."""
        state = step(*state)
        return state, deposit(hist, state[0])

    return step, step_deposit, deposit


def initial_state(args, dtype, device):
    """Walker state at step 0 on the device."""
    x = torch.from_numpy(initial_x(args.walkers, np.dtype(args.dtype))).to(device)
    y = torch.full_like(x, MODEL.y_start)
    return (x, y, x >= 0, torch.zeros(args.walkers, dtype=torch.int32, device=device),
            torch.zeros(args.walkers, dtype=torch.int64, device=device), y.clone(),
            torch.zeros((), dtype=torch.int64, device=device))


def run(args, step, step_deposit, deposit, device, steps):
    """Advance a fresh ensemble by `steps` steps; return (state, histogram)."""
    dtype = getattr(torch, args.dtype)
    state = initial_state(args, dtype, device)
    hist = torch.zeros(MODEL.hist_bins + 2, dtype=torch.int64, device=device)
    window_lo, window_hi = histogram_window(steps)
    if window_lo == 0:
        hist = deposit(hist, state[0])
    for index in range(1, window_hi + 1):
        if index >= window_lo:
            state, hist = step_deposit(state, hist)
        else:
            state = step(*state)
    return state, hist


def synchronize(device):
    """Wait for queued device work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    """Command-line entry point."""
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="torch device")
    parser.add_argument("--mode", choices=("eager", "compile"), default="compile",
                        help="run the step eagerly or through torch.compile")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU intra-op threads (0: torch's default; more than 1 thread is "
                             "very slow when the cores are shared with other work)")
    parser.add_argument("--warmup-steps", type=int, default=4,
                        help="steps of the untimed warm-up run (compiles both step variants)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    step, step_deposit, deposit = make_step(args, dtype)
    if args.mode == "compile":
        step, step_deposit, deposit = (torch.compile(f) for f in (step, step_deposit, deposit))

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    run(args, step, step_deposit, deposit, device, args.warmup_steps)
    synchronize(device)
    warmup_seconds = time.perf_counter() - start

    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    state, hist = run(args, step, step_deposit, deposit, device, args.steps)
    synchronize(device)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start

    x, y, flat, crossings, freeze_step, y_freeze = (t.cpu().numpy() for t in state[:6])
    nonfinite = np.count_nonzero(~(np.isfinite(x) & np.isfinite(y)))
    stats = summarize(flat, crossings, freeze_step, y_freeze,
                      fold_histogram(hist.cpu().numpy()), nonfinite)
    extra = {
        "warmup_seconds": warmup_seconds,
        "cpu_seconds": cpu_seconds,
        "state_bytes_per_walker": sum(a.dtype.itemsize
                                      for a in (x, y, flat, crossings, freeze_step, y_freeze)),
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__},
    }
    if device.type == "cuda":
        extra["device_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    report(args, "torch", args.mode, str(device), seconds, stats, extra)


if __name__ == "__main__":
    main()
