// libFuzzer target: arbitrary bytes as a TOML config (see fuzz_entry.hpp for the contract).
#include "fuzz_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sgdwalk::fuzz::config_input(data, size);
  return 0;
}
