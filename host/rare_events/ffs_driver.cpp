#include "rare_events/ffs_driver.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>

#include "config/config_keys.hpp"
#include "io/atomic_file.hpp"
#include "io/hdf5_file.hpp"
#include "rare_events/ffs_kept_states.hpp"
#include "rare_events/ffs_typed.hpp"
#include "run/checkpoint.hpp"

namespace sgdwalk {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
/// Version 4 keeps the kept interfaces' states in a binary file beside the JSON, appended once per
/// interface (rare_events/ffs_kept_states.hpp: "states_file", "states_file_bytes", per replica
/// "kept_interfaces"). Version 3 kept the states of every interface in the JSON ("states_stored";
/// per replica "interface_states"; per state "parent"); it is still read, and its states go to
/// the file at the next stage. Version 2 added the optimizer state of the stored states
/// ("state_width", "optimizer_state"); version 1 (plain SGD only: no optimizer state). Both are
/// still read: they hold only the current interface's states, so a run resumed from one keeps no
/// interface states (results.h5 says so, and a warning).
/// Version 5 adds "checksum": FNV-1a 64 of the JSON without it (a changed or damaged file is
/// refused; older versions, which have none, are checked field by field only).
constexpr int kCheckpointVersion = 5;
constexpr int kOldestCheckpointVersion = 1;
/// Below this effective number of ancestors a stage is warned about.
constexpr double kFewAncestors = 10;
/// A stage whose stored states lie beyond the next interface more often than this is warned about.
constexpr double kJumpOverFraction = 0.25;
/// A variant whose largest replica estimate exceeds this / R of the replicas' sum is warned about
/// (heavy tail): ~1.5/R for a spread of 30 %.
constexpr double kHeavyTailShare = 3;
constexpr int kFirstVersionWithStates = 3;
constexpr int kFirstVersionWithStatesFile = 4;
constexpr int kFirstVersionWithChecksum = 5;

/// Copies state i of `source` to slot j of `target` through WalkerArrays::copy_from (so every
/// field a walker state has is copied, whatever fields it grows).
void copy_state(const WalkerArrays& source, std::int64_t i, WalkerArrays& target, std::int64_t j) {
  const std::int64_t saved = target.first;
  const std::int64_t g = source.first + i;
  target.first = g - j;
  target.copy_from(source, g, g + 1);
  target.first = saved;
}

/// Grows `states` by one slot (amortised) and returns its index.
std::int64_t append_slot(FfsInterfaceStates& store, std::int64_t& used, int dim, int width) {
  if (used == store.states.size()) {
    const std::int64_t capacity = std::max<std::int64_t>(64, 2 * used);
    WalkerArrays grown;
    grown.resize(capacity, dim, 0, width);
    grown.copy_from(store.states, 0, used);
    store.states = std::move(grown);
  }
  return used++;
}

/// Shrinks the arrays to the `used` slots.
void shrink(FfsInterfaceStates& store, std::int64_t used, int dim, int width) {
  WalkerArrays exact;
  exact.resize(used, dim, 0, width);
  exact.copy_from(store.states, 0, used);
  store.states = std::move(exact);
}

void count_ancestors(const std::vector<std::int64_t>& ancestors, FfsStageCounts& stage) {
  std::map<std::int64_t, std::int64_t> counts;
  for (const std::int64_t a : ancestors) ++counts[a];
  double sum = 0, sum2 = 0;
  for (const auto& [a, n] : counts) {
    sum += static_cast<double>(n);
    sum2 += static_cast<double>(n) * static_cast<double>(n);
  }
  stage.distinct_ancestors = static_cast<std::int64_t>(counts.size());
  stage.effective_ancestors = sum2 > 0 ? sum * sum / sum2 : 0;
}

/// The number of ancestor groups of `walkers` flux walkers (FfsReplica::flux_group_crossings).
std::int64_t ancestor_groups(std::int64_t walkers) {
  return std::min<std::int64_t>(walkers, kFfsAncestorGroups);
}

/// The ancestor group of every interface-0 state (they are stored in walker order).
std::vector<std::int32_t> group_of_ancestors(const FfsReplica& rep) {
  std::vector<std::int32_t> group;
  for (std::size_t g = 0; g < rep.flux_group_crossings.size(); ++g)
    group.insert(group.end(), static_cast<std::size_t>(rep.flux_group_crossings[g]),
                 static_cast<std::int32_t>(g));
  return group;
}

/// Where a replica stands: its stored states at the current interface, per variant (the earlier
/// interfaces' are in FfsReplica::interface_states when they are kept).
struct ReplicaState {
  std::vector<FfsInterfaceStates> current;  ///< [variant]
  int next_stage = 0;                       ///< 0 = the flux stage has not run
};

/// Whether the states of every interface are kept, and why not when store_states asks for them.
struct StatesKept {
  bool kept = false;
  std::string why_not;
};

/// The checkpoint's kept-states file and how many kept interfaces of each replica it holds.
struct KeptStatesOnDisk {
  KeptStatesWriter writer;
  std::vector<std::vector<std::size_t>> written;  ///< [variant][replica]
};

// ---- checkpoint (JSON: counts, interfaces and the stored states; written between stages) ----

nlohmann::json states_json(const FfsInterfaceStates& s) {
  const WalkerArrays& w = s.states;
  // Doubles are written with the shortest round-trip digits (nlohmann::json): the optimizer state
  // comes back with the same bits, as the positions do.
  return nlohmann::json{{"dim", w.dim},
                        {"state_width", w.state_width},
                        {"optimizer_state", w.optimizer_state},
                        {"position", w.position},
                        {"y_freeze", w.y_freeze},
                        {"freeze_step", w.freeze_step},
                        {"first_passage_step", w.first_passage_step},
                        {"nonfinite_step", w.nonfinite_step},
                        {"basin", w.basin},
                        {"crossings", w.crossings},
                        {"path_step", s.path_step},
                        {"ancestor", s.ancestor},
                        {"parent", s.parent}};
}

/// The stored states of a checkpoint of `version`; `state_width` is the plan's (version 1 has no
/// optimizer state: it was written by plain SGD runs, whose width is 0).
FfsInterfaceStates states_from_json(const nlohmann::json& j, int version, int state_width) {
  FfsInterfaceStates s;
  const auto n = static_cast<std::int64_t>(j.at("basin").size());
  const int width = version >= 2 ? j.at("state_width").get<int>() : 0;
  if (width != state_width) {
    throw std::runtime_error(
        fmt::format("its states carry {} optimizer state numbers each, the config's optimizer {}",
                    width, state_width));
  }
  s.states.resize(n, j.at("dim").get<int>(), 0, width);
  if (version >= 2) s.states.optimizer_state = j.at("optimizer_state").get<std::vector<double>>();
  s.states.position = j.at("position").get<std::vector<double>>();
  s.states.y_freeze = j.at("y_freeze").get<std::vector<double>>();
  s.states.freeze_step = j.at("freeze_step").get<std::vector<std::int64_t>>();
  s.states.first_passage_step = j.at("first_passage_step").get<std::vector<std::int64_t>>();
  s.states.nonfinite_step = j.at("nonfinite_step").get<std::vector<std::int64_t>>();
  s.states.basin = j.at("basin").get<std::vector<std::int32_t>>();
  s.states.crossings = j.at("crossings").get<std::vector<std::uint32_t>>();
  s.path_step = j.at("path_step").get<std::vector<std::int64_t>>();
  s.ancestor = j.at("ancestor").get<std::vector<std::int64_t>>();
  // Before version 3 the parents were not kept (nor the earlier interfaces they index).
  s.parent = version >= kFirstVersionWithStates ? j.at("parent").get<std::vector<std::int64_t>>()
                                                : std::vector<std::int64_t>(s.ancestor.size(), -1);
  if (s.states.position.size() != static_cast<std::size_t>(n * s.states.dim) ||
      s.states.optimizer_state.size() != static_cast<std::size_t>(n * width) ||
      s.path_step.size() != static_cast<std::size_t>(n) ||
      s.ancestor.size() != static_cast<std::size_t>(n) ||
      s.parent.size() != static_cast<std::size_t>(n)) {
    throw std::runtime_error("inconsistent state arrays");
  }
  return s;
}

/// An interface in JSON: the number, or "inf" for the energy order parameter's B (+inf), which
/// JSON numbers cannot hold.
nlohmann::json lambda_json(double lambda) {
  if (std::isinf(lambda)) return lambda > 0 ? "inf" : "-inf";
  return lambda;
}

double lambda_from_json(const nlohmann::json& j) {
  if (j.is_string()) {
    const std::string text = j.get<std::string>();
    if (text == "inf") return kInf;
    if (text == "-inf") return -kInf;
    throw std::runtime_error("an interface is \"" + text + "\", not a number or \"inf\"");
  }
  return j.get<double>();
}

nlohmann::json lambdas_json(const std::vector<double>& lambdas) {
  nlohmann::json out = nlohmann::json::array();
  for (const double l : lambdas) out.push_back(lambda_json(l));
  return out;
}

std::vector<double> lambdas_from_json(const nlohmann::json& j) {
  std::vector<double> out;
  for (const auto& l : j) out.push_back(lambda_from_json(l));
  return out;
}

nlohmann::json stage_json(const FfsStageCounts& s) {
  return nlohmann::json{{"lambda_from", lambda_json(s.lambda_from)},
                        {"lambda_to", lambda_json(s.lambda_to)},
                        {"trials", s.trials},
                        {"reached", s.reached},
                        {"fell_back", s.fell_back},
                        {"nonfinite", s.nonfinite},
                        {"timed_out", s.timed_out},
                        {"jumps", s.jumps},
                        {"walker_steps", s.walker_steps},
                        {"pilot_trials", s.pilot_trials},
                        {"pilot_walker_steps", s.pilot_walker_steps},
                        {"distinct_ancestors", s.distinct_ancestors},
                        {"effective_ancestors", s.effective_ancestors},
                        {"group_trials", s.group_trials},
                        {"group_reached", s.group_reached},
                        {"probability", s.probability()}};
}

FfsStageCounts stage_from_json(const nlohmann::json& j) {
  FfsStageCounts s;
  s.lambda_from = lambda_from_json(j.at("lambda_from"));
  s.lambda_to = lambda_from_json(j.at("lambda_to"));
  s.trials = j.at("trials");
  s.reached = j.at("reached");
  s.fell_back = j.at("fell_back");
  s.nonfinite = j.at("nonfinite");
  s.timed_out = j.at("timed_out");
  s.jumps = j.at("jumps");
  s.walker_steps = j.at("walker_steps");
  s.pilot_trials = j.at("pilot_trials");
  s.pilot_walker_steps = j.at("pilot_walker_steps");
  s.distinct_ancestors = j.at("distinct_ancestors");
  s.effective_ancestors = j.at("effective_ancestors");
  // Absent in checkpoints written before the jackknife (its error is then NaN).
  s.group_trials = j.value("group_trials", std::vector<std::int64_t>{});
  s.group_reached = j.value("group_reached", std::vector<std::int64_t>{});
  return s;
}

nlohmann::json replica_json(const FfsReplica& r) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : r.stages) stages.push_back(stage_json(s));
  return nlohmann::json{{"interfaces", lambdas_json(r.interfaces)},
                        {"flux_crossings", r.flux_crossings},
                        {"flux_exposure_steps", r.flux_exposure},
                        {"flux_jumps", r.flux_jumps},
                        {"flux_nonfinite", r.flux_nonfinite},
                        {"flux_walker_steps", r.flux_walker_steps},
                        {"flux_group_crossings", r.flux_group_crossings},
                        {"flux_group_exposure_steps", r.flux_group_exposure},
                        {"complete", r.complete},
                        {"stages", stages}};
}

