#include "cluster/parts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>

#include "config/config.hpp"
#include "io/walker_store.hpp"
#include "run/checkpoint.hpp"
#include "run/run_session.hpp"

namespace sgdwalk {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr std::int64_t kMaxParts = 1000000;

/// floor(k · total / n) without overflow (0 <= k <= n <= kMaxParts): with total = q·n + r,
/// it is k·q + floor(k·r / n), and k·r < n² fits.
std::int64_t part_boundary(std::int64_t total, std::int64_t k, std::int64_t n) {
  const std::int64_t q = total / n, r = total % n;
  return k * q + k * r / n;
}

/// The walkers of a run read from its shards' walker files, each covering its part.
class ShardWalkerStore final : public WalkerStore {
 public:
  void add(WalkerRange range, std::shared_ptr<WalkerStore> file) {
    if (range.size() > 0) parts_.push_back({range, std::move(file)});
    finished_ = std::max(finished_, range.end);
  }
  void write(const WalkerArrays&, std::int64_t, std::int64_t) override {
    throw std::logic_error("the walkers of merged shards are read-only");
  }
  void read(std::int64_t first, std::int64_t count, WalkerArrays& out) const override {
    out.resize(count, dim_, first, width_);
    // A stopped MPI job's parts leave gaps (each part's unfinished walkers): unfinished until a
    // part's walkers are copied over them.
    out.mark_unfinished(first, first + count);
    WalkerArrays piece;
    for (const auto& [range, file] : parts_) {
      const std::int64_t lo = std::max(first, range.begin);
      const std::int64_t hi = std::min(first + count, range.end);
      if (lo >= hi) continue;
      file->read(lo, hi - lo, piece);
      out.copy_from(piece, lo, hi);
    }
  }
  std::int64_t finished() const override { return finished_; }
  void set_dim(int dim, int width) {
    dim_ = dim;
    width_ = width;
  }

 private:
  struct Part {
    WalkerRange range;
    std::shared_ptr<WalkerStore> file;
  };
  std::vector<Part> parts_;
  std::int64_t finished_ = 0;
  int dim_ = 0;
  int width_ = 0;  ///< optimizer state numbers per walker
};

RunDirectoryError usage_error(const std::string& message) {
  return RunDirectoryError(message, true);
}

/// Adds a part's exact tallies and integer counters to `total` (exact: any order, same bits); the
/// tallies of the variants [first_variant, end_variant) only (the others of the part are empty).
void add_part(RunData& total, const RunData& part, std::size_t first_variant = 0,
              std::size_t end_variant = SIZE_MAX) {
  end_variant = std::min(end_variant, total.tallies.variants.size());
  const std::size_t samples = total.tallies.variants.empty()
                                  ? 0
                                  : total.tallies.samples.size() / total.tallies.variants.size();
  for (std::size_t v = first_variant; v < end_variant; ++v) {
    total.tallies.variants[v].merge(part.tallies.variants[v]);
  }
  for (std::size_t i = first_variant * samples; i < end_variant * samples; ++i) {
    SampleTally& to = total.tallies.samples[i];
    const SampleTally& from = part.tallies.samples[i];
    to.progress.merge(from.progress);
    to.loss.merge(from.loss);
    to.progress_sketch.merge(from.progress_sketch);
    to.loss_sketch.merge(from.loss_sketch);
  }
  ObservableArrays& o = total.observables;
  for (std::size_t i = 0; i < o.sample_flat.size(); ++i) {
    o.sample_flat[i] += part.observables.sample_flat[i];
    o.sample_finite[i] += part.observables.sample_finite[i];
  }
  for (std::size_t h = 0; h < o.histogram_counts.size(); ++h) {
    for (std::size_t i = 0; i < o.histogram_counts[h].size(); ++i) {
      o.histogram_counts[h][i] += part.observables.histogram_counts[h][i];
    }
  }
}

}  // namespace

WalkerRange part_walkers(const RunPlan& plan, PartId part) {
  const std::int64_t total = plan.total_walkers();
  return {part_boundary(total, part.index, part.count),
          part_boundary(total, part.index + 1, part.count)};
}

