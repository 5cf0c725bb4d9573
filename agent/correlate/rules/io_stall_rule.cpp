// io_stall: a stalled block device explains the units with I/O on it being slow, failing or
// watchdog-killed. The culprit is the noisy neighbour when one unit dominates the slow I/O.
#include "../rule.h"

namespace mend {

namespace {

constexpr double kDominates = 0.6;

class IoStallRule final : public RootCauseRule {
 public:
  static std::unique_ptr<RootCauseRule> create() { return std::make_unique<IoStallRule>(); }
  const char* name() const override { return "io_stall"; }
  int precedence() const override { return 30; }

  std::vector<std::string> kinds() const override { return {"io_stall"}; }

  std::optional<Candidate> evaluate(const Incident& inc) const override {
    const IoStall* worst = nullptr;
    size_t idx = 0;
    for (auto [i, s] : evidence_of<IoStall>(inc))
      if (s->state == "firing" && (!worst || s->p99_us >= worst->p99_us)) {
        worst = s;
        idx = i;
      }
    if (!worst)
      return std::nullopt;
    Candidate c;
    c.precedence = precedence();
    c.cause.rule = name();
    c.cause.kind = "io_stall";
    c.cause.entities["device"] = worst->device;
    if (!worst->name.empty())
      c.cause.entities["name"] = worst->name;
    if (!worst->mount.empty())
      c.cause.entities["mount"] = worst->mount;
    c.why.push_back(worst->device + (worst->name.empty() ? "" : " (" + worst->name + ")") +
                    " stalled: p99 " + std::to_string(worst->p99_us / 1000) +
                    " ms, oldest request " + std::to_string(worst->oldest_inflight_us / 1000) +
                    " ms");
    uint64_t total = 0;
    for (const auto& u : worst->top_units)
      total += u.slow_ios;
    if (!worst->top_units.empty() && total > 0) {
      const auto& top = worst->top_units[0];
      const double share = static_cast<double>(top.slow_ios) / static_cast<double>(total);
      if (share >= kDominates) {
        c.cause.culprit_unit = top.unit;
        c.why.push_back("noisy neighbour: " + (top.unit.empty() ? top.cgroup : top.unit) +
                        " issued " + std::to_string(static_cast<int>(share * 100)) +
                        "% of the slow I/O");
      }
    }
    c.cause.confidence = c.cause.culprit_unit.empty() ? 0.7 : 0.85;
    c.cause.summary =
        "I/O stall on " + worst->device +
        (c.cause.culprit_unit.empty() ? "" : ", noisy neighbour " + c.cause.culprit_unit);
    for (auto [j, s] : evidence_of<UnitState>(inc))
      if (is_unit_failure(*s))
        c.links.push_back({idx, j, "stalls"});
    return c;
  }
};

}  // namespace

MEND_REGISTER_RULE(io_stall, IoStallRule::create);

}  // namespace mend