FfsReplica replica_from_json(const nlohmann::json& j) {
  FfsReplica r;
  r.interfaces = lambdas_from_json(j.at("interfaces"));
  r.flux_crossings = j.at("flux_crossings");
  r.flux_exposure = j.at("flux_exposure_steps");
  r.flux_jumps = j.at("flux_jumps");
  r.flux_nonfinite = j.at("flux_nonfinite");
  r.flux_walker_steps = j.at("flux_walker_steps");
  r.flux_group_crossings = j.value("flux_group_crossings", std::vector<std::int64_t>{});
  r.flux_group_exposure = j.value("flux_group_exposure_steps", std::vector<std::int64_t>{});
  r.complete = j.at("complete");
  for (const auto& s : j.at("stages")) r.stages.push_back(stage_from_json(s));
  return r;
}

void write_checkpoint(const std::string& path, const RunPlan& plan, const FfsResult& result,
                      int replica, const ReplicaState& state, const StatesKept& kept,
                      KeptStatesOnDisk& disk) {
  // First the kept interfaces the states file lacks: the JSON below commits them.
  if (kept.kept) {
    disk.written.resize(result.variants.size());
    for (std::size_t v = 0; v < result.variants.size(); ++v) {
      const auto& reps = result.variants[v].replicas;
      disk.written[v].resize(reps.size(), 0);
      for (std::size_t r = 0; r < reps.size(); ++r) {
        for (std::size_t& i = disk.written[v][r]; i < reps[r].interface_states.size(); ++i) {
          disk.writer.append(static_cast<std::int64_t>(v), static_cast<std::int64_t>(r),
                             static_cast<std::int64_t>(i), reps[r].interface_states[i]);
        }
      }
    }
  }
  nlohmann::json j;
  j["format"] = "sgdwalk-ffs-checkpoint";
  j["version"] = kCheckpointVersion;
  j["config"] = plan.resolved_config;
  j["replica"] = replica;
  j["next_stage"] = state.next_stage;
  // Whether the replicas' interface_states are complete (not after a resume from version 1 or 2).
  j["states_stored"] = kept.kept;
  j["states_not_stored_because"] = kept.why_not;
  nlohmann::json variants = nlohmann::json::array();
  for (std::size_t v = 0; v < result.variants.size(); ++v) {
    nlohmann::json reps = nlohmann::json::array();
    for (const auto& r : result.variants[v].replicas) {
      nlohmann::json rj = replica_json(r);
      rj["kept_interfaces"] = r.interface_states.size();
      reps.push_back(rj);
    }
    variants.push_back(
        {{"replicas", reps},
         {"states", state.current.empty() ? nlohmann::json() : states_json(state.current[v])}});
  }
  j["variants"] = variants;
  // The file's name only (it lies beside the checkpoint): a moved run directory resumes.
  j["states_file"] =
      kept.kept && disk.writer.committed() > 0
          ? nlohmann::json(std::filesystem::path(disk.writer.path()).filename().string())
          : nlohmann::json();
  j["states_file_bytes"] = disk.writer.committed();
  j["checksum"] = ffs_checkpoint_checksum(j);
  write_file_atomically(path, j.dump());
}

/// The kept interfaces of a version-4 checkpoint `j` (at `path`) from its states file, into the
/// replicas read from `j`; `disk` then continues that file.
void read_states_file(const std::string& path, const nlohmann::json& j, const RunPlan& plan,
                      FfsResult& result, KeptStatesOnDisk& disk) {
  const auto committed = j.at("states_file_bytes").get<std::uint64_t>();
  if (!j.at("states_file").is_null() && committed > 0) {
    const std::string file =
        (std::filesystem::path(path).parent_path() / j.at("states_file").get<std::string>())
            .string();
    read_kept_states(
        file, committed, plan.dim, plan.optimizer_state_width(),
        [&](std::int64_t v, std::int64_t r, std::int64_t i, FfsInterfaceStates&& s) {
          if (v < 0 || v >= static_cast<std::int64_t>(result.variants.size()) || r < 0 ||
              r >= static_cast<std::int64_t>(result.variants[v].replicas.size())) {
            throw std::runtime_error(fmt::format(
                "{}: states of variant {} replica {}, which the checkpoint lacks", file, v, r));
          }
          auto& kept = result.variants[v].replicas[r].interface_states;
          if (i != static_cast<std::int64_t>(kept.size())) {
            throw std::runtime_error(
                fmt::format("{}: interface {} of variant {} replica {} follows interface {}", file,
                            i, v, r, static_cast<std::int64_t>(kept.size()) - 1));
          }
          kept.push_back(std::move(s));
        });
    disk.writer = KeptStatesWriter(file, committed);
  }
  disk.written.assign(result.variants.size(), {});
  for (std::size_t v = 0; v < result.variants.size(); ++v) {
    const auto& variant_json = j.at("variants").at(v).at("replicas");
    for (std::size_t r = 0; r < result.variants[v].replicas.size(); ++r) {
      const std::size_t kept = result.variants[v].replicas[r].interface_states.size();
      if (variant_json.at(r).at("kept_interfaces").get<std::size_t>() != kept) {
        throw std::runtime_error(fmt::format(
            "the states file holds {} interfaces of variant {} replica {}, the checkpoint {}", kept,
            v, r, variant_json.at(r).at("kept_interfaces").dump()));
      }
      disk.written[v].push_back(kept);
    }
  }
}

