// Warnings about a finished run's results that a user would otherwise miss: walkers that
// diverged (non-finite), histograms and first-passage targets that caught nothing. The CLI prints
// them after the summary table; they change no result. And, before a run, the hint that a
// learning rate is beyond its optimizer's stability bound where the walkers start.
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

/// Before a run: a hint when the largest learning rate of a variant's schedule exceeds its
/// optimizer's stability bound on the curvature at a start position (the largest eigenvalue k of
/// the Hessian there; sgd 2/k, heavy ball 2(1 + μ)/k, Nesterov 2(1 + μ)/((1 + 2μ)k); none for
/// Adam and RMSprop): walkers are then driven out of that valley by the instability, and grow
/// without bound unless they reach a valley flat enough for the step. One line for the run, or
/// none; `source` names the config.
std::vector<std::string> stability_hints(const RunPlan& plan, const std::string& source);

}  // namespace sgdwalk
