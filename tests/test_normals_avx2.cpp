// The CPU backend's AVX2 normals (host/normals_avx2.hpp) are the portable ones bit for bit: Philox
// blocks for counters with carries in every word, and Box–Muller in float and double over a sweep
// of the whole 32-bit range of radius and angle words plus the edges of the log and quadrant
// arithmetic. Skips visibly on a CPU without AVX2 and FMA (the backend then uses the portable
// functions themselves). Runs on AVX-512 machines too, where the backend uses the portable
// functions but the AVX2 path must stay correct for 256-bit machines.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "normals_avx2.hpp"
#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"

namespace sgdwalk {
namespace {

#if defined(SGDWALK_HAVE_NORMALS_AVX2)

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// Box–Muller of eight (radius, angle) word pairs through both paths; counts differing normals.
template <class T>
int box_muller_mismatches(const std::uint32_t (&radius)[8], const std::uint32_t (&angle)[8]) {
  alignas(32) T z0[8], z1[8];
  avx2::box_muller(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(radius)),
                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(angle)), z0, z1);
  int mismatches = 0;
  for (int i = 0; i < 8; ++i) {
    T w0, w1;
    box_muller<T>(radius[i], angle[i], w0, w1);
    if (!same_bits(w0, z0[i]) || !same_bits(w1, z1[i])) {
      ADD_FAILURE() << "radius word " << radius[i] << ", angle word " << angle[i] << ": portable "
                    << w0 << ", " << w1 << " vs AVX2 " << z0[i] << ", " << z1[i];
      ++mismatches;
    }
  }
  return mismatches;
}

/// Every `stride`-th word as the radius (angle words from a multiplicative hash), then the same
/// sweep with the roles swapped.
template <class T>
void check_sweep(std::uint64_t stride) {
  int mismatches = 0;
  std::uint32_t radius[8], angle[8];
  for (std::uint64_t w = 0; w < (std::uint64_t{1} << 32) && mismatches < 10; w += 8 * stride) {
    for (int i = 0; i < 8; ++i) {
      const std::uint64_t word = w + static_cast<std::uint64_t>(i) * stride;
      const auto sweep = static_cast<std::uint32_t>(word > 0xffffffffull ? 0xffffffffull : word);
      const std::uint32_t hashed = sweep * 2654435761u + 12345u;
      radius[i] = sweep;
      angle[i] = hashed;
    }
    mismatches += box_muller_mismatches<T>(radius, angle);
    mismatches += box_muller_mismatches<T>(angle, radius);
  }
  EXPECT_EQ(mismatches, 0);
}

// Radius words at the ends of the range and where the log's exponent changes; angle words at the
// quadrant boundaries and where float's j % 256 split changes sign.
std::vector<std::uint32_t> edge_words() {
  std::vector<std::uint32_t> words = {
      0u,          1u,          2u,          255u,        256u,        257u,        0x1fffffffu,
      0x20000000u, 0x3fffffffu, 0x40000000u, 0x5fffffffu, 0x60000000u, 0x7fffffffu, 0x80000000u,
      0x9fffffffu, 0xa0000000u, 0xdfffffffu, 0xe0000000u, 0xfffffffeu, 0xffffffffu};
  for (int bit = 0; bit < 32; ++bit) {
    const std::uint32_t power = std::uint32_t{1} << bit;
    words.push_back(power - 1u);
    words.push_back(power);
    words.push_back(power + 1u);
  }
  return words;
}

template <class T>
void check_edges() {
  const std::vector<std::uint32_t> words = edge_words();
  int mismatches = 0;
  for (std::size_t a = 0; a < words.size(); ++a) {
    for (std::size_t b = 0; b < words.size(); b += 8) {
      std::uint32_t radius[8], angle[8];
      for (int i = 0; i < 8; ++i) {
        radius[i] = words[a];
        angle[i] = words[(b + static_cast<std::size_t>(i)) % words.size()];
      }
      mismatches += box_muller_mismatches<T>(radius, angle);
      mismatches += box_muller_mismatches<T>(angle, radius);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(NormalsAvx2, BoxMullerDoubleSweep) {
  check_sweep<double>(509);
}
TEST(NormalsAvx2, BoxMullerFloatSweep) {
  check_sweep<float>(509);
}
TEST(NormalsAvx2, BoxMullerEdgeWords) {
  check_edges<double>();
  check_edges<float>();
}

TEST(NormalsAvx2, PhiloxAndBlockNormalsMatchPortable) {
  const std::vector<std::uint64_t> seeds = {0, 1, 1234, 0xdeadbeefcafebabeull};
  const std::vector<std::uint64_t> blocks = {
      0, 1, 0xffffffffull, 0x100000000ull, 0x123456789abcdefull, ~std::uint64_t{0}};
  alignas(32) std::uint64_t subsequences[8] = {0,
                                               1,
                                               37,
                                               0xffffffffull,
                                               0x100000000ull,
                                               (std::uint64_t{5} << 32) + 17,
                                               0xfedcba9876543210ull,
                                               ~std::uint64_t{0}};
  for (const std::uint64_t seed : seeds) {
    for (const std::uint64_t block : blocks) {
      __m256i x, y, z, w;
      avx2::philox_block(seed, subsequences, block, x, y, z, w);
      alignas(32) std::uint32_t words[4][8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(words[0]), x);
      _mm256_store_si256(reinterpret_cast<__m256i*>(words[1]), y);
      _mm256_store_si256(reinterpret_cast<__m256i*>(words[2]), z);
      _mm256_store_si256(reinterpret_cast<__m256i*>(words[3]), w);
      alignas(32) double normals[4][8];
      avx2::block_normals(seed, subsequences, block, normals[0], normals[1], normals[2],
                          normals[3]);
      alignas(32) float normals_f[4][8];
      avx2::block_normals(seed, subsequences, block, normals_f[0], normals_f[1], normals_f[2],
                          normals_f[3]);
      for (int i = 0; i < 8; ++i) {
        const U32x4 want = philox_block(seed, subsequences[i], block);
        EXPECT_EQ(words[0][i], want.x);
        EXPECT_EQ(words[1][i], want.y);
        EXPECT_EQ(words[2][i], want.z);
        EXPECT_EQ(words[3][i], want.w);
        double portable[4];
        float portable_f[4];
        normals_from_block(want, portable);
        normals_from_block(want, portable_f);
        for (int j = 0; j < 4; ++j) {
          EXPECT_TRUE(same_bits(normals[j][i], portable[j])) << seed << " " << block << " " << i;
          EXPECT_TRUE(same_bits(normals_f[j][i], portable_f[j]))
              << seed << " " << block << " " << i;
        }
      }
    }
  }
}

#else

TEST(NormalsAvx2, NotBuilt) {
  GTEST_SKIP() << "this CPU build has no AVX2+FMA normals (the backend uses the portable ones)";
}

#endif

}  // namespace
}  // namespace sgdwalk