/// Checks what the stages rely on in a checkpoint's counts, interfaces and states (indices,
/// sizes, signs), so that no file, of an old version without a checksum or written by hand, makes
/// the driver read out of bounds or report a rate from inconsistent counts; throws naming the
/// field. These are the invariants run_ffs keeps at every stage boundary.
void check_resumed_state(const RunPlan& plan, const FfsResult& result, int replica,
                         const ReplicaState& state, bool states_kept) {
  const FfsSpec& spec = plan.ffs;
  const auto fail = [](const std::string& what) { throw std::runtime_error(what); };
  if (replica < 0 || replica >= spec.replicas)
    fail(fmt::format("\"replica\" = {} is outside [0, {}] (rare_event.replicas = {})", replica,
                     spec.replicas - 1, spec.replicas));
  if (state.next_stage < 1 || state.next_stage > ffs::kMaxStages + 1)
    fail(fmt::format("\"next_stage\" = {} is outside [1, {}]", state.next_stage,
                     ffs::kMaxStages + 1));
  for (std::size_t v = 0; v < result.variants.size(); ++v) {
    const auto& reps = result.variants[v].replicas;
    if (reps.size() != static_cast<std::size_t>(replica) + 1)
      fail(fmt::format("variant {} holds {} replicas; replica {} needs {}", v, reps.size(), replica,
                       replica + 1));
    for (std::size_t r = 0; r < reps.size(); ++r) {
      const FfsReplica& rep = reps[r];
      const std::string where = fmt::format("variant {} replica {}", v, r);
      const bool current = r == static_cast<std::size_t>(replica);
      if (!current && !rep.complete) fail(where + " is not complete, yet a later one runs");
      for (const std::int64_t n : {rep.flux_crossings, rep.flux_exposure, rep.flux_jumps,
                                   rep.flux_nonfinite, rep.flux_walker_steps})
        if (n < 0) fail(where + ": a negative flux count");
      std::int64_t grouped = 0;
      for (const std::int64_t n : rep.flux_group_crossings) {
        if (n < 0) fail(where + ": a negative flux group count");
        grouped += n;
      }
      if (!rep.flux_group_crossings.empty() && grouped != rep.flux_crossings)
        fail(fmt::format("{}: its flux groups hold {} crossings, \"flux_crossings\" {}", where,
                         grouped, rep.flux_crossings));
      const auto& ifs = rep.interfaces;
      if (ifs.empty() || !std::is_sorted(ifs.begin(), ifs.end(), std::less_equal<double>()) ||
          std::any_of(ifs.begin(), ifs.end(), [](double l) { return std::isnan(l); }))
        fail(where + ": \"interfaces\" is empty or not increasing");
      if (spec.automatic() ? ifs.front() != spec.lambda_0 : ifs != spec.interfaces)
        fail(where + ": \"interfaces\" differ from the config's");
      if (rep.stages.size() >= ifs.size())
        fail(fmt::format("{}: {} stages for {} interfaces", where, rep.stages.size(), ifs.size()));
      for (std::size_t i = 0; i < rep.stages.size(); ++i) {
        const FfsStageCounts& st = rep.stages[i];
        if (st.trials < 0 || st.reached < 0 || st.fell_back < 0 || st.nonfinite < 0 ||
            st.timed_out < 0 ||
            st.reached + st.fell_back + st.nonfinite + st.timed_out != st.trials)
          fail(fmt::format("{} stage {}: its outcomes do not add up to its trials", where, i + 1));
        if (st.lambda_from != ifs[i] || st.lambda_to != ifs[i + 1])
          fail(fmt::format("{} stage {}: its interfaces are not \"interfaces\"[{}, {}]", where,
                           i + 1, i, i + 1));
      }
      if (states_kept) {
        // The kept interfaces: λ_0 … λ_{stages − 1} while the replica runs (its current states
        // are kept when the next stage starts), and the last one reached too once it is done.
        const std::size_t kept = rep.stages.size() + (current ? 0 : 1);
        if (rep.interface_states.size() != kept)
          fail(fmt::format("{} holds {} kept interfaces for {} stages; its stages need {}", where,
                           rep.interface_states.size(), rep.stages.size(), kept));
        for (const FfsInterfaceStates& states : rep.interface_states)
          if (states.size() > 0 && states.states.dim != plan.dim)
            fail(fmt::format("{}: kept states of dimension {}; the landscape's is {}", where,
                             states.states.dim, plan.dim));
      }
      if (!current || rep.complete) continue;
      // The replica runs on from stage next_stage: its states at interface next_stage − 1.
      const auto stages_done = static_cast<std::size_t>(state.next_stage - 1);
      if (rep.stages.size() != stages_done)
        fail(fmt::format("{} has {} stages, \"next_stage\" = {} needs {}", where, rep.stages.size(),
                         state.next_stage, stages_done));
      if (spec.automatic() ? ifs.size() != stages_done + 1 : ifs.size() <= stages_done + 1)
        fail(fmt::format("{}: {} interfaces for \"next_stage\" = {}", where, ifs.size(),
                         state.next_stage));
      const FfsInterfaceStates& states = state.current.at(v);
      const std::int64_t expected =
          rep.stages.empty() ? rep.flux_crossings : rep.stages.back().reached;
      if (states.size() != expected || expected <= 0 || states.states.dim != plan.dim)
        fail(
            fmt::format("{}: {} stored states of dimension {}, where its counts need {} of "
                        "dimension {}",
                        where, states.size(), states.states.dim, expected, plan.dim));
      for (const std::int64_t a : states.ancestor)
        if (a < 0 || a >= rep.flux_crossings)
          fail(fmt::format("{}: a stored state's ancestor {} is outside [0, {})", where, a,
                           rep.flux_crossings));
    }
  }
}

/// Reads a checkpoint written for this plan; throws std::runtime_error naming the file otherwise.
void read_checkpoint(const std::string& path, const RunPlan& plan, FfsResult& result, int& replica,
                     ReplicaState& state, StatesKept& kept, KeptStatesOnDisk& disk) {
  std::ifstream in(path, std::ios::binary);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
    if (j.at("format") != "sgdwalk-ffs-checkpoint")
      throw std::runtime_error("not an FFS checkpoint");
    const auto& version_json = j.at("version");
    if (!version_json.is_number_integer() || version_json.get<int>() < kOldestCheckpointVersion ||
        version_json.get<int>() > kCheckpointVersion) {
      throw std::runtime_error(fmt::format("format version {} (this build reads versions {} to {})",
                                           version_json.dump(), kOldestCheckpointVersion,
                                           kCheckpointVersion));
    }
    const int version = version_json.get<int>();
    if (version >= kFirstVersionWithChecksum) {
      const auto& stored = j.at("checksum");
      if (!stored.is_string() || stored.get<std::string>() != ffs_checkpoint_checksum(j))
        throw std::runtime_error(
            "its checksum does not match its contents: the file was changed or damaged");
    }
    // rare_event.store_states came with version 3: an older file's config has no such key.
    nlohmann::json config = plan.resolved_config;
    if (version < kFirstVersionWithStates && config.contains("rare_event"))
      config["rare_event"].erase("store_states");
    if (j.at("config") != config) throw std::runtime_error("it was written for another config");
    if (version >= kFirstVersionWithStates) {
      kept.kept = j.at("states_stored").get<bool>();
      kept.why_not = j.at("states_not_stored_because").get<std::string>();
    } else if (plan.ffs.store_states) {
      kept.kept = false;
      // No path in the text: it goes into results.h5, whose bytes depend on the results only.
      kept.why_not = fmt::format(
          "the run resumed from a version-{} FFS checkpoint, which holds only the current "
          "interface's states: results.h5 holds no interface states (run it again from the start "
          "to get them)",
          version);
    }
    replica = j.at("replica");
    state.next_stage = j.at("next_stage");
    const auto& variants = j.at("variants");
    if (variants.size() != plan.variants.size())
      throw std::runtime_error("variant count differs from the config");
    state.current.assign(plan.variants.size(), {});
    for (std::size_t v = 0; v < variants.size(); ++v) {
      result.variants[v].replicas.clear();
      for (const auto& r : variants[v].at("replicas")) {
        FfsReplica& rep = result.variants[v].replicas.emplace_back(replica_from_json(r));
        if (version == kFirstVersionWithStates) {
          for (const auto& s : r.at("interface_states"))
            rep.interface_states.push_back(
                states_from_json(s, version, plan.optimizer_state_width()));
        }
      }
      if (!variants[v].at("states").is_null())
        state.current[v] =
            states_from_json(variants[v].at("states"), version, plan.optimizer_state_width());
    }
    if (version >= kFirstVersionWithStatesFile) read_states_file(path, j, plan, result, disk);
    check_resumed_state(plan, result, replica, state, kept.kept);
  } catch (const std::exception& error) {
    throw std::runtime_error(
        fmt::format("{}: cannot resume forward flux sampling: {}", path, error.what()));
  }
}

