// The executor's guardrails, enforced for every plan whatever its actions: dry-run, observe
// mode, a global pause (mendctl pause, or a file), protected units, per-policy cooldown and run
// budget per target, and a node-wide budget (per hour and at once). Time is passed in. The
// history (run times, verified successes, the pause set by mendctl) is kept in a state file
// when one is given, so a restart of mendd does not reset a cooldown or a budget.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "mend/policy.h"
#include "mend/result.h"

namespace mend {

struct GuardrailConfig {
  bool dry_run = false;
  uint32_t node_max_per_hour = 10;
  uint32_t node_max_concurrent = 1;
  // Runs on one target per hour, all policies together: one culprit (an unprivileged user's
  // unit, say) cannot spend the node's budget.
  uint32_t target_max_per_hour = 4;
  // Never acted on, whatever a policy says (globs).
  std::vector<std::string> protected_units = {
      "init.scope",        "*.slice",      "dbus.service", "dbus-broker.service",
      "systemd-*.service", "mend.service", "ssh.service",  "sshd.service"};
  std::string pause_file = "/etc/mend/pause";  // exists: every action is held
  std::string state_file;                      // empty: history kept in memory only
};

struct Admission {
  bool allowed = false;
  std::string reason;  // why not (or "allowed")
  // Refused by a guardrail while the fault goes on (cooldown, budgets, a protected unit): a
  // person is told. Not for what was asked for (observe, dry-run, pause).
  bool page = false;
  // Refused only because the node runs node_max_concurrent plans now: the plan may wait.
  bool concurrency = false;
};

class Guardrails {
 public:
  explicit Guardrails(GuardrailConfig cfg);
  // Reads the history from the state file (missing: a fresh start). A damaged file is an error
  // and fails closed: every budget counts as spent (no plan runs) until a person repairs or
  // removes the file and mendd reads it again (SIGHUP or a restart). The file is left as found.
  Status load(uint64_t now_ns);
  // Set by a load() that found a damaged file: the reason, else empty.
  const std::string& damaged() const { return damaged_; }
  // New limits (a reload of mend.yaml); the history stays.
  void reconfigure(GuardrailConfig cfg);
  const GuardrailConfig& config() const { return cfg_; }

  // Whether a run of `policy` on `target` may start now. No side effects.
  Admission admit(const PolicyIR& policy, const std::string& target, Mode mode,
                  uint64_t now_ns) const;
  // Records a run; an error when the history could not be persisted (the run is counted in
  // memory either way, so it still spends this process's budgets).
  Status started(const PolicyIR& policy, const std::string& target, uint64_t now_ns);
  void finished();
  // A run of `policy` on `target` was verified (auto_after_successes counts these).
  void succeeded(const PolicyIR& policy, const std::string& target);
  uint32_t successes(const PolicyIR& policy, const std::string& target) const;
  // An error when the pause could not be persisted: it holds in this process but would be lost
  // at a restart, and the caller is told so.
  Status set_paused(bool p);
  bool paused() const;
  bool paused_by_command() const { return paused_; }
  uint32_t running() const { return running_; }
  uint32_t runs_last_hour(uint64_t now_ns) const;
  // Runs on `target` in the last hour, all policies together.
  uint32_t target_runs_last_hour(const std::string& target, uint64_t now_ns) const;
  bool is_protected(const std::string& unit) const;
  // Whether `unit` matches one of the globs (protected_units).
  static bool matches(const std::vector<std::string>& globs, const std::string& unit);

 private:
  Status save() const;
  std::string damaged_;

  GuardrailConfig cfg_;
  bool paused_ = false;
  std::map<std::string, uint32_t> successes_;  // "policy|target" -> verified runs
  uint32_t running_ = 0;
  uint64_t age(int64_t wall, uint64_t now_ns) const;

  // Start times in wall-clock ns (CLOCK_REALTIME), so the history means the same after a
  // reboot; converted from the monotonic time passed in with one offset taken at construction.
  int64_t offset_ns_ = 0;
  std::deque<int64_t> node_runs_;                           // last hour
  std::map<std::string, std::deque<int64_t>> policy_runs_;  // "policy|target" -> start times
};

}  // namespace mend
