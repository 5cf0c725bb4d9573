// memory_limit / memory_exhausted: OOM kills explain the failures of the units they hit. A
// unit that hit its own limit is memory_limit (culprit: that unit). A global OOM is
// memory_exhausted: the culprit is the largest consumer, which may not be the victim.
#include "../rule.h"

namespace mend {

namespace {

class MemoryRule final : public RootCauseRule {
 public:
  static std::unique_ptr<RootCauseRule> create() { return std::make_unique<MemoryRule>(); }
  const char* name() const override { return "memory"; }
  int precedence() const override { return 20; }

  std::vector<std::string> kinds() const override { return {"memory_limit", "memory_exhausted"}; }

  std::optional<Candidate> evaluate(const Incident& inc) const override {
    auto kills = evidence_of<OomKill>(inc);
    if (kills.empty())
      return std::nullopt;
    Candidate c;
    c.precedence = precedence();
    c.cause.rule = name();
    uint64_t memcg = 0, global = 0;
    const OomKill* last = nullptr;
    for (auto [i, k] : kills) {
      (k->constraint == "memcg" ? memcg : global) += inc.evidence[i].count;
      last = k;
    }
    if (memcg >= global) {
      c.cause.kind = "memory_limit";
      c.cause.culprit_unit = last->unit;
      c.cause.entities["cgroup"] = last->cgroup;
      if (!last->unit.empty())
        c.cause.entities["unit"] = last->unit;
      if (last->memcg_limit_bytes)
        c.cause.entities["limit_bytes"] = std::to_string(last->memcg_limit_bytes);
      c.why.push_back(std::to_string(memcg) + " OOM kill(s) in " + last->cgroup +
                      " at its memory limit");
      c.cause.confidence = 0.95;
      c.cause.summary =
          "memory limit hit" + (last->unit.empty() ? " in " + last->cgroup : " by " + last->unit);
    } else {
      c.cause.kind = "memory_exhausted";
      // The largest consumer the evidence knows of (unit_state memory_current), else the
      // victim, which the kernel picked as the largest by badness.
      uint64_t best = 0;
      for (auto [i, s] : evidence_of<UnitState>(inc))
        if (s->memory_current > best) {
          best = s->memory_current;
          c.cause.culprit_unit = s->unit;
        }
      for (auto [i, k] : kills)
        if (k->rss_bytes > best) {
          best = k->rss_bytes;
          c.cause.culprit_unit = k->unit;
        }
      c.why.push_back(std::to_string(global) + " global OOM kill(s): the host ran out of memory");
      if (!c.cause.culprit_unit.empty())
        c.why.push_back("largest consumer: " + c.cause.culprit_unit + " (" + std::to_string(best) +
                        " bytes)");
      c.cause.confidence = 0.8;
      c.cause.summary =
          "host memory exhausted" +
          (c.cause.culprit_unit.empty() ? "" : ", largest consumer " + c.cause.culprit_unit);
    }
    for (auto [i, k] : kills)
      for (auto [j, s] : evidence_of<UnitState>(inc))
        if (s->unit == k->unit && !k->unit.empty() && is_unit_failure(*s))
          c.links.push_back({i, j, "kills"});
    return c;
  }
};

}  // namespace

MEND_REGISTER_RULE(memory, MemoryRule::create);

}  // namespace mend
