// Host Philox4x32-10 against its oracles: published known-answer vectors, cuRAND's own device code
// (curand_kernel.h compiles with g++ and runs on the CPU), and libcurand's host generator.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"
#include "test_support.hpp"

#if defined(SGDWALK_HAVE_CURAND_HOST)
#include <curand.h>
#if __has_include(<curand_kernel.h>)
#include <curand_kernel.h>
#define SGDWALK_HAVE_CURAND_KERNEL_ON_HOST 1
#endif
#endif

namespace {

using sgdwalk::philox4x32_10;
using sgdwalk::PhiloxStream;
using sgdwalk::U32x4;

void expect_eq(const U32x4& a, const U32x4& b, const char* what) {
  EXPECT_EQ(a.x, b.x) << what;
  EXPECT_EQ(a.y, b.y) << what;
  EXPECT_EQ(a.z, b.z) << what;
  EXPECT_EQ(a.w, b.w) << what;
}

TEST(Philox, KnownAnswerVectors) {
  expect_eq(philox4x32_10({0, 0, 0, 0}, 0, 0), {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
            "zero");
  expect_eq(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff),
            {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}, "ones");
  expect_eq(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0),
            {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}, "pi");
}

TEST(Philox, CurandInitKnownAnswers) {
  const std::uint32_t want0[8] = {0x2090b348, 0xda7cf0ab, 0x4401906f, 0xcbca470e,
                                  0x9eeede35, 0x1cbe137c, 0xfa277093, 0x147edd50};
  PhiloxStream s = PhiloxStream::make(1234, 0, 0);
  for (std::uint32_t w : want0) EXPECT_EQ(s.next(), w);
  const std::uint32_t want1[4] = {0xd115a128, 0x52fc7c75, 0xc7f33f17, 0x0f1539db};
  PhiloxStream t = PhiloxStream::make(1234, 1, 0);
  for (std::uint32_t w : want1) EXPECT_EQ(t.next(), w);
  expect_eq(PhiloxStream::make(1234, 1, 0).next4(), {want1[0], want1[1], want1[2], want1[3]},
            "next4");
  expect_eq(sgdwalk::philox_block(1234, 0, 1), {want0[4], want0[5], want0[6], want0[7]},
            "philox_block");
}

// Reference: a 128-bit block counter that carries word to word, plus a word index.
struct ClosedForm {
  std::uint32_t c[4];
  std::uint32_t key_lo, key_hi;
  unsigned idx;
  static ClosedForm at(std::uint64_t seed, std::uint64_t subsequence, std::uint64_t offset) {
    const std::uint64_t b = offset / 4;
    return {
        {static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32),
         static_cast<std::uint32_t>(subsequence), static_cast<std::uint32_t>(subsequence >> 32)},
        static_cast<std::uint32_t>(seed),
        static_cast<std::uint32_t>(seed >> 32),
        static_cast<unsigned>(offset % 4)};
  }
  std::uint32_t next() {
    const U32x4 o = philox4x32_10({c[0], c[1], c[2], c[3]}, key_lo, key_hi);
    const std::uint32_t words[4] = {o.x, o.y, o.z, o.w};
    const std::uint32_t r = words[idx];
    if (++idx == 4) {
      idx = 0;
      for (int i = 0; i < 4 && ++c[i] == 0; ++i) {
      }
    }
    return r;
  }
};

// next()/next4() in random interleavings follow the closed form, from offsets of every residue
// mod 4 and across the 2^32 boundaries of the counter words.
TEST(Philox, StreamMatchesClosedForm) {
  std::mt19937_64 rng(42);
  const std::uint64_t seeds[] = {0, 1234, 0xdeadbeefcafebabeull};
  const std::uint64_t subs[] = {0, 1, 7, 0xffffffffull, 0x1234567890ull, ~0ull};
  const std::uint64_t offsets[] = {0,
                                   1,
                                   2,
                                   3,
                                   4,
                                   4097,
                                   4 * 0xffffffffull - 5,  // crosses x -> y
                                   4 * 0xfffffffeull + 2,
                                   (1ull << 62) * 4 - 3,  // largest offsets
                                   ~0ull - 10};
  for (std::uint64_t seed : seeds)
    for (std::uint64_t sub : subs)
      for (std::uint64_t off : offsets) {
        PhiloxStream s = PhiloxStream::make(seed, sub, off);
        ClosedForm ref = ClosedForm::at(seed, sub, off);
        for (int step = 0; step < 200; ++step) {
          if (rng() & 1) {
            ASSERT_EQ(s.next(), ref.next()) << seed << " " << sub << " " << off << " " << step;
          } else {
            const U32x4 v = s.next4();
            const std::uint32_t w[4] = {ref.next(), ref.next(), ref.next(), ref.next()};
            ASSERT_EQ(v.x, w[0]);
            ASSERT_EQ(v.y, w[1]);
            ASSERT_EQ(v.z, w[2]);
            ASSERT_EQ(v.w, w[3]);
          }
        }
      }
}

