// Symmetric α-stable draws (include/sgdwalk/stable.hpp): the Chambers–Mallows–Stuck transform
// against a 50-digit evaluation of the same formula (scripts/stable_reference.py), the word
// contract, and the distribution from samples: characteristic function, tail probabilities
// against the series of the stable law, and α = 2 against the standard normal. Fixed seeds;
// tolerances from the sample sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/stable.hpp"
#include "sgdwalk/walker.hpp"
#include "test_support.hpp"

namespace sgdwalk {
namespace {

struct ReferenceDraw {
  std::string alpha_text;
  double alpha;
  std::uint32_t exp_word, angle_word;
  double value;  ///< S to 25 digits
};

std::vector<ReferenceDraw> load_reference() {
  std::ifstream in(testing::source_dir() + "/tests/golden/stable_cms_reference.txt");
  EXPECT_TRUE(in.good()) << "tests/golden/stable_cms_reference.txt";
  std::vector<ReferenceDraw> draws;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    ReferenceDraw d;
    std::string value;
    fields >> d.alpha_text >> d.exp_word >> d.angle_word >> value;
    d.alpha = std::stod(d.alpha_text);
    d.value = std::stod(value);  // may be beyond the float range, never beyond double's
    draws.push_back(d);
  }
  return draws;
}

// The draws agree with the high-precision evaluation of the contract's formula to a relative
// error bounded by the arguments' rounding: the exponent of the one exp is ~ ln(1/cos V)/α ≤ 22/α
// + ..., so its absolute error (a few ulps of it) is the relative error of S. Measured maxima are
// printed; the bounds are 8e-14 (double) and 3e-5 (float: α itself is rounded to float, and
// d ln S/dα ~ 70/α² at the tails).
template <class T>
void check_against_reference(double tolerance) {
  const std::vector<ReferenceDraw> draws = load_reference();
  ASSERT_GT(draws.size(), 4000u);
  double worst = 0;
  std::size_t overflowed = 0;
  for (const ReferenceDraw& d : draws) {
    const StableParams<T> p = make_stable_params<T>(d.alpha);
    const T s = stable_from_words<T>(d.exp_word, d.angle_word, p);
    if (std::abs(d.value) > static_cast<double>(std::numeric_limits<T>::max()) * (1 + tolerance)) {
      // Beyond the format: the draw must be ±inf with the right sign (a diverging walker).
      EXPECT_TRUE(std::isinf(s)) << d.alpha_text << " " << d.exp_word << " " << d.angle_word;
      EXPECT_EQ(std::signbit(s), std::signbit(d.value));
      ++overflowed;
      continue;
    }
    const double error = std::abs((static_cast<double>(s) - d.value) / d.value);
    worst = std::max(worst, error);
    EXPECT_LE(error, tolerance) << "alpha " << d.alpha_text << " words " << d.exp_word << " "
                                << d.angle_word << ": " << static_cast<double>(s) << " vs "
                                << d.value;
  }
  std::printf("  %zu draws, max relative error %.3g, %zu beyond the format\n", draws.size(), worst,
              overflowed);
}

TEST(StableDraws, MatchHighPrecisionReferenceDouble) {
  check_against_reference<double>(8e-14);
}

TEST(StableDraws, MatchHighPrecisionReferenceFloat) {
  check_against_reference<float>(3e-5);
}

// α = 1 is the Cauchy law: S = tan V (the tail exponent is 0), whatever the exponential word.
// V = π·j/2^33 for the odd integer j = 2a + 1 − 2^32; near ±π/2 tan V = ±cot(π·m/2^33) with
// m = 2^32 − |j| (libm's tan or cos of an angle near π/2 would lose the digits that cancel there).
TEST(StableDraws, CauchyIsTangentOfTheAngle) {
  const StableParams<double> p = make_stable_params<double>(1.0);
  for (std::uint32_t angle : {1u, 12345u, 0x7fffffffu, 0x80000000u, 0xdeadbeefu, 0xfffffffeu}) {
    const std::int64_t j = 2 * static_cast<std::int64_t>(angle) + 1 - (std::int64_t{1} << 32);
    const std::int64_t m = (std::int64_t{1} << 32) - (j < 0 ? -j : j);
    const double unit = 3.14159265358979323846 / 8589934592.0;  // π/2^33
    const double edge = static_cast<double>(m) * unit;
    const double expected = m < (std::int64_t{1} << 31)
                                ? (j < 0 ? -1.0 : 1.0) * std::cos(edge) / std::sin(edge)
                                : std::tan(static_cast<double>(j) * unit);
    for (std::uint32_t exp_word : {0u, 987654u, 0xffffffffu}) {
      EXPECT_NEAR(stable_from_words<double>(exp_word, angle, p), expected,
                  1e-14 * std::abs(expected))
          << angle;
    }
  }
}

// The contract: draw 2b from words (x, y) of block b, draw 2b + 1 from (z, w); the scale factor
// c = η^{1/α − 1/2}/√2, and under a learning-rate schedule η_k = η·f the factor of η_k.
TEST(StableDraws, BlockContractAndScale) {
  const double eta = 0.03, alpha = 1.4;
  const StableParams<double> p = make_stable_params<double>(alpha);
  const double c = stable_scale(alpha, eta);
  EXPECT_DOUBLE_EQ(c, std::pow(eta, 1 / alpha - 0.5) / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(stable_scale(2.0, eta), 1 / std::sqrt(2.0));
  // f = 1 keeps the unscheduled bits; α = 2 never moves; f = 0 stops the jumps.
  EXPECT_EQ(scheduled_stable_scale(c, 1 / alpha - 0.5, 1.0), c);
  EXPECT_EQ(scheduled_stable_scale(stable_scale(2.0, eta), 0.0, 0.25), stable_scale(2.0, eta));
  EXPECT_EQ(scheduled_stable_scale(c, 1 / alpha - 0.5, 0.0), 0.0);
  // c·f^e against the pow of the scheduled η itself (std::pow, independent of pmath).
  for (double f : {0.25, 1e-3, 0.7, 3.0}) {
    EXPECT_NEAR(scheduled_stable_scale(c, 1 / alpha - 0.5, f), stable_scale(alpha, eta * f),
                1e-15 * stable_scale(alpha, eta * f))
        << f;
  }
  for (std::uint64_t block : {0ull, 1ull, 77ull, 1ull << 40}) {
    const U32x4 words = philox_block(5, (3ull << 32) + 11, block);
    double out[2];
    stable_draws_from_block<double>(words, p, out);
    EXPECT_EQ(out[0], stable_from_words<double>(words.x, words.y, p));
    EXPECT_EQ(out[1], stable_from_words<double>(words.z, words.w, p));
  }
}

/// n standard draws (c = 1 is not applied: stable_from_words) of subsequence q, seed 2026.
template <class T>
std::vector<double> samples(double alpha, std::size_t n, std::uint64_t q) {
  const StableParams<T> p = make_stable_params<T>(alpha);
  std::vector<double> s(n);
  for (std::size_t b = 0; b < n / 2; ++b) {
    const U32x4 w = philox_block(2026, q, b);
    s[2 * b] = static_cast<double>(stable_from_words<T>(w.x, w.y, p));
    s[2 * b + 1] = static_cast<double>(stable_from_words<T>(w.z, w.w, p));
  }
  return s;
}

// E[cos(tS)] = exp(−|t|^α). cos(tS) is bounded, so the sample mean has standard error
// sqrt(Var/n) with Var = (1 + φ(2t))/2 − φ(t)²; 5 standard errors allowed per point.
template <class T>
void check_characteristic_function(double alpha, std::uint64_t q) {
  const std::size_t n = std::size_t{1} << 21;
  const std::vector<double> s = samples<T>(alpha, n, q);
  for (double t : {0.1, 0.3, 0.7, 1.0, 1.6, 3.0}) {
    double sum = 0;
    for (double x : s) sum += std::cos(t * x);
    const double mean = sum / static_cast<double>(n);
    const double phi = std::exp(-std::pow(t, alpha));
    const double phi2 = std::exp(-std::pow(2 * t, alpha));
    const double se = std::sqrt(((1 + phi2) / 2 - phi * phi) / static_cast<double>(n));
    EXPECT_NEAR(mean, phi, 5 * se) << "alpha " << alpha << ", t " << t;
  }
}

TEST(StableDistribution, CharacteristicFunctionDouble) {
  std::uint64_t q = 1;
  for (double alpha : {0.5, 0.9, 1.0, 1.3, 1.7, 1.95, 2.0})
    check_characteristic_function<double>(alpha, q++);
}

TEST(StableDistribution, CharacteristicFunctionFloat) {
  std::uint64_t q = 100;
  for (double alpha : {0.6, 1.0, 1.5, 2.0}) check_characteristic_function<float>(alpha, q++);
}

/// P(S > x) from the series of the symmetric stable law (Zolotarev; convergent for α < 1,
/// asymptotic for α > 1): (1/π) Σ_k (−1)^{k+1} Γ(kα)/k! sin(kπα/2) x^{−kα}. Its first term is
/// C_α x^{−α}, C_α = Γ(α) sin(πα/2)/π. Used where x^{−α} ≤ 0.02, so that 6 terms are exact to
/// far below the sampling error.
double stable_tail(double alpha, double x) {
  const double pi = 3.14159265358979323846;
  double sum = 0, factorial = 1;
  for (int k = 1; k <= 6; ++k) {
    factorial *= k;
    sum += (k % 2 == 1 ? 1 : -1) * std::tgamma(k * alpha) / factorial *
           std::sin(k * pi * alpha / 2) * std::pow(x, -k * alpha);
  }
  return sum / pi;
}

// The tail: P(|S| > x) = 2 P(S > x) at two x a factor 8 apart (their ratio is the tail index:
// 8^α up to the series' higher terms), 5 binomial standard errors each; and the Hill estimator
// of the index over the top 0.1 %, within 5 of its standard errors α/√k plus its bias from the
// second series term.
template <class T>
void check_tail(double alpha, double x, std::uint64_t q) {
  const std::size_t n = std::size_t{1} << 22;
  std::vector<double> s = samples<T>(alpha, n, q);
  for (double at : {x, 8 * x}) {
    const double p = 2 * stable_tail(alpha, at);
    ASSERT_LT(std::pow(at, -alpha), 0.021);
    std::size_t beyond = 0;
    for (double v : s) beyond += std::abs(v) > at;
    const double observed = static_cast<double>(beyond) / static_cast<double>(n);
    const double se = std::sqrt(p * (1 - p) / static_cast<double>(n));
    EXPECT_NEAR(observed, p, 5 * se) << "alpha " << alpha << ", P(|S| > " << at << ")";
  }
  for (double& v : s) v = std::abs(v);
  const std::size_t k = n / 1000;
  std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n - k - 1), s.end());
  const double threshold = s[n - k - 1];
  double sum = 0;
  for (std::size_t i = n - k; i < n; ++i) sum += std::log(s[i] / threshold);
  const double hill = static_cast<double>(k) / sum;
  std::printf("  alpha %.2f: Hill estimate %.4f over the top %zu of %zu draws\n", alpha, hill, k,
              n);
  const double bias = alpha * std::pow(threshold, -alpha);  // relative order of the 2nd term
  EXPECT_NEAR(hill, alpha, 5 * alpha / std::sqrt(static_cast<double>(k)) + alpha * bias);
}

