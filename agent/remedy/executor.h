// The executor runs a plan as a transaction: guardrails first, then (after approval, in
// approve mode) each action's check -> intent journal -> apply -> journal undo -> verify, then
// the policy's verify block within its deadline and stabilisation window; on failure, every
// applied reversible step is rolled back in reverse order and the incident escalated with
// everything tried. Time is passed in (tick), so tests drive it with a fake clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../policy/plan_selector.h"
#include "../sinks/journal.h"
#include "action.h"
#include "guardrails.h"
#include "intent_journal.h"
#include "notifier.h"

namespace mend {

struct ExecutorConfig {
  std::string state_dir = "/var/lib/mend";
  GuardrailConfig guardrails;
  uint64_t approval_timeout_ns = 900000000000ull;  // 15 min, then escalate
  std::vector<std::string> notify_command;         // argv, no shell; incident JSON on stdin
  uint64_t notify_timeout_ns = 10000000000ull;
  std::string notify_user;  // the paging hook runs as this user (empty: root, no capabilities)
  // Where commands run: transient units of the manager (mendd's service), or, when null,
  // children of mendd's (tests, hosts without a system manager). Not owned.
  ChildLauncher* children = nullptr;
  std::string procfs = "/proc";
  std::string sysfs = "/sys";
  // Each step's apply and verify on a thread of its own, so the event loop keeps reading the
  // sensors and serving mendctl (explain shows the step's progress) while a rotation of many
  // GB or a volume growth runs; the step's result is taken up by the next tick(). Off: steps
  // run inside submit/approve/tick (unit tests drive the executor with a fake clock).
  bool background_steps = false;
  // A plan refused only because the node's concurrency budget is taken waits this long for a
  // slot (then escalates); at most max_queued plans wait, the rest escalate at once.
  uint64_t queue_timeout_ns = 600000000000ull;  // 10 min
  size_t max_queued = 64;
};

// on_failure: rollback_then_next asks for the next plan for the incident, skipping the
// policies already tried (the agent answers with select_plan over its policy set).
using NextPlan = std::function<PlanChoice(const Incident&, const std::set<std::string>& tried)>;

// Whether the policy's verify block holds for the target right now (unit active and not
// restarting, no OOM kill since `since_ns`, usage under X%, ...). `why` says what does not.
// An error with code EAGAIN means "not known this tick": asked again at the next one.
class RecoveryProbe {
 public:
  virtual ~RecoveryProbe() = default;
  virtual Result<bool> holds(const VerifyIR& v, const Incident& inc, const std::string& unit,
                             uint64_t since_ns, std::string& why) = 0;
};

enum class RunState { AwaitingApproval, Queued, Applying, Verifying, Done };
enum class Outcome { None, Verified, RolledBack, Escalated, Observed, Refused };
std::string_view to_string(Outcome o);
std::string_view to_string(RunState s);
std::string_view to_string(Mode m);

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
  // Shared with the thread of a background step, which may outlive its deadline.
  std::vector<std::shared_ptr<Action>> actions;
  std::vector<uint64_t> step_deadline_ns;  // per step: from the policy or the action's default
  std::vector<bool> applied;
  bool started = false;   // admitted and begun: holds a concurrency slot and a journal entry
  bool promoted = false;  // approve mode skipped after auto_after_successes verified runs
  bool approved = false;  // an operator approved it (a queued approved plan needs no second)
  // Waiting for a concurrency slot (RunState::Queued): since when, and until when.
  uint64_t queued_ns = 0, queue_deadline_ns = 0;
  uint64_t cleared_since_ns = 0;  // queued, and the incident has looked recovered since then
  // A step passed its deadline and still runs: the journal's end line waits for it.
  bool end_deferred = false;
  // Plans tried before this one for the same incident (rollback_then_next), with their steps.
  std::set<std::string> tried_policies;
  std::vector<StepLog> earlier_steps;
  uint64_t applied_ns = 0, stable_since_ns = 0, deadline_ns = 0, approval_deadline_ns = 0;
  uint64_t window_from_ns = 0;  // failures after this break the stabilisation window
  // The step running now (RunState::Applying): its index, when it began, what it reports.
  size_t step = 0;
  uint64_t step_started_ns = 0;
  std::shared_ptr<StepProgress> progress = std::make_shared<StepProgress>();
  // The incident grew while a step ran: taken in once the step is over.
  std::unique_ptr<Incident> pending_refresh;
  // apply() + verify() of the running background step, set by its thread.
  struct StepResult {
    bool applied = false;
    Status status;
  };
  std::future<StepResult> pending;
};

