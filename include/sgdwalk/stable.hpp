// Heavy-tailed gradient noise: symmetric α-stable draws (Chambers–Mallows–Stuck) from the walker's
// Philox words, identical on host and device.
//
// The noise DISTRIBUTION is orthogonal to the noise MODEL (noise.hpp): the model gives the shape
// Σ^{1/2} (hessian, hessian_squared, isotropic), the distribution gives the components z that
// Σ^{1/2} multiplies. Gaussian: z ~ N(0, I) (normal.hpp). α-stable: z = c·S with S i.i.d. standard
// symmetric α-stable, E[exp(itS)] = exp(−|t|^α), 0 < α ≤ 2, and c = η^{1/α − 1/2}/√2. The update
// stays θ ← θ − η(∇L(θ) + Σ^{1/2} z) (walker.hpp), so its noise part is
//   −η Σ^{1/2} z = −η^{1/α} · (√η Σ^{1/2}/√2) · S,
// the Euler step of the Lévy-driven dynamics dθ = −∇L dt + (√η Σ^{1/2}/√2) dL^α with dt = η (the
// jump scales as η^{1/α} where a Brownian step scales as η^{1/2}). Isotropic noise, Σ = 2σI:
//   θ ← θ − η∇L − η^{1/α} s S,  s = √(ησ) = √Δ_S,
// the reference form (docs/MODEL.md). At α = 2, S ~ N(0, 2), so z ~ N(0, I) and the update has
// exactly the Gaussian update's distribution (not its bits: the draws come from other words).
//
// With a learning-rate schedule η_k = η·f(k − 1) (optimizer.hpp) update k uses the same form with
// η_k: c_k = η_k^{1/α − 1/2}/√2 = c·f^{1/α − 1/2}, so each update is the Euler step of the same
// Lévy-driven dynamics with the step dt = η_k (its jump scales as η_k^{1/α}). The generators give
// the unscaled draws S (stable_draws_from_block); the step multiplies them by its own c_k
// (StepParams::stable_scale, noise_inputs in walker.hpp), one rounding as z = c·S always was.
//
// THE STABLE SEQUENCE CONTRACT (both backends follow it):
//   Stable draw n of a walker uses the two 32-bit words 2n and 2n+1 of its Philox subsequence q
//   (seed s): raw block b = n / 2 (= philox_block(s, q, b)) with words (x, y, z, w) gives
//       draw 2b   = cms(exp_word = x, angle_word = y)
//       draw 2b+1 = cms(exp_word = z, angle_word = w)
//   Update k of a D-dimensional walker consumes draws [(k−1)·D, k·D), i.e. the words
//   [2(k−1)·D, 2k·D): twice the words of a Gaussian update, so any step of any walker is
//   recomputed from the step index alone, as with normals (normal.hpp).
//   cms: V = π(u − 1/2) with u = (angle_word + 1/2)/2^32 (never ±π/2, never 0), W = −ln(1 − u')
//   with u' = (exp_word + 1/2)/2^32 an Exp(1) variate (written so that small W, which makes the
//   tail for α < 1, is accurate and never 0), and
//       S = sin(αV)/cos(V)^{1/α} · (cos((1−α)V)/W)^{(1−α)/α}     (α = 1: S = tan V, Cauchy).
//   Every angle is rebuilt from exact integers so that nothing cancels near V = ±π/2, where the
//   tail lives: |V| = π(2h+1)/2^33 and π/2 − |V| = π(2h'+1)/2^33 with h, h' = 2^31 − 1 − h
//   integers. The arguments of sin are all in (0, π/2], the logarithms' arguments are positive
//   normal numbers (cos V ≥ 3.6e-10, W ≥ 2^-33), one exp combines the powers. Only pmath and
//   correctly rounded operations are used, so both backends give the same bits.
//   Range: |S| is bounded (the words are finite), but for small α the bound exceeds the format's
//   range (float below α ≈ 0.4, double below α ≈ 0.06, at the most extreme words): such a draw is
//   ±inf, and the walker it moves becomes non-finite and is counted as diverged (walker.hpp's
//   non-finite rule), as any overflowing step.
#pragma once

#include <cmath>
#include <cstdint>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/portable_math.hpp"