// A counter about to carry through y -> z -> w (unreachable through make(), whose offsets stop at
// 2^64): the stream's increments carry like a 128-bit integer.
TEST(Philox, CounterCarriesThroughAllWords) {
  const U32x4 starts[] = {{0xfffffffe, 0xffffffff, 0xffffffff, 5},
                          {0xffffffff, 0xffffffff, 7, 0},
                          {0xfffffffd, 0xffffffff, 0xffffffff, 0xffffffff}};
  for (const U32x4& c0 : starts) {
    PhiloxStream s{};
    s.ctr = c0;
    s.key_lo = 99;
    s.key_hi = 3;
    s.state = 1;
    s.output = philox4x32_10(c0, 99, 3);
    ClosedForm ref{{c0.x, c0.y, c0.z, c0.w}, 99, 3, 1};
    for (int step = 0; step < 64; ++step) {
      if (step % 3 == 0) {
        const U32x4 v = s.next4();
        EXPECT_EQ(v.x, ref.next());
        EXPECT_EQ(v.y, ref.next());
        EXPECT_EQ(v.z, ref.next());
        EXPECT_EQ(v.w, ref.next());
      } else {
        EXPECT_EQ(s.next(), ref.next());
      }
    }
  }
}

// skipahead(n) carries x -> y -> z like the closed form, whatever the starting word position.
TEST(Philox, SkipaheadMatchesClosedForm) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 500; ++trial) {
    const std::uint64_t seed = rng(), sub = rng() % 100;
    const std::uint64_t off = (trial % 2) ? rng() % 4096 : 4 * 0xffffffffull - rng() % 64;
    const std::uint64_t n = (trial % 3 == 0) ? rng() % 5000 : (rng() >> 2);  // off + n < 2^64
    PhiloxStream s = PhiloxStream::make(seed, sub, off);
    s.skipahead(n);
    ClosedForm ref = ClosedForm::at(seed, sub, off + n);
    for (int i = 0; i < 9; ++i) ASSERT_EQ(s.next(), ref.next()) << trial;
  }
}

// Philox_State_Incr(s, n)'s lost carry, kept verbatim in incr(n): x overflows, nhi = 0xffffffff
// wraps to 0, so y is unchanged and nothing reaches z.
TEST(Philox, IncrLostCarryQuirk) {
  PhiloxStream s = PhiloxStream::make(77, 5, 4);  // ctr = {1, 0, 5, 0}
  s.incr(0xffffffffffffffffull);                  // exact sum would be {0, 0, 6, 0}
  EXPECT_EQ(s.ctr.x, 0u);
  EXPECT_EQ(s.ctr.y, 0u);
  EXPECT_EQ(s.ctr.z, 5u);
  EXPECT_EQ(s.ctr.w, 0u);
  PhiloxStream t = PhiloxStream::make(77, 5, 4);
  t.incr(0xfffffffeffffffffull);  // nhi = 0xfffffffe: the carry makes it 0xffffffff, no loss
  EXPECT_EQ(t.ctr.x, 0u);
  EXPECT_EQ(t.ctr.y, 0xffffffffu);
  EXPECT_EQ(t.ctr.z, 5u);
  t.incr(0x100000000ull);  // y wraps: carry into z
  EXPECT_EQ(t.ctr.y, 0u);
  EXPECT_EQ(t.ctr.z, 6u);
}