// ---- the stages ---------------------------------------------------------------------------------

/// The flux stage of replica r for every variant: fills rep.flux_* and the interface-0 states.
void run_flux_stage(const RunPlan& plan, Backend& backend, int replica,
                    std::vector<FfsReplica*>& reps, std::vector<FfsInterfaceStates>& states,
                    const FfsOptions& options) {
  const std::int64_t variants = plan.variant_count();
  const std::int64_t walkers = plan.walkers_per_variant;
  FfsFluxBatch batch;
  batch.replica = replica;
  batch.equilibration = plan.ffs.equilibration_steps;
  for (std::int64_t v = 0; v < variants; ++v) {
    const auto& ifs = reps[static_cast<std::size_t>(v)]->interfaces;
    FfsBounds b;
    b.lambda_a = plan.ffs.lambda_a;
    b.lambda_from = -kInf;
    b.lambda_to = ifs.front();
    b.lambda_beyond = ifs.size() > 1 && !plan.ffs.automatic() ? ifs[1] : kInf;
    b.lambda_b = plan.ffs.automatic() ? plan.ffs.lambda_b : ifs.back();
    batch.bounds.push_back(b);
  }
  batch.resize(variants, walkers, plan.dim, plan.optimizer_state_width());
  initialize_ffs_flux(plan, batch);
  // Crossing records (walker, step, slot in `pool`), sorted at the end: the stored order is then
  // (walker, step), whatever the calls' segmentation.
  struct Record {
    std::int64_t walker, step, slot;
  };
  std::vector<std::vector<Record>> records(static_cast<std::size_t>(variants));
  std::vector<FfsInterfaceStates> pool(static_cast<std::size_t>(variants));
  std::vector<std::int64_t> used(static_cast<std::size_t>(variants), 0);
  const std::int64_t segment =
      options.flux_segment_steps > 0 ? options.flux_segment_steps : plan.steps;
  std::int64_t target = std::min(plan.steps, segment);
  while (true) {
    backend.run_ffs_flux(plan, target, batch);
    bool all_at_target = true;
    for (std::int64_t i = 0; i < batch.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const std::int64_t v = i / walkers;
      const auto vk = static_cast<std::size_t>(v);
      for (std::int32_t c = 0; c < batch.stored_count[k]; ++c) {
        const std::int64_t from = i * batch.capacity + c;
        const std::int64_t slot =
            append_slot(pool[vk], used[vk], plan.dim, plan.optimizer_state_width());
        copy_state(batch.stored, from, pool[vk].states, slot);
        records[vk].push_back(
            {i % walkers, batch.stored_step[static_cast<std::size_t>(from)], slot});
        if (used[vk] > plan.ffs.max_stored_states) {
          throw std::runtime_error(fmt::format(
              "variant {}: more than rare_event.max_stored_states = {} crossings of λ_0 in the "
              "flux stage; place lambda_0 further from A, or use fewer run.walkers or run.steps",
              v, plan.ffs.max_stored_states));
        }
      }
      batch.stored_count[k] = 0;
      all_at_target = all_at_target && batch.step[k] >= target;
    }
    if (all_at_target) {
      if (target == plan.steps) break;
      target = std::min(plan.steps, target + segment);
    }
  }
  for (std::int64_t v = 0; v < variants; ++v) {
    const auto vk = static_cast<std::size_t>(v);
    FfsReplica& rep = *reps[vk];
    const std::int64_t groups = ancestor_groups(walkers);
    rep.flux_group_crossings.assign(static_cast<std::size_t>(groups), 0);
    rep.flux_group_exposure.assign(static_cast<std::size_t>(groups), 0);
    for (std::int64_t w = 0; w < walkers; ++w) {
      const auto k = static_cast<std::size_t>(v * walkers + w);
      const auto g = static_cast<std::size_t>(w * groups / walkers);
      rep.flux_group_crossings[g] += batch.crossings[k];
      rep.flux_group_exposure[g] += batch.exposure[k];
      rep.flux_crossings += batch.crossings[k];
      rep.flux_exposure += batch.exposure[k];
      rep.flux_nonfinite += batch.nonfinite[k];
      rep.flux_walker_steps += batch.step[k];
    }
    auto& rec = records[vk];
    std::sort(rec.begin(), rec.end(), [](const Record& a, const Record& b) {
      return a.walker != b.walker ? a.walker < b.walker : a.step < b.step;
    });
    FfsInterfaceStates out;
    out.states.resize(static_cast<std::int64_t>(rec.size()), plan.dim, 0,
                      plan.optimizer_state_width());
    for (std::size_t c = 0; c < rec.size(); ++c) {
      copy_state(pool[vk].states, rec[c].slot, out.states, static_cast<std::int64_t>(c));
      out.path_step.push_back(rec[c].step);
      out.ancestor.push_back(static_cast<std::int64_t>(c));
      out.parent.push_back(-1);
    }
    states[vk] = std::move(out);
  }
}

/// Fills `batch` with trials started from `states` (chosen by counter-based randomness).
void prepare_trials(const RunPlan& plan, int replica, int stage_key, std::int64_t trials,
                    const std::vector<FfsInterfaceStates>& states,
                    const std::vector<std::uint8_t>& active, FfsTrialBatch& batch,
                    std::vector<std::int64_t>& chosen) {
  const std::int64_t variants = plan.variant_count();
  batch.replica = replica;
  batch.stage = stage_key;
  batch.max_steps = plan.ffs.max_trial_steps;
  batch.resize(variants, trials, plan.dim, plan.optimizer_state_width());
  batch.active = active;
  chosen.assign(static_cast<std::size_t>(variants * trials), -1);
  for (std::int64_t v = 0; v < variants; ++v) {
    const auto& store = states[static_cast<std::size_t>(v)];
    if (!active[static_cast<std::size_t>(v)] || store.size() == 0) continue;
    for (std::int64_t j = 0; j < trials; ++j) {
      const std::int64_t i = v * trials + j;
      const std::int64_t c = ffs::choose_start(plan.seed, v, replica, stage_key, j, store.size());
      chosen[static_cast<std::size_t>(i)] = c;
      copy_state(store.states, c, batch.states, i);
      batch.path_step[static_cast<std::size_t>(i)] = store.path_step[static_cast<std::size_t>(c)];
    }
  }
}

/// The warning for stage s + 1 (index s) of replica ri, which no trial passed, with automatic
/// placement: there are no interfaces to add. Placement stops advancing where the walkers stop
/// (lambda_B beyond the order parameter's range, or where they cannot go), and every trial then
/// runs up to max_trial_steps: the warning names lambda_B and how far the walkers got.
std::string automatic_stage_not_reached(std::size_t ri, std::size_t s, const FfsStageCounts& st,
                                        const FfsSpec& spec) {
  // B of the energy order parameter is the other basin (+inf), not a key of the config.
  const bool energy_b = std::isinf(spec.lambda_b);
  const std::string b = energy_b ? std::string("B (the other basin)")
                                 : fmt::format("rare_event.lambda_B = {}", spec.lambda_b);
  const std::string target =
      st.lambda_to >= spec.lambda_b
          ? b
          : fmt::format("λ_{} = {} (placed on the way to {})", s + 1, st.lambda_to, b);
  return fmt::format(
      "replica {}: no trial reached {}: the rate is 0 here; the furthest interface the walkers "
      "reached is λ_{} = {} (order_parameter = \"{}\"). {}more trials and placement_trials; a "
      "trial that neither reaches the next interface nor falls back into A runs "
      "rare_event.max_trial_steps = {} updates",
      ri, target, s, st.lambda_from, spec.order_name,
      energy_b ? "Use "
               : "If lambda_B lies beyond where the walkers can go (outside the order "
                 "parameter's range), lower it or use another order parameter; otherwise use ",
      spec.max_trial_steps);
}

