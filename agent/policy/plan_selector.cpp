#include "plan_selector.h"

#include <fnmatch.h>

#include "../systemd/unit_resolver.h"

namespace mend {

namespace {

bool glob_any(const std::vector<std::string>& globs, const std::string& value) {
  for (const auto& g : globs)
    if (fnmatch(g.c_str(), value.c_str(), 0) == 0)
      return true;
  return false;
}

std::string entity(const Incident& inc, const char* key) {
  auto it = inc.root_cause.entities.find(key);
  return it == inc.root_cause.entities.end() ? "" : it->second;
}

bool named_literally(const std::vector<std::string>& units, const std::string& u) {
  for (const auto& g : units)
    if (g == u)
      return true;
  return false;
}

}  // namespace

PlanChoice select_plan(const Incident& inc, const std::vector<CompiledPolicy>& policies,
                       const std::string& slo_impact, const std::set<std::string>& exclude) {
  PlanChoice c;
  const auto& rc = inc.root_cause;
  if (rc.kind.empty() || rc.kind == "unknown") {
    c.reason = "root cause unknown: no action";
    return c;
  }
  std::string why_not;
  for (const auto& p : policies) {
    const auto& m = p.ir.match;
    if (m.root_cause != rc.kind || exclude.count(p.ir.name))
      continue;
    if (rc.confidence < m.min_confidence) {
      why_not = "policy " + p.ir.name + ": confidence " + std::to_string(rc.confidence) +
                " is under its min_confidence " + std::to_string(m.min_confidence);
      continue;
    }
    // `units:` selects on the unit the actions will act on, never on a bystander.
    if (!m.units.empty() && (rc.culprit_unit.empty() || !glob_any(m.units, rc.culprit_unit))) {
      why_not = "policy " + p.ir.name + ": the culprit unit " +
                (rc.culprit_unit.empty() ? "(none)" : rc.culprit_unit) + " is not in its units";
      continue;
    }
    if (!rc.culprit_unit.empty() && holds_other_units(rc.culprit_unit) &&
        !named_literally(m.units, rc.culprit_unit)) {
      why_not = "policy " + p.ir.name + ": " + rc.culprit_unit +
                " holds other units or a session; a policy must name it literally in units";
      continue;
    }
    if (!m.mounts.empty() && !glob_any(m.mounts, entity(inc, "mount"))) {
      why_not = "policy " + p.ir.name + ": mount " + entity(inc, "mount") + " not in its mounts";
      continue;
    }
    if (!m.devices.empty() && !glob_any(m.devices, entity(inc, "device"))) {
      why_not = "policy " + p.ir.name + ": device " + entity(inc, "device") + " not in its devices";
      continue;
    }
    c.policy = &p;
    c.target_unit = rc.culprit_unit;
    if (p.ir.mode.fixed) {
      c.mode = *p.ir.mode.fixed;
    } else {
      // An SLO impact the policy does not list: the safest mode.
      auto it = p.ir.mode.by_slo_impact.find(slo_impact);
      c.mode = it == p.ir.mode.by_slo_impact.end() ? Mode::Observe : it->second;
    }
    c.reason = "policy " + p.ir.name + " matches " + rc.kind +
               (c.target_unit.empty() ? "" : " on " + c.target_unit);
    return c;
  }
  c.reason = why_not.empty() ? "no policy for root cause " + rc.kind : why_not;
  return c;
}

}  // namespace mend
