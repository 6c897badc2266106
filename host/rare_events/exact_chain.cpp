#include "rare_events/exact_chain.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sgdwalk::exact_chain {
namespace {

/// P(Z ≥ z) for a standard normal Z, accurate in both tails.
double upper_tail(double z) {
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

/// P(a ≤ Z < c), accurate when both are in one tail.
double interval(double a, double c) {
  if (a >= 0) return upper_tail(a) - upper_tail(c);
  if (c <= 0) return upper_tail(-c) - upper_tail(-a);
  return 1.0 - upper_tail(-a) - upper_tail(c);
}

/// The discretised chain in band storage: row i holds columns [first[i], first[i] + width).
struct Banded {
  int n = 0, width = 0;
  std::vector<double> edges;    ///< n + 1 cell edges (edges[0] stands for −∞)
  std::vector<double> centres;  ///< n
  std::vector<int> first;       ///< first column of row i
  std::vector<double> k;        ///< [i · width + (j − first[i])]
  std::vector<double> escape;   ///< e_i = P(x' ≥ b)
};

Banded discretise(const Chain& chain, const Grid& grid) {
  if (!(grid.h > 0) || !(grid.lo < grid.b)) throw std::invalid_argument("bad grid");
  std::vector<double> marks{grid.lo, grid.b};
  for (double x : chain.breakpoints)
    if (x > grid.lo && x < grid.b) marks.push_back(x);
  std::sort(marks.begin(), marks.end());
  Banded m;
  for (std::size_t s = 0; s + 1 < marks.size(); ++s) {
    const int cells = std::max(1, static_cast<int>(std::ceil((marks[s + 1] - marks[s]) / grid.h)));
    for (int c = 0; c < cells; ++c)
      m.edges.push_back(marks[s] + (marks[s + 1] - marks[s]) * c / cells);
  }
  m.edges.push_back(grid.b);
  m.n = static_cast<int>(m.edges.size()) - 1;
  for (int i = 0; i < m.n; ++i) {
    // The first cell is (−∞, edges[1]); its representative point is the grid's left end.
    m.centres.push_back(i == 0 ? grid.lo : 0.5 * (m.edges[i] + m.edges[i + 1]));
  }
  // Columns reached with more than ~1e-30 relative probability: |x' − m| ≤ 11.5 s.
  std::vector<int> last(m.n);
  m.first.resize(m.n);
  for (int i = 0; i < m.n; ++i) {
    const double mu = chain.mean(m.centres[i]), s = chain.sd(m.centres[i]);
    const auto lo_it = std::upper_bound(m.edges.begin(), m.edges.end(), mu - 11.5 * s);
    const auto hi_it = std::upper_bound(m.edges.begin(), m.edges.end(), mu + 11.5 * s);
    m.first[i] = std::clamp(static_cast<int>(lo_it - m.edges.begin()) - 1, 0, m.n - 1);
    last[i] = std::clamp(static_cast<int>(hi_it - m.edges.begin()) - 1, 0, m.n - 1);
  }
  // Band storage wide enough for the fill of the elimination: columns [min first, i + W].
  int below = 0, above = 0;
  for (int i = 0; i < m.n; ++i) {
    below = std::max(below, i - m.first[i]);
    above = std::max(above, last[i] - i);
  }
  const int reach = std::max(below, above);
  m.width = 2 * reach + 1;
  m.k.assign(static_cast<std::size_t>(m.n) * m.width, 0.0);
  m.escape.resize(m.n);
  for (int i = 0; i < m.n; ++i) {
    m.first[i] = std::max(0, i - reach);
    const double mu = chain.mean(m.centres[i]), s = chain.sd(m.centres[i]);
    if (!(s > 0)) throw std::invalid_argument("the chain's sd must be positive");
    m.escape[i] = upper_tail((grid.b - mu) / s);
    for (int j = m.first[i]; j < std::min(m.n, m.first[i] + m.width); ++j) {
      const double a = j == 0 ? -INFINITY : (m.edges[j] - mu) / s;
      const double c = (m.edges[j + 1] - mu) / s;
      m.k[static_cast<std::size_t>(i) * m.width + (j - m.first[i])] =
          j == 0 ? upper_tail(-c) : interval(a, c);
    }
  }
  return m;
}

}  // namespace

double mean_first_passage_steps(const Chain& chain, const Grid& grid, double x_start) {
  Banded m = discretise(chain, grid);
  const int n = m.n, w = m.width;
  auto at = [&](int i, int j) -> double& {
    return m.k[static_cast<std::size_t>(i) * w + (j - m.first[i])];
  };
  auto in_band = [&](int i, int j) { return j >= m.first[i] && j < m.first[i] + w && j < n; };
  std::vector<double> r(n, 1.0), s(n, 0.0), t(n, 0.0);
  // Eliminate cells 0, 1, ...: T_k = (r_k + Σ_{j>k} K_kj T_j) / s_k with s_k = e_k + Σ_{j>k} K_kj
  // (the probability of leaving k in the chain censored to cells ≥ k); folding k into the rows
  // i > k adds only positive terms.
  for (int k = 0; k < n; ++k) {
    double sk = m.escape[k];
    for (int j = k + 1; j < n && in_band(k, j); ++j) sk += at(k, j);
    s[k] = sk;
    for (int i = k + 1; i < n && in_band(i, k); ++i) {
      const double f = at(i, k) / sk;
      if (f == 0) continue;
      at(i, k) = 0;
      r[i] += f * r[k];
      m.escape[i] += f * m.escape[k];
      for (int j = k + 1; j < n && in_band(k, j); ++j) {
        if (in_band(i, j)) at(i, j) += f * at(k, j);
      }
    }
  }
  for (int k = n - 1; k >= 0; --k) {
    double sum = r[k];
    for (int j = k + 1; j < n && in_band(k, j); ++j) sum += at(k, j) * t[j];
    t[k] = sum / s[k];
  }
  // One exact step from x_start, then the cell values.
  const double mu = chain.mean(x_start), sd = chain.sd(x_start);
  double total = 1.0;
  for (int j = 0; j < n; ++j) {
    const double a = j == 0 ? -INFINITY : (m.edges[j] - mu) / sd;
    const double c = (m.edges[j + 1] - mu) / sd;
    total += (j == 0 ? upper_tail(-c) : interval(a, c)) * t[j];
  }
  return total;
}

double quasi_stationary_escape(const Chain& chain, const Grid& grid, int iterations,
                               double tolerance) {
  const Banded m = discretise(chain, grid);
  const int n = m.n, w = m.width;
  std::vector<double> nu(n, 0.0), next(n);
  // Start from the deepest point of the stationary-looking profile: uniform is fine (positive).
  std::fill(nu.begin(), nu.end(), 1.0 / n);
  double rate = 0;
  for (int it = 0; it < iterations; ++it) {
    std::fill(next.begin(), next.end(), 0.0);
    double escape = 0;
    for (int i = 0; i < n; ++i) {
      escape += nu[i] * m.escape[i];
      for (int j = m.first[i]; j < std::min(n, m.first[i] + w); ++j)
        next[j] += nu[i] * m.k[static_cast<std::size_t>(i) * w + (j - m.first[i])];
    }
    double sum = 0;
    for (double x : next) sum += x;
    for (double& x : next) x /= sum;
    nu.swap(next);
    // escape/Σν: ν is normalised, so this is the escape per step of the current profile.
    if (it > 100 && std::fabs(escape - rate) <= tolerance * escape) return escape;
    rate = escape;
  }
  return rate;
}

double quasi_stationary_escape_extrapolated(const Chain& chain, const Grid& grid) {
  Grid half = grid;
  half.h = grid.h / 2;
  return (4 * quasi_stationary_escape(chain, half) - quasi_stationary_escape(chain, grid)) / 3;
}

double mean_first_passage_steps_extrapolated(const Chain& chain, const Grid& grid, double x_start) {
  Grid half = grid;
  half.h = grid.h / 2;
  return (4 * mean_first_passage_steps(chain, half, x_start) -
          mean_first_passage_steps(chain, grid, x_start)) /
         3;
}

}  // namespace sgdwalk::exact_chain
