// The device's random numbers are the host's: raw Philox words from cuRAND's device API
// (curand_init + curand / curand4) equal PhiloxStream and philox_block, and the normals the advance
// kernel draws (StepNormals: curand4 + the shared box_muller) equal the host's normal sequence bit
// for bit, in float and double, and the checked-in golden normals. Skips visibly without a device;
// fails with SGDWALK_REQUIRE_GPU=1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"
#include "test_support.hpp"

#if defined(SGDWALK_CUDA_BACKEND)
#include "cuda_selftest.hpp"
#endif

namespace sgdwalk::testing {
namespace {

struct StreamPoint {
  std::uint64_t seed, subsequence, offset;
};

// Offsets near 2^32 blocks and subsequences with high bits set exercise the counter carries.
// Unused without the CUDA backend (its tests skip).
[[maybe_unused]] const std::vector<StreamPoint>& stream_points() {
  static const std::vector<StreamPoint> points = {
      {1234, 0, 0},
      {1234, 1, 0},
      {0, 0, 0},
      {1, (std::uint64_t{5} << 32) + 17, 4 * std::uint64_t{1000003}},
      {0xdeadbeefcafebabeull, 0xffffffffull, 4 * (std::uint64_t{0xffffffff} - 1)},
      {42, (std::uint64_t{1} << 40) + 3, 7},  // not block aligned
      {7, 0xffffffffffffffffull, 4 * std::uint64_t{0x1234567890}},
  };
  return points;
}

template <class T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

TEST(CudaGolden, CurandKnownAnswers) {
  SGDWALK_BACKEND_OR_SKIP(backend, "cuda");
#if defined(SGDWALK_CUDA_BACKEND)
  const std::vector<std::uint32_t> want0 = {0x2090b348, 0xda7cf0ab, 0x4401906f, 0xcbca470e,
                                            0x9eeede35, 0x1cbe137c, 0xfa277093, 0x147edd50};
  EXPECT_EQ(gpu::selftest_curand_words(1234, 0, 0, 8), want0);
  const std::vector<std::uint32_t> want1 = {0xd115a128, 0x52fc7c75, 0xc7f33f17, 0x0f1539db};
  EXPECT_EQ(gpu::selftest_curand_words(1234, 1, 0, 4), want1);
  EXPECT_EQ(gpu::selftest_curand4_blocks(1234, 0, 0, 2), want0);
#endif
}

TEST(CudaGolden, DeviceWordsEqualHostPhilox) {
  SGDWALK_BACKEND_OR_SKIP(backend, "cuda");
#if defined(SGDWALK_CUDA_BACKEND)
  for (const StreamPoint& p : stream_points()) {
    SCOPED_TRACE("seed " + std::to_string(p.seed) + " subsequence " +
                 std::to_string(p.subsequence) + " offset " + std::to_string(p.offset));
    const std::vector<std::uint32_t> device =
        gpu::selftest_curand_words(p.seed, p.subsequence, p.offset, 67);
    PhiloxStream host = PhiloxStream::make(p.seed, p.subsequence, p.offset);
    for (std::size_t i = 0; i < device.size(); ++i)
      EXPECT_EQ(device[i], host.next()) << "word " << i;

    const std::uint64_t block = p.offset / 4;
    const std::vector<std::uint32_t> blocks =
        gpu::selftest_curand4_blocks(p.seed, p.subsequence, block, 9);
    for (int b = 0; b < 9; ++b) {
      const U32x4 want = philox_block(p.seed, p.subsequence, block + static_cast<std::uint64_t>(b));
      EXPECT_EQ(blocks[4 * b + 0], want.x) << "block " << b;
      EXPECT_EQ(blocks[4 * b + 1], want.y) << "block " << b;
      EXPECT_EQ(blocks[4 * b + 2], want.z) << "block " << b;
      EXPECT_EQ(blocks[4 * b + 3], want.w) << "block " << b;
    }
  }
#endif
}

/// Word pairs for box_muller: edge cases (0, all ones, quadrant boundaries) and random pairs.
[[maybe_unused]] std::vector<std::uint32_t> box_muller_words() {
  std::vector<std::uint32_t> words = {
      0, 0,          0xffffffff, 0xffffffff, 0,          0x40000000, 0x80000000, 0xc0000000,
      1, 0x3fffffff, 0x7fffffff, 0x80000001, 0xfffffffe, 0xbfffffff, 12345,      0x20000000};
  std::mt19937 rng(20240611);
  for (int i = 0; i < (1 << 17); ++i) words.push_back(static_cast<std::uint32_t>(rng()));
  return words;
}

template <class T>
void expect_box_muller_matches(const std::vector<T>& device,
                               const std::vector<std::uint32_t>& words) {
  ASSERT_EQ(device.size(), words.size());
  int failures = 0;
  for (std::size_t i = 0; i + 1 < words.size(); i += 2) {
    T z0, z1;
    box_muller<T>(words[i], words[i + 1], z0, z1);
    if (!same_bits(z0, device[i]) || !same_bits(z1, device[i + 1])) {
      ADD_FAILURE() << "box_muller(" << words[i] << ", " << words[i + 1] << "): host (" << z0
                    << ", " << z1 << ") device (" << device[i] << ", " << device[i + 1] << ")";
      if (++failures >= 10) return;
    }
  }
}

TEST(CudaGolden, DeviceBoxMullerEqualsHost) {
  SGDWALK_BACKEND_OR_SKIP(backend, "cuda");
#if defined(SGDWALK_CUDA_BACKEND)
  const std::vector<std::uint32_t> words = box_muller_words();
  expect_box_muller_matches(gpu::selftest_box_muller_f32(words), words);
  expect_box_muller_matches(gpu::selftest_box_muller_f64(words), words);
#endif
}

template <class T>
void expect_normals_match(const std::vector<T>& device, std::uint64_t seed,
                          std::uint64_t subsequence, std::uint64_t first) {
  auto host = host_normals<T>(seed, subsequence, first);
  for (std::size_t i = 0; i < device.size(); ++i) {
    const T want = host.next();
    if (!same_bits(want, device[i])) {
      ADD_FAILURE() << "normal " << first + i << ": host " << want << " device " << device[i];
      return;
    }
  }
}

TEST(CudaGolden, KernelNormalsEqualHostNormalSequence) {
  SGDWALK_BACKEND_OR_SKIP(backend, "cuda");
#if defined(SGDWALK_CUDA_BACKEND)
  for (int dim = 1; dim <= 3; ++dim) {
    for (const StreamPoint& p : stream_points()) {
      for (std::uint64_t first : {std::uint64_t{0}, p.offset, p.offset + 5}) {
        SCOPED_TRACE("dim " + std::to_string(dim) + " seed " + std::to_string(p.seed) +
                     " subsequence " + std::to_string(p.subsequence) + " first " +
                     std::to_string(first));
        expect_normals_match(gpu::selftest_normals_f32(p.seed, p.subsequence, dim, first, 301),
                             p.seed, p.subsequence, first);
        expect_normals_match(gpu::selftest_normals_f64(p.seed, p.subsequence, dim, first, 301),
                             p.seed, p.subsequence, first);
      }
    }
  }
#endif
}

// tests/golden/normals_seed1234.txt (written from the host implementation by test_normal): records
// "<kind> <subsequence> <index> <hex bits>", kind raw (curand word `index` after
// curand_init(1234, q, 0)), float or double (normal `index` of host_normals<T>(1234, q, 0)).
TEST(CudaGolden, DeviceMatchesGoldenFile) {
  SGDWALK_BACKEND_OR_SKIP(backend, "cuda");
  const std::filesystem::path path = std::filesystem::path(sgdwalk::testing::source_dir()) /
                                     "tests" / "golden" / "normals_seed1234.txt";
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
#if defined(SGDWALK_CUDA_BACKEND)
  struct Record {
    std::string kind;
    std::uint64_t subsequence, index, bits;
    std::string line;
  };
  std::vector<Record> records;
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> lengths;  // (kind, q) → count
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Record r;
    std::string bits;
    ASSERT_TRUE(static_cast<bool>(fields >> r.kind >> r.subsequence >> r.index >> bits)) << line;
    r.bits = std::stoull(bits, nullptr, 16);
    r.line = line;
    auto& length = lengths[{r.kind, r.subsequence}];
    length = std::max(length, r.index + 1);
    records.push_back(r);
  }
  ASSERT_FALSE(records.empty()) << "no records in " << path;

