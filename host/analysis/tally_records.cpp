#include "analysis/tally_records.hpp"

#include <algorithm>
#include <stdexcept>

namespace sgdwalk {
namespace {

using tally::Run;
using tally::Uint128;

/// Σx and Σx² of a run of float records into `moments`, its bucket count into `sketch`.
void add_float_run(const Run& run, std::uint32_t bucket, Moments<NarrowSum>& moments,
                   std::vector<QuantileSketch::Entry>& sketch) {
  sketch.push_back({bucket, run.count});
  const bool negative = ((bucket >> 19) & 1u) == 0;
  const std::uint32_t high = negative ? (~bucket & 0x7ffffu) : (bucket & 0x7ffffu);
  const std::uint32_t field = high >> tally::kFloatBucketFractionBits;
  const std::uint32_t top = high & ((1u << tally::kFloatBucketFractionBits) - 1);
  if (field == 0xff) {  // ±inf (NaN never becomes a record)
    (negative ? moments.negative_infinite : moments.positive_infinite) +=
        static_cast<std::int64_t>(run.count);
    return;
  }
  moments.count += static_cast<std::int64_t>(run.count);
  // Every value of the run is m·2^e with m = T·2^12 + low.
  const Uint128 T = (field != 0 ? (1u << tally::kFloatBucketFractionBits) : 0u) | top;
  const int exponent = field != 0 ? static_cast<int>(field) - 150 : -149;
  const Uint128 c = run.count;
  constexpr int L = tally::kFloatLowBits;
  moments.sum.add((c * T << L) + run.sum_low, exponent, negative);
  // Σm² = c·T²·2^24 + T·2^13·Σlow + Σlow² (< 2^89 for fewer than 2^40 records).
  moments.sum_squares.add(
      (c * T * T << (2 * L)) + (T * run.sum_low << (L + 1)) + run.sum_low_squares, 2 * exponent,
      false);
}

void add_double_run(const Run& run, Moments<WideSum>& moments) {
  const auto bucket = tally::key_bucket(run.key);
  const bool negative = (bucket >> 19) != 0;
  const std::uint32_t field = (bucket >> 8) & 0x7ffu;
  const std::uint32_t top = bucket & 0xffu;
  if (field == 0x7ff && top == 0 && run.sum_low == 0) {  // ±inf
    (negative ? moments.negative_infinite : moments.positive_infinite) +=
        static_cast<std::int64_t>(run.count);
    return;
  }
  moments.count += static_cast<std::int64_t>(run.count);
  const Uint128 T = (field != 0 ? 0x100u : 0u) | top;
  const int exponent = field != 0 ? static_cast<int>(field) - 1075 : -1074;
  const Uint128 c = run.count;
  constexpr int L = tally::kDoubleLowBits;
  moments.sum.add((c * T << L) + run.sum_low, exponent, negative);
  // Σm² = c·T²·2^88 + T·2^45·Σlow + Σlow², added part by part (each part fits 128 bits).
  moments.sum_squares.add(c * T * T, 2 * exponent + 2 * L, false);
  moments.sum_squares.add(T * run.sum_low, 2 * exponent + L + 1, false);
  moments.sum_squares.add(run.sum_low_squares, 2 * exponent, false);
}

/// Σx and Σx² of a run of integer records; `histogram` (if any) gets the run's log2 bin.
void add_integer_run(const Run& run, Moments<NarrowSum>* moments, NarrowSum* sum,
                     Log2Histogram* histogram) {
  const auto bucket = tally::key_bucket(run.key);
  const bool negative = (bucket & 128u) != 0;
  const int width = static_cast<int>(bucket & 127u);
  if (histogram != nullptr)
    (*histogram)[negative ? 0 : width] += static_cast<std::int64_t>(run.count);
  if (moments != nullptr) moments->count += static_cast<std::int64_t>(run.count);
  if (width == 0) return;  // zeros
  // Every value is ±(2^(w−1) + low).
  const auto add_sum = [&](NarrowSum& target) {
    target.add(run.count, width - 1, negative);
    target.add(run.sum_low, 0, negative);
  };
  if (sum != nullptr) add_sum(*sum);
  if (moments != nullptr) {
    add_sum(moments->sum);
    moments->sum_squares.add(run.count, 2 * width - 2, false);
    moments->sum_squares.add(run.sum_low, width, false);
    moments->sum_squares.add(run.sum_low_squares, 0, false);
  }
}

}  // namespace

void add_tracker_runs(const Run* runs, std::size_t count, std::int64_t first, std::int64_t last,
                      std::int64_t walkers_per_variant,
                      const std::vector<std::int64_t>& first_nonfinite_step, RunTallies& tallies) {
  if (first >= last) return;
  const std::int64_t W = walkers_per_variant;
  const std::int64_t v_begin = first / W;
  const std::int64_t v_count = (last - 1) / W + 1 - v_begin;
  std::vector<VariantTally> local(static_cast<std::size_t>(v_count));
  std::vector<std::vector<QuantileSketch::Entry>> sketches(local.size());
  for (std::int64_t i = 0; i < v_count; ++i) {
    const std::int64_t v = v_begin + i;
    VariantTally& t = local[static_cast<std::size_t>(i)];
    t.walkers = std::min(last, (v + 1) * W) - std::max(first, v * W);
    t.first_nonfinite_step = first_nonfinite_step.at(static_cast<std::size_t>(i));
  }
  for (std::size_t r = 0; r < count; ++r) {
    const Run& run = runs[r];
    if (run.key == tally::kNoRecord) continue;
    const std::uint64_t segment = tally::key_segment(run.key);
    const auto variant = static_cast<std::size_t>(segment / tally::kTrackerKinds);
    const auto kind = static_cast<int>(segment % tally::kTrackerKinds);
    if (variant >= local.size()) throw std::logic_error("tally record of a variant out of range");
    VariantTally& t = local[variant];
    const auto n = static_cast<std::int64_t>(run.count);
    switch (kind) {
      case tally::kFreezingTime:
        add_integer_run(run, &t.freezing_time, nullptr, &t.freezing_time_histogram);
        break;
      case tally::kYFreeze:
        add_double_run(run, t.y_freeze);
        break;
      case tally::kYFreezeSketch:
        sketches[variant].push_back({tally::key_bucket(run.key), run.count});
        break;
      case tally::kCrossings:
        add_integer_run(run, &t.crossings, nullptr, &t.crossings_histogram);
        break;
      case tally::kFlat:
        t.flat += n;
        break;
      case tally::kNonfinite:
        t.nonfinite += n;
        break;
      case tally::kStarted:
        t.started_in_target += n;
        break;
      case tally::kArrival:
        t.arrived += n;
        add_integer_run(run, &t.passage_steps, &t.exposure_steps, &t.passage_histogram);
        break;
      case tally::kCensoredExposure:
        t.censored += n;
        add_integer_run(run, nullptr, &t.exposure_steps, nullptr);
        break;
      default:
        throw std::logic_error("unknown tally record kind");
    }
  }
  for (std::size_t i = 0; i < local.size(); ++i) {
    VariantTally& t = local[i];
    t.finite = t.walkers - t.nonfinite;
    // Entries sorted and one per bucket (a bucket may come from several slices of records).
    auto& entries = sketches[i];
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.bucket < b.bucket; });
    std::vector<QuantileSketch::Entry> unique;
    for (const auto& entry : entries) {
      if (!unique.empty() && unique.back().bucket == entry.bucket) {
        unique.back().count += entry.count;
      } else {
        unique.push_back(entry);
      }
    }
    t.y_freeze_sketch.merge_sorted(unique);
    tallies.variants[static_cast<std::size_t>(v_begin) + i].merge(t);
  }
}

