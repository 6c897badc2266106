// The fuzzing corpus (fuzz/corpus/) as a regression suite in the normal build: every file goes
// through the same entry points as the libFuzzer targets (fuzz/fuzz_entry.hpp). Files named
// valid-* must be accepted and bad-* refused with the parser's own error; every other file (inputs
// the fuzzer found) must only not crash or throw anything else.
//
// SGDWALK_REGENERATE_CORPUS=1 rewrites the generated checkpoint seeds (after a format change).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../fuzz/fuzz_entry.hpp"
#include "run/driver.hpp"
#include "test_files.hpp"

namespace sgdwalk {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(SGDWALK_SOURCE_DIR) / "fuzz" / "corpus";

using testing::read_bytes;

std::vector<fs::path> corpus_files(const std::string& kind) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kCorpus / kind)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool starts_with(const fs::path& path, const std::string& prefix) {
  return path.filename().string().rfind(prefix, 0) == 0;
}

const std::uint8_t* bytes_of(const std::string& text) {
  return reinterpret_cast<const std::uint8_t*>(text.data());
}

TEST(FuzzCorpus, ConfigInputsNeverEscapeConfigError) {
  const auto files = corpus_files("config");
  ASSERT_GE(files.size(), 10u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    const std::string bytes = read_bytes(file);
    EXPECT_NO_THROW(fuzz::config_input(bytes_of(bytes), bytes.size()));
    if (starts_with(file, "valid-")) {
      EXPECT_NO_THROW(load_config_text(bytes, file.string()));
    } else if (starts_with(file, "bad-")) {
      EXPECT_THROW(load_config_text(bytes, file.string()), ConfigError);
    }
  }
}

TEST(FuzzCorpus, CheckpointInputsNeverEscapeCheckpointError) {
  const auto files = corpus_files("checkpoint");
  ASSERT_GE(files.size(), 6u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    const std::string bytes = read_bytes(file);
    bool parsed = false;
    EXPECT_NO_THROW(parsed = fuzz::checkpoint_input(bytes_of(bytes), bytes.size()));
    if (starts_with(file, "valid-")) {
      EXPECT_TRUE(parsed);
      EXPECT_NO_THROW(parse_checkpoint(bytes, file.string(), &fuzz::checkpoint_plan()));
    } else if (starts_with(file, "bad-")) {
      EXPECT_FALSE(parsed);
      EXPECT_THROW(parse_checkpoint(bytes, file.string(), &fuzz::checkpoint_plan()),
                   CheckpointError);
    }
  }
}

/// The generated checkpoint seeds: checkpoints of the fuzz plan (mid-batch, between batches,
/// finished) and broken copies of one. The arrays hold synthetic values, so the seeds depend only
/// on the file format, not on the physics.
std::vector<std::pair<std::string, std::string>> generated_checkpoints() {
  const RunPlan& plan = fuzz::checkpoint_plan();
  const fs::path dir = fs::path(SGDWALK_BINARY_DIR) / "test-scratch" / "fuzz_corpus";
  fs::create_directories(dir);
  std::vector<std::pair<std::string, std::string>> seeds;
  auto save = [&](const std::string& name, std::int64_t begin, std::int64_t end, std::int64_t step,
                  std::int64_t part_begin = 0, std::int64_t part_end = -1) {
    RunData data;
    data.resize(plan);
    auto& w = data.walkers;
    for (std::size_t i = 0; i < w.position.size(); ++i) w.position[i] = 0.25 * double(i) - 1.0;
    for (std::int64_t g = 0; g < w.size(); ++g) {
      const auto i = static_cast<std::size_t>(g);
      w.y_freeze[i] = 5.0 + double(g);
      w.freeze_step[i] = g % 4;
      w.first_passage_step[i] = g % 3 == 0 ? -1 : g;
      w.nonfinite_step[i] = g == 4 ? 2 : -1;
      w.basin[i] = static_cast<std::int32_t>(g % 2);
      w.crossings[i] = static_cast<std::uint32_t>(g % 5);
    }
    auto& o = data.observables;
    for (std::size_t i = 0; i < o.sample_progress.size(); ++i) {
      o.sample_progress[i] = 5.0f + 0.5f * float(i);
      o.sample_loss[i] = 1.0f + 0.125f * float(i);
    }
    for (std::size_t i = 0; i < o.sample_flat.size(); ++i) {
      o.sample_flat[i] = i % 3;
      o.sample_finite[i] = 3;
    }
    for (auto& counts : o.histogram_counts) {
      for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = i * 7 % 11;
    }
    reduce_batch(plan, data, part_begin, begin, 1);  // the finished walkers, as the driver does
    reduce_samples(plan, data, part_begin, begin, 0, plan.sample_count(), 1);
    RunProgress progress;
    progress.part_begin = part_begin;
    progress.part_end = part_end;
    progress.walker_begin = begin;
    progress.walker_end = end;
    progress.step = step;
    progress.simulate_seconds = 0.25;
    const fs::path path = dir / name;
    write_checkpoint(path.string(), plan, progress, data, 1.5, 2);
    seeds.emplace_back(name, read_bytes(path));
  };
  save("valid-mid-batch.bin", 4, 6, 3);
  save("valid-between-batches.bin", 4, 4, 0);
  save("valid-finished.bin", 6, 6, 0);
  save("valid-shard-mid-batch.bin", 4, 5, 2, 1, 5);  // a shard's part [1, 5)
  save("valid-shard-finished.bin", 5, 5, 0, 1, 5);
  const std::string good = seeds.front().second;
  seeds.emplace_back("bad-empty.bin", "");
  seeds.emplace_back("bad-truncated-header.bin", good.substr(0, 30));
  seeds.emplace_back("bad-truncated-data.bin", good.substr(0, good.size() - 9));
  std::string magic = good;
  magic[3] = 'x';
  seeds.emplace_back("bad-magic.bin", magic);
  std::string version = good;
  version[8] = 1;  // the format before streamed statistics
  seeds.emplace_back("bad-version.bin", version);
  std::string flipped = good;
  flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 4);
  seeds.emplace_back("bad-checksum.bin", flipped);
  seeds.emplace_back("bad-extra-bytes.bin", good + std::string(5, '\0'));
  return seeds;
}

TEST(FuzzCorpus, GeneratedCheckpointSeedsAreCurrent) {
  const char* regenerate = std::getenv("SGDWALK_REGENERATE_CORPUS");
  for (const auto& [name, bytes] : generated_checkpoints()) {
    const fs::path path = kCorpus / "checkpoint" / name;
    if (regenerate != nullptr && std::string(regenerate) == "1") {
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    }
    // A format change must bump the version and regenerate the seeds (see the file comment).
    EXPECT_EQ(read_bytes(path), bytes)
        << name << " is stale: rerun with SGDWALK_REGENERATE_CORPUS=1";
  }
}

}  // namespace
}  // namespace sgdwalk
