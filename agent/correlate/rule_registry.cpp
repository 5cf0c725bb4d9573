#include <algorithm>

#include "rule.h"

namespace mend {

RuleRegistry& RuleRegistry::instance() {
  static RuleRegistry r;
  return r;
}

bool RuleRegistry::add(const std::string& name, std::function<std::unique_ptr<RootCauseRule>()> f) {
  return factories_.emplace(name, std::move(f)).second;
}

std::vector<std::unique_ptr<RootCauseRule>> RuleRegistry::create_all() const {
  std::vector<std::unique_ptr<RootCauseRule>> out;
  for (const auto& [n, f] : factories_)
    out.push_back(f());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a->precedence() < b->precedence(); });
  return out;
}

std::vector<std::string> RuleRegistry::kinds() const {
  std::vector<std::string> out;
  for (const auto& r : create_all())
    for (auto& k : r->kinds())
      out.push_back(k);
  return out;
}

bool is_unit_failure(const UnitState& s) {
  return s.active_state == "failed" || s.sub_state == "auto-restart" ||
         s.pattern == "restart_loop" || s.pattern == "start_limit_hit" ||
         s.pattern == "oom_killed" || s.pattern == "stuck_activating" ||
         s.pattern == "stuck_deactivating";
}

}  // namespace mend