void add_sample_runs(const Run* runs, std::size_t count, std::int64_t variant_begin,
                     std::int64_t sample, std::int64_t samples, RunTallies& tallies) {
  std::size_t r = 0;
  while (r < count) {
    if (runs[r].key == tally::kNoRecord) {
      ++r;
      continue;
    }
    // The runs of one segment (variant, quantity) within one slice are adjacent and sorted by
    // bucket. Slices are concatenated, so a group also ends where the keys stop increasing: the
    // last segment of one slice can be the first of the next (a variant whose walkers in the
    // first slice all had a NaN loss ends that slice with its progress runs), and merge_sorted
    // needs each group sorted.
    const std::uint64_t segment = tally::key_segment(runs[r].key);
    const bool loss = segment % tally::kSampleKinds == 1;
    const auto variant = variant_begin + static_cast<std::int64_t>(segment / tally::kSampleKinds);
    if (variant >= static_cast<std::int64_t>(tallies.samples.size()) / samples) {
      throw std::logic_error("tally record of a variant out of range");
    }
    Moments<NarrowSum> moments;
    std::vector<QuantileSketch::Entry> sketch;
    const std::size_t group_begin = r;
    for (; r < count && runs[r].key != tally::kNoRecord &&
           tally::key_segment(runs[r].key) == segment &&
           (r == group_begin || runs[r].key > runs[r - 1].key);
         ++r) {
      add_float_run(runs[r], tally::key_bucket(runs[r].key), moments, sketch);
    }
    SampleTally& tally = tallies.samples[static_cast<std::size_t>(variant * samples + sample)];
    (loss ? tally.loss : tally.progress).merge(moments);
    (loss ? tally.loss_sketch : tally.progress_sketch).merge_sorted(sketch);
  }
}

std::vector<tally::Run> reduce_records(std::vector<tally::Record> records) {
  std::sort(records.begin(), records.end(),
            [](const tally::Record& a, const tally::Record& b) { return a.key < b.key; });
  std::vector<Run> runs;
  for (const tally::Record& record : records) {
    if (record.key == tally::kNoRecord) break;
    if (runs.empty() || runs.back().key != record.key) runs.push_back({record.key, 0, 0, 0});
    Run& run = runs.back();
    ++run.count;
    run.sum_low += record.low;
    run.sum_low_squares += static_cast<Uint128>(record.low) * record.low;
  }
  return runs;
}

}  // namespace sgdwalk
