#!/usr/bin/python3
"""Checks that a refactoring changed no result: runs every example config (walkers cut to 64 per
variant, CPU backend, one thread) with two sgdwalk binaries and compares their results.h5 dataset by
dataset, bit for bit, and attribute by attribute except provenance (version, commit, timings).

    scripts/compare-example-results.py OLD_SGDWALK NEW_SGDWALK examples/

Needs h5py and numpy (Debian: python3-h5py). Exit status 1 when any example differs or fails."""
import re, subprocess, sys, pathlib, tempfile
import h5py, numpy as np
old, new, examples = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
PROVENANCE = {'version', 'commit', 'git_commit', 'created', 'hostname', 'host', 'backend_description',
              'elapsed_seconds', 'wall_seconds', 'simulate_seconds', 'date', 'started', 'finished', 'device'}
def items(f):
    out = {}
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out['D:' + name] = obj[()]
        for k, v in obj.attrs.items():
            if k in PROVENANCE or 'seconds' in k or 'time' in k.lower(): continue
            if k in ('DIMENSION_LIST', 'REFERENCE_LIST'): continue
            out[f'A:{name}@{k}'] = v
    f.visititems(visit)
    for k, v in f.attrs.items():
        if k in PROVENANCE or 'seconds' in k or 'time' in k.lower(): continue
        out['A:/@' + k] = v
    return out
def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape: return False
    if a.dtype.kind in 'fc': return a.tobytes() == b.tobytes()
    return np.array_equal(a, b)
bad = 0
tmp = pathlib.Path(tempfile.mkdtemp())
for cfg in sorted(examples.glob('*.toml')):
    text = re.sub(r'^walkers\s*=\s*\d+', 'walkers = 64', cfg.read_text(), flags=re.M)
    small = tmp / cfg.name
    small.write_text(text)
    res = []
    for tag, exe in (('old', old), ('new', new)):
        out = tmp / f'{cfg.stem}-{tag}'
        r = subprocess.run([exe, 'run', str(small), '-o', str(out), '-q', '-b', 'cpu', '-t', '1'],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f'{cfg.name}: {tag} failed: {r.stderr.strip()[:300]}'); bad += 1; break
        res.append(out / 'results.h5')
    if len(res) != 2: continue
    with h5py.File(res[0]) as fa, h5py.File(res[1]) as fb:
        a, b = items(fa), items(fb)
    common = set(a) & set(b)
    diff = [k for k in sorted(common) if not same(a[k], b[k])]
    only_old = sorted(k for k in set(a) - set(b) if k.startswith('D:'))
    only_new = sorted(set(b) - set(a))
    ndata = sum(1 for k in common if k.startswith('D:'))
    status = 'IDENTICAL' if not diff and not only_old else 'DIFFERENT'
    if status != 'IDENTICAL': bad += 1
    print(f'{cfg.name}: {status} ({ndata} datasets compared; differing {diff[:5]}; only in old {only_old[:5]}; new-only items {len(only_new)})')
sys.exit(1 if bad else 0)
