"""The comparison protocol: physics agreement first, then alternating timed rounds."""

import math
import statistics

from .contestants import Case, RunError, run

# The agreement case: the paper's phase-diagram setup (hessian noise, y0 = 5, x0 = ∓0.01) at a
# point where the outcome is decided by noise-driven escapes within the run: P_flat ≈ 0.75,
# ⟨t_f⟩ ≈ 260 steps (η = 0.02, σ = 0.04; Δ_S = 8e-4).
CHECK_ETA = 0.02
CHECK_SIGMA = 0.04
CHECK_SEED = 11
REFERENCE_WALKER_FACTOR = 10
TOLERANCE_SIGMAS = 4.0

TIMING_ETA = 0.1
TIMING_SIGMA = 0.1
TIMING_SEED = 1


def agreement(result, reference):
    """Compare a contestant's check result with the reference's.

    P_flat must agree within TOLERANCE_SIGMAS binomial standard errors of the difference, and the
    mean freezing time within TOLERANCE_SIGMAS combined standard errors. Returns a dict with the
    deviations in units of their standard errors and `agrees`.
    """
    n1, n2 = result["walkers"], reference["walkers"]
    p = (result["p_flat"] * n1 + reference["p_flat"] * n2) / (n1 + n2)
    p_err = math.sqrt(max(p * (1 - p), 0.25 / (n1 + n2)) * (1 / n1 + 1 / n2))
    tf_err = math.hypot(result["mean_tf_stderr"], reference["mean_tf_stderr"])
    p_sigmas = abs(result["p_flat"] - reference["p_flat"]) / p_err
    tf_sigmas = abs(result["mean_tf"] - reference["mean_tf"]) / tf_err if tf_err > 0 else (
        0.0 if result["mean_tf"] == reference["mean_tf"] else math.inf)
    return {"p_flat_sigmas": p_sigmas, "mean_tf_sigmas": tf_sigmas,
            "agrees": p_sigmas < TOLERANCE_SIGMAS and tf_sigmas < TOLERANCE_SIGMAS}


def check_physics(contestants, reference, precisions, walkers, steps, setup, say):
    """Run the agreement case for every contestant and precision.

    The reference contestant runs REFERENCE_WALKER_FACTOR times more walkers. Returns
    {precision: {"reference": result, "contestants": {name: verdict}}}; a verdict holds the
    result and the agreement, or the error.
    """
    report = {}
    for dtype in precisions:
        ref_case = Case(walkers * REFERENCE_WALKER_FACTOR, steps, CHECK_ETA, CHECK_SIGMA,
                        CHECK_SEED, dtype)
        ref_result = run(reference, ref_case, setup)
        say(f"  {dtype} reference {reference.name}: P_flat {ref_result['p_flat']:.4f} "
            f"± {ref_result['p_flat_stderr']:.4f}, <t_f> {ref_result['mean_tf']:.1f} "
            f"± {ref_result['mean_tf_stderr']:.1f} steps ({ref_case.walkers} walkers)")
        verdicts = {}
        case = Case(walkers, steps, CHECK_ETA, CHECK_SIGMA, CHECK_SEED + 1, dtype)
        for contestant in contestants:
            if contestant.name == reference.name:
                continue
            try:
                result = run(contestant, case, setup)
            except RunError as error:
                verdicts[contestant.name] = {"agrees": False, "error": str(error)}
                say(f"  {dtype} {contestant.name}: FAILED to run\n{indent(str(error))}")
                continue
            verdict = {**agreement(result, ref_result), "result": result}
            verdicts[contestant.name] = verdict
            say(f"  {dtype} {contestant.name}: P_flat {result['p_flat']:.4f} "
                f"({verdict['p_flat_sigmas']:.1f} σ), <t_f> {result['mean_tf']:.1f} "
                f"({verdict['mean_tf_sigmas']:.1f} σ): "
                + ("agrees" if verdict["agrees"] else "DISAGREES, not timed"))
        report[dtype] = {"reference": {"name": reference.name, "result": ref_result},
                         "contestants": verdicts}
    return report


def indent(text):
    """Indent every line of an error message."""
    return "\n".join("    " + line for line in text.splitlines())