#if defined(SGDWALK_HAVE_CURAND_KERNEL_ON_HOST)
void expect_same_state(const PhiloxStream& s, const curandStatePhilox4_32_10_t& c, int step) {
  ASSERT_EQ(s.ctr.x, c.ctr.x) << step;
  ASSERT_EQ(s.ctr.y, c.ctr.y) << step;
  ASSERT_EQ(s.ctr.z, c.ctr.z) << step;
  ASSERT_EQ(s.ctr.w, c.ctr.w) << step;
  ASSERT_EQ(s.output.x, c.output.x) << step;
  ASSERT_EQ(s.output.w, c.output.w) << step;
  ASSERT_EQ(s.state, c.STATE) << step;
}

// cuRAND's device functions themselves (compiled for the host) against PhiloxStream: random seeds,
// subsequences, offsets and random sequences of curand / curand4 / skipahead / skipahead_sequence,
// including skips whose 64-bit add hits the carry quirk.
TEST(PhiloxVsCurandKernel, RandomOperationSequences) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::uint64_t seed = rng();
    const std::uint64_t sub = (trial % 3 == 0) ? rng() : rng() % 1000;
    std::uint64_t off = (trial % 4 == 0) ? rng() : rng() % 100000;
    if (trial % 5 == 0) off = 4 * 0xffffffffull - (rng() % 16);
    curandStatePhilox4_32_10_t c;
    curand_init(seed, sub, off, &c);
    PhiloxStream s = PhiloxStream::make(seed, sub, off);
    expect_same_state(s, c, -1);
    for (int step = 0; step < 40; ++step) {
      const unsigned op = rng() % 10;
      if (op < 4) {
        ASSERT_EQ(s.next(), curand(&c));
      } else if (op < 8) {
        const U32x4 a = s.next4();
        const uint4 b = curand4(&c);
        ASSERT_EQ(a.x, b.x);
        ASSERT_EQ(a.y, b.y);
        ASSERT_EQ(a.z, b.z);
        ASSERT_EQ(a.w, b.w);
      } else if (op == 8) {
        std::uint64_t n = rng();
        if (rng() & 1) n = (n & 0xffffffffull) | 0xfffffffc00000000ull;  // nhi near 2^32-1
        if (rng() & 1) n %= 1000;
        s.skipahead(n);
        skipahead(n, &c);
      } else {
        const std::uint64_t n = (rng() & 1) ? rng() : rng() % 50;
        s.skipahead_sequence(n);
        skipahead_sequence(n, &c);
      }
      expect_same_state(s, c, step);
    }
  }
}

// The increment with the lost carry, against cuRAND's Philox_State_Incr itself.
TEST(PhiloxVsCurandKernel, IncrQuirk) {
  std::mt19937_64 rng(11);
  const std::uint32_t edges[] = {0u, 1u, 0x80000000u, 0xfffffffeu, 0xffffffffu};
  for (int trial = 0; trial < 20000; ++trial) {
    curandStatePhilox4_32_10_t c;
    curand_init(rng(), rng(), 0, &c);
    c.ctr = make_uint4(trial % 2 ? edges[rng() % 5] : static_cast<unsigned>(rng()),
                       trial % 3 ? edges[rng() % 5] : static_cast<unsigned>(rng()),
                       trial % 5 ? edges[rng() % 5] : static_cast<unsigned>(rng()),
                       static_cast<unsigned>(rng()));
    PhiloxStream s{};
    s.ctr = {c.ctr.x, c.ctr.y, c.ctr.z, c.ctr.w};
    std::uint64_t n = rng();
    if (trial % 2) n |= 0xffffffff00000000ull;
    if (trial % 7 == 0) n = (n & 0xffffffff00000000ull) | edges[rng() % 5];
    Philox_State_Incr(&c, n);
    s.incr(n);
    ASSERT_EQ(s.ctr.x, c.ctr.x) << trial;
    ASSERT_EQ(s.ctr.y, c.ctr.y) << trial;
    ASSERT_EQ(s.ctr.z, c.ctr.z) << trial;
    ASSERT_EQ(s.ctr.w, c.ctr.w) << trial;
  }
}
#else
TEST(PhiloxVsCurandKernel, RandomOperationSequences) {
  // A GPU job (SGDWALK_REQUIRE_GPU=1) builds with the CUDA toolkit: a missing oracle is a failure.
  if (sgdwalk::testing::gpu_required())
    FAIL() << "SGDWALK_REQUIRE_GPU=1 but this build has no cuRAND oracle";
  GTEST_SKIP() << "built without cuRAND's curand_kernel.h (CUDA toolkit): no cuRAND oracle";
}
#endif