/// The warnings of one variant's result (docs/RARE_EVENTS.md, "Errors" and "Jump-overs").
std::vector<std::string> ffs_warnings(const FfsVariantResult& vr, const FfsSpec& spec) {
  std::vector<std::string> warnings;
  for (std::size_t ri = 0; ri < vr.replicas.size(); ++ri) {
    const FfsReplica& rep = vr.replicas[ri];
    if (rep.flux_crossings == 0) {
      warnings.push_back(fmt::format(
          "replica {}: no crossing of λ_0 in the flux stage: the rate is 0 here; use more "
          "run.walkers or run.steps, or move lambda_0 closer to A",
          ri));
    } else if (rep.flux_crossings < 100) {
      warnings.push_back(fmt::format(
          "replica {}: only {} crossings of λ_0 in the flux stage: the flux is uncertain to "
          "{:.0f} %",
          ri, rep.flux_crossings, 100 / std::sqrt(static_cast<double>(rep.flux_crossings))));
    }
    if (rep.flux_nonfinite > 0) {
      warnings.push_back(fmt::format(
          "replica {}: {} flux walker(s) became non-finite (diverged): the flux counts only their "
          "steps before; a diverging walk has no escape rate (lower learning_rate, or check the "
          "noise)",
          ri, rep.flux_nonfinite));
    }
    // Few ancestors: one warning per replica, from the first stage below the threshold to the
    // last (a collapse only deepens from stage to stage).
    std::size_t first_few = rep.stages.size();
    std::int64_t jump_stages = 0, worst_jumps = 0, worst_reached = 0;
    double worst_fraction = 0;
    std::size_t worst_stage = 0;
    for (std::size_t s = 0; s < rep.stages.size(); ++s) {
      const auto& st = rep.stages[s];
      if (st.reached == 0 && spec.automatic()) {
        warnings.push_back(automatic_stage_not_reached(ri, s, st, spec));
      } else if (st.reached == 0) {
        warnings.push_back(fmt::format(
            "replica {}: no trial reached λ_{} = {}: the rate is 0 here; add interfaces "
            "between {} and {}, or more trials",
            ri, s + 1, st.lambda_to, st.lambda_from, st.lambda_to));
      }
      if (st.reached > 0 && st.effective_ancestors < kFewAncestors &&
          first_few == rep.stages.size())
        first_few = s;
      if (st.nonfinite > 0) {
        warnings.push_back(fmt::format(
            "replica {}: {} trial(s) of stage {} became non-finite (diverged; counted as "
            "failures)",
            ri, st.nonfinite, s + 1));
      }
      if (st.timed_out > 0) {
        warnings.push_back(fmt::format(
            "replica {}: {} trial(s) of stage {} ran rare_event.max_trial_steps = {} updates "
            "without an outcome (counted as failures)",
            ri, st.timed_out, s + 1, spec.max_trial_steps));
      }
      // Jump-overs of the states stored at λ_{s+1} (already beyond λ_{s+2}).
      const double fraction =
          st.reached > 0 ? static_cast<double>(st.jumps) / static_cast<double>(st.reached) : 0.0;
      if (fraction > kJumpOverFraction) ++jump_stages;
      if (fraction > worst_fraction) {
        worst_fraction = fraction;
        worst_stage = s;
        worst_jumps = st.jumps;
        worst_reached = st.reached;
      }
    }
    // Automatic placement that used every stage: the last interface was set to lambda_B
    // whatever the pilots reached (the loop's cap, ffs::kMaxStages).
    if (spec.automatic() && rep.stages.size() == static_cast<std::size_t>(ffs::kMaxStages)) {
      warnings.push_back(fmt::format(
          "replica {}: automatic placement used all {} stages, so the last interface is lambda_B "
          "= {} (at the last stage it is set there whatever the pilots reached; its stage "
          "probability is {:.3g}, crossing_probability {}): a lower crossing_probability or a "
          "nearer lambda_B needs fewer interfaces",
          ri, ffs::kMaxStages, spec.lambda_b, rep.stages.back().probability(),
          spec.placement_probability));
    }
    if (first_few < rep.stages.size()) {
      const auto& a = rep.stages[first_few];
      const auto& b = rep.stages.back();
      warnings.push_back(fmt::format(
          "replica {}: from λ_{} on, the states descend from few flux crossings ({} distinct, "
          "effective number {:.1f}; at λ_{}: {}, {:.1f}): the AFtW error is optimistic and single "
          "replicas are right-skewed; see rate_relative_error_jackknife and docs/RARE_EVENTS.md "
          "(more trials per stage help; with momentum the velocity at the crossing decides)",
          ri, first_few + 1, a.distinct_ancestors, a.effective_ancestors, rep.stages.size(),
          b.distinct_ancestors, b.effective_ancestors));
    }
    const double flux_fraction =
        rep.flux_crossings > 0
            ? static_cast<double>(rep.flux_jumps) / static_cast<double>(rep.flux_crossings)
            : 0.0;
    if (jump_stages > 0 || flux_fraction > kJumpOverFraction) {
      // The worst trial stage is named only when one is over the threshold (else "0 of 0").
      const std::string worst =
          jump_stages > 0
              ? fmt::format("most: λ_{}, {} of {}; ", worst_stage + 1, worst_jumps, worst_reached)
              : std::string();
      warnings.push_back(fmt::format(
          "replica {}: at {} interface(s) more than {:.0f} % of the stored states already lie "
          "beyond the next interface ({}λ_0: {} of {}): those interfaces are closer than a step "
          "and do no work (no bias: see docs/RARE_EVENTS.md, \"Jump-overs\"); {}",
          ri, jump_stages + (flux_fraction > kJumpOverFraction ? 1 : 0), 100 * kJumpOverFraction,
          worst, rep.flux_jumps, rep.flux_crossings,
          // Placed interfaces are spaced by the crossing probability, not by hand.
          spec.automatic()
              ? fmt::format("they were placed automatically: a lower "
                            "rare_event.crossing_probability (now {}) spaces them wider",
                            spec.placement_probability)
              : std::string("space them wider than a step")));
    }
  }
  // The variant's estimate: is its error trustworthy?
  if (vr.rate_per_step > 0 && std::isfinite(vr.rate_relative_error_jackknife) &&
      vr.rate_relative_error_jackknife > 2 * vr.rate_relative_error_aftw) {
    warnings.push_back(fmt::format(
        "the jackknife error over flux-walker groups ({:.0f} %) is more than twice the AFtW "
        "error ({:.0f} %): states sharing ancestors (with momentum: the velocity at the "
        "crossings) make the AFtW formula optimistic; use the jackknife or the replica error",
        100 * vr.rate_relative_error_jackknife, 100 * vr.rate_relative_error_aftw));
  }
  const auto R = static_cast<double>(vr.replicas.size());
  double sum = 0, largest = 0;
  std::int64_t zero = 0;
  for (const auto& rep : vr.replicas) {
    const double k = rep.rate_per_step();
    sum += k;
    largest = std::max(largest, k);
    zero += k > 0 ? 0 : 1;
  }
  if (vr.replicas.size() >= 4 && sum > 0 && (largest / sum > kHeavyTailShare / R || zero > 0)) {
    warnings.push_back(fmt::format(
        "one replica of {} carries {:.0f} % of the replica mean ({} replica(s) gave 0): the "
        "estimates are heavy-tailed, so the mean of few replicas is typically below the rate "
        "and its standard error too small; use more replicas and trials (docs/RARE_EVENTS.md, "
        "\"Momentum\")",
        vr.replicas.size(), 100 * largest / sum, zero));
  }
  return warnings;
}

