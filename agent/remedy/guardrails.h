// The executor's guardrails, enforced for every plan whatever its actions: dry-run, observe
// mode, a global pause (mendctl pause, or a file), protected units, per-policy cooldown and run
// budget per target, and a node-wide budget (per hour and at once). Pure: time is passed in;
// the pause file is the only thing it reads.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "mend/policy.h"

namespace mend {

struct GuardrailConfig {
  bool dry_run = false;
  uint32_t node_max_per_hour = 10;
  uint32_t node_max_concurrent = 1;
  // Never acted on, whatever a policy says (globs).
  std::vector<std::string> protected_units = {
      "init.scope",        "*.slice",      "dbus.service", "dbus-broker.service",
      "systemd-*.service", "mend.service", "ssh.service",  "sshd.service"};
  std::string pause_file = "/etc/mend/pause";  // exists: every action is held
};

struct Admission {
  bool allowed = false;
  std::string reason;  // why not (or "allowed")
};

class Guardrails {
 public:
  explicit Guardrails(GuardrailConfig cfg) : cfg_(std::move(cfg)) {}

  // Whether a run of `policy` on `target` may start now. No side effects.
  Admission admit(const PolicyIR& policy, const std::string& target, Mode mode,
                  uint64_t now_ns) const;
  void started(const PolicyIR& policy, const std::string& target, uint64_t now_ns);
  void finished();
  void set_paused(bool p) { paused_ = p; }
  bool paused() const;
  bool is_protected(const std::string& unit) const;

 private:
  GuardrailConfig cfg_;
  bool paused_ = false;
  uint32_t running_ = 0;
  std::deque<uint64_t> node_runs_;                           // start times, last hour
  std::map<std::string, std::deque<uint64_t>> policy_runs_;  // "policy|target" -> start times
};

}  // namespace mend
