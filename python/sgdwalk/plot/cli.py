"""Command line: turn sgdwalk run directories into PNG/SVG figures and markdown tables.

    python3 -m sgdwalk_plot RUN [RUN ...] [--out DIR] ...     figures of each run
    python3 -m sgdwalk_plot overlay RUN RUN ... --out DIR     several runs in one figure
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from .figures import Figure

# Which run each figure prefix in an output directory belongs to (figure files are named
# <prefix>_<figure>.<format>; the prefix is run.name unless another run already has it there).
INDEX_NAME = ".sgdwalk_plot_runs.json"

DESCRIPTION = (
    "Figures (PNG + SVG) and tables (markdown) from sgdwalk run directories. The figures are "
    "chosen from what a run contains: 2-D sweeps give heat maps and curves split by the second "
    "parameter, 1-D and zip sweeps curves, first-passage runs escape rates, samples P_flat along "
    "the run, histograms densities and effective potentials; fixed-y (two_valley_slice) runs get "
    "the analytic overlays. A partial (interrupted) run is drawn from its finished variants. "
    "Figures are named <run.name>_<figure>; when the output directory already holds another "
    "run's figures under that name, they are named <run.name>-<run directory>_<figure> instead "
    f"(the directory's {INDEX_NAME} records which run each name belongs to).")

OVERLAY_DESCRIPTION = (
    "One figure comparing several runs: P_flat (and, for two_valley runs, eta<t_f> and "
    "<y_freeze>) of every run's finished variants against the parameter they all sweep (else "
    "Delta_S), one curve per run (grids: per value of their other swept parameters), with a "
    "table of every variant. Writes OUT/NAME.png/.svg and OUT/NAME.md.")


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--formats", default="png,svg",
                        help="comma-separated file formats (default: png,svg)")
    parser.add_argument("--dpi", type=int, default=100, help="PNG resolution (default: 100)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")


def _formats(text: str, parser: argparse.ArgumentParser) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    if not formats:
        parser.error("--formats names no format")
    return formats


def _read_index(out_dir: str) -> dict[str, Any]:
    path = os.path.join(out_dir, INDEX_NAME)
    try:
        with open(path) as f:
            index = json.load(f)
        return index if isinstance(index, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_index(out_dir: str, index: dict[str, Any]) -> None:
    path = os.path.join(out_dir, INDEX_NAME)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
    os.replace(temporary, path)


def _same_run(entry: object, identity: dict[str, str]) -> bool:
    """The same run directory, or the same resolved config (the same run made again)."""
    return isinstance(entry, dict) and (entry.get("run") == identity["run"] or
                                        entry.get("config_sha256") == identity["config_sha256"])


def _file_name_part(text: str | None) -> str:
    """Names become parts of file names: one plain path component, nothing hidden."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text or "").lstrip(".") or "run"


def claim_prefix(index: dict[str, Any], name: str, identity: dict[str, str],
                 directory_name: str) -> tuple[str, str | None]:
    """The figure-name prefix for a run named `name` in an output directory: `name` unless the
    directory's index gives it to another run, then `name-<run directory>` (then -2, -3, ...).
    Records the claim in `index`; returns (prefix, the other run's directory or None)."""
    name, directory_name = _file_name_part(name), _file_name_part(directory_name)
    other = None
    candidates = [name]
    if directory_name and directory_name != name:
        candidates.append(f"{name}-{directory_name}")
    base = candidates[-1]
    candidates += [f"{base}-{k}" for k in range(2, 1000)]
    for prefix in candidates:
        entry = index.get(prefix)
        if entry is None or _same_run(entry, identity):
            index[prefix] = identity
            return prefix, other
        if other is None:
            other = entry.get("run") if isinstance(entry, dict) else "?"
    raise ValueError(f"no free figure name for run '{name}'")


def _save(fig: Figure, out_dir: str, formats: Sequence[str], dpi: float, source: str,
          quiet: bool) -> None:
    from .figures import write_figure

    written = write_figure(fig, out_dir, formats, dpi, source)
    if fig.table and not quiet:
        print(f"\n## {fig.name}: {fig.caption}\n\n{fig.table}")
    if not quiet:
        for note in fig.notes:
            print(f"note: {fig.name}: {note}")
        print("wrote " + ", ".join(written))


