// Exact escape statistics of a 1-D discrete-time Gaussian chain x' ~ N(m(x), s(x)²): the oracle of
// the forward-flux-sampling validation (docs/VALIDATION.md). An SGD/Langevin walker on a 1-D
// landscape is such a chain: m(x) = x − η L'(x), s(x) = η·sqrt(Var ξ(x)) (Var ξ = 2σ·L''(x) + ε
// for hessian noise, 2σ for isotropic noise). Written from these formulas only, independently of
// the walker code, in double precision.
//
// The chain is discretised on cells of width ≤ h covering [lo, b) (cell edges also at the given
// breakpoints, where m or s has a kink or jump; the first cell extends to −∞): from the centre of
// cell i the walker moves to cell j with the exact Gaussian cell probability, and is absorbed when
// x' ≥ b (probability e_i, from erfc directly). Small escape probabilities (1e-20 per step and
// below) stay accurate because nothing is computed as 1 − (something close to 1):
//   - mean_first_passage_steps eliminates the cells one by one in the Grassmann–Taksar–Heyman way
//     (every pivot is a sum of positive terms: the probabilities of leaving the cell), banded;
//   - quasi_stationary_escape is the escape probability per step Σ ν_i e_i of the quasi-stationary
//     distribution ν (the left Perron vector of the killed chain, by power iteration on positive
//     numbers): the rate a long-lived ensemble in A escapes at, which is what FFS measures.
// The discretisation error is O(h²) (≈ 5 % at h = s/8 for a 40 Δ_S barrier); the *_extrapolated
// forms remove it by Richardson extrapolation (0.1 % there).
#pragma once

#include <functional>
#include <vector>

namespace sgdwalk::exact_chain {

struct Chain {
  std::function<double(double)> mean;  ///< m(x): the expected next position
  std::function<double(double)> sd;    ///< s(x) > 0: the standard deviation of the next position
  std::vector<double> breakpoints;     ///< where m or s is not smooth (cell edges are put there)
};

struct Grid {
  double lo = 0;  ///< left end (the first cell reaches to −∞)
  double b = 0;   ///< absorbing level: x' ≥ b
  double h = 0;   ///< largest cell width
};

/// Mean number of steps until the first x' ≥ grid.b, from x_start < grid.b.
double mean_first_passage_steps(const Chain& chain, const Grid& grid, double x_start);

/// Escape probability per step of the quasi-stationary distribution of the chain killed at
/// x' ≥ grid.b (1 − the Perron eigenvalue of the killed chain).
double quasi_stationary_escape(const Chain& chain, const Grid& grid, int iterations = 20000,
                               double tolerance = 1e-12);

/// Richardson extrapolation of the O(h²) discretisation error: (4 f(h/2) − f(h)) / 3.
double quasi_stationary_escape_extrapolated(const Chain& chain, const Grid& grid);
double mean_first_passage_steps_extrapolated(const Chain& chain, const Grid& grid, double x_start);

}  // namespace sgdwalk::exact_chain