/// results.h5 group `g`/interfaceI of each kept interface i of `rep`: its states, netCDF-4 style
/// (dimensions `state`, `coordinate` and `optimizer_component` of the group).
void write_interface_states(const RunPlan& plan, const FfsReplica& rep, const std::string& g,
                            Hdf5File& file) {
  const auto dim = static_cast<std::size_t>(plan.dim);
  const auto width = static_cast<std::size_t>(plan.optimizer_state_width());
  for (std::size_t i = 0; i < rep.interface_states.size(); ++i) {
    const FfsInterfaceStates& s = rep.interface_states[i];
    const std::string ig = fmt::format("{}/interface{}", g, i);
    file.group(ig);
    file.attribute(ig, "lambda", rep.interfaces[i]);
    file.attribute(ig, "description",
                   i == 0 ? "states stored at λ_0 by the flux stage (first crossings after the "
                            "last visit to A), in (flux walker, step) order"
                          : fmt::format("states of the stage-{} trials that reached λ_{}, in "
                                        "trial order",
                                        i, i));
    const auto n = static_cast<std::size_t>(s.size());
    file.dimension(ig, "state", n);
    file.dimension(ig, "coordinate", dim);
    file.dataset(ig + "/position", s.states.position, {"state", "coordinate"}, "1",
                 "position θ when the state was stored (exact value of the walker's precision)");
    if (width > 0) {
      // As in /walkers: the dimension's name differs from the dataset's.
      file.dimension(ig, "optimizer_component", width);
      file.dataset(
          ig + "/optimizer_state", s.states.optimizer_state, {"state", "optimizer_component"}, "1",
          plan.optimizer == OptimizerKind::momentum || plan.optimizer == OptimizerKind::nesterov
              ? "velocity v (momentum, nesterov), one column per coordinate"
              : "first moments m, then second moments s (adam; rmsprop: m is the last "
                "gradient), one column per coordinate each");
    }
    file.dataset(ig + "/step", s.path_step, {"state"}, "steps",
                 "the walker's step index k when it was stored (flux-stage step plus the updates "
                 "of every trial on its path)");
    file.dataset(ig + "/parent", s.parent, {"state"}, "1",
                 "index of the state at interface i−1 whose trial reached this one (−1 at "
                 "interface 0)");
    file.dataset(ig + "/ancestor", s.ancestor, {"state"}, "1",
                 "index of the interface-0 (flux-stage) state it descends from");
  }
}

}  // namespace

double FfsReplica::flux() const {
  return flux_exposure > 0
             ? static_cast<double>(flux_crossings) / static_cast<double>(flux_exposure)
             : 0.0;
}

double FfsReplica::rate_per_step() const {
  double k = flux();
  for (const auto& s : stages) k *= s.probability();
  return k;
}

double FfsReplica::relative_variance() const {
  if (flux_crossings == 0) return kInf;
  double v = 1.0 / static_cast<double>(flux_crossings);
  for (const auto& s : stages) {
    const double p = s.probability();
    if (p <= 0) return kInf;
    v += (1 - p) / (p * static_cast<double>(s.trials));
  }
  return v;
}

double FfsReplica::relative_variance_jackknife() const {
  const std::size_t groups = flux_group_crossings.size();
  if (groups < 2 || flux_group_exposure.size() != groups) return std::nan("");
  for (const auto& s : stages)
    if (s.group_trials.size() != groups || s.group_reached.size() != groups) return std::nan("");
  const double rate = rate_per_step();
  if (!(rate > 0)) return kInf;
  // The estimate without group g: its flux walkers' crossings and exposure, and every trial that
  // descends from them, left out (a ratio estimator per stage, as the full one).
  std::vector<double> without(groups);
  for (std::size_t g = 0; g < groups; ++g) {
    const auto exposure = static_cast<double>(flux_exposure - flux_group_exposure[g]);
    double k = exposure > 0
                   ? static_cast<double>(flux_crossings - flux_group_crossings[g]) / exposure
                   : 0.0;
    for (const auto& s : stages) {
      const auto trials = static_cast<double>(s.trials - s.group_trials[g]);
      k *= trials > 0 ? static_cast<double>(s.reached - s.group_reached[g]) / trials : 0.0;
    }
    without[g] = k;
  }
  const double n = static_cast<double>(groups);
  const double mean = std::accumulate(without.begin(), without.end(), 0.0) / n;
  // Relative to the rate before squaring: squares of rates below ~1e-154 per step (barriers of
  // some hundred Δ_S) would lose digits or vanish.
  double ss = 0;
  for (const double k : without) ss += ((k - mean) / rate) * ((k - mean) / rate);
  return (n - 1) / n * ss;
}

std::int64_t FfsReplica::walker_steps() const {
  std::int64_t n = flux_walker_steps;
  for (const auto& s : stages) n += s.walker_steps + s.pilot_walker_steps;
  return n;
}

