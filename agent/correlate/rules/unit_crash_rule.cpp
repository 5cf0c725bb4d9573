// unit_crash: a unit failing (crash, restart loop, start limit) with no other signal. When a
// failing unit Requires=/BindsTo= another unit that failed first, the dependency is the cause
// and the dependent a symptom: the culprit is the upstream-most failing unit.
#include <map>
#include <set>

#include "../rule.h"

namespace mend {

namespace {

class UnitCrashRule final : public RootCauseRule {
 public:
  static std::unique_ptr<RootCauseRule> create() { return std::make_unique<UnitCrashRule>(); }
  const char* name() const override { return "unit_crash"; }
  int precedence() const override { return 50; }

  std::vector<std::string> kinds() const override { return {"unit_crash"}; }

  std::optional<Candidate> evaluate(const Incident& inc) const override {
    std::map<std::string, std::pair<uint64_t, size_t>> first_failure;  // unit -> (ts, evidence)
    std::map<std::string, std::vector<std::string>> deps;
    std::set<std::string> patterns;
    for (auto [i, s] : evidence_of<UnitState>(inc)) {
      auto& d = deps[s->unit];
      d.insert(d.end(), s->requires_.begin(), s->requires_.end());
      d.insert(d.end(), s->binds_to.begin(), s->binds_to.end());
      if (!is_unit_failure(*s))
        continue;
      if (!s->pattern.empty())
        patterns.insert(s->pattern);
      const uint64_t t = inc.evidence[i].first_ns;
      auto it = first_failure.find(s->unit);
      if (it == first_failure.end() || t < it->second.first)
        first_failure[s->unit] = {t, i};
    }
    if (first_failure.empty())
      return std::nullopt;

    Candidate c;
    c.precedence = precedence();
    c.cause.rule = name();
    c.cause.kind = "unit_crash";
    // Walk each failing unit up its failed dependencies; the culprit is where the walk ends
    // for the earliest failure.
    std::string culprit;
    uint64_t culprit_t = UINT64_MAX;
    for (const auto& [unit, tf] : first_failure) {
      std::string cur = unit;
      std::set<std::string> seen{cur};
      bool moved = true;
      while (moved) {
        moved = false;
        for (const auto& dep : deps[cur]) {
          auto it = first_failure.find(dep);
          if (it != first_failure.end() && !seen.count(dep) &&
              it->second.first <= first_failure[cur].first) {
            c.links.push_back({it->second.second, first_failure[cur].second, "requires"});
            c.why.push_back(cur + " depends on " + dep + ", which failed first");
            cur = dep;
            seen.insert(dep);
            moved = true;
            break;
          }
        }
      }
      const uint64_t t = first_failure[cur].first;
      if (t < culprit_t || (t == culprit_t && cur < culprit)) {
        culprit = cur;
        culprit_t = t;
      }
    }
    c.cause.culprit_unit = culprit;
    c.cause.entities["unit"] = culprit;
    const bool looping = patterns.count("restart_loop") || patterns.count("start_limit_hit");
    c.why.push_back(culprit + " failed" +
                    (looping ? " repeatedly (" +
                                   std::string(patterns.count("start_limit_hit") ? "start limit hit"
                                                                                 : "restart loop") +
                                   ")"
                             : "") +
                    " with no resource signal (disk, memory, I/O) to explain it");
    c.cause.confidence = looping ? 0.7 : 0.5;
    c.cause.summary = "unit crash: " + culprit + (looping ? " (restart loop)" : "");
    return c;
  }
};

}  // namespace

MEND_REGISTER_RULE(unit_crash, UnitCrashRule::create);

}  // namespace mend
