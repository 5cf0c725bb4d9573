// Matching an incident to a policy: the first policy (in load order) whose match block fits
// the incident's root cause, entities and confidence. No match is an answer too: mend does not
// act on a root cause it cannot name or is not sure of.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mend/incident.h"
#include "policy_loader.h"

namespace mend {

struct PlanChoice {
  const CompiledPolicy* policy = nullptr;  // null: no plan
  Mode mode = Mode::Observe;
  std::string target_unit;  // the unit the actions act on (the culprit)
  std::string reason;       // why this policy, or why none
};

// `slo_impact`: "high", "medium", "low" or "none" (policies may pick their mode by it).
// `exclude`: policy names not to choose (already tried for this incident).
PlanChoice select_plan(const Incident& inc, const std::vector<CompiledPolicy>& policies,
                       const std::string& slo_impact = "none",
                       const std::set<std::string>& exclude = {});

}  // namespace mend