FfsResult run_ffs(const RunPlan& plan, Backend& backend, const FfsOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const FfsSpec& spec = plan.ffs;
  const std::int64_t variants = plan.variant_count();
  const auto nv = static_cast<std::size_t>(variants);
  FfsResult result;
  result.variants.resize(nv);
  int first_replica = 0;
  ReplicaState resumed;
  StatesKept kept{spec.store_states, spec.store_states ? "" : "rare_event.store_states = false"};
  const std::string states_path = options.checkpoint_path.empty()
                                      ? std::string()
                                      : KeptStatesWriter::path_for(options.checkpoint_path);
  // Versions before 4 (and a new run) start the states file afresh.
  KeptStatesOnDisk disk{KeptStatesWriter(states_path), {}};
  const bool resuming =
      !options.checkpoint_path.empty() && std::filesystem::exists(options.checkpoint_path);
  if (resuming)
    read_checkpoint(options.checkpoint_path, plan, result, first_replica, resumed, kept, disk);

  bool computing = false;
  const auto start_computing = [&] {
    if (computing) return;
    computing = true;
    if (options.before_computing) options.before_computing();
  };

  for (int r = first_replica; r < spec.replicas; ++r) {
    ReplicaState state;
    std::vector<FfsReplica*> reps(nv);
    if (resuming && r == first_replica) {
      state = std::move(resumed);
    } else {
      for (auto& vr : result.variants) vr.replicas.emplace_back();
      state.current.assign(nv, {});
    }
    for (std::size_t v = 0; v < nv; ++v)
      reps[v] = &result.variants[v].replicas[static_cast<std::size_t>(r)];
    const auto report = [&](int stage, const std::string& line) {
      if (!options.checkpoint_path.empty()) {
        try {
          write_checkpoint(options.checkpoint_path, plan, result, r, state, kept, disk);
        } catch (const std::exception& error) {
          throw FfsCheckpointNotWritten(error.what());
        }
      }
      if (options.on_stage && !options.on_stage(FfsProgress{r, stage, line})) {
        throw FfsStopped();
      }
    };

    if (state.next_stage == 0) {
      for (std::size_t v = 0; v < nv; ++v) {
        reps[v]->interfaces =
            spec.automatic() ? std::vector<double>{spec.lambda_0} : spec.interfaces;
      }
      start_computing();
      run_flux_stage(plan, backend, r, reps, state.current, options);
      std::int64_t crossings = 0;
      for (std::size_t v = 0; v < nv; ++v) {
        crossings += reps[v]->flux_crossings;
        if (reps[v]->flux_crossings == 0) reps[v]->complete = true;
      }
      state.next_stage = 1;
      report(0,
             fmt::format("replica {}/{}: flux stage: {} crossings of λ_0{}", r + 1, spec.replicas,
                         crossings, nv > 1 ? fmt::format(" (all {} variants)", nv) : ""));
    }

    for (int s = state.next_stage; s <= ffs::kMaxStages; ++s) {
      std::vector<std::uint8_t> active(nv, 0);
      bool any = false;
      for (std::size_t v = 0; v < nv; ++v) {
        active[v] = !reps[v]->complete;
        any = any || active[v];
      }
      if (!any) break;
      // Interface s: given, or placed from pilot trials.
      std::vector<FfsStageCounts> stage(nv);
      if (spec.automatic()) {
        const std::int64_t pilots = spec.placement_trials;
        FfsTrialBatch pilot;
        std::vector<std::int64_t> chosen;
        start_computing();
        prepare_trials(plan, r, ffs::kPilotStage + s, pilots, state.current, active, pilot, chosen);
        for (std::size_t v = 0; v < nv; ++v) {
          const double from = reps[v]->interfaces.back();
          pilot.bounds.push_back(
              FfsBounds{spec.lambda_a, from, spec.lambda_b, kInf, spec.lambda_b});
        }
        backend.run_ffs_trials(plan, pilot);
        for (std::size_t v = 0; v < nv; ++v) {
          if (!active[v]) continue;
          const double from = reps[v]->interfaces.back();
          std::vector<double> maxima;
          for (std::int64_t j = 0; j < pilots; ++j) {
            const auto i = static_cast<std::size_t>(static_cast<std::int64_t>(v) * pilots + j);
            maxima.push_back(pilot.max_lambda[i]);
            stage[v].pilot_walker_steps += pilot.steps[i];
          }
          stage[v].pilot_trials = pilots;
          std::sort(maxima.begin(), maxima.end(), std::greater<double>());
          // The level that a fraction p of the pilots reached; above the current interface.
          const auto index = std::min<std::size_t>(
              maxima.size() - 1,
              static_cast<std::size_t>(
                  std::floor(spec.placement_probability * static_cast<double>(maxima.size()))));
          double next = maxima[index];
          if (!(next > from)) {
            next = spec.lambda_b;
            for (const double m : maxima)
              if (m > from) next = std::min(next, m);
          }
          if (next >= spec.lambda_b || s == ffs::kMaxStages) next = spec.lambda_b;
          reps[v]->interfaces.push_back(next);
        }
      }
      FfsTrialBatch batch;
      std::vector<std::int64_t> chosen;
      start_computing();
      prepare_trials(plan, r, s, spec.trials, state.current, active, batch, chosen);
      for (std::size_t v = 0; v < nv; ++v) {
        const auto& ifs = reps[v]->interfaces;
        FfsBounds b;
        b.lambda_a = spec.lambda_a;
        b.lambda_b = ifs.back();
        if (active[v]) {
          b.lambda_from = ifs[static_cast<std::size_t>(s - 1)];
          b.lambda_to = ifs[static_cast<std::size_t>(s)];
          b.lambda_beyond = static_cast<std::size_t>(s + 1) < ifs.size()
                                ? ifs[static_cast<std::size_t>(s + 1)]
                                : kInf;
        }
        batch.bounds.push_back(b);
      }
      backend.run_ffs_trials(plan, batch);
      std::int64_t reached_all = 0, trials_all = 0, variants_in_stage = 0;
      for (std::size_t v = 0; v < nv; ++v) {
        if (!active[v]) continue;
        ++variants_in_stage;
        FfsStageCounts& st = stage[v];
        const auto& ifs = reps[v]->interfaces;
        st.lambda_from = ifs[static_cast<std::size_t>(s - 1)];
        st.lambda_to = ifs[static_cast<std::size_t>(s)];
        FfsInterfaceStates next;
        std::int64_t used = 0;
        const auto& from_store = state.current[v];
        // Group counts only when the flux stage's are known (not in a replica resumed from a
        // checkpoint written before them).
        const std::vector<std::int32_t> group = group_of_ancestors(*reps[v]);
        const bool grouped =
            !reps[v]->flux_group_crossings.empty() &&
            group.size() == static_cast<std::size_t>(reps[v]->flux_crossings) &&
            std::all_of(reps[v]->stages.begin(), reps[v]->stages.end(),
                        [](const FfsStageCounts& c) { return !c.group_trials.empty(); });
        if (grouped) {
          st.group_trials.assign(reps[v]->flux_group_crossings.size(), 0);
          st.group_reached.assign(reps[v]->flux_group_crossings.size(), 0);
        }
        for (std::int64_t j = 0; j < spec.trials; ++j) {
          const std::int64_t i = static_cast<std::int64_t>(v) * spec.trials + j;
          const auto k = static_cast<std::size_t>(i);
          ++st.trials;
          st.walker_steps += batch.steps[k];
          if (grouped) {
            const std::int64_t a = from_store.ancestor[static_cast<std::size_t>(chosen[k])];
            const auto g = static_cast<std::size_t>(group[static_cast<std::size_t>(a)]);
            ++st.group_trials[g];
            if (batch.outcome[k] == static_cast<std::uint8_t>(ffs::TrialOutcome::reached))
              ++st.group_reached[g];
          }
          switch (static_cast<ffs::TrialOutcome>(batch.outcome[k])) {
            case ffs::TrialOutcome::reached: {
              ++st.reached;
              const std::int64_t slot =
                  append_slot(next, used, plan.dim, plan.optimizer_state_width());
              copy_state(batch.states, i, next.states, slot);
              next.path_step.push_back(batch.path_step[k]);
              next.ancestor.push_back(from_store.ancestor[static_cast<std::size_t>(chosen[k])]);
              next.parent.push_back(chosen[k]);
              break;
            }
            case ffs::TrialOutcome::fell_back:
              ++st.fell_back;
              break;
            case ffs::TrialOutcome::nonfinite:
              ++st.nonfinite;
              break;
            default:
              ++st.timed_out;
              break;
          }
        }
        shrink(next, used, plan.dim, plan.optimizer_state_width());
        count_ancestors(next.ancestor, st);
        // Jump-overs at the interface the trials started from: its states already beyond λ_s.
        if (s == 1) {
          const auto lambdas =
              ffs_order_values(plan, static_cast<std::int64_t>(v), from_store.states,
                               from_store.path_step, 0, from_store.size());
          reps[v]->flux_jumps = std::count_if(lambdas.begin(), lambdas.end(),
                                              [&](double l) { return l >= st.lambda_to; });
        }
        if (s >= 2) {
          auto& prev = reps[v]->stages.back();
          const auto lambdas =
              ffs_order_values(plan, static_cast<std::int64_t>(v), from_store.states,
                               from_store.path_step, 0, from_store.size());
          prev.jumps = std::count_if(lambdas.begin(), lambdas.end(),
                                     [&](double l) { return l >= st.lambda_to; });
        }
        reps[v]->stages.push_back(st);
        reached_all += st.reached;
        trials_all += st.trials;
        const bool last =
            st.lambda_to >= ifs.back() && (!spec.automatic() || st.lambda_to >= spec.lambda_b);
        if (st.reached == 0 || last) reps[v]->complete = true;
        // from_store is not used below: its states move to the kept interfaces.
        if (kept.kept) reps[v]->interface_states.push_back(std::move(state.current[v]));
        state.current[v] = std::move(next);
      }
      state.next_stage = s + 1;
      // A sweep's stage runs the trials of all its variants at once: the line sums them.
      report(s, fmt::format("replica {}/{}: stage {}: {} of {} trials reached the next interface{}",
                            r + 1, spec.replicas, s, reached_all, trials_all,
                            nv > 1 ? fmt::format(" ({} variants, {} trials each)",
                                                 variants_in_stage, spec.trials)
                                   : ""));
    }
    // The last interface each variant reached (its states were not used by a further stage).
    if (kept.kept) {
      for (std::size_t v = 0; v < nv; ++v)
        reps[v]->interface_states.push_back(std::move(state.current[v]));
    }
  }
  // The checkpoint stays: it holds the finished computation until the caller's outputs are
  // written (ffs_session.cpp removes it then).
  result.states_stored = kept.kept;
  result.states_not_stored_because = kept.why_not;
  if (spec.store_states && !kept.kept) result.warnings.push_back(kept.why_not);

  // ---- estimates --------------------------------------------------------------------------------
  for (std::size_t v = 0; v < nv; ++v) {
    FfsVariantResult& vr = result.variants[v];
    vr.learning_rate = plan.variants[v].learning_rate;
    ffs_estimate_rates(vr, spec.automatic());
    vr.warnings = ffs_warnings(vr, spec);
  }
  result.complete = true;
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void ffs_estimate_rates(FfsVariantResult& vr, bool automatic_interfaces) {
  const auto R = static_cast<double>(vr.replicas.size());
  double sum = 0;
  for (const auto& rep : vr.replicas) sum += rep.rate_per_step();
  vr.rate_per_step = sum / R;
  // The errors from the replicas' rates relative to the mean rate: the squares of rates below
  // ~1e-154 per step (barriers of some hundred Δ_S) would lose digits or vanish, and the errors
  // with them (reported as 0).
  const double mean = vr.rate_per_step;
  double aftw = 0, jackknife = 0, ss = 0;
  if (mean > 0) {  // else every replica's rate is 0: no spread, infinite relative errors
    for (const auto& rep : vr.replicas) {
      const double k = rep.rate_per_step();
      const double relative = k / mean;
      // A replica with rate 0 adds nothing to either error (its relative variance is +inf: the
      // product would be NaN).
      if (k > 0) {
        aftw += relative * relative * rep.relative_variance();
        jackknife += relative * relative * rep.relative_variance_jackknife();
      }
      ss += (relative - 1) * (relative - 1);
    }
  }
  vr.rate_std_error = R > 1 ? mean * std::sqrt(ss / (R - 1) / R) : std::nan("");
  vr.rate_relative_error_aftw = mean > 0 ? std::sqrt(aftw) / R : kInf;
  vr.rate_relative_error_jackknife = mean > 0 ? std::sqrt(jackknife) / R : kInf;
  // Pooled counts (meaningful when every replica used the same interfaces).
  std::int64_t n0 = 0, exposure = 0;
  for (const auto& rep : vr.replicas) {
    n0 += rep.flux_crossings;
    exposure += rep.flux_exposure;
  }
  double pooled = exposure > 0 ? static_cast<double>(n0) / static_cast<double>(exposure) : 0;
  // Every stage any replica ran: a replica stops at a stage no trial passed (or with no flux
  // crossing), and the others' later stages count all the same.
  std::size_t stages = 0;
  for (const auto& rep : vr.replicas) stages = std::max(stages, rep.stages.size());
  for (std::size_t s = 0; s < stages; ++s) {
    std::int64_t reached = 0, trials = 0;
    for (const auto& rep : vr.replicas) {
      if (s < rep.stages.size()) {
        reached += rep.stages[s].reached;
        trials += rep.stages[s].trials;
      }
    }
    pooled *= trials > 0 ? static_cast<double>(reached) / static_cast<double>(trials) : 0;
  }
  vr.rate_pooled = automatic_interfaces ? std::nan("") : pooled;
}

std::string ffs_checkpoint_checksum(const nlohmann::json& checkpoint) {
  // The top-level keys but "checksum", dumped one by one as one compact object would be (keys
  // sorted, ',' and ':' without spaces): no copy of the (possibly large) states.
  std::string text = "{";
  for (auto it = checkpoint.begin(); it != checkpoint.end(); ++it) {
    if (it.key() == "checksum") continue;
    if (text.size() > 1) text += ',';
    text += nlohmann::json(it.key()).dump();
    text += ':';
    text += it.value().dump();
  }
  text += '}';
  return fmt::format("{:016x}", fnv1a64(text.data(), text.size()));
}

nlohmann::json ffs_result_json(const RunPlan& plan, const FfsResult& result) {
  nlohmann::json variants = nlohmann::json::array();
  for (std::size_t v = 0; v < result.variants.size(); ++v) {
    const auto& vr = result.variants[v];
    nlohmann::json reps = nlohmann::json::array();
    std::int64_t cost = 0;
    for (const auto& rep : vr.replicas) {
      nlohmann::json j = replica_json(rep);
      j["flux_per_step"] = rep.flux();
      j["rate_per_step"] = rep.rate_per_step();
      j["relative_error_aftw"] = std::sqrt(rep.relative_variance());
      j["relative_error_jackknife"] = std::sqrt(rep.relative_variance_jackknife());
      j["walker_steps"] = rep.walker_steps();
      cost += rep.walker_steps();
      reps.push_back(j);
    }
    const double eta = vr.learning_rate;
    nlohmann::json swept = nlohmann::json::object();
    for (const auto& [name, value] : plan.variants[v].swept) {
      if (is_integer_sweep_parameter(name)) {
        swept[name] = static_cast<std::int64_t>(value);
      } else {
        swept[name] = value;
      }
    }
    variants.push_back({{"variant", v},
                        {"swept", swept},
                        {"temperature", plan.variants[v].temperature()},
                        {"rate_per_step", vr.rate_per_step},
                        {"rate_per_step_std_error", vr.rate_std_error},
                        {"rate_per_time", vr.rate_per_step / eta},
                        {"rate_per_time_std_error", vr.rate_std_error / eta},
                        {"rate_relative_error_aftw", vr.rate_relative_error_aftw},
                        {"rate_relative_error_jackknife", vr.rate_relative_error_jackknife},
                        {"rate_per_step_pooled", vr.rate_pooled},
                        {"walker_steps", cost},
                        {"warnings", vr.warnings},
                        {"replicas", reps}});
  }
  return nlohmann::json{{"method", "ffs"},
                        {"interface_states_stored", result.states_stored},
                        {"interface_states_not_stored_because", result.states_not_stored_because},
                        {"warnings", result.warnings},
                        {"optimizer", to_string(plan.optimizer)},
                        {"optimizer_state_width", plan.optimizer_state_width()},
                        {"order_parameter", plan.ffs.order_name},
                        {"lambda_A", plan.ffs.lambda_a},
                        {"time_unit", "t = learning_rate * steps"},
                        {"complete", result.complete},
                        {"wall_seconds", result.wall_seconds},
                        {"variants", variants}};
}

void write_ffs_hdf5(const RunPlan& plan, const FfsResult& result, Hdf5File& file) {
  // netCDF-4 layout (as the rest of results.h5): every axis a named dimension of its group.
  file.group("/rare_events");
  file.attribute("/rare_events", "method", "ffs");
  // The optimizer whose walker state (position, optimizer state, step) the trials carried.
  file.attribute("/rare_events", "optimizer", to_string(plan.optimizer));
  file.attribute("/rare_events", "order_parameter", plan.ffs.order_name);
  file.attribute("/rare_events", "lambda_A", plan.ffs.lambda_a);
  // Only interface states are kept, never paths: variantV/replicaR/interfaceI/ (when stored).
  file.attribute("/rare_events", "interface_states",
                 result.states_stored ? std::string("stored")
                                      : "not stored: " + result.states_not_stored_because);
  const std::size_t nv = result.variants.size();
  std::vector<std::int64_t> index;
  std::vector<double> rate, error, rate_time, aftw, jackknife;
  for (std::size_t v = 0; v < nv; ++v) {
    const auto& vr = result.variants[v];
    index.push_back(static_cast<std::int64_t>(v));
    rate.push_back(vr.rate_per_step);
    error.push_back(vr.rate_std_error);
    rate_time.push_back(vr.rate_per_step / vr.learning_rate);
    aftw.push_back(vr.rate_relative_error_aftw);
    jackknife.push_back(vr.rate_relative_error_jackknife);
  }
  file.coordinate("/rare_events/variant", index, "1", "variant index (sweep order)");
  const std::vector<std::string> by_variant{"variant"};
  file.dataset("/rare_events/rate_per_step", rate, by_variant, "1/step",
               "FFS rate Φ·ΠP, mean over replicas, per variant");
  file.dataset("/rare_events/rate_per_step_std_error", error, by_variant, "1/step",
               "standard error of the replica mean");
  file.dataset("/rare_events/rate_per_time", rate_time, by_variant, "1/time",
               "rate per unit time t = learning_rate·steps");
  file.dataset("/rare_events/rate_relative_error_aftw", aftw, by_variant, "1",
               "relative error from the Allen–Frenkel–ten Wolde variance");
  file.dataset("/rare_events/rate_relative_error_jackknife", jackknife, by_variant, "1",
               "relative error from the jackknife over ancestor groups (flux walkers)");
  for (std::size_t v = 0; v < nv; ++v) {
    for (std::size_t r = 0; r < result.variants[v].replicas.size(); ++r) {
      const FfsReplica& rep = result.variants[v].replicas[r];
      const std::string g = fmt::format("/rare_events/variant{}/replica{}", v, r);
      file.group(g);
      const std::size_t n = rep.stages.size();
      file.dimension(g, "flux_quantity", 5);
      file.dimension(g, "interface", rep.interfaces.size());
      file.dimension(g, "stage_quantity", 10);
      const std::vector<std::int64_t> flux{rep.flux_crossings, rep.flux_exposure, rep.flux_jumps,
                                           rep.flux_nonfinite, rep.flux_walker_steps};
      file.dataset(g + "/flux_counts", flux, {"flux_quantity"}, "count",
                   "flux stage: crossings of λ_0, exposure steps, jump-overs, non-finite walkers, "
                   "walker-steps");
      file.dataset(g + "/interfaces", rep.interfaces, {"interface"}, "λ",
                   "interfaces λ_0..λ_n as used");
      if (result.states_stored) write_interface_states(plan, rep, g, file);
      if (n == 0) continue;  // no crossing of λ_0: no stage ran
      file.dimension(g, "stage", n);
      std::vector<std::int64_t> counts;
      for (const auto& s : rep.stages) {
        for (const std::int64_t x :
             {s.trials, s.reached, s.fell_back, s.nonfinite, s.timed_out, s.jumps, s.walker_steps,
              s.pilot_trials, s.pilot_walker_steps, s.distinct_ancestors}) {
          counts.push_back(x);
        }
      }
      file.dataset(g + "/stage_counts", counts, {"stage", "stage_quantity"}, "count",
                   "per stage (interface s−1 → s): trials, reached, fell_back, nonfinite, "
                   "timed_out, jumps, walker_steps, pilot_trials, pilot_walker_steps, "
                   "distinct_ancestors");
      std::vector<double> p;
      for (const auto& s : rep.stages) p.push_back(s.probability());
      file.dataset(g + "/stage_probability", p, {"stage"}, "1", "P(λ_s | λ_{s−1})");
    }
  }
}

}  // namespace sgdwalk