PartId parse_part(const std::string& text, const std::string& flag) {
  const auto slash = text.find('/');
  auto number = [&](std::string_view digits, std::int64_t& value) {
    const auto* end = digits.data() + digits.size();
    const auto [at, error] = std::from_chars(digits.data(), end, value);
    return !digits.empty() && error == std::errc() && at == end;
  };
  PartId part;
  if (slash == std::string::npos || !number(std::string_view(text).substr(0, slash), part.index) ||
      !number(std::string_view(text).substr(slash + 1), part.count)) {
    throw ConfigError(
        fmt::format("{} {}: expected K/N (part K of N, counted from 0), e.g. 0/4", flag, text));
  }
  if (part.count < 1 || part.count > kMaxParts) {
    throw ConfigError(fmt::format("{} {}: N = {} is out of range; allowed: 1 to {}", flag, text,
                                  part.count, kMaxParts));
  }
  if (part.index < 0 || part.index >= part.count) {
    throw ConfigError(
        fmt::format("{} {}: K = {} is out of range; allowed: 0 to {} (parts are "
                    "counted from 0)",
                    flag, text, part.index, part.count - 1));
  }
  return part;
}

std::string to_string(PartId part) {
  return fmt::format("{}/{}", part.index, part.count);
}

Json shard_provenance(const RunPlan& plan, PartId part) {
  const WalkerRange range = part_walkers(plan, part);
  return {{"index", part.index},
          {"count", part.count},
          {"walker_begin", range.begin},
          {"walker_end", range.end},
          {"config_hash", fmt::format("{:016x}", config_hash(plan))},
          {"tallies", kTalliesFileName},
          {"walkers", plan.per_walker_output ? Json(kWalkerFileName) : Json(nullptr)}};
}

