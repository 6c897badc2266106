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
    axes[0][-1].legend(fontsize="small", loc="best")
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