TEST(StableDistribution, TailIndexDouble) {
  check_tail<double>(0.5, 4000.0, 21);
  check_tail<double>(1.0, 60.0, 22);
  check_tail<double>(1.5, 20.0, 23);
}

TEST(StableDistribution, TailIndexFloat) {
  check_tail<float>(0.7, 300.0, 31);
  check_tail<float>(1.5, 20.0, 32);
}

// α = 2: S ~ N(0, 2), so z = c·S with c = 1/√2 (η^0) is N(0, 1), the Gaussian update's input.
// Kolmogorov–Smirnov against Φ (critical value 1.95/√n, p ≈ 0.001) and the moments (5 standard
// errors: Var of the variance estimate 2/n, of the kurtosis 24/n).
template <class T>
void check_alpha_two_is_gaussian(std::uint64_t q) {
  const std::size_t n = std::size_t{1} << 20;
  const StableParams<T> p = make_stable_params<T>(2.0);
  const T c = static_cast<T>(stable_scale(2.0, 0.37));  // 1/√2 at α = 2, whatever η
  std::vector<double> z(n);
  for (std::size_t b = 0; b < n / 2; ++b) {
    T out[2];
    stable_draws_from_block<T>(philox_block(77, q, b), p, out);
    z[2 * b] = static_cast<double>(c * out[0]);
    z[2 * b + 1] = static_cast<double>(c * out[1]);
  }
  double m1 = 0, m2 = 0, m4 = 0;
  for (double v : z) {
    m1 += v;
    m2 += v * v;
    m4 += v * v * v * v;
  }
  const double dn = static_cast<double>(n);
  EXPECT_NEAR(m1 / dn, 0.0, 5 / std::sqrt(dn));
  EXPECT_NEAR(m2 / dn, 1.0, 5 * std::sqrt(2 / dn));
  EXPECT_NEAR(m4 / dn, 3.0, 5 * std::sqrt(96 / dn));  // Var z⁴ = 105 − 9
  std::sort(z.begin(), z.end());
  double d = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double cdf = 0.5 * std::erfc(-z[i] / std::sqrt(2.0));
    d = std::max({d, std::abs(cdf - static_cast<double>(i) / dn),
                  std::abs(cdf - static_cast<double>(i + 1) / dn)});
  }
  EXPECT_LT(d * std::sqrt(dn), 1.95) << "Kolmogorov-Smirnov distance " << d;
}