MergedRun merge_shards(const std::vector<std::string>& shard_dirs,
                       const std::string& command_line) {
  if (shard_dirs.empty()) throw usage_error("merge: no shard directories given");
  // Part order (from each summary.json; what cannot be read stays in place and fails below with
  // its own message), so that the tallies are added in a fixed order whatever the command line.
  // A shard's "index" or "count" from its summary.json; -1 where it cannot be read.
  auto shard_field = [](const std::string& dir, const char* field) {
    std::ifstream file(fs::path(dir) / "summary.json");
    const Json summary =
        Json::parse(std::string(std::istreambuf_iterator<char>(file), {}), nullptr, false);
    const Json* value = summary.is_object() && summary.contains("shard") &&
                                summary["shard"].is_object() && summary["shard"].contains(field)
                            ? &summary["shard"][field]
                            : nullptr;
    return value != nullptr && value->is_number_integer() ? value->get<std::int64_t>() : -1;
  };
  // Shards of different splits (a stale 0-of-1 among the 0-of-3, 1-of-3, 2-of-3): every split
  // and its shards are named, so the odd ones out are plain whichever comes first.
  std::map<std::int64_t, std::vector<std::string>> dirs_of_count;
  for (const std::string& dir : shard_dirs) {
    const std::int64_t count = shard_field(dir, "count");
    if (count > 0) dirs_of_count[count].push_back(fmt::format("'{}'", dir));
  }
  if (dirs_of_count.size() > 1) {
    std::vector<std::string> splits;
    for (const auto& [count, dirs] : dirs_of_count) {
      splits.push_back(fmt::format("{} part(s): {}", count, fmt::join(dirs, ", ")));
    }
    throw usage_error(fmt::format(
        "merge: the shards split the run into different numbers of parts ({}); the shards of one "
        "run split it into the same number of parts: leave out those of another split",
        fmt::join(splits, "; ")));
  }
  std::vector<std::pair<std::int64_t, std::string>> ordered;
  for (const std::string& dir : shard_dirs) ordered.emplace_back(shard_field(dir, "index"), dir);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  // One shard at a time: read, check against the first, add its exact tallies and integer
  // counters, keep only where its walkers are. Memory holds one shard's tallies besides the sum.
  MergedRun merged;
  RunPlan& plan = merged.plan;
  RunData data;
  auto walkers = std::make_shared<ShardWalkerStore>();
  std::string first_dir;
  PartId first_part;
  std::vector<std::string> seen;  // directory of each part index, "" while missing
  double simulate_seconds = 0, wall_seconds = 0;
  std::int64_t sessions = 0;
  std::vector<std::string> backends;
  std::map<std::string, std::vector<std::string>> shards_of_build;  // "version (commit)" -> shards
  Json merged_from = Json::array();
  for (const auto& [index, dir] : ordered) {
    ResumePoint point = load_resume_point(dir);
    if (!point.record.shard) {
      throw usage_error(fmt::format(
          "merge: '{}' is not a shard (its summary.json has no \"shard\"; shards are made by "
          "`sgdwalk run CONFIG --shard K/N`)",
          dir));
    }
    const PartId part = *point.record.shard;
    if (!point.complete) {
      throw usage_error(fmt::format(
          "merge: shard {} in '{}' is not finished; continue it with `sgdwalk resume {}`",
          to_string(part), dir, dir));
    }
    if (first_dir.empty()) {
      first_dir = dir;
      first_part = part;
      plan = point.plan;
      merged.record = point.record;
      data.resize(plan, 0);
      walkers->set_dim(plan.dim, plan.optimizer_state_width());
      seen.assign(static_cast<std::size_t>(part.count), "");
    } else if (point.plan.resolved_config != plan.resolved_config) {
      throw usage_error(fmt::format(
          "merge: '{}' (shard {}) is from another run than '{}': its resolved config differs: {}",
          dir, to_string(part), first_dir,
          describe_config_changes(plan.resolved_config, point.plan.resolved_config)));
    } else if (part.count != first_part.count) {
      throw usage_error(
          fmt::format("merge: '{}' is shard {} but '{}' is shard {}: the shards of one run "
                      "split it into the same number of parts",
                      dir, to_string(part), first_dir, to_string(first_part)));
    }
    std::string& slot = seen[static_cast<std::size_t>(part.index)];
    if (!slot.empty()) {
      throw usage_error(
          fmt::format("merge: shard {} is given twice: '{}' and '{}'", to_string(part), slot, dir));
    }
    slot = dir;

    add_part(data, point.checkpoint.data);
    const WalkerRange range = part_walkers(plan, part);
    if (plan.per_walker_output && range.size() > 0) {
      walkers->add(range, open_walker_file(plan, (fs::path(dir) / kWalkerFileName).string(),
                                           range.begin, range.end));
    }
    simulate_seconds += point.checkpoint.progress.simulate_seconds;
    wall_seconds += point.checkpoint.wall_seconds;
    sessions += point.checkpoint.sessions;
    std::ifstream summary_file(fs::path(dir) / "summary.json");
    const Json summary =
        Json::parse(std::string(std::istreambuf_iterator<char>(summary_file), {}), nullptr, false);
    const std::string backend = summary.is_object() && summary.contains("backend")
                                    ? summary["backend"].value("name", "?")
                                    : "?";
    if (std::find(backends.begin(), backends.end(), backend) == backends.end()) {
      backends.push_back(backend);
    }
    const std::string build =
        summary.is_object() && summary.contains("sgdwalk") && summary["sgdwalk"].is_object()
            ? fmt::format("{} ({})", summary["sgdwalk"].value("version", "?"),
                          summary["sgdwalk"].value("git_commit", "?"))
            : "?";
    shards_of_build[build].push_back(to_string(part));
    merged_from.push_back({{"shard", to_string(part)},
                           {"directory", fs::absolute(dir).lexically_normal().string()},
                           {"backend", backend},
                           {"sgdwalk", build},
                           {"walker_begin", range.begin},
                           {"walker_end", range.end},
                           {"simulate_seconds", point.checkpoint.progress.simulate_seconds}});
  }
  const std::int64_t count = first_part.count;
  std::vector<std::string> missing;
  for (std::int64_t k = 0; k < count; ++k) {
    if (seen[static_cast<std::size_t>(k)].empty()) {
      const WalkerRange range = part_walkers(plan, {k, count});
      missing.push_back(
          fmt::format("{} (walkers [{}, {}))", to_string({k, count}), range.begin, range.end));
    }
  }
  if (!missing.empty()) {
    const std::size_t absent = missing.size();
    if (missing.size() > 8) {
      missing.resize(6);
      missing.push_back(fmt::format("and {} more", absent - 6));
    }
    throw usage_error(fmt::format(
        "merge: {} of {} shard(s) missing: {}; give every shard's directory (a shard is run with "
        "sgdwalk run CONFIG --shard K/N --out DIR, and a stopped one continued with sgdwalk "
        "resume DIR)",
        absent, count, fmt::join(missing, ", ")));
  }

  RunOutcome& outcome = merged.outcome;
  outcome.progress.walker_begin = outcome.progress.walker_end = plan.total_walkers();
  outcome.progress.simulate_seconds = simulate_seconds;
  outcome.progress.update_counters(plan);
  outcome.complete = true;
  outcome.summaries = summarize(plan, data);
  outcome.data = std::move(data);
  if (plan.per_walker_output) outcome.walkers = walkers;
  outcome.backend_name = fmt::format("{}", fmt::join(backends, "+"));
  outcome.backend_description = fmt::format("{} shard(s) merged", count);

  merged.record.shard.reset();
  merged.record.provenance = Json::object();
  merged.record.provenance["merged_from"] = merged_from;
  if (shards_of_build.size() > 1) {
    // The bits of a walker are guaranteed per build; another build may have changed the physics.
    std::vector<std::string> groups;
    for (const auto& [build, shards] : shards_of_build) {
      groups.push_back(fmt::format("{}: shard(s) {}", build, fmt::join(shards, ", ")));
    }
    merged.warnings.push_back(fmt::format(
        "the shards were computed by {} different sgdwalk builds ({}); the merged results equal "
        "a single run's only if the physics did not change between them",
        shards_of_build.size(), fmt::join(groups, "; ")));
  }
  merged.record.command_line = command_line;
  merged.record.wall_seconds = wall_seconds;
  merged.record.sessions = sessions;
  return merged;
}

