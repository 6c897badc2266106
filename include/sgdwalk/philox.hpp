// Philox4x32-10 exactly as cuRAND implements it, usable on host and device.
//
// Why our own copy: the CPU backend must replay any GPU walker bit for bit, so the host needs the
// very raw words that curand4() yields on the device. The CPU build must not need the CUDA
// toolkit, and the hot CPU loop wants straight-line code it can vectorise, so the generator is
// re-implemented here from curand_philox4x32_x.h / curand_kernel.h (CUDA 13.0), quirks included.
// (For vectorised loops prefer philox_block(): a U32x4 built inside an `omp simd` body and passed
// by value gets privatised into a per-lane array by gcc and blocks vectorisation.)
//
// Closed form (what every test checks): 32-bit word n of subsequence q for seed s is word n mod 4
// of philox4x32_10(counter = {lo(n/4), hi(n/4), lo(q), hi(q)}, key = {lo(s), hi(s)}). A stream
// created by make() and then advanced by next()/next4() follows it exactly (the counter is a
// 128-bit integer that carries from word to word). Only skipahead() on an already advanced stream
// could deviate: it uses cuRAND's 64-bit add with a lost carry (see incr(n)), but skips expressible
// as a 64-bit word count never reach that case.
#pragma once

#include <cstdint>

#include "sgdwalk/hd.hpp"

namespace sgdwalk {

/// Four 32-bit words: a Philox counter, or one 128-bit block of output (cuRAND's uint4).
struct U32x4 {
  std::uint32_t x, y, z, w;
};

namespace philox_detail {

inline constexpr std::uint32_t kMul0 = 0xD2511F53u;
inline constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kBump0 = 0x9E3779B9u;
inline constexpr std::uint32_t kBump1 = 0xBB67AE85u;

SGDWALK_FN std::uint32_t mulhi(std::uint32_t a, std::uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(a) * b) >> 32);
#endif
}

SGDWALK_FN U32x4 round(U32x4 c, std::uint32_t k0, std::uint32_t k1) {
  const std::uint32_t hi0 = mulhi(kMul0, c.x);
  const std::uint32_t lo0 = kMul0 * c.x;
  const std::uint32_t hi1 = mulhi(kMul1, c.z);
  const std::uint32_t lo1 = kMul1 * c.z;
  return U32x4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
}

/// Word `i` (0..3) of a block, written as selects so vectorised callers need no gather.
SGDWALK_FN std::uint32_t word(const U32x4& v, std::uint32_t i) {
  return i == 0 ? v.x : (i == 1 ? v.y : (i == 2 ? v.z : v.w));
}

}  // namespace philox_detail

/// One Philox4x32-10 block: curand_Philox4x32_10(counter, {key_lo, key_hi}).
SGDWALK_FN U32x4 philox4x32_10(U32x4 counter, std::uint32_t key_lo, std::uint32_t key_hi) {
  U32x4 c = counter;
#if defined(__CUDA_ARCH__)
#pragma unroll
#elif defined(__GNUC__) && !defined(__CUDACC__)
#pragma GCC unroll 9
#endif
  for (int i = 0; i < 9; ++i) {
    c = philox_detail::round(c, key_lo, key_hi);
    key_lo += philox_detail::kBump0;
    key_hi += philox_detail::kBump1;
  }
  return philox_detail::round(c, key_lo, key_hi);
}

