// Root-cause rules. Each looks at an incident's evidence and, when it applies, says what it
// would name as the root cause, how sure it is and why. The correlator runs them all and picks
// the one with the lowest precedence (causes before symptoms: a full disk explains a crashing
// unit, never the other way round); the others stay in the explanation as alternatives.
//
// Adding a rule: one .cpp in agent/correlate/rules ending with
//   MEND_REGISTER_RULE(name, MyRule::create);
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mend/incident.h"

namespace mend {

class RootCauseRule {
 public:
  virtual ~RootCauseRule() = default;
  virtual const char* name() const = 0;
  // Lower runs first and wins ties between matching rules.
  virtual int precedence() const = 0;
  virtual std::optional<Candidate> evaluate(const Incident& inc) const = 0;
  // The root-cause kinds this rule can name (policies match on them).
  virtual std::vector<std::string> kinds() const = 0;
};

class RuleRegistry {
 public:
  static RuleRegistry& instance();
  bool add(const std::string& name, std::function<std::unique_ptr<RootCauseRule>()> f);
  // Every registered rule, ordered by precedence.
  std::vector<std::unique_ptr<RootCauseRule>> create_all() const;
  // Every root-cause kind some rule can name.
  std::vector<std::string> kinds() const;

 private:
  std::map<std::string, std::function<std::unique_ptr<RootCauseRule>()>> factories_;
};

#define MEND_REGISTER_RULE(name, factory)         \
  static const bool mend_rule_registered_##name = \
      ::mend::RuleRegistry::instance().add(#name, factory)

// Helpers for rules: typed views of the evidence.
template <class T>
std::vector<std::pair<size_t, const T*>> evidence_of(const Incident& inc) {
  std::vector<std::pair<size_t, const T*>> out;
  for (size_t i = 0; i < inc.evidence.size(); ++i)
    if (const T* p = std::get_if<T>(&inc.evidence[i].event.payload))
      out.emplace_back(i, p);
  return out;
}

// A unit_state that is a failure: failed, auto-restart, or one of the failure patterns.
bool is_unit_failure(const UnitState& s);

}  // namespace mend
