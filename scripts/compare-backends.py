#!/usr/bin/env python3
"""Runs every example config on two backends and compares their summary.json, number for number.

    scripts/compare-backends.py SGDWALK EXAMPLES_DIR WORK_DIR [--walkers 64] [--backends cpu,cuda]
                                [--threads N] [--skip NAME,...] [--only NAME,...]

Each example's walkers are cut to --walkers per variant (flux-stage walkers for forward flux
sampling) and it runs once per backend (`sgdwalk run CONFIG -o DIR -q -b BACKEND -t N`). The two
summary.json files must be equal in everything but provenance (the backend's name and
description, the command line, timings, peak memory): every statistic, quantile, rate, stage count
and warning is compared exactly (the CLI writes each double in the shortest form that reads back
to the same bits, so equal numbers are equal bits). The two backends giving the same bits is what
the product promises; the unit tests compare the arrays themselves
(tests/test_backend_equivalence.cpp, tests/test_ffs_backends.cpp), this checks every example end
to end through the CLI.

Only the Python standard library: the GPU machine (scripts/gpu-check.sh, step `examples`) may lack
h5py. Exit status: the number of examples that failed to run or differ.
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import time

# Keys that describe the run rather than its results, wherever they appear.
PROVENANCE_KEYS = {
    'backend', 'command_line', 'config_source', 'sgdwalk', 'timing', 'wall_seconds',
    'simulate_seconds', 'peak_host_memory_bytes', 'walker_steps_per_second',
}


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in PROVENANCE_KEYS}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def first_difference(a, b, path=''):
    """The path of the first difference between two JSON values, or None."""
    if type(a) is not type(b):
        return f'{path or "/"}: {type(a).__name__} vs {type(b).__name__}'
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f'{path}/{key}: only in {"the second" if key not in a else "the first"}'
            found = first_difference(a[key], b[key], f'{path}/{key}')
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f'{path}: {len(a)} vs {len(b)} entries'
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f'{path}[{i}]')
            if found:
                return found
        return None
    # NaN is written as null; floats compare as the text the CLI wrote (repr round-trips).
    if a != b and not (isinstance(a, float) and a != a and b != b):
        return f'{path}: {a!r} vs {b!r}'
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('sgdwalk')
    parser.add_argument('examples', type=pathlib.Path)
    parser.add_argument('work', type=pathlib.Path)
    parser.add_argument('--walkers', type=int, default=64)
    parser.add_argument('--backends', default='cpu,cuda')
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--skip', default='', help='example names (without .toml) to leave out')
    parser.add_argument('--only', default='', help='example names (without .toml) to run alone')
    args = parser.parse_args()
    backends = args.backends.split(',')
    if len(backends) != 2:
        parser.error(f'--backends: two backends separated by a comma, not {args.backends!r}')
    skip = {name for name in args.skip.split(',') if name}
    only = {name for name in args.only.split(',') if name}
    names = {config.stem for config in args.examples.glob('*.toml')}
    for name in sorted((skip | only) - names):
        parser.error(f'no example {name!r} in {args.examples} (--skip/--only take names without .toml)')
    args.work.mkdir(parents=True, exist_ok=True)
    failed = 0
    for config in sorted(args.examples.glob('*.toml')):
        if config.stem in skip or (only and config.stem not in only):
            print(f'{config.stem}: skipped')
            continue
        text = re.sub(r'^walkers\s*=\s*\d+', f'walkers = {args.walkers}', config.read_text(),
                      flags=re.M)
        small = args.work / config.name
        small.write_text(text)
        summaries, seconds = [], []
        for i, backend in enumerate(backends):
            out = args.work / f'{config.stem}-{i}-{backend}'
            start = time.monotonic()
            run = subprocess.run([args.sgdwalk, 'run', str(small), '-o', str(out), '-q', '--force',
                                  '-b', backend, '-t', str(args.threads)],
                                 capture_output=True, text=True)
            seconds.append(time.monotonic() - start)
            if run.returncode != 0:
                print(f'{config.stem}: FAIL: {backend} exited with {run.returncode}: '
                      f'{run.stderr.strip()[-400:]}')
                break
            summaries.append(strip(json.loads((out / 'summary.json').read_text())))
        if len(summaries) != 2:
            failed += 1
            continue
        difference = first_difference(summaries[0], summaries[1])
        timing = ', '.join(f'{b} {s:.1f} s' for b, s in zip(backends, seconds))
        if difference:
            failed += 1
            print(f'{config.stem}: DIFFERENT ({timing}): first at {difference}')
        else:
            print(f'{config.stem}: identical ({timing})')
    print(f'{failed} example(s) failed or differ')
    return failed


if __name__ == '__main__':
    sys.exit(main())