def _note(path: str, text: object) -> None:
    print(f"sgdwalk_plot: {path}: {text}", file=sys.stderr)


def _is_rare_event_run(path: str) -> bool:
    from .run import is_rare_event_run

    try:
        with open(os.path.join(path, "summary.json")) as f:
            return is_rare_event_run(json.load(f))
    except (OSError, ValueError):
        return False  # load_run says what is wrong with the directory


def plot_runs(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m sgdwalk_plot", description=DESCRIPTION,
        epilog="Compare runs in one figure: python3 -m sgdwalk_plot overlay RUN RUN ... --out DIR "
               "(see: python3 -m sgdwalk_plot overlay --help).")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory (sgdwalk run --out)")
    parser.add_argument("--out", "-o", help="output directory (default: RUN/figures)")
    parser.add_argument("--theory", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the analytic overlays (default: on)")
    _common_arguments(parser)
    args = parser.parse_args(argv)
    formats = _formats(args.formats, parser)

    from .figures import figures_for
    from .run import load_run

    status = 0
    for path in args.runs:
        if _is_rare_event_run(path):
            # An FFS run: its rates as an Arrhenius plot (sgdwalk.plot.rare_events).
            from .rare_events import arrhenius

            out_dir = args.out or os.path.join(path, "figures")
            try:
                os.makedirs(out_dir, exist_ok=True)
                arrhenius(path, None, out_dir, formats, args.quiet)
            except (OSError, KeyError, ValueError) as error:
                _note(path, error)
                status = 1
            continue
        try:
            run = load_run(path)
        except (OSError, KeyError, ValueError) as error:
            _note(path, error)
            status = 1
            continue
        if run.finished_only().variant_count == 0:
            # Not an error: the run was stopped before its first variant finished.
            _note(path, f"{run.partial_note()} finished: nothing to plot yet "
                        f"(continue the run with: sgdwalk resume {path})")
            continue
        out_dir = args.out or os.path.join(path, "figures")
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as error:
            _note(path, f"cannot create the output directory: {error}")
            status = 1
            continue
        index = _read_index(out_dir)
        prefix, other = claim_prefix(index, run.name, run.identity(),
                                     os.path.basename(os.path.realpath(path)))
        if other is not None and not args.quiet:
            _note(path, f"{out_dir} already holds figures named {run.name}_* of another run "
                        f"({other}); these are named {prefix}_*")
        if not args.quiet:
            for warning in [run.partial_note()] + run.warnings():
                if warning:
                    _note(path, f"note: {warning}")
        figures = figures_for(run, with_theory=args.theory)
        if not figures:
            _note(path, "nothing to plot")
        for fig in figures:
            fig.name = prefix + fig.name[len(run.name):]
            _save(fig, out_dir, formats, args.dpi, path, args.quiet)
        _write_index(out_dir, index)
    return status


def plot_overlay(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m sgdwalk_plot overlay",
                                     description=OVERLAY_DESCRIPTION)
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories to compare")
    parser.add_argument("--out", "-o", required=True, help="output directory")
    parser.add_argument("--name", help="file name of the figure, without extension "
                                       "(default: overlay_<run names>)")
    _common_arguments(parser)
    args = parser.parse_args(argv)
    formats = _formats(args.formats, parser)
    if len(args.runs) < 2:
        parser.error("overlay compares at least two runs")

    from .figures import overlay
    from .run import load_run

    runs = []
    for path in args.runs:
        try:
            runs.append(load_run(path))
        except (OSError, KeyError, ValueError) as error:
            _note(path, error)
            return 1
    try:
        fig = overlay(runs, args.name)
    except ValueError as error:
        print(f"sgdwalk_plot overlay: {error}", file=sys.stderr)
        return 1
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        print(f"sgdwalk_plot overlay: cannot create {args.out}: {error}", file=sys.stderr)
        return 1
    _save(fig, args.out, formats, args.dpi, ", ".join(args.runs), args.quiet)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The sgdwalk_plot command (python -m sgdwalk.plot, python -m sgdwalk_plot): files only, so
    matplotlib draws without a display (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "overlay":
        return plot_overlay(argv[1:])
    return plot_runs(argv)


if __name__ == "__main__":
    sys.exit(main())
