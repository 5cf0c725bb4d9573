// restart_unit: restart the target unit through systemd (a RestartUnit job, waited for).
// Not reversible - a restart cannot be undone - but bounded by the executor's guards.
#include <spdlog/spdlog.h>

#include "../../systemd/unit_ops.h"
#include "../action.h"
#include "mend/incident.h"

#include <set>

namespace mend {

namespace {

class RestartUnitAction final : public Action {
 public:
  RestartUnitAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx),
        timeout_ns_(static_cast<uint64_t>(p.integer("timeout"))),
        which_(p.str("which")) {}

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<RestartUnitAction>(p, ctx);
  }

  std::string describe() const override {
    std::string who;
    for (const auto& u : units_)
      who += (who.empty() ? "" : ", ") + u;
    if (who.empty())
      who = which_ != "failed" ? ctx_.unit
            : checked_         ? "nothing (no unit of the incident is failing)"
                               : "the incident's failed units";
    return "restart " + who + " (wait up to " + std::to_string(timeout_ns_ / 1000000000ull) +
           " s for each job)";
  }

  Status check() override {
    units_.clear();
    if (which_ == "culprit") {
      if (ctx_.unit.empty())
        return Error{"restart_unit: the incident names no unit to restart"};
      auto st = ctx_.units->active_state(ctx_.unit);
      if (!st.ok())
        return st.error();
      units_.push_back(ctx_.unit);
      return {};
    }
    // The units the incident shows failing (the victims of a full disk, say), after the
    // earlier steps fixed their cause. Bounded; protected units are never touched.
    std::set<std::string> cands;
    if (ctx_.incident) {
      cands = ctx_.incident->affected_units;
      if (!ctx_.incident->root_cause.culprit_unit.empty())
        cands.insert(ctx_.incident->root_cause.culprit_unit);
    }
    for (const auto& u : cands) {
      if (ctx_.is_protected && ctx_.is_protected(u))
        continue;
      auto st = ctx_.units->active_state(u);
      if (st.ok() && *st != "active" && *st != "reloading" && units_.size() < kMaxUnits)
        units_.push_back(u);
    }
    checked_ = true;  // nothing failing (any more): nothing to restart, not an error
    return {};
  }

  Status apply() override {
    if (units_.empty() && !checked_)
      if (auto st = check(); !st.ok())
        return st;
    for (const auto& u : units_) {
      auto r = ctx_.units->restart(u, timeout_ns_);
      if (!r.ok())
        return r.error();
      if (*r != "done")
        return Error{"restart of " + u + " finished with job result \"" + *r + "\""};
    }
    return {};
  }

  Result<bool> verify() override {
    if (which_ == "failed" && units_.empty())
      return true;
    for (const auto& u : units_.empty() ? std::vector<std::string>{ctx_.unit} : units_) {
      auto st = ctx_.units->active_state(u);
      if (!st.ok())
        return st.error();
      if (*st != "active")
        return false;
    }
    return true;
  }

  Status rollback() override { return {}; }  // nothing to undo: see reversible()
  bool needs_target() const override { return which_ != "failed"; }
  bool reversible() const override { return false; }

 private:
  static constexpr size_t kMaxUnits = 5;
  ActionContext ctx_;
  uint64_t timeout_ns_;
  std::string which_;
  std::vector<std::string> units_;
  bool checked_ = false;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "restart_unit";
  s.summary = "Restart the culprit unit, or the incident's failing units (jobs waited for)";
  s.reversible = false;
  s.params = {{"timeout",
               ParamType::Duration,
               false,
               1e9,
               600e9,
               int64_t{30000000000},
               {},
               "how long to wait for each restart job"},
              {"which",
               ParamType::String,
               false,
               0,
               0,
               std::string("culprit"),
               {"culprit", "failed"},
               "culprit: the root cause's unit; failed: every unit of the incident not active "
               "now (at most 5), e.g. the victims of a full disk once it is fixed"}};
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(restart_unit, spec(), RestartUnitAction::create);

}  // namespace mend
