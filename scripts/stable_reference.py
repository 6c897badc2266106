#!/usr/bin/python3
"""Writes tests/golden/stable_cms_reference.txt: standard symmetric alpha-stable draws of the
stable sequence contract (include/sgdwalk/stable.hpp) evaluated in 50-digit arithmetic (mpmath),
independently of the C++ code: for each (alpha, exp_word, angle_word)

    V = pi * ((angle_word + 1/2) / 2^32 - 1/2),   W = -ln(1 - (exp_word + 1/2) / 2^32),
    S = sin(alpha V) / cos(V)^(1/alpha) * (cos((1 - alpha) V) / W)^((1 - alpha) / alpha).

The words are edge cases (both ends and the middle of each word's range, where the tails and the
cancellations live) and pseudo-random ones (numpy, fixed seed). Run from the repository root:
    /usr/bin/python3 scripts/stable_reference.py > tests/golden/stable_cms_reference.txt
"""
import mpmath
import numpy as np

mpmath.mp.dps = 50
ALPHAS = ["0.3", "0.5", "0.8", "1", "1.2", "1.5", "1.8", "1.99", "2"]
EDGES = [0, 1, 2, 3, 1000, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1001, 2**32 - 3,
         2**32 - 2, 2**32 - 1]


def cms(alpha, exp_word, angle_word):
    a = mpmath.mpf(alpha)
    v = mpmath.pi * ((mpmath.mpf(angle_word) + mpmath.mpf(1) / 2) / 2**32 - mpmath.mpf(1) / 2)
    w = -mpmath.log(1 - (mpmath.mpf(exp_word) + mpmath.mpf(1) / 2) / 2**32)
    return (mpmath.sin(a * v) / mpmath.cos(v) ** (1 / a) *
            (mpmath.cos((1 - a) * v) / w) ** ((1 - a) / a))


def main():
    rng = np.random.default_rng(20261204)
    pairs = [(e, g) for e in EDGES for g in EDGES]
    pairs += [tuple(int(x) for x in rng.integers(0, 2**32, size=2)) for _ in range(300)]
    print("# alpha exp_word angle_word S (scripts/stable_reference.py, mpmath 50 digits)")
    for alpha in ALPHAS:
        for exp_word, angle_word in pairs:
            s = cms(alpha, exp_word, angle_word)
            print(f"{alpha} {exp_word} {angle_word} {mpmath.nstr(s, 25, min_fixed=1, max_fixed=0)}")


if __name__ == "__main__":
    main()