TEST(StableDistribution, AlphaTwoIsStandardNormalAfterScalingDouble) {
  check_alpha_two_is_gaussian<double>(3);
}

TEST(StableDistribution, AlphaTwoIsStandardNormalAfterScalingFloat) {
  check_alpha_two_is_gaussian<float>(4);
}

// A draw beyond the format is ±inf (float, α = 0.3, the extreme words: S ≈ −3.1e53), and a
// walker it moves follows the non-finite rule of walker.hpp: it stops at its last finite position
// with nonfinite_step = the step, counted as diverged, for every noise model's shape.
TEST(StableDraws, OverflowingDrawDivergesTheWalkerAtThatStep) {
  const StableParams<float> p = make_stable_params<float>(0.3);
  const float z = static_cast<float>(stable_scale(0.3, 0.1)) * stable_from_words<float>(0u, 0u, p);
  ASSERT_TRUE(std::isinf(z) && z < 0);
  Harmonic<float, 2> well;
  StepParams<float> step{};
  step.learning_rate = 0.1f;
  step.noise = make_noise_scale<float>(0.5);
  const PassageTarget<float> target = PassageTarget<float>::make(PassageKind::none, 0, 0, 0.0f);
  auto run = [&](auto noise_tag) {
    constexpr NoiseKind kNoise = decltype(noise_tag)::value;
    WalkerState<float, 2> walker = initial_walker(well, target, Vec<float, 2>{{0.25f, -0.5f}});
    advance_walker<kNoise>(well, step, target, Vec<float, 2>{{0.1f, 0.2f}}, 1, walker);
    const Vec<float, 2> before = walker.position;
    ASSERT_LT(walker.nonfinite_step, 0);
    advance_walker<kNoise>(well, step, target, Vec<float, 2>{{z, 0.3f}}, 2, walker);
    EXPECT_EQ(walker.nonfinite_step, 2);
    EXPECT_EQ(walker.position[0], before[0]);
    EXPECT_EQ(walker.position[1], before[1]);
    advance_walker<kNoise>(well, step, target, Vec<float, 2>{{0.1f, 0.2f}}, 3, walker);
    EXPECT_EQ(walker.nonfinite_step, 2) << "the first non-finite step is kept";
    EXPECT_EQ(walker.position[0], before[0]);
  };
  run(std::integral_constant<NoiseKind, NoiseKind::isotropic>{});
  run(std::integral_constant<NoiseKind, NoiseKind::hessian>{});
  run(std::integral_constant<NoiseKind, NoiseKind::hessian_squared>{});
}

// Exp(1) variates: never 0 or inf; the mean over all of a structured set of words is 1.
TEST(StableDraws, ExponentialFromWordsIsExpOneAndBounded) {
  for (std::uint32_t w : {0u, 1u, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu}) {
    const double e = exponential_from_word<double>(w);
    const double u = (w + 0.5) / 4294967296.0;
    EXPECT_NEAR(e, -std::log1p(-u), 4e-16 * e) << w;
    const float f = exponential_from_word<float>(w);
    EXPECT_GT(f, 0.0f);
    EXPECT_TRUE(std::isfinite(f));
    EXPECT_NEAR(f, -std::log1p(-u), 3e-7 * -std::log1p(-u)) << w;
  }
  double sum = 0;
  const std::uint32_t n = 1u << 20;
  for (std::uint32_t i = 0; i < n; ++i) sum += exponential_from_word<double>(i * 4096u + 2048u);
  EXPECT_NEAR(sum / n, 1.0, 1e-4);  // a midpoint rule over the words: no sampling error
}

}  // namespace
}  // namespace sgdwalk
