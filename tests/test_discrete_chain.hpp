// The exact stationary P_flat of the discrete walk on the paper's slice, for the tests that compare
// a finite-η hessian-noise run with it (its Itô limit is reached only as O(√η) at the cusp).
//
// The walk x' = x − ηL'(x) + sqrt(2D(x)η) z on the slice converges to the Itô diffusion, but
// slowly at the cusp x = 0 (O(sqrt(η))): its stationary P_flat is ~1 % below the Itô value at
// η = 1e-3. This computes it exactly up to a grid: cells of width h = (step sd)/points_per_step
// with an edge at x = 0, transition probabilities from each cell centre by erf, and π(P − I) = 0
// solved with π fixed at the flat bottom (a banded system: a column-diagonally dominant M-matrix,
// eliminated without pivoting). python/sgdwalk/plot/theory.py has the same function.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "analysis/theory.hpp"
#include "sgdwalk/landscapes/base.hpp"
#include "sgdwalk/noise/kind.hpp"

namespace sgdwalk::testing {

/// The stationary distribution on the grid: the mass of cell i, [h·(i − n_left), h·(i − n_left +
/// 1)).
struct DiscreteChainGrid {
  double h = 0;
  std::int64_t n_left = 0;
  std::vector<double> mass;  ///< sums to 1