class Executor {
 public:
  Executor(ExecutorConfig cfg, UnitOps& units, RecoveryProbe& probe,
           std::function<void(const Record&)> records);
  // Starts the plan chosen for `inc` (or records why not). The incident outlives the run.
  const PlanRun& submit(const Incident& inc, const PlanChoice& plan, uint64_t now);
  Status approve(const std::string& incident_id, uint64_t now);
  Status deny(const std::string& incident_id, uint64_t now);
  // The incident grew (new evidence, more affected units) while its plan waits or runs: the
  // run's copy takes the new facts; what the executor owns (state, plan, timestamps) stays.
  void refresh(const Incident& inc);
  // Advances verification windows and approval deadlines.
  void tick(uint64_t now);
  // At start: every plan the intent journal shows unfinished is rolled back and escalated.
  Status recover(uint64_t now);
  const PlanRun* find(const std::string& incident_id) const;
  // The incident's plan was verified, and a fault of `fault_ns` came after the recovery: the
  // fix did not hold. The caller then submits again; the guardrails (cooldown, budgets)
  // decide, and page when they refuse.
  bool recurred(const std::string& incident_id, uint64_t fault_ns) const;
  Guardrails& guardrails() { return guards_; }
  // New limits and hooks from a reloaded mend.yaml; running plans keep going.
  void reconfigure(const ExecutorConfig& cfg);
  void set_next_plan(NextPlan f) { next_plan_ = std::move(f); }
  // Plans that are still applying a step or verifying (a clean shutdown waits for these, up to
  // a grace period).
  size_t verifying() const;
  // mendd is about to stop: no plan and no step starts any more; what runs may still finish
  // (the shutdown grace period), a plan with steps left is rolled back.
  void begin_shutdown() { stopping_ = true; }
  // mendd is stopping: a step still running is waited for (its own timeout bounds it); then
  // every plan still verifying is rolled back and escalated; every plan awaiting approval is
  // escalated. Nothing is left half-done for the next start.
  void shutdown(uint64_t now);
  // The current run of every incident the executor has seen, newest last, and the runs a
  // rollback_then_next replaced (bounded).
  std::vector<const PlanRun*> runs() const;
  // Plans waiting for a concurrency slot.
  size_t queued() const;
  // Steps abandoned at their deadline whose thread has not returned yet.
  size_t abandoned() const { return abandoned_.size(); }
  // What the executor's bounds dropped or refused, for metrics and docs/bounds.md.
  struct Counters {
    uint64_t queued = 0;          // plans that waited for a slot
    uint64_t queue_timeouts = 0;  // ... and escalated at the queue deadline
    uint64_t queue_full = 0;      // escalated at once: max_queued plans already waiting
    uint64_t step_deadlines = 0;  // steps abandoned at their deadline
    uint64_t runs_evicted = 0;    // finished runs forgotten (over kMaxRuns)
    uint64_t notify_dropped = 0;  // pages dropped from a full notify queue
  };
  Counters counters() const;
  // Waits until every page queued for the notify command was run (tests, shutdown).
  void drain_notifications() { notifier_.drain(); }
  ~Executor();
  static constexpr size_t kMaxRuns = 1024;    // runs remembered, finished ones evicted first
  static constexpr size_t kMaxAbandoned = 8;  // stuck steps; past it no new plan starts
  // When the remedy step running now began (monotonic ns), 0 when none is. Read from another
  // thread (mendd's watchdog: the loop is busy in a step, bounded by the step's own timeout).
  uint64_t step_started_ns() const { return step_started_ns_.load(std::memory_order_relaxed); }

