// restart_unit: restart the target unit through systemd (a RestartUnit job, waited for).
// Not reversible - a restart cannot be undone - but bounded by the executor's guards.
#include <spdlog/spdlog.h>

#include "../../systemd/unit_ops.h"
#include "../action.h"

namespace mend {

namespace {

class RestartUnitAction final : public Action {
 public:
  RestartUnitAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx), timeout_ns_(static_cast<uint64_t>(p.integer("timeout"))) {}

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<RestartUnitAction>(p, ctx);
  }

  std::string describe() const override {
    return "restart " + ctx_.unit + " (wait up to " + std::to_string(timeout_ns_ / 1000000000ull) +
           " s for the job)";
  }

  Status check() override {
    if (ctx_.unit.empty())
      return Error{"restart_unit: the incident names no unit to restart"};
    auto st = ctx_.units->active_state(ctx_.unit);
    if (!st.ok())
      return st.error();
    return {};
  }

  Status apply() override {
    auto r = ctx_.units->restart(ctx_.unit, timeout_ns_);
    if (!r.ok())
      return r.error();
    if (*r != "done")
      return Error{"restart of " + ctx_.unit + " finished with job result \"" + *r + "\""};
    return {};
  }

  Result<bool> verify() override {
    auto st = ctx_.units->active_state(ctx_.unit);
    if (!st.ok())
      return st.error();
    return *st == "active";
  }

  Status rollback() override { return {}; }  // nothing to undo: see reversible()
  bool reversible() const override { return false; }

 private:
  ActionContext ctx_;
  uint64_t timeout_ns_;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "restart_unit";
  s.summary = "Restart the culprit unit (RestartUnit job, waited for)";
  s.reversible = false;
  s.params = {{"timeout",
               ParamType::Duration,
               false,
               1e9,
               600e9,
               int64_t{30000000000},
               {},
               "how long to wait for the restart job"}};
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(restart_unit, spec(), RestartUnitAction::create);

}  // namespace mend