PartContribution load_part(const RunPlan& plan, PartId part, const std::string& dir) {
  PartContribution c;
  c.part = part;
  const WalkerRange range = part_walkers(plan, part);
  c.progress = RunProgress::start_of_part(range.begin, range.end);
  c.data.resize(plan, 0);
  std::error_code error;
  if (!fs::exists(fs::path(dir) / "summary.json", error)) return c;  // never started
  ResumePoint point = load_resume_point(dir);
  if (!point.record.shard || !(*point.record.shard == part) ||
      config_hash(point.plan) != config_hash(plan)) {
    throw RunDirectoryError(
        fmt::format("{}: is not part {} of the run (a stale directory of another run?)", dir,
                    to_string(part)),
        false);
  }
  if (point.has_checkpoint) {
    const RunProgress& at = point.checkpoint.progress;
    c.progress.walker_begin = at.walker_begin;
    c.progress.walker_end = at.walker_end;
    c.progress.step = at.step;
    c.progress.simulate_seconds = at.simulate_seconds;
    c.wall_seconds = point.checkpoint.wall_seconds;
    c.sessions = point.checkpoint.sessions;
    RunData& from = point.checkpoint.data;
    c.data.tallies = std::move(from.tallies);
    c.data.observables.sample_flat = std::move(from.observables.sample_flat);
    c.data.observables.sample_finite = std::move(from.observables.sample_finite);
    c.data.observables.histogram_counts = std::move(from.observables.histogram_counts);
  }
  std::ifstream summary_file(fs::path(dir) / "summary.json");
  const Json summary =
      Json::parse(std::string(std::istreambuf_iterator<char>(summary_file), {}), nullptr, false);
  c.backend = summary.is_object() && summary.contains("backend") && summary["backend"].is_object()
                  ? summary["backend"].value("name", "?")
                  : "?";
  if (plan.per_walker_output && c.progress.walker_begin > range.begin) {
    c.walkers = open_walker_file(plan, (fs::path(dir) / kWalkerFileName).string(), range.begin,
                                 c.progress.walker_begin);
  }
  return c;
}