 private:
  // Marks a step (apply, verify, rollback) as running for step_started_ns().
  struct StepClock {
    explicit StepClock(std::atomic<uint64_t>& a);
    ~StepClock() { a_.store(0, std::memory_order_relaxed); }
    std::atomic<uint64_t>& a_;
  };
  void apply(PlanRun& r, uint64_t now);
  // Runs the plan's steps from r.step: inline, or the next one in the background (then
  // returns; collect() takes its result up).
  void run_steps(PlanRun& r, uint64_t now);
  // The step r.step ended with `res`: journal, record, then the next step, verify or fail.
  // False when the run failed.
  bool step_done(PlanRun& r, PlanRun::StepResult res, uint64_t now);
  void collect(PlanRun& r, uint64_t now);
  void take_refresh(PlanRun& r);
  void finish(PlanRun& r, Outcome o, const std::string& reason, uint64_t now);
  void rollback(PlanRun& r, uint64_t now);
  void escalate(PlanRun& r, const std::string& reason, uint64_t now);
  // The escalation record (journald crit) and the notify command; the run's state is the
  // caller's.
  void page(const PlanRun& r, const std::string& reason);
  // A step or the verification failed: roll back, then the next plan or escalate.
  void fail(PlanRun& r, const std::string& reason, uint64_t now);
  // retire: the run it replaces stays readable in retired_; else it is replaced outright.
  PlanRun& start_run(const Incident& inc, const PlanChoice& plan, uint64_t now, bool retire = true);
  void submit_prepared(PlanRun& r, uint64_t now);
  void record(RecordKind k, int prio, const PlanRun& r, const std::string& msg,
              const std::string& action = "", const std::string& result = "",
              const std::map<std::string, std::string>& extra = {});
  void notify(const PlanRun& r);
  // Plans waiting for a slot: the first by SLO impact, then age, when one frees; the queue
  // deadline escalates.
  void run_queue(uint64_t now);
  void queue(PlanRun& r, const std::string& reason, uint64_t now);
  // The running background step of `r` passed its deadline: the plan is rolled back and
  // escalated now; the step is rolled back when its thread returns (reap_abandoned).
  void abandon(PlanRun& r, uint64_t now);
  void reap_abandoned(uint64_t now);

  ExecutorConfig cfg_;
  UnitOps& units_;
  RecoveryProbe& probe_;
  std::function<void(const Record&)> records_;
  Guardrails guards_;
  // Shared with the threads of background steps (the "applied" line), which may outlive a run.
  std::shared_ptr<IntentJournal> journal_;
  std::map<std::string, std::unique_ptr<PlanRun>> runs_;  // by incident id
  std::vector<std::string> order_;                        // incident ids, first seen first
  std::deque<std::unique_ptr<PlanRun>> retired_;          // replaced by a next plan
  NextPlan next_plan_;
  struct AbandonedStep {
    PlanRun* run;  // kept alive (never evicted) until the step returns
    size_t step;
    uint64_t since_ns;
  };
  std::vector<AbandonedStep> abandoned_;
  // End records that could not be written (a full disk): retried every tick. Bounded by the
  // runs (kMaxRuns); a verified plan among them has its verdict on disk already.
  std::map<std::string, std::string> pending_ends_;  // run -> outcome
  void end_run(const std::string& run, const std::string& outcome);
  Counters counters_;
  Notifier notifier_;
  uint64_t next_run_ = 1;
  std::atomic<uint64_t> step_started_ns_{0};
  bool stopping_ = false;
};

}  // namespace mend
