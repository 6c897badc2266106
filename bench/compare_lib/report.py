"""Printing the comparison as tables, and writing its JSON file and throughput plot."""

import json

# Okabe–Ito palette (colour-blind safe), one colour per contestant, with distinct markers.
OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00",
             "#CC79A7", "#999999"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*"]


def format_speed(value):
    """Walker-steps per second in 3 significant digits, '-' when missing."""
    return "-" if value is None else f"{value:.3g}"


def format_table(header, rows):
    """Plain-text table with right-aligned columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).rjust(width) for cell, width in zip(row, widths))
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def throughput_tables(median_rows, ratio_rows, names):
    """Text tables per dtype: medians of walker-steps/s, then sgdwalk/peer ratios."""
    blocks = []
    for dtype in sorted({r["dtype"] for r in median_rows}, reverse=True):
        rows = [r for r in median_rows if r["dtype"] == dtype]
        speed = {(r["contestant"], r["walkers"]): r for r in rows}
        present = [n for n in names if any(r["contestant"] == n for r in rows)]
        body = []
        for walkers in sorted({r["walkers"] for r in rows}):
            steps = sorted({r["steps"] for r in rows if r["walkers"] == walkers})
            body.append([f"{walkers:.0e}", "/".join(map(str, steps))] + [
                format_speed(speed[(n, walkers)]["walker_steps_per_second"])
                if (n, walkers) in speed else "-" for n in present])
        blocks.append(f"{dtype}: walker-steps/s (median over rounds)\n"
                      + format_table(["walkers", "steps", *present], body))
        ratio_body = []
        for row in (r for r in ratio_rows if r["dtype"] == dtype):
            ratio_body.append([row["peer"], f"{row['walkers']:.0e}",
                               f"{row['ratio']:.1f}x vs {row['reference']}"
                               if row["ratio"] else "-",
                               f"{row['all_cores_ratio']:.1f}x vs {row['all_cores_reference']}"
                               if row.get("all_cores_ratio") else ""])
        if ratio_body:
            blocks.append(f"{dtype}: speed-up of sgdwalk over each peer (same device)\n"
                          + format_table(["peer", "walkers", "same cores", "all cores"],
                                         ratio_body))
    return "\n\n".join(blocks)


def memory_rows(median_rows, names):
    """Per contestant and dtype: peak resident memory at each walker count and the marginal bytes
    per walker, (peak at the most walkers - peak at the fewest) / (difference in walkers), which
    counts whatever grows with the walker count (state, scratch, buffers) the same way for all."""
    out = []
    for dtype in sorted({r["dtype"] for r in median_rows}, reverse=True):
        for name in names:
            rows = sorted((r for r in median_rows if r["contestant"] == name
                           and r["dtype"] == dtype), key=lambda r: r["walkers"])
            if not rows:
                continue
            marginal = None
            first, last = rows[0]["peak_rss_bytes"], rows[-1]["peak_rss_bytes"]
            if (len(rows) > 1 and rows[-1]["walkers"] > rows[0]["walkers"]
                    and first is not None and last is not None):
                marginal = (last - first) / (rows[-1]["walkers"] - rows[0]["walkers"])
            out.append({"contestant": name, "dtype": dtype,
                        "peak_rss_bytes": {r["walkers"]: r["peak_rss_bytes"] for r in rows},
                        "marginal_bytes_per_walker": marginal,
                        "state_bytes_per_walker": rows[0].get("state_bytes_per_walker")})
    return out


def memory_tables(rows):
    """Text tables per dtype of memory_rows()."""
    blocks = []
    for dtype in sorted({r["dtype"] for r in rows}, reverse=True):
        group = [r for r in rows if r["dtype"] == dtype]
        counts = sorted({w for r in group for w in r["peak_rss_bytes"]})
        body = []
        for row in group:
            peaks = [f"{row['peak_rss_bytes'][w] / 1e6:.0f}"
                     if row["peak_rss_bytes"].get(w) is not None else "-" for w in counts]
            marginal = row["marginal_bytes_per_walker"]
            state = row["state_bytes_per_walker"]
            body.append([row["contestant"], *peaks,
                         "-" if marginal is None else f"{marginal:.0f}",
                         "-" if state is None else f"{state:.0f}"])
        blocks.append(f"{dtype}: peak resident memory of the process (MB) by walkers, and bytes "
                      "per walker\n" + format_table(
                          ["contestant", *(f"{w:.0e}" for w in counts), "B/walker (RSS slope)",
                           "B/walker (state)"], body))
    return "\n\n".join(blocks)


def write_json(path, document):
    """Write the results document."""
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def plot(path, median_rows, names, title):
    """Log-log throughput against walker count, one panel per dtype; returns False without
    matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    dtypes = sorted({r["dtype"] for r in median_rows}, reverse=True)
    if not dtypes:
        return False
    figure, axes = plt.subplots(1, len(dtypes), figsize=(6.2 * len(dtypes), 4.6), squeeze=False,
                                sharey=True)
    for axis, dtype in zip(axes[0], dtypes):
        for index, name in enumerate(names):
            rows = sorted((r for r in median_rows if r["contestant"] == name
                           and r["dtype"] == dtype), key=lambda r: r["walkers"])
            if not rows:
                continue
            axis.plot([r["walkers"] for r in rows], [r["walker_steps_per_second"] for r in rows],
                      color=OKABE_ITO[index % len(OKABE_ITO)],
                      marker=MARKERS[index % len(MARKERS)],
                      linestyle="-" if name.startswith("sgdwalk") else "--", label=name)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("walkers")
        axis.set_title(dtype)
        axis.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("walker-steps per second (median)")
    # One legend below the panels, where it cannot cover a curve.
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize="small", loc="lower center",
                  ncol=min(len(labels), 6), frameon=False)
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
