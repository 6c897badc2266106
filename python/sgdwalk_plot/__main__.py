"""Command line: turn sgdwalk run directories into PNG/SVG figures and markdown tables."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m sgdwalk_plot",
        description="Figures (PNG + SVG) and tables (markdown) from sgdwalk run directories. "
                    "The figures are chosen from what a run contains: 2-D sweeps give heat maps, "
                    "1-D sweeps curves, first-passage runs escape rates, samples P_flat along "
                    "the run, histograms densities and effective potentials; fixed-y "
                    "(two_valley_slice) runs get the analytic overlays.")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory (sgdwalk run --out)")
    parser.add_argument("--out", "-o", help="output directory (default: RUN/figures)")
    parser.add_argument("--theory", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the analytic overlays (default: on)")
    parser.add_argument("--formats", default="png,svg",
                        help="comma-separated file formats (default: png,svg)")
    parser.add_argument("--dpi", type=int, default=100, help="PNG resolution (default: 100)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)

    from .figures import figures_for
    from .run import load_run
    import matplotlib.pyplot as plt

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    status = 0
    for path in args.runs:
        try:
            run = load_run(path)
        except (OSError, KeyError, ValueError) as error:
            print(f"sgdwalk_plot: {path}: {error}", file=sys.stderr)
            status = 1
            continue
        out_dir = args.out or os.path.join(path, "figures")
        os.makedirs(out_dir, exist_ok=True)
        figures = figures_for(run, with_theory=args.theory)
        if not figures:
            print(f"sgdwalk_plot: {path}: nothing to plot", file=sys.stderr)
        for fig in figures:
            written = []
            for fmt in formats:
                target = os.path.join(out_dir, f"{fig.name}.{fmt}")
                fig.figure.savefig(target, dpi=args.dpi)
                written.append(target)
            plt.close(fig.figure)
            if fig.table:
                table_path = os.path.join(out_dir, f"{fig.name}.md")
                with open(table_path, "w") as f:
                    f.write(f"<!-- {fig.caption}; made by sgdwalk_plot from {path} -->\n")
                    f.write(fig.table)
                written.append(table_path)
                if not args.quiet:
                    print(f"\n## {fig.name}: {fig.caption}\n\n{fig.table}")
            if not args.quiet:
                print("wrote " + ", ".join(written))
    return status


if __name__ == "__main__":
    sys.exit(main())
