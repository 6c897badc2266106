#include "backend/plan.hpp"

namespace sgdwalk {

std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::uint64_t config_hash(const RunPlan& plan) {
  const std::string text = plan.resolved_config.dump();
  return fnv1a64(text.data(), text.size());
}

}  // namespace sgdwalk
