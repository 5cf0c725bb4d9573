// The action interface and registry. An action is one bounded, typed step of a plan: it says
// what it would do (describe: dry-run, approval, journald), checks its preconditions, applies,
// verifies its own effect, and rolls back exactly, or declares itself irreversible (then a
// policy must say allow_irreversible). Guardrails (cooldowns, budgets, protected units, dry-run,
// pause) belong to the executor, not to actions, so no action can skip them.
//
// Adding an action: one .cpp in agent/remedy/actions ending with
//   MEND_REGISTER_ACTION(name, spec, factory);
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mend/policy.h"
#include "mend/result.h"

namespace mend {

class UnitOps;
class ChildLauncher;
struct Incident;

// What a long step says about itself while it runs ("compressed 1.2 GiB of 4.0 GiB"), shown by
// mendctl explain. Written from the thread that runs the step, read from the event loop.
class StepProgress {
 public:
  struct Snapshot {
    std::string text;
    double fraction = -1;  // 0..1 when the action knows how far it is, else -1
  };
  void set(std::string text, double fraction = -1) {
    std::lock_guard<std::mutex> l(mu_);
    s_ = {std::move(text), fraction};
  }
  Snapshot get() const {
    std::lock_guard<std::mutex> l(mu_);
    return s_;
  }
  // When the plan's first step began (CLOCK_MONOTONIC ns; 0 before): a later step can tell
  // what came back by itself since the fix began from what was already so before it.
  void mark_plan_started(uint64_t now_ns) {
    std::lock_guard<std::mutex> l(mu_);
    if (!plan_started_ns_)
      plan_started_ns_ = now_ns;
  }
  uint64_t plan_started_ns() const {
    std::lock_guard<std::mutex> l(mu_);
    return plan_started_ns_;
  }

 private:
  mutable std::mutex mu_;
  Snapshot s_;
  uint64_t plan_started_ns_ = 0;
};

// Everything an action may touch, injected (tests pass fakes and temp dirs).
struct ActionContext {
  UnitOps* units = nullptr;
  const Incident* incident = nullptr;
  std::string unit;  // the unit the plan targets (the culprit), when there is one
  std::string procfs = "/proc";
  std::string sysfs = "/sys";
  std::string state_dir;  // mendd's own directory (staging); empty: none
  // Where commands run (transient units of the manager); null: children of mendd's (tests).
  ChildLauncher* children = nullptr;
  // The executor's protected-unit check, for actions that pick further units themselves.
  std::function<bool(const std::string&)> is_protected;
  // Where the step in progress reports how far it is; null: nobody asks.
  std::shared_ptr<StepProgress> progress;
  void report(std::string text, double fraction = -1) const {
    if (progress)
      progress->set(std::move(text), fraction);
  }
};

enum class ParamType { Bool, Int, Size, Duration, Percent, String, StringList };

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::String;
  bool required = false;
  double min = 0;  // in the parsed unit: bytes, ns, percent, count
  double max = 0;
  ParamValue fallback{};            // used when not required and not given
  std::vector<std::string> one_of;  // for String: the allowed values
  std::string help;
};

struct ActionSpec {
  std::string name;
  std::string summary;
  bool reversible = true;
  // Irreversible and able to lose data or capacity for good (delete files, grow a filesystem):
  // a policy must say allow_irreversible: true. A restart is irreversible but not destructive.
  bool destructive = false;
  // How long one step of this action may run before it is abandoned (a policy may say
  // `step_deadline:`). A step's own `timeout` parameter, when longer, moves it past that.
  uint64_t step_deadline_ns = 600000000000ull;  // 10 min
  std::vector<ParamSpec> params;
  // Checks across parameters at compile time (e.g. "an exec without rollback_command needs
  // allow_irreversible"): returns an error message, or "" when the parameters are fine.
  std::function<std::string(const std::map<std::string, ParamValue>&, const PolicyIR&)> validate;
};

// apply(), undo_state() and verify() may run on a thread of the executor's own while the event
// loop goes on (ExecutorConfig::background_steps): they use only what the context gives them,
// and the incident they point at does not change until the step is over.
class Action {
 public:
  virtual ~Action() = default;
  virtual std::string describe() const = 0;
  virtual Status check() = 0;
  virtual Status apply() = 0;
  // Whether the action's own effect is in place (the plan's verify block checks recovery).
  virtual Result<bool> verify() = 0;
  virtual Status rollback() = 0;
  virtual bool reversible() const = 0;
  // Acts on the plan's target unit: a plan with such a step and no target is not started (it
  // would only spend a budget).
  virtual bool needs_target() const { return false; }
  // What rollback() needs, written ahead to the intent journal after apply(), and given back
  // by restore() when mendd restarts in the middle of a plan.
  virtual nlohmann::json undo_state() const { return nlohmann::json::object(); }
  virtual Status restore(const nlohmann::json& undo) {
    (void)undo;
    return {};
  }
};

// Typed parameters after compile(): every declared parameter present, within its bounds.
class Params {
 public:
  explicit Params(std::map<std::string, ParamValue> v) : v_(std::move(v)) {}
  int64_t integer(const std::string& n) const { return std::get<int64_t>(v_.at(n)); }
  double number(const std::string& n) const { return std::get<double>(v_.at(n)); }
  bool flag(const std::string& n) const { return std::get<bool>(v_.at(n)); }
  const std::string& str(const std::string& n) const { return std::get<std::string>(v_.at(n)); }
  const std::vector<std::string>& list(const std::string& n) const {
    return std::get<std::vector<std::string>>(v_.at(n));
  }
  const std::map<std::string, ParamValue>& values() const { return v_; }

 private:
  std::map<std::string, ParamValue> v_;
};

using ActionFactory = std::function<std::unique_ptr<Action>(const Params&, const ActionContext&)>;

class ActionRegistry {
 public:
  static ActionRegistry& instance();
  bool add(ActionSpec spec, ActionFactory f);
  const ActionSpec* spec(const std::string& name) const;
  // Parameters the spec declares and `p` lacks get their defaults (an intent journal written
  // by an older mendd). Null for an unknown name.
  std::unique_ptr<Action> create(const std::string& name, const Params& p,
                                 const ActionContext& ctx) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::pair<ActionSpec, ActionFactory>> actions_;
};

#define MEND_REGISTER_ACTION(name, spec, factory)   \
  static const bool mend_action_registered_##name = \
      ::mend::ActionRegistry::instance().add(spec, factory)

}  // namespace mend
