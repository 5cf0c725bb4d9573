// The executor runs a plan as a transaction: guardrails first, then (after approval, in
// approve mode) each action's check -> intent journal -> apply -> journal undo -> verify, then
// the policy's verify block within its deadline and stabilisation window; on failure, every
// applied reversible step is rolled back in reverse order and the incident escalated with
// everything tried. Time is passed in (tick), so tests drive it with a fake clock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../policy/plan_selector.h"
#include "../sinks/journal.h"
#include "action.h"
#include "guardrails.h"
#include "intent_journal.h"

namespace mend {

struct ExecutorConfig {
  std::string state_dir = "/var/lib/mend";
  GuardrailConfig guardrails;
  uint64_t approval_timeout_ns = 900000000000ull;  // 15 min, then escalate
  std::vector<std::string> notify_command;         // argv, no shell; incident JSON on stdin
  uint64_t notify_timeout_ns = 10000000000ull;
  std::string procfs = "/proc";
};

// Whether the policy's verify block holds for the target right now (unit active and not
// restarting, no OOM kill since `since_ns`, usage under X%, ...). `why` says what does not.
class RecoveryProbe {
 public:
  virtual ~RecoveryProbe() = default;
  virtual Result<bool> holds(const VerifyIR& v, const Incident& inc, const std::string& unit,
                             uint64_t since_ns, std::string& why) = 0;
};

enum class RunState { AwaitingApproval, Verifying, Done };
enum class Outcome { None, Verified, RolledBack, Escalated, Observed, Refused };
std::string_view to_string(Outcome o);

struct StepLog {
  std::string action;
  std::string description;
  std::string result;  // "applied", "failed: ...", "rolled back", "would run"
};

struct PlanRun {
  std::string id;
  Incident incident;  // the executor's own copy: correlation may merge or close its original
  const CompiledPolicy* policy = nullptr;  // points at policy_copy (or null: no plan)
  CompiledPolicy policy_copy;              // a reload may replace the policy set mid-run
  std::string target;
  Mode mode = Mode::Observe;
  RunState state = RunState::Done;
  Outcome outcome = Outcome::None;
  std::string reason;
  std::vector<StepLog> steps;
  std::vector<std::unique_ptr<Action>> actions;
  std::vector<bool> applied;
  bool started = false;  // admitted and begun: holds a concurrency slot and a journal entry
  uint64_t applied_ns = 0, stable_since_ns = 0, deadline_ns = 0, approval_deadline_ns = 0;
};

class Executor {
 public:
  Executor(ExecutorConfig cfg, UnitOps& units, RecoveryProbe& probe,
           std::function<void(const Record&)> records);
  // Starts the plan chosen for `inc` (or records why not). The incident outlives the run.
  const PlanRun& submit(const Incident& inc, const PlanChoice& plan, uint64_t now);
  Status approve(const std::string& incident_id, uint64_t now);
  Status deny(const std::string& incident_id, uint64_t now);
  // Advances verification windows and approval deadlines.
  void tick(uint64_t now);
  // At start: every plan the intent journal shows unfinished is rolled back and escalated.
  Status recover(uint64_t now);
  const PlanRun* find(const std::string& incident_id) const;
  Guardrails& guardrails() { return guards_; }

 private:
  void apply(PlanRun& r, uint64_t now);
  void finish(PlanRun& r, Outcome o, const std::string& reason, uint64_t now);
  void rollback(PlanRun& r, uint64_t now);
  void escalate(PlanRun& r, const std::string& reason, uint64_t now);
  void record(RecordKind k, int prio, const PlanRun& r, const std::string& msg,
              const std::string& action = "", const std::string& result = "");
  void notify(const PlanRun& r);

  ExecutorConfig cfg_;
  UnitOps& units_;
  RecoveryProbe& probe_;
  std::function<void(const Record&)> records_;
  Guardrails guards_;
  IntentJournal journal_;
  std::map<std::string, std::unique_ptr<PlanRun>> runs_;  // by incident id
  uint64_t next_run_ = 1;
};

}  // namespace mend