namespace sgdwalk {

/// The distribution of the noise components z (see the file comment).
enum class NoiseDistribution { gaussian, alpha_stable };

/// Per-variant constants of the α-stable draws S, computed on the host in double and rounded once
/// to T (make_stable_params), so both backends start from the same bits. The scale c_k that turns
/// S into the update's z is a per-step constant (StepParams::stable_scale).
template <class T>
struct StableParams {
  T alpha;          ///< α
  T inv_alpha;      ///< 1/α
  T tail_exponent;  ///< (1 − α)/α
  T reflect;        ///< (2 − α)π/2: π − α|V| = reflect + α(π/2 − |V|)
  T cos_offset;  ///< min(α, 2 − α)π/2: cos((1 − α)V) = sin(cos_offset + |1 − α|(π/2 − |V|))
  T abs_one_minus;  ///< |1 − α|
};

/// c = η^{1/α − 1/2}/√2, the factor from S to z at learning rate η (in double; the host's
/// std::pow, computed once per variant: the bits every unscheduled α-stable run has always had).
inline double stable_scale(double alpha, double learning_rate) {
  return std::pow(learning_rate, 1.0 / alpha - 0.5) / std::sqrt(2.0);
}

/// c_k of an update whose learning rate is the base η times the schedule factor f:
/// (ηf)^{e}/√2 = c·f^{e} with e = 1/α − 1/2 ≥ 0 and `base` = stable_scale(α, η), in double with
/// pmath (the same bits on every compiler and backend). f = 1 (and α = 2, e = 0) gives `base`
/// itself, so a schedule that keeps η gives an unscheduled run's bits; f = 0 gives 0.
SGDWALK_FN double scheduled_stable_scale(double base, double exponent, double factor) {
  if (factor == 1.0 || exponent == 0.0) return base;
  return base * pmath::exp(exponent * pmath::log(factor));
}

/// The constants for tail index `alpha` in (0, 2].
template <class T>
inline StableParams<T> make_stable_params(double alpha) {
  constexpr double pi = 3.14159265358979323846;
  StableParams<T> p;
  p.alpha = static_cast<T>(alpha);
  p.inv_alpha = static_cast<T>(1.0 / alpha);
  p.tail_exponent = static_cast<T>((1.0 - alpha) / alpha);
  p.reflect = static_cast<T>((2.0 - alpha) * (pi / 2));
  p.cos_offset = static_cast<T>((alpha < 2.0 - alpha ? alpha : 2.0 - alpha) * (pi / 2));
  p.abs_one_minus = static_cast<T>(alpha > 1.0 ? alpha - 1.0 : 1.0 - alpha);
  return p;
}

/// The contract's Exp(1) variate W = −ln(1 − u'), u' = (word + 1/2)/2^32, accurate at both ends.
/// Upper half of the words (u' > 1/2): 1 − u' = uniform_open01(~word) ≤ 1/2 exactly in real
/// arithmetic, W = −ln of it. Lower half: W = −log1p(−u') by Goldberg's formula, y = 1 − u'
/// rounded, ln(1 − u') = ln(y)·(−u')/(y − 1) (y − 1 is exact; −u' when y = 1), so small W (the
/// α < 1 tail) keeps its relative accuracy. W is in [~2^-33, ~22.9], never 0 or inf.
template <class T>
SGDWALK_FN T exponential_from_word(std::uint32_t word) {
  const bool upper = word >= 0x80000000u;
  const T u_up = uniform_open01<T>(~word);             // 1 − u' (exact in real arithmetic)
  const T u_low = uniform_open01<T>(word);             // u'
  const T y = select_bits(upper, u_up, T(1) - u_low);  // in [2^-33, 1]
  const T l = pmath::log_positive_normal(y);
  const T ym1 = y - T(1);  // exact (Sterbenz) in the lower half
  const bool one = ym1 == T(0);
  const T log1p = select_bits(one, -u_low, l * (-u_low) / select_bits(one, T(1), ym1));
  return -select_bits(upper, l, log1p);
}

/// A standard symmetric α-stable draw S from the contract's two words (see the file comment).
template <class T>
SGDWALK_FN T stable_from_words(std::uint32_t exp_word, std::uint32_t angle_word,
                               const StableParams<T>& p) {
  // V = π((angle_word + 1/2)/2^32 − 1/2) = ±π(2h + 1)/2^33.
  const bool positive = angle_word >= 0x80000000u;
  const std::uint32_t h = angle_word ^ (positive ? 0x80000000u : 0x7fffffffu);
  const std::uint32_t hc = h ^ 0x7fffffffu;                 // 2^31 − 1 − h
  const T pi_2_33 = static_cast<T>(0x1.921fb54442d18p-32);  // π/2^33
  const T abs_v = static_cast<T>(2u * h + 1u) * pi_2_33;    // |V|
  const T edge = static_cast<T>(2u * hc + 1u) * pi_2_33;    // π/2 − |V|, > 0
  const T cos_v = pmath::sin(edge);
  // sin(α|V|) with α|V| in (0, π): of α|V| and π − α|V| = reflect + α·edge take the one ≤ π/2.
  const T direct = p.alpha * abs_v;
  const T reflected = fma_rn(p.alpha, edge, p.reflect);
  const T sin_av = pmath::sin(direct <= reflected ? direct : reflected);
  const T cos_1ma_v = pmath::sin(fma_rn(p.abs_one_minus, edge, p.cos_offset));
  const T w = exponential_from_word<T>(exp_word);
  // cos(V)^{−1/α} · (cos((1−α)V)/W)^{(1−α)/α} as one exp.
  const T log_ratio = pmath::log_positive_normal(cos_1ma_v) - pmath::log_positive_normal(w);
  const T e = fma_rn(p.tail_exponent, log_ratio, -p.inv_alpha * pmath::log_positive_normal(cos_v));
  const T magnitude = sin_av * pmath::exp(e);
  return positive ? magnitude : -magnitude;
}

/// The two draws S of block `block` (draws 2·block and 2·block + 1 of the contract), unscaled:
/// update k multiplies them by its c_k (noise_inputs in walker.hpp).
template <class T>
SGDWALK_FN void stable_draws_from_block(const U32x4& block, const StableParams<T>& p, T out[2]) {
  out[0] = stable_from_words<T>(block.x, block.y, p);
  out[1] = stable_from_words<T>(block.z, block.w, p);
}

}  // namespace sgdwalk