/// Stateless access to block `block` (words 4*block .. 4*block+3) of a subsequence: what a
/// vectorised CPU loop uses when it knows which draw it needs.
SGDWALK_FN U32x4 philox_block(std::uint64_t seed, std::uint64_t subsequence, std::uint64_t block) {
  const U32x4 counter{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                      static_cast<std::uint32_t>(subsequence),
                      static_cast<std::uint32_t>(subsequence >> 32)};
  return philox4x32_10(counter, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

/// Host+device twin of curandStatePhilox4_32_10_t (without the Box-Muller cache, which we never
/// use: normals come from normal.hpp). Trivially copyable, so it can live in walker state arrays
/// and be copied between backends.
struct PhiloxStream {
  U32x4 ctr;             ///< Counter of the block held in `output`.
  U32x4 output;          ///< Current block; word `state` is what next() returns.
  std::uint32_t key_lo;  ///< Seed, low 32 bits.
  std::uint32_t key_hi;  ///< Seed, high 32 bits.
  std::uint32_t state;   ///< 0..3: position inside `output` (cuRAND's STATE).

  /// Same state as curand_init(seed, subsequence, offset, &s).
  SGDWALK_FN static PhiloxStream make(std::uint64_t seed, std::uint64_t subsequence,
                                      std::uint64_t offset) {
    PhiloxStream s{};
    s.ctr = U32x4{0, 0, 0, 0};
    s.key_lo = static_cast<std::uint32_t>(seed);
    s.key_hi = static_cast<std::uint32_t>(seed >> 32);
    s.state = 0;
    s.skipahead_sequence(subsequence);
    s.skipahead(offset);
    return s;
  }

  /// curand(&s): one word.
  SGDWALK_FN std::uint32_t next() {
    const std::uint32_t ret = philox_detail::word(output, state);
    ++state;
    if (state == 4) {
      incr();
      output = philox4x32_10(ctr, key_lo, key_hi);
      state = 0;
    }
    return ret;
  }

  /// curand4(&s): the next four words; like cuRAND it keeps `state`, so when that is not 0 the
  /// result straddles two blocks.
  SGDWALK_FN U32x4 next4() {
    const U32x4 t = output;
    incr();
    output = philox4x32_10(ctr, key_lo, key_hi);
    const U32x4& o = output;
    const std::uint32_t st = state;
    return U32x4{st == 0 ? t.x : (st == 1 ? t.y : (st == 2 ? t.z : t.w)),
                 st == 0 ? t.y : (st == 1 ? t.z : (st == 2 ? t.w : o.x)),
                 st == 0 ? t.z : (st == 1 ? t.w : (st == 2 ? o.x : o.y)),
                 st == 0 ? t.w : (st == 1 ? o.x : (st == 2 ? o.y : o.z))};
  }

  /// skipahead(n, &s): skip n words.
  SGDWALK_FN void skipahead(std::uint64_t n) {
    state += static_cast<std::uint32_t>(n & 3);
    n /= 4;
    if (state > 3) {
      n += 1;
      state -= 4;
    }
    incr(n);
    output = philox4x32_10(ctr, key_lo, key_hi);
  }

  /// skipahead_sequence(n, &s): skip n subsequences of 2^66 words.
  SGDWALK_FN void skipahead_sequence(std::uint64_t n) {
    std::uint32_t nlo = static_cast<std::uint32_t>(n);
    std::uint32_t nhi = static_cast<std::uint32_t>(n >> 32);
    ctr.z += nlo;
    if (ctr.z < nlo) ++nhi;
    ctr.w += nhi;
    output = philox4x32_10(ctr, key_lo, key_hi);
  }

  /// Philox_State_Incr(s): advance the counter by one block (128-bit increment, branch-free).
  SGDWALK_FN void incr() {
    ctr.x += 1u;
    std::uint32_t carry = ctr.x == 0 ? 1u : 0u;
    ctr.y += carry;
    carry &= ctr.y == 0 ? 1u : 0u;
    ctr.z += carry;
    carry &= ctr.z == 0 ? 1u : 0u;
    ctr.w += carry;
  }

  /// Philox_State_Incr(s, n), verbatim: advance the counter by n blocks (`output` is not
  /// refreshed). Quirk kept on purpose: when x overflows while the high half of n is 0xffffffff,
  /// the carry is lost. skipahead() never passes such an n (n/4 < 2^62), so only direct callers
  /// can see it.
  SGDWALK_FN void incr(std::uint64_t n) {
    const std::uint32_t nlo = static_cast<std::uint32_t>(n);
    std::uint32_t nhi = static_cast<std::uint32_t>(n >> 32);
    ctr.x += nlo;
    if (ctr.x < nlo) ++nhi;
    ctr.y += nhi;
    if (nhi <= ctr.y) return;
    if (++ctr.z) return;
    ++ctr.w;
  }
};

}  // namespace sgdwalk
