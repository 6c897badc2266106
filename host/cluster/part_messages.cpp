#include "cluster/part_messages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace sgdwalk {

namespace {

constexpr std::size_t kTallyCounts = 7 + 3 * kLog2Bins;  // per variant, see take_counts

/// The variants part `range` holds walkers of: [first, end).
std::pair<std::int64_t, std::int64_t> held_variants(const RunPlan& plan, std::int64_t begin,
                                                    std::int64_t end) {
  if (end <= begin) return {0, 0};
  return {begin / plan.walkers_per_variant, (end - 1) / plan.walkers_per_variant + 1};
}

/// Visits every integer count of `data` with its index in JobCounts::sums.
template <class Data, class Visit>
void for_each_count(const RunPlan& plan, Data& data, Visit&& visit) {
  std::size_t i = 0;
  for (auto& t : data.tallies.variants) {
    for (auto* count : {&t.walkers, &t.finite, &t.nonfinite, &t.flat, &t.started_in_target,
                        &t.arrived, &t.censored}) {
      visit(i++, *count);
    }
    for (auto* histogram :
         {&t.freezing_time_histogram, &t.crossings_histogram, &t.passage_histogram}) {
      for (auto& count : *histogram) visit(i++, count);
    }
  }
  auto& o = data.observables;
  for (auto* counts : {&o.sample_flat, &o.sample_finite}) {
    for (auto& count : *counts) visit(i++, count);
  }
  for (auto& counts : o.histogram_counts) {
    for (auto& count : counts) visit(i++, count);
  }
  (void)plan;
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  template <class T>
  void value(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  template <class Sum>
  void sum(const Sum& s) {
    Sum normalized = s;
    normalized.normalize();
    for (const auto limb : normalized.limbs()) value(limb);
  }
  template <class Sum>
  void moments(const Moments<Sum>& m) {
    value(m.count);
    value(m.positive_infinite);
    value(m.negative_infinite);
    sum(m.sum);
    sum(m.sum_squares);
  }
  void sketch(const QuantileSketch& s) {
    value(static_cast<std::uint64_t>(s.entries().size()));
    for (const auto& e : s.entries()) {
      value(e.bucket);
      value(e.count);
    }
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  Reader(std::string_view bytes, int from) : bytes_(bytes), from_(from) {}
  bool done() const { return at_ == bytes_.size(); }
  template <class T>
  T value() {
    T v;
    need(sizeof v);
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  template <class Sum>
  void sum(Sum& s) {
    for (auto& limb : s.limbs()) limb = value<std::int64_t>();
  }
  template <class Sum>
  void moments(Moments<Sum>& m) {
    m.count = value<std::int64_t>();
    m.positive_infinite = value<std::int64_t>();
    m.negative_infinite = value<std::int64_t>();
    sum(m.sum);
    sum(m.sum_squares);
  }
  void sketch(QuantileSketch& s) {
    const auto n = value<std::uint64_t>();
    need(n * (sizeof(std::uint32_t) + sizeof(std::uint64_t)));
    std::vector<QuantileSketch::Entry> entries(static_cast<std::size_t>(n));
    for (auto& e : entries) {
      e.bucket = value<std::uint32_t>();
      e.count = value<std::uint64_t>();
    }
    s.entries() = std::move(entries);
  }
  /// The next `n` bytes.
  std::string_view bytes(std::uint64_t n) {
    need(n);
    const std::string_view out = bytes_.substr(at_, static_cast<std::size_t>(n));
    at_ += static_cast<std::size_t>(n);
    return out;
  }
  /// Every byte not read yet.
  std::string_view rest() { return bytes(bytes_.size() - at_); }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(
        fmt::format("the results rank {} sent are corrupt: {} (at byte {} of {})", from_, what, at_,
                    bytes_.size()));
  }

 private:
  void need(std::uint64_t n) const {
    if (n > bytes_.size() - at_) fail("they end early");
  }
  std::string_view bytes_;
  std::size_t at_ = 0;
  int from_;
};

}  // namespace

JobCounts::JobCounts(const RunPlan& plan)
    : minima(static_cast<std::size_t>(plan.variant_count()),
             std::numeric_limits<std::uint64_t>::max()) {
  std::size_t n = static_cast<std::size_t>(plan.variant_count()) * kTallyCounts +
                  2 * static_cast<std::size_t>(plan.variant_count() * plan.sample_count());
  for (const auto& h : plan.histograms) {
    n += static_cast<std::size_t>(plan.variant_count() * (h.bin_count() + 1));
  }
  sums.assign(n, 0);
}

void take_counts(const RunPlan& plan, RunData& data, JobCounts& counts) {
  for_each_count(plan, data, [&](std::size_t i, auto& count) {
    counts.sums.at(i) += static_cast<std::uint64_t>(count);
    count = 0;
  });
  for (std::size_t v = 0; v < data.tallies.variants.size(); ++v) {
    auto& step = data.tallies.variants[v].first_nonfinite_step;
    counts.minima.at(v) = std::min(counts.minima.at(v), static_cast<std::uint64_t>(step));
    step = -1;
  }
}

void put_counts(const RunPlan& plan, const JobCounts& counts, RunData& data) {
  for_each_count(plan, data, [&](std::size_t i, auto& count) {
    count = static_cast<std::remove_reference_t<decltype(count)>>(counts.sums.at(i));
  });
  for (std::size_t v = 0; v < data.tallies.variants.size(); ++v) {
    data.tallies.variants[v].first_nonfinite_step = static_cast<std::int64_t>(counts.minima.at(v));
  }
}

void encode_part(const RunPlan& plan, const PartContribution& part, std::string& out) {
  const std::size_t length_at = out.size();
  Writer w(out);
  w.value(std::uint64_t{0});  // the record's length after this field, set below
  const RunProgress& p = part.progress;
  for (const std::int64_t v :
       {part.part.index, part.part.count, p.walker_begin, p.walker_end, p.step, part.sessions}) {
    w.value(v);
  }
  w.value(p.simulate_seconds);
  w.value(part.wall_seconds);
  w.value(static_cast<std::uint64_t>(part.backend.size()));
  out += part.backend;
  const auto [first, end] = held_variants(plan, p.part_begin, p.end_of_part());
  const auto samples = plan.sample_count();
  for (std::int64_t v = first; v < end; ++v) {
    const VariantTally& t = part.data.tallies.variants[static_cast<std::size_t>(v)];
    w.moments(t.freezing_time);
    w.moments(t.y_freeze);
    w.moments(t.crossings);
    w.moments(t.passage_steps);
    w.sum(t.exposure_steps);
    w.sketch(t.y_freeze_sketch);
    for (std::int64_t k = 0; k < samples; ++k) {
      const SampleTally& s = part.data.tallies.samples[static_cast<std::size_t>(v * samples + k)];
      w.moments(s.progress);
      w.moments(s.loss);
      w.sketch(s.progress_sketch);
      w.sketch(s.loss_sketch);
    }
  }
  const std::uint64_t length = out.size() - length_at - sizeof(std::uint64_t);
  std::memcpy(out.data() + length_at, &length, sizeof length);
}

std::vector<PartRecord> index_parts(const RunPlan& plan, std::string_view bytes, int from) {
  Reader message(bytes, from);
  std::vector<PartRecord> records;
  while (!message.done()) {
    PartRecord record;
    record.from = from;
    const std::string_view body = message.bytes(message.value<std::uint64_t>());
    Reader r(body, from);
    PartContribution& c = record.header;
    c.part.index = r.value<std::int64_t>();
    c.part.count = r.value<std::int64_t>();
    if (c.part.count < 1 || c.part.index < 0 || c.part.index >= c.part.count) {
      r.fail(fmt::format("part {}/{}", c.part.index, c.part.count));
    }
    const WalkerRange range = part_walkers(plan, c.part);
    c.progress = RunProgress::start_of_part(range.begin, range.end);
    c.progress.walker_begin = r.value<std::int64_t>();
    c.progress.walker_end = r.value<std::int64_t>();
    c.progress.step = r.value<std::int64_t>();
    c.sessions = r.value<std::int64_t>();
    c.progress.simulate_seconds = r.value<double>();
    c.wall_seconds = r.value<double>();
    c.backend = std::string(r.bytes(r.value<std::uint64_t>()));
    const RunProgress& p = c.progress;
    if (p.walker_begin < range.begin || p.walker_begin > range.end ||
        p.walker_end < p.walker_begin || p.walker_end > range.end || p.step < 0 ||
        p.step > plan.steps) {
      r.fail(fmt::format("part {} at walkers [{}, {}), step {}", to_string(c.part), p.walker_begin,
                         p.walker_end, p.step));
    }
    record.partials = r.rest();
    records.push_back(std::move(record));
  }
  return records;
}

PartContribution decode_part(const RunPlan& plan, const PartRecord& record) {
  PartContribution c = record.header;
  Reader r(record.partials, record.from);
  const auto samples = plan.sample_count();
  c.data.resize(plan, 0);
  const auto [first, end] = held_variants(plan, c.progress.part_begin, c.progress.end_of_part());
  for (std::int64_t v = first; v < end; ++v) {
    VariantTally& t = c.data.tallies.variants[static_cast<std::size_t>(v)];
    r.moments(t.freezing_time);
    r.moments(t.y_freeze);
    r.moments(t.crossings);
    r.moments(t.passage_steps);
    r.sum(t.exposure_steps);
    r.sketch(t.y_freeze_sketch);
    for (std::int64_t k = 0; k < samples; ++k) {
      SampleTally& s = c.data.tallies.samples[static_cast<std::size_t>(v * samples + k)];
      r.moments(s.progress);
      r.moments(s.loss);
      r.sketch(s.progress_sketch);
      r.sketch(s.loss_sketch);
    }
  }
  if (!r.done()) r.fail(fmt::format("part {} has bytes left over", to_string(c.part)));
  return c;
}

}  // namespace sgdwalk