  double edge(std::int64_t j) const { return h * static_cast<double>(j - n_left); }
  /// The mass in [a, b), each cell's spread evenly over it (an O(h) error at a and b only).
  double probability(double a, double b) const {
    double total = 0;
    for (std::size_t i = 0; i < mass.size(); ++i) {
      const auto j = static_cast<std::int64_t>(i);
      const double overlap = std::min(b, edge(j + 1)) - std::max(a, edge(j));
      if (overlap > 0) total += mass[i] * overlap / h;
    }
    return total;
  }
};

inline DiscreteChainGrid discrete_chain_stationary(double y, double delta_s, double eta,
                                                   double points_per_step, NoiseKind kind) {
  const double d_flat =
      theory::slice_diffusion(theory::TwoValleyParams{}, y, delta_s, kFlatBasin, kind);
  const double d_sharp =
      theory::slice_diffusion(theory::TwoValleyParams{}, y, delta_s, kSharpBasin, kind);
  const double mu_flat = theory::g_flat(theory::TwoValleyParams{}, y) / 2,
               mu_sharp = -theory::g_sharp(theory::TwoValleyParams{}, y) / 2;
  const double v_flat = theory::f_flat(theory::TwoValleyParams{}, y) * d_flat / 2;
  const double v_sharp = theory::f_sharp(theory::TwoValleyParams{}, y) * d_sharp / 2;
  const double h = std::sqrt(2 * std::min(d_flat, d_sharp) * eta) / points_per_step;
  const double lo = mu_sharp - 9 * std::sqrt(v_sharp), hi = mu_flat + 9 * std::sqrt(v_flat);
  const auto n_left = static_cast<std::int64_t>(std::ceil(-lo / h));
  const auto n_right = static_cast<std::int64_t>(std::ceil(hi / h));
  const std::int64_t n = n_left + n_right;
  auto edge = [&](std::int64_t j) { return h * static_cast<double>(j - n_left); };
  auto centre = [&](std::int64_t i) { return h * (static_cast<double>(i - n_left) + 0.5); };
  const double sd_max = std::sqrt(2 * std::max(d_flat, d_sharp) * eta);
  const double drift_max =
      eta * std::max(std::fabs(theory::loss_dx(theory::TwoValleyParams{}, lo, y)),
                     std::fabs(theory::loss_dx(theory::TwoValleyParams{}, hi, y)));
  const auto half = static_cast<std::int64_t>(std::ceil(8 * sd_max / h)) + 2;
  const std::int64_t band = half + static_cast<std::int64_t>(std::ceil(drift_max / h)) + 2;
  // Unknowns and equations without the fixed cell k (π_k = 1).
  std::int64_t k = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::fabs(centre(i) - mu_flat) < std::fabs(centre(k) - mu_flat)) k = i;
  }
  const std::int64_t m = n - 1, width = 2 * band + 1;
  std::vector<double> matrix(static_cast<std::size_t>(m * width), 0.0),
      rhs(static_cast<std::size_t>(m), 0.0);
  auto index = [&](std::int64_t i) { return i < k ? i : i - 1; };
  auto at = [&](std::int64_t r, std::int64_t c) -> double& {
    return matrix[static_cast<std::size_t>(r * width + (c - r + band))];
  };
  std::vector<double> row;
  for (std::int64_t i = 0; i < n; ++i) {
    const double x = centre(i);
    const double d = x >= 0 ? d_flat : d_sharp;
    const double mean = x - eta * theory::loss_dx(theory::TwoValleyParams{}, x, y),
                 sd = std::sqrt(2 * d * eta);
    const std::int64_t c = static_cast<std::int64_t>(std::floor((mean - edge(0)) / h));
    const std::int64_t j0 = std::max<std::int64_t>(0, c - half), j1 = std::min(n, c + half);
    row.assign(static_cast<std::size_t>(j1 - j0), 0.0);
    double total = 0;
    for (std::int64_t j = j0; j < j1; ++j) {
      const double a = std::erf((edge(j) - mean) / (std::sqrt(2.0) * sd));
      const double b = std::erf((edge(j + 1) - mean) / (std::sqrt(2.0) * sd));
      row[static_cast<std::size_t>(j - j0)] = 0.5 * (b - a);
      total += 0.5 * (b - a);
    }
    for (std::int64_t j = j0; j < j1; ++j) {
      if (j == k) continue;
      const double pij = row[static_cast<std::size_t>(j - j0)] / total;
      if (i == k) {
        rhs[static_cast<std::size_t>(index(j))] -= pij;
      } else {
        at(index(j), index(i)) += pij;
      }
    }
    if (i != k) at(index(i), index(i)) -= 1.0;
  }
  // Banded elimination and back substitution.
  for (std::int64_t r = 0; r < m; ++r) {
    const double pivot = at(r, r);
    for (std::int64_t rr = r + 1; rr <= std::min(m - 1, r + band); ++rr) {
      const double factor = at(rr, r) / pivot;
      if (factor == 0) continue;
      for (std::int64_t c = r; c <= std::min(m - 1, r + band); ++c) at(rr, c) -= factor * at(r, c);
      rhs[static_cast<std::size_t>(rr)] -= factor * rhs[static_cast<std::size_t>(r)];
    }
  }
  std::vector<double> pi(static_cast<std::size_t>(m));
  for (std::int64_t r = m - 1; r >= 0; --r) {
    double sum = rhs[static_cast<std::size_t>(r)];
    for (std::int64_t c = r + 1; c <= std::min(m - 1, r + band); ++c) {
      sum -= at(r, c) * pi[static_cast<std::size_t>(c)];
    }
    pi[static_cast<std::size_t>(r)] = sum / at(r, r);
  }
  DiscreteChainGrid grid;
  grid.h = h;
  grid.n_left = n_left;
  grid.mass.resize(static_cast<std::size_t>(n));
  double all = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double value = i == k ? 1.0 : pi[static_cast<std::size_t>(index(i))];
    grid.mass[static_cast<std::size_t>(i)] = value;
    all += value;
  }
  for (double& value : grid.mass) value /= all;
  return grid;
}

inline double discrete_chain_p_flat_grid(double y, double delta_s, double eta,
                                         double points_per_step, NoiseKind kind) {
  const DiscreteChainGrid grid = discrete_chain_stationary(y, delta_s, eta, points_per_step, kind);
  double flat = 0;
  for (std::size_t i = 0; i < grid.mass.size(); ++i) {
    if (grid.edge(static_cast<std::int64_t>(i)) >= 0) flat += grid.mass[i];  // x = 0 is an edge
  }
  return flat;
}

/// The grid result extrapolated to h → 0 (the grid error is O(h²): Richardson from 4 and 8 cells
/// per step sd).
inline double discrete_chain_p_flat(double y, double delta_s, double eta,
                                    NoiseKind kind = NoiseKind::hessian) {
  const double coarse = discrete_chain_p_flat_grid(y, delta_s, eta, 4, kind);
  const double fine = discrete_chain_p_flat_grid(y, delta_s, eta, 8, kind);
  return fine + (fine - coarse) / 3;
}

}  // namespace sgdwalk::testing