#if defined(SGDWALK_HAVE_CURAND_HOST)
struct HostGen {
  curandGenerator_t g = nullptr;
  curandStatus_t status;
  HostGen() { status = curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10); }
  ~HostGen() {
    if (status == CURAND_STATUS_SUCCESS) curandDestroyGenerator(g);
  }
};

// libcurand's host generator interleaves 65536 subsequences in blocks of four words: output
// m = offset + i is word m%4 of block (m/4) div 65536 of subsequence (m/4) mod 65536.
std::uint32_t host_generator_word(std::uint64_t seed, std::uint64_t m) {
  const std::uint64_t b = m / 4;
  return PhiloxStream::make(seed, b % 65536, 4 * (b / 65536) + m % 4).next();
}

TEST(PhiloxVsCurandHostGenerator, RawWords) {
  HostGen hg;
  if (hg.status != CURAND_STATUS_SUCCESS)
    GTEST_SKIP() << "curandCreateGeneratorHost failed with status " << hg.status;
  const std::size_t n = 1 << 17;
  std::vector<unsigned int> out(n);
  const std::uint64_t seeds[] = {1234, 0, 0x0123456789abcdefull};
  const std::uint64_t offsets[] = {0, 3, 4 * 65536 + 5, 1000000007};
  std::size_t words = 0;
  for (std::uint64_t seed : seeds)
    for (std::uint64_t off : offsets) {
      ASSERT_EQ(curandSetPseudoRandomGeneratorSeed(hg.g, seed), CURAND_STATUS_SUCCESS);
      ASSERT_EQ(curandSetGeneratorOffset(hg.g, off), CURAND_STATUS_SUCCESS);
      ASSERT_EQ(curandGenerate(hg.g, out.data(), n), CURAND_STATUS_SUCCESS);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_EQ(out[i], host_generator_word(seed, off + i))
            << "seed " << seed << " offset " << off << " i " << i;
      words += n;
    }
  std::printf("compared %zu words with libcurand's host generator\n", words);
}

TEST(PhiloxVsCurandHostGenerator, UniformFloats) {
  HostGen hg;
  if (hg.status != CURAND_STATUS_SUCCESS)
    GTEST_SKIP() << "curandCreateGeneratorHost failed with status " << hg.status;
  const std::size_t n = 1 << 17;
  std::vector<float> out(n);
  for (std::uint64_t seed : {1234ull, 42ull}) {
    ASSERT_EQ(curandSetPseudoRandomGeneratorSeed(hg.g, seed), CURAND_STATUS_SUCCESS);
    ASSERT_EQ(curandSetGeneratorOffset(hg.g, 8), CURAND_STATUS_SUCCESS);
    ASSERT_EQ(curandGenerateUniform(hg.g, out.data(), n), CURAND_STATUS_SUCCESS);
    for (std::size_t i = 0; i < n; ++i) {
      const float want = sgdwalk::uniform_open01<float>(host_generator_word(seed, 8 + i));
      ASSERT_EQ(out[i], want) << "seed " << seed << " i " << i;
      ASSERT_GT(out[i], 0.0f);
      ASSERT_LE(out[i], 1.0f);
    }
  }
}
#else
// Visible in the test list and its output: the oracle exists only where libcurand was found.
TEST(PhiloxVsCurandHostGenerator, RawWords) {
  // A GPU job (SGDWALK_REQUIRE_GPU=1) builds with the CUDA toolkit: a missing oracle is a failure.
  if (sgdwalk::testing::gpu_required())
    FAIL() << "SGDWALK_REQUIRE_GPU=1 but this build has no cuRAND oracle";
  GTEST_SKIP() << "built without libcurand (CMake found no CUDA::curand): no cuRAND oracle";
}
#endif

}  // namespace
