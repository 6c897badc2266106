// libFuzzer target: arbitrary bytes as a checkpoint file (see fuzz_entry.hpp for the contract).
#include "fuzz_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sgdwalk::fuzz::checkpoint_input(data, size);
  return 0;
}
