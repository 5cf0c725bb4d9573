// restart_unit: restart the target unit through systemd (a RestartUnit job, waited for).
// Not reversible - a restart cannot be undone - but bounded by the executor's guards.
#include <spdlog/spdlog.h>

#include "../../correlate/rule.h"
#include "../../host/clock.h"
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
    units_.clear();
    for (const auto& u : cands) {
      if (ctx_.is_protected && ctx_.is_protected(u))
        continue;
      auto st = ctx_.units->active_state(u);
      if (!st.ok() || units_.size() >= kMaxUnits)
        continue;
      if ((*st != "active" && *st != "reloading") || up_since_before_the_fix(u))
        units_.push_back(u);
    }
    checked_ = true;  // nothing failing (any more): nothing to restart, not an error
    return {};
  }

  // A unit the incident shows failing that is up now only because it was caught between two
  // deaths of a crash loop (Restart=) started before the fix began, under the old conditions:
  // it is restarted like a failed one. One that came back after the fix began is left alone.
  bool up_since_before_the_fix(const std::string& u) const {
    if (!ctx_.incident || !ctx_.progress || !failed_in_incident(u))
      return false;
    const uint64_t fix_began_us = ctx_.progress->plan_started_ns() / 1000;
    auto since = ctx_.units->active_since_us(u);
    return fix_began_us && since.ok() && *since > 0 && *since < fix_began_us;
  }

  bool failed_in_incident(const std::string& u) const {
    for (const auto& ev : ctx_.incident->evidence)
      if (const auto* s = std::get_if<UnitState>(&ev.event.payload);
          s && s->unit == u && is_unit_failure(*s))
        return true;
    return false;
  }

  Status apply() override {
    if (units_.empty() && !checked_)
      if (auto st = check(); !st.ok())
        return st;
    for (const auto& u : units_) {
      // A crash loop that hit its start limit is refused a restart until its failed state is
      // reset (what an admin types first: systemctl reset-failed).
      if (auto st = ctx_.units->active_state(u); st.ok() && *st == "failed")
        if (auto rf = ctx_.units->reset_failed(u); !rf.ok())
          SPDLOG_WARN("restart_unit: {}", rf.error().message);
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
               "now, or up only since before the plan began after failing in the incident (a "
               "crash loop caught between two deaths); at most 5, e.g. the victims of a full "
               "disk once it is fixed"}};
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(restart_unit, spec(), RestartUnitAction::create);

}  // namespace mend
