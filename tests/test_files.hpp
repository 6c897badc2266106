// Files and the CLI for the tests that make whole runs: scratch directories, whole-file reads and
// writes, and the sgdwalk binary run with its output captured.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace sgdwalk::testing {

/// Expects `part` in `text` (a message, a command's output), showing the text when it is not.
inline void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in:\n" << text;
}

/// An empty directory build/test-scratch/<suite>/<name> (emptied if it exists).
inline std::filesystem::path scratch_dir(const std::string& suite, const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(SGDWALK_BINARY_DIR) / "test-scratch" / suite / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  return nlohmann::json::parse(read_bytes(path));
}

struct CommandResult {
  int exit_code;
  std::string output;  ///< stdout and stderr together
};

/// Runs the sgdwalk CLI with `arguments` (shell syntax) and waits for it; in `directory` when
/// one is given.
inline CommandResult run_cli(const std::string& arguments,
                             const std::filesystem::path& directory = {}) {
  const std::string command = (directory.empty() ? "" : "cd '" + directory.string() + "' && ") +
                              std::string(SGDWALK_CLI) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

#ifdef SGDWALK_WRITE_FAILURE_SHIM
/// run_cli with the `nth` write to each file whose path ends in `suffix` failing with ENOSPC, once
/// (a disk full for a moment; tests/write_failure_shim.cpp, preloaded).
inline CommandResult run_cli_with_failed_write(const std::string& arguments,
                                               const std::string& suffix, int nth) {
  setenv("LD_PRELOAD", SGDWALK_WRITE_FAILURE_SHIM, 1);
  setenv("SGDWALK_FAIL_WRITE_SUFFIX", suffix.c_str(), 1);
  setenv("SGDWALK_FAIL_WRITE_NTH", std::to_string(nth).c_str(), 1);
  CommandResult result = run_cli(arguments);
  unsetenv("LD_PRELOAD");
  unsetenv("SGDWALK_FAIL_WRITE_SUFFIX");
  unsetenv("SGDWALK_FAIL_WRITE_NTH");
  return result;
}
#endif

}  // namespace sgdwalk::testing
