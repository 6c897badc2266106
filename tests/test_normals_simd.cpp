// The CPU backend's SIMD normals (host/cpu/normals_avx2.hpp, 8 lanes; host/cpu/normals_avx512.hpp,
// 16 lanes) are the portable ones bit for bit: Philox blocks for counters with carries in every
// word, and Box–Muller in float and double over a sweep of the whole 32-bit range of radius and
// angle words plus the edges of the log and quadrant arithmetic. Each implementation skips visibly
// when this build's CPU target lacks its instructions (AVX2+FMA; AVX-512 F, DQ and VL); the AVX2
// one is checked on AVX-512 machines too, where the backend does not use it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/normals_avx2.hpp"
#include "cpu/normals_avx512.hpp"
#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"

namespace sgdwalk {
namespace {

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Each implementation behind the same interface: kLanes walkers at a time, words and normals as
// plain arrays.
#if defined(SGDWALK_HAVE_NORMALS_AVX2)
struct Avx2 {
  static constexpr int kLanes = 8;
  static constexpr const char* kTestName = "Avx2";
  template <class T>
  static void box_muller(const std::uint32_t* radius, const std::uint32_t* angle, T* z0, T* z1) {
    avx2::box_muller(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(radius)),
                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(angle)), z0, z1);
  }
  static void philox_block(std::uint64_t seed, const std::uint64_t* subsequences,
                           std::uint64_t block, std::uint32_t (*words)[kLanes]) {
    __m256i v[4];
    avx2::philox_block(seed, subsequences, block, v[0], v[1], v[2], v[3]);
    for (int j = 0; j < 4; ++j) _mm256_storeu_si256(reinterpret_cast<__m256i*>(words[j]), v[j]);
  }
  template <class T>
  static void block_normals(std::uint64_t seed, const std::uint64_t* subsequences,
                            std::uint64_t block, T (*out)[kLanes]) {
    avx2::block_normals(seed, subsequences, block, out[0], out[1], out[2], out[3]);
  }
};
#else
TEST(NormalsSimd, Avx2NotBuilt) {
  GTEST_SKIP() << "this CPU build has no AVX2+FMA normals (the backend uses the portable ones)";
}
#endif

#if defined(SGDWALK_HAVE_NORMALS_AVX512)
struct Avx512 {
  static constexpr int kLanes = 16;
  static constexpr const char* kTestName = "Avx512";
  template <class T>
  static void box_muller(const std::uint32_t* radius, const std::uint32_t* angle, T* z0, T* z1) {
    avx512::box_muller(_mm512_loadu_si512(radius), _mm512_loadu_si512(angle), z0, z1);
  }
  static void philox_block(std::uint64_t seed, const std::uint64_t* subsequences,
                           std::uint64_t block, std::uint32_t (*words)[kLanes]) {
    __m512i v[4];
    avx512::philox_block(seed, subsequences, block, v[0], v[1], v[2], v[3]);
    for (int j = 0; j < 4; ++j) _mm512_storeu_si512(words[j], v[j]);
  }
  template <class T>
  static void block_normals(std::uint64_t seed, const std::uint64_t* subsequences,
                            std::uint64_t block, T (*out)[kLanes]) {
    avx512::block_normals(seed, subsequences, block, out[0], out[1], out[2], out[3]);
  }
};
#else
TEST(NormalsSimd, Avx512NotBuilt) {
  GTEST_SKIP() << "this CPU build has no AVX-512 F/DQ/VL normals (the backend uses the AVX2 or "
                  "the portable ones)";
}
#endif

/// Box–Muller of kLanes (radius, angle) word pairs through both paths; counts differing normals.
template <class Impl, class T>
int box_muller_mismatches(const std::uint32_t* radius, const std::uint32_t* angle) {
  T z0[Impl::kLanes], z1[Impl::kLanes];
  Impl::box_muller(radius, angle, z0, z1);
  int mismatches = 0;
  for (int i = 0; i < Impl::kLanes; ++i) {
    T w0, w1;
    box_muller<T>(radius[i], angle[i], w0, w1);
    if (!same_bits(w0, z0[i]) || !same_bits(w1, z1[i])) {
      ADD_FAILURE() << "radius word " << radius[i] << ", angle word " << angle[i] << ": portable "
                    << w0 << ", " << w1 << " vs " << Impl::kTestName << " " << z0[i] << ", "
                    << z1[i];
      ++mismatches;
    }
  }
  return mismatches;
}