  // One device call per (kind, subsequence), through the advance kernel's generator (dim 1).
  std::map<std::pair<std::string, std::uint64_t>, std::vector<std::uint64_t>> device;
  for (const auto& [key, length] : lengths) {
    const auto& [kind, q] = key;
    const int n = static_cast<int>(length);
    std::vector<std::uint64_t>& bits = device[key];
    if (kind == "raw") {
      for (std::uint32_t w : gpu::selftest_curand_words(1234, q, 0, n)) bits.push_back(w);
    } else if (kind == "float") {
      for (float z : gpu::selftest_normals_f32(1234, q, 1, 0, n)) {
        std::uint32_t b;
        std::memcpy(&b, &z, sizeof b);
        bits.push_back(b);
      }
    } else {
      ASSERT_EQ(kind, "double") << "unknown record kind";
      for (double z : gpu::selftest_normals_f64(1234, q, 1, 0, n)) {
        std::uint64_t b;
        std::memcpy(&b, &z, sizeof b);
        bits.push_back(b);
      }
    }
  }
  for (const Record& r : records) {
    const std::vector<std::uint64_t>& bits = device[std::make_pair(r.kind, r.subsequence)];
    EXPECT_EQ(bits.at(r.index), r.bits) << r.line;
  }
#endif
}

}  // namespace
}  // namespace sgdwalk::testing
