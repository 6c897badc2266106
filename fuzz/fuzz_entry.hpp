// The fuzzing entry points, shared by the libFuzzer targets (fuzz_*.cpp, clang builds with
// -DSGDWALK_FUZZ=ON) and by tests/test_fuzz_corpus.cpp, which replays every file of fuzz/corpus/
// through them in the normal (g++) test suite.
//
// The contract under test: the config parser throws only ConfigError and the checkpoint reader
// only CheckpointError, whatever the bytes. Those are caught here; anything else that escapes
// (another exception, a crash, a sanitizer report, a hang) is a bug.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "run/checkpoint.hpp"
#include "config/config.hpp"
#include "analysis/statistics.hpp"

namespace sgdwalk::fuzz {

/// The plan that fuzz/corpus/checkpoint/valid-*.bin were written for (2 variants x 3 walkers x
/// 10 steps, 3 samples, one 4-bin histogram), so that checkpoints are also checked against a plan.
inline constexpr const char* kCheckpointPlanConfig = R"(
[run]
walkers = 3
steps = 10
seed = 17
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[observables]
sample_steps = [0, 5, 10]
[observables.first_passage]
target = "flat"
[[observables.histogram]]
name = "x"
x_range = [-1.0, 1.0]
bins = 4
window = [0, 10]
[sweep]
noise_strength = [0.05, 0.1]
)";

inline const RunPlan& checkpoint_plan() {
  static const RunPlan plan = load_config_text(kCheckpointPlanConfig, "fuzz-plan.toml");
  return plan;
}

/// Config bytes: must parse or throw ConfigError.
inline void config_input(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)load_config_text(text, "fuzz.toml");
  } catch (const ConfigError&) {
  }
}

/// Checkpoint bytes: must parse or throw CheckpointError, on their own and against the plan; a
/// checkpoint that fits the plan must also summarise without trouble.
inline bool checkpoint_input(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool parsed = false;
  try {
    (void)parse_checkpoint(bytes, "fuzz.bin");
    parsed = true;
  } catch (const CheckpointError&) {
  }
  try {
    const Checkpoint checkpoint = parse_checkpoint(bytes, "fuzz.bin", &checkpoint_plan());
    (void)summarize(checkpoint_plan(), checkpoint.data);
  } catch (const CheckpointError&) {
  }
  return parsed;
}

}  // namespace sgdwalk::fuzz
