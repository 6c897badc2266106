// Standard normal numbers from Philox words, identical on host and device.
//
// THE NORMAL SEQUENCE CONTRACT (both backends follow it; GPU output that disagrees is a bug):
//   A walker's normals come from its own Philox subsequence q (seed s). Normal number n of the
//   walker comes from raw block b = n / 4, i.e. the four 32-bit words 4b .. 4b+3 of subsequence q
//   (= philox_block(s, q, b), = curand4 after curand_init(s, q, 4*b, &st)). With the block's words
//   (x, y, z, w):
//       normals 4b, 4b+1 = box_muller(x, y) -> (z0, z1)
//       normals 4b+2, 4b+3 = box_muller(z, w) -> (z0, z1)
//   box_muller(radius_word, angle_word): u = radius_word * 2^-32 + 2^-33 in T (cuRAND's (0, 1]
//   uniform), r = sqrt(-2 log u), (z0, z1) = (r cos a, r sin a) with a = 2 pi (angle_word + 0.5)
//   / 2^32, all through pmath (portable_math.hpp), never libm / CUDA math / curand_normal:
//   -2 log u by pmath::neg2_log_lean, sin a and cos a by pmath::sincos_turn_lean (their
//   division-free cores: few-ulp ones for float, for double within the accurate log's and
//   sincos_turn's bounds).
//   T = float and T = double use the same words; they are two different (each reproducible)
//   sequences. The tails are cut at sqrt(-2 log 2^-33) ~ 6.76 in both precisions.
//
// To start a walker at normal index n on the device: curand_init(s, q, 4*(n/4), &st), wrap st in a
// type whose next4() returns curand4(&st) as U32x4, and call make_normal_stream<T>(wrapper, n % 4).
#pragma once

#include <cstdint>

#include "sgdwalk/hd.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/portable_math.hpp"

namespace sgdwalk {

/// w * 2^-32 + 2^-33 rounded in T: in (0, 1], never 0, so log() is finite. For float this is
/// bit-identical to cuRAND's uniform (host generator and curand_uniform).
template <class T>
SGDWALK_FN T uniform_open01(std::uint32_t w) {
  return static_cast<T>(w) * static_cast<T>(0x1p-32) + static_cast<T>(0x1p-33);
}

/// Two independent standard normals from two raw words (see the contract above).
template <class T>
SGDWALK_FN void box_muller(std::uint32_t radius_word, std::uint32_t angle_word, T& z0, T& z1) {
  const T u = uniform_open01<T>(radius_word);
  const T r = pmath::sqrt(pmath::neg2_log_lean(u));  // u in [2^-33, 1]
  T s, c;
  pmath::sincos_turn_lean(angle_word, s, c);
  z0 = r * c;
  z1 = r * s;
}

/// The four normals 4b .. 4b+3 of the contract from the words of block b.
template <class T>
SGDWALK_FN void normals_from_block(const U32x4& block, T out[4]) {
  box_muller(block.x, block.y, out[0], out[1]);
  box_muller(block.z, block.w, out[2], out[3]);
}

/// Stateless: the normals of block `block` of subsequence `subsequence` (for vectorised loops that
/// know which draw they are at; equals what NormalStream yields at indices 4*block ..).
template <class T>
SGDWALK_FN void philox_normals_block(std::uint64_t seed, std::uint64_t subsequence,
                                     std::uint64_t block, T out[4]) {
  normals_from_block(philox_block(seed, subsequence, block), out);
}

/// A walker's normal sequence, buffered one block at a time. `Bits` supplies raw blocks through
/// `U32x4 next4()`: PhiloxStream on the host, a curandStatePhilox4_32_10_t wrapper on the device.
/// Trivially copyable when Bits is.
template <class T, class Bits>
struct NormalStream {
  Bits bits;       ///< Positioned at the block after the one in `buffer`.
  T buffer[4];     ///< Normals of the current block.
  int next_index;  ///< Next entry of `buffer` to hand out; 4 means "refill first".

  SGDWALK_FN void refill() {
    normals_from_block(bits.next4(), buffer);
    next_index = 0;
  }

  SGDWALK_FN T next() {
    if (next_index >= 4) refill();
    return buffer[next_index++];
  }
};

/// The generic piece both backends share: `positioned_at_block` must yield block n/4 on its next
/// next4(); `skip` = n % 4. The returned stream's next() is normal n.
template <class T, class Bits>
SGDWALK_FN NormalStream<T, Bits> make_normal_stream(const Bits& positioned_at_block, int skip) {
  NormalStream<T, Bits> ns{};
  ns.bits = positioned_at_block;
  ns.refill();
  ns.next_index = skip;
  return ns;
}

/// Host stream positioned at normal index `first_normal_index` of (seed, subsequence).
template <class T>
SGDWALK_FN NormalStream<T, PhiloxStream> host_normals(std::uint64_t seed, std::uint64_t subsequence,
                                                      std::uint64_t first_normal_index) {
  const PhiloxStream bits = PhiloxStream::make(seed, subsequence, 4 * (first_normal_index / 4));
  return make_normal_stream<T>(bits, static_cast<int>(first_normal_index % 4));
}

}  // namespace sgdwalk
