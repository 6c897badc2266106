// Warnings about a finished run's results that a user would otherwise miss: walkers that
// diverged (non-finite), histograms and first-passage targets that caught nothing. The CLI prints
// them after the summary table; they change no result.
#pragma once

#include <string>
#include <vector>

#include "analysis/statistics.hpp"
#include "backend/plan.hpp"

namespace sgdwalk {

/// One line per problem, without a trailing newline; empty when there is nothing to say.
/// Only complete variants are judged (a partial run's unfinished ones are blank).
std::vector<std::string> run_warnings(const RunPlan& plan,
                                      const std::vector<VariantSummary>& summaries,
                                      std::int64_t variants_done);

}  // namespace sgdwalk