def steps_for(walkers, budget, min_steps, max_steps):
    """Steps of a timed run: about `budget` walker-steps, within [min_steps, max_steps]."""
    return int(min(max_steps, max(min_steps, budget // walkers)))


def time_contestants(plan, setup, rounds, say):
    """Timed runs, alternating contestants at every point and rotating their order by round.

    plan: list of (contestant, dtype, walker counts, budget, min_steps, max_steps). Returns the
    list of raw run records (one per run, failed runs with an error).
    """
    points = sorted({(dtype, walkers) for _, dtype, counts, *_ in plan for walkers in counts},
                    key=lambda point: (point[1], point[0]))
    records = []
    for round_index in range(rounds):
        for point_index, (dtype, walkers) in enumerate(points):
            entries = [entry for entry in plan if entry[1] == dtype and walkers in entry[2]]
            shift = (round_index + point_index) % len(entries)
            for contestant, _, _, budget, min_steps, max_steps in entries[shift:] + entries[:shift]:
                steps = steps_for(walkers, budget, min_steps, max_steps)
                case = Case(walkers, steps, TIMING_ETA, TIMING_SIGMA, TIMING_SEED + round_index,
                            dtype)
                record = {"contestant": contestant.name, "device": contestant.device,
                          "round": round_index, "dtype": dtype, "walkers": walkers,
                          "steps": steps}
                try:
                    result = run(contestant, case, setup)
                    record.update(result=result)
                    say(f"  round {round_index + 1}/{rounds} {dtype} {walkers:>9} walkers "
                        f"{steps:>6} steps  {contestant.name:<20} "
                        f"{result['walker_steps_per_second']:.3g} walker-steps/s")
                except RunError as error:
                    record.update(error=str(error))
                    say(f"  {contestant.name} {dtype} {walkers} walkers FAILED:\n"
                        f"{indent(str(error))}")
                records.append(record)
    return records


def medians(records):
    """Median over rounds per (contestant, dtype, walkers) of the run measurements."""
    groups = {}
    for record in records:
        if "result" in record:
            key = (record["contestant"], record["dtype"], record["walkers"])
            groups.setdefault(key, []).append(record)
    rows = []
    for (name, dtype, walkers), group in sorted(groups.items()):
        results = [r["result"] for r in group]
        rows.append({
            "contestant": name, "device": group[0]["device"], "dtype": dtype,
            "walkers": walkers, "steps": group[0]["steps"], "runs": len(group),
            "walker_steps_per_second": statistics.median(
                r["walker_steps_per_second"] for r in results),
            "seconds": statistics.median(r["seconds"] for r in results),
            "warmup_seconds": statistics.median(r.get("warmup_seconds", 0.0) for r in results),
            "peak_rss_bytes": max((r["peak_rss_bytes"] for r in results
                                   if r.get("peak_rss_bytes") is not None), default=None),
            "state_bytes_per_walker": results[0].get("state_bytes_per_walker"),
        })
    return rows


def ratios(median_rows, contestants):
    """Throughput of each peer's sgdwalk reference divided by the peer's, per dtype and walkers.

    CPU peers are also compared with sgdwalk on all cores (`all_cores_ratio`) when it ran.
    """
    table = {(r["contestant"], r["dtype"], r["walkers"]): r["walker_steps_per_second"]
             for r in median_rows}
    all_cores = [c.name for c in contestants if c.kind == "sgdwalk" and c.device == "cpu"
                 and c.threads > 1]
    out = []
    for contestant in contestants:
        if contestant.kind != "peer":
            continue
        for (name, dtype, walkers), speed in sorted(table.items()):
            if name != contestant.name:
                continue
            row = {"peer": name, "reference": contestant.reference, "dtype": dtype,
                   "walkers": walkers}
            reference_speed = table.get((contestant.reference, dtype, walkers))
            row["ratio"] = reference_speed / speed if reference_speed else None
            if contestant.device == "cpu" and all_cores:
                all_speed = table.get((all_cores[0], dtype, walkers))
                row["all_cores_reference"] = all_cores[0]
                row["all_cores_ratio"] = all_speed / speed if all_speed else None
            out.append(row)
    return out