/// Every `stride`-th word as the radius (angle words from a multiplicative hash), then the same
/// sweep with the roles swapped.
template <class Impl, class T>
void check_sweep(std::uint64_t stride) {
  constexpr int kLanes = Impl::kLanes;
  int mismatches = 0;
  std::uint32_t radius[kLanes], angle[kLanes];
  for (std::uint64_t w = 0; w < (std::uint64_t{1} << 32) && mismatches < 10; w += kLanes * stride) {
    for (int i = 0; i < kLanes; ++i) {
      const std::uint64_t word = w + static_cast<std::uint64_t>(i) * stride;
      const auto sweep = static_cast<std::uint32_t>(word > 0xffffffffull ? 0xffffffffull : word);
      const std::uint32_t hashed = sweep * 2654435761u + 12345u;
      radius[i] = sweep;
      angle[i] = hashed;
    }
    mismatches += box_muller_mismatches<Impl, T>(radius, angle);
    mismatches += box_muller_mismatches<Impl, T>(angle, radius);
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

template <class Impl, class T>
void check_edges() {
  constexpr int kLanes = Impl::kLanes;
  const std::vector<std::uint32_t> words = edge_words();
  int mismatches = 0;
  for (std::size_t a = 0; a < words.size(); ++a) {
    for (std::size_t b = 0; b < words.size(); b += kLanes) {
      std::uint32_t radius[kLanes], angle[kLanes];
      for (int i = 0; i < kLanes; ++i) {
        radius[i] = words[a];
        angle[i] = words[(b + static_cast<std::size_t>(i)) % words.size()];
      }
      mismatches += box_muller_mismatches<Impl, T>(radius, angle);
      mismatches += box_muller_mismatches<Impl, T>(angle, radius);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

template <class Impl>
void check_philox_and_block_normals() {
  constexpr int kLanes = Impl::kLanes;
  const std::vector<std::uint64_t> seeds = {0, 1, 1234, 0xdeadbeefcafebabeull};
  const std::vector<std::uint64_t> blocks = {
      0, 1, 0xffffffffull, 0x100000000ull, 0x123456789abcdefull, ~std::uint64_t{0}};
  const std::uint64_t all_subsequences[16] = {0,
                                              1,
                                              37,
                                              0xffffffffull,
                                              0x100000000ull,
                                              (std::uint64_t{5} << 32) + 17,
                                              0xfedcba9876543210ull,
                                              ~std::uint64_t{0},
                                              2,
                                              0x7fffffffull,
                                              0x80000000ull,
                                              0x1ffffffffull,
                                              (std::uint64_t{1} << 63) + 5,
                                              0x0123456789abcdefull,
                                              1000003,
                                              ~std::uint64_t{0} - 1};
  static_assert(kLanes <= 16, "one subsequence per lane");
  for (const std::uint64_t seed : seeds) {
    for (const std::uint64_t block : blocks) {
      std::uint32_t words[4][kLanes];
      Impl::philox_block(seed, all_subsequences, block, words);
      double normals[4][kLanes];
      float normals_f[4][kLanes];
      Impl::block_normals(seed, all_subsequences, block, normals);
      Impl::block_normals(seed, all_subsequences, block, normals_f);
      for (int i = 0; i < kLanes; ++i) {
        const U32x4 want = philox_block(seed, all_subsequences[i], block);
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

template <class Impl>
class NormalsSimd : public testing::Test {};

using Implementations = testing::Types<
#if defined(SGDWALK_HAVE_NORMALS_AVX2)
    Avx2
#endif
#if defined(SGDWALK_HAVE_NORMALS_AVX2) && defined(SGDWALK_HAVE_NORMALS_AVX512)
    ,
#endif
#if defined(SGDWALK_HAVE_NORMALS_AVX512)
    Avx512
#endif
    >;

class ImplementationNames {
 public:
  template <class Impl>
  static std::string GetName(int) {
    return Impl::kTestName;
  }
};

#if defined(SGDWALK_HAVE_NORMALS_AVX2) || defined(SGDWALK_HAVE_NORMALS_AVX512)
TYPED_TEST_SUITE(NormalsSimd, Implementations, ImplementationNames);

TYPED_TEST(NormalsSimd, BoxMullerDoubleSweep) {
  check_sweep<TypeParam, double>(509);
}
TYPED_TEST(NormalsSimd, BoxMullerFloatSweep) {
  check_sweep<TypeParam, float>(509);
}
TYPED_TEST(NormalsSimd, BoxMullerEdgeWords) {
  check_edges<TypeParam, double>();
  check_edges<TypeParam, float>();
}
TYPED_TEST(NormalsSimd, PhiloxAndBlockNormalsMatchPortable) {
  check_philox_and_block_normals<TypeParam>();
}
#endif

}  // namespace
}  // namespace sgdwalk
