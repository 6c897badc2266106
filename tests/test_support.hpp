// Shared helpers for tests: backends to run the same test bodies on, plans, statistics.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend_registry.hpp"

#if defined(SGDWALK_CUDA_BACKEND)
#include "cuda_backend.hpp"
#endif

namespace sgdwalk::testing {

/// Backends every backend-generic test body runs on.
inline std::vector<std::string> backend_names() {
  return {"cpu", "cuda"};
}

/// The source tree the tests read their data from (golden files, examples, the fuzz corpus):
/// $SGDWALK_SOURCE_DIR when set (a relocated test binary, e.g. from scripts/gpu-bundle.sh),
/// otherwise the tree the test was built from.
inline std::string source_dir() {
  const char* value = std::getenv("SGDWALK_SOURCE_DIR");
  return value != nullptr && *value != '\0' ? std::string(value) : std::string(SGDWALK_SOURCE_DIR);
}

inline bool gpu_required() {
  const char* value = std::getenv("SGDWALK_REQUIRE_GPU");
  return value != nullptr && std::string(value) == "1";
}

/// The backend called `name`, or nullptr after a visible GTEST_SKIP (or a failure when
/// SGDWALK_REQUIRE_GPU=1) when it cannot run here. Use via SGDWALK_BACKEND_OR_SKIP.
/// The CUDA backend also copies every walker's sample values back (by default they are only
/// reduced on the device), so that tests can compare them with the CPU backend's.
inline std::unique_ptr<Backend> backend_for_test(const std::string& name, int threads = 2) {
  if (name == "cuda" && cuda_device_count() == 0) return nullptr;
#if defined(SGDWALK_CUDA_BACKEND)
  if (name == "cuda") {
    CudaTuning tuning;
    tuning.copy_sample_values = true;
    return make_cuda_backend(0, tuning);
  }
#endif
  return make_backend(name, threads).backend;
}

inline std::string backend_skip_message(const std::string& name) {
  return "backend '" + name + "' unavailable here: " + cuda_device_report() +
         " (set SGDWALK_REQUIRE_GPU=1 to make this a failure)";
}

}  // namespace sgdwalk::testing

/// Declares `backend` for the test parameter, or skips (fails with SGDWALK_REQUIRE_GPU=1).
#define SGDWALK_BACKEND_OR_SKIP(backend, name)                                                  \
  auto backend = ::sgdwalk::testing::backend_for_test(name);                                    \
  if (!backend) {                                                                               \
    if (::sgdwalk::testing::gpu_required()) {                                                   \
      FAIL() << "SGDWALK_REQUIRE_GPU=1 but " << ::sgdwalk::testing::backend_skip_message(name); \
    }                                                                                           \
    GTEST_SKIP() << ::sgdwalk::testing::backend_skip_message(name);                             \
  }