MergedRun combine_parts(const RunPlan& plan, std::int64_t count,
                        const std::function<PartContribution(std::int64_t)>& part_at,
                        const std::function<void(RunData&)>& before_summaries) {
  const std::int64_t W = plan.walkers_per_variant;
  MergedRun merged;
  merged.plan = plan;
  RunData data;
  data.resize(plan, 0);
  auto walkers = std::make_shared<ShardWalkerStore>();
  walkers->set_dim(plan.dim, plan.optimizer_state_width());
  std::vector<bool> unfinished(static_cast<std::size_t>(plan.variant_count()), false);
  std::int64_t walker_steps_done = 0;
  double simulate_seconds = 0;
  bool complete = true;
  std::vector<std::string> backends;
  // In part order, one part at a time (memory: the sum and one part): the tallies are exact (any
  // order gives the same bits), and the order is fixed whatever the number of processes that held
  // the parts.
  for (std::int64_t k = 0; k < count; ++k) {
    const PartContribution c = part_at(k);
    if (!(c.part == PartId{k, count})) {
      throw std::logic_error(
          fmt::format("combine_parts: part {} given as part {}/{}", to_string(c.part), k, count));
    }
    const RunProgress& at = c.progress;
    const std::int64_t end = at.end_of_part();
    if (end > at.part_begin) {
      add_part(data, c.data, static_cast<std::size_t>(at.part_begin / W),
               static_cast<std::size_t>((end - 1) / W + 1));
    }
    walker_steps_done += (at.walker_begin - at.part_begin) * plan.steps +
                         (at.walker_end - at.walker_begin) * at.step;
    simulate_seconds += at.simulate_seconds;
    complete = complete && c.complete();
    // Variants with walkers of this part that have not reached the last step.
    for (std::int64_t v = at.walker_begin / W; at.walker_begin < end && v <= (end - 1) / W; ++v) {
      unfinished[static_cast<std::size_t>(v)] = true;
    }
    if (c.walkers && at.walker_begin > at.part_begin) {
      walkers->add({at.part_begin, at.walker_begin}, c.walkers);
    }
    if (!c.backend.empty() &&
        std::find(backends.begin(), backends.end(), c.backend) == backends.end()) {
      backends.push_back(c.backend);
    }
  }
  if (before_summaries) before_summaries(data);
  const auto first_unfinished = std::find(unfinished.begin(), unfinished.end(), true);
  const auto variants_done = static_cast<std::int64_t>(first_unfinished - unfinished.begin());

  RunOutcome& outcome = merged.outcome;
  outcome.progress.walker_begin = outcome.progress.walker_end = variants_done * W;
  outcome.progress.simulate_seconds = simulate_seconds;
  outcome.progress.update_counters(plan);
  if (!complete) outcome.progress.walker_steps_done = walker_steps_done;
  outcome.complete = complete;
  outcome.summaries = summarize(plan, data);
  for (std::int64_t v = variants_done; v < plan.variant_count(); ++v) {
    blank_summary(outcome.summaries[static_cast<std::size_t>(v)]);
  }
  outcome.data = std::move(data);
  if (plan.per_walker_output) outcome.walkers = walkers;
  outcome.backend_name = fmt::format("{}", fmt::join(backends, "+"));
  return merged;
}

MergedRun merge_into_directory(const std::vector<std::string>& shard_dirs,
                               const std::string& out_dir, bool force,
                               const std::string& command_line) {
  const fs::path out(out_dir);
  std::error_code error;
  // Before any shard is read (the CLI checks it too; the Python package calls this directly).
  if (fs::exists(out, error) && !fs::is_directory(out, error)) {
    throw usage_error(fmt::format(
        "merge: the run directory '{}' is an existing file, not a directory; choose another "
        "output directory",
        out_dir));
  }
  MergedRun merged = merge_shards(shard_dirs, command_line);
  if (fs::exists(out, error) && !fs::is_empty(out, error) && !force) {
    throw usage_error(fmt::format(
        "merge: '{}' exists and is not empty; choose another directory or pass --force", out_dir));
  }
  for (const std::string& dir : shard_dirs) {
    if (fs::exists(out, error) && fs::equivalent(out, dir, error)) {
      throw usage_error(fmt::format(
          "merge: the output '{}' is one of the shards; choose another directory", out_dir));
    }
  }
  const bool created = !fs::exists(out, error);
  const bool was_empty = created || fs::is_empty(out, error);
  fs::create_directories(out);
  // As a run's session: not while another sgdwalk process runs, resumes or merges there (with
  // --force it would remove that run's checkpoint, and the run would overwrite the merge).
  const RunDirectoryLock lock(out_dir);
  for (const char* stale : {kCheckpointFileName, kWalkerFileName, kTalliesFileName}) {
    fs::remove(out / stale, error);
  }
  try {
    write_run_outputs(merged.plan, merged.outcome, merged.record, out_dir);
  } catch (...) {
    // A failed merge (a damaged shard file found while results.h5 is written, a full disk) leaves
    // an empty output directory as it found it: the merge, once repaired, goes there again
    // without --force. The shards hold everything.
    if (was_empty) {
      std::error_code ignored;
      for (const char* name : {"config.toml", "summary.json", "results.h5", "config.toml.tmp",
                               "summary.json.tmp", "results.h5.tmp"}) {
        fs::remove(out / name, ignored);
      }
      if (created) fs::remove(out, ignored);
    }
    throw;
  }
  return merged;
}

}  // namespace sgdwalk
