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
  // Swept values hashed as doubles, as every version wrote them before the integer keys' sweeps
  // were written as integers: checkpoints, shards and walker files of such sweeps stay valid.
  nlohmann::json resolved = plan.resolved_config;
  if (auto sweep = resolved.find("sweep"); sweep != resolved.end() && sweep->is_object()) {
    for (auto& [name, values] : sweep->items()) {
      if (!values.is_array()) continue;
      for (auto& value : values) {
        if (value.is_number_integer()) value = value.get<double>();
      }
    }
  }
  const std::string text = resolved.dump();
  return fnv1a64(text.data(), text.size());
}

}  // namespace sgdwalk
