// The executor with background steps (as mendd runs it): a step's apply runs on a thread of its
// own while tick() goes on, reports progress that explain shows, and its result is taken up by
// a later tick. A test action blocks on a gate the test opens.
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <thread>

#include "ctl/commands.h"
#include "fake_units.h"
#include "policy/plan_selector.h"
#include "remedy/executor.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kS = 1000000000ull;

struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int applied = 0, rolled_back = 0;
  std::thread::id apply_thread;
  void reset() {
    std::lock_guard<std::mutex> l(mu);
    open = false;
    applied = rolled_back = 0;
    apply_thread = {};
  }
  void release() {
    std::lock_guard<std::mutex> l(mu);
    open = true;
    cv.notify_all();
  }
};

Gate& gate() {
  static Gate g;
  return g;
}

// Reports half-way, then waits for the gate (10 s at most, so a broken test cannot hang).
class GatedAction final : public Action {
 public:
  GatedAction(const Params& p, const ActionContext& ctx) : ctx_(ctx), fail_(p.flag("fail")) {}
  std::string describe() const override { return fail_ ? "gated step that fails" : "gated step"; }
  Status check() override { return {}; }
  Status apply() override {
    ctx_.report("half-way through " + ctx_.incident->id, 0.5);
    std::unique_lock<std::mutex> l(gate().mu);
    gate().apply_thread = std::this_thread::get_id();
    if (!gate().cv.wait_for(l, std::chrono::seconds(10), [] { return gate().open; }))
      return Error{"the test never opened the gate"};
    if (fail_)
      return Error{"gated step failed as told"};
    ++gate().applied;
    return {};
  }
  Result<bool> verify() override { return true; }
  Status rollback() override {
    std::lock_guard<std::mutex> l(gate().mu);
    ++gate().rolled_back;
    return {};
  }
  bool reversible() const override { return true; }

 private:
  ActionContext ctx_;
  bool fail_;
};

ActionSpec gated_spec() {
  ActionSpec s;
  s.name = "test_gated";
  s.summary = "test only: blocks until the test opens the gate";
  s.params = {{"fail", ParamType::Bool, false, 0, 0, false, {}, "fail after the gate"}};
  return s;
}

MEND_REGISTER_ACTION(test_gated, gated_spec(), [](const Params& p, const ActionContext& c) {
  return std::make_unique<GatedAction>(p, c);
});

class YesProbe : public RecoveryProbe {
 public:
  Result<bool> holds(const VerifyIR&, const Incident&, const std::string&, uint64_t,
                     std::string&) override {
    return true;
  }
};

struct Harness {
  std::string dir;
  FakeUnits units;
  YesProbe probe;
  std::vector<Record> records;
  std::vector<CompiledPolicy> policies;
  Incident inc;
  std::unique_ptr<Executor> ex;

  explicit Harness(const std::string& second_step = "{}") {
    gate().reset();
    char tmpl[] = "/tmp/mend-bg-XXXXXX";
    dir = mkdtemp(tmpl);
    auto irs = parse_policies(
        "policies:\n  - name: slow\n    match: {root_cause: memory_limit}\n    mode: auto\n"
        "    actions:\n      - test_gated: {}\n      - test_gated: " +
            second_step +
            "\n    verify: {deadline: 60s, stable_for: 1s}\n"
            "    on_failure: rollback_then_escalate\n",
        "p.yaml");
    policies = *compile_policies(*irs);
    inc.id = "inc-1";
    inc.root_cause.kind = "memory_limit";
    inc.root_cause.culprit_unit = "app.service";
    inc.root_cause.confidence = 0.95;
    inc.root_cause.summary = "memory limit hit by app.service";
    inc.affected_units = {"app.service"};
    ExecutorConfig cfg;
    cfg.state_dir = dir;
    cfg.procfs = dir;
    cfg.guardrails.pause_file = dir + "/pause";
    cfg.background_steps = true;
    ex = std::make_unique<Executor>(cfg, units, probe,
                                    [this](const Record& r) { records.push_back(r); });
  }
  ~Harness() {
    gate().release();  // a run still waiting ends before the executor goes
    ex.reset();
    fs::remove_all(dir);
  }
  const PlanRun& submit(uint64_t now) { return ex->submit(inc, select_plan(inc, policies), now); }
  // Ticks (at `now`) until the run leaves `state`, up to 5 s of real time.
  bool tick_until_not(const PlanRun& r, RunState state, uint64_t now) {
    for (int i = 0; i < 500 && r.state == state; ++i) {
      ex->tick(now);
      if (r.state == state)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return r.state != state;
  }
  // Waits until the running step has reported (it runs on another thread).
  bool wait_progress(const PlanRun& r) {
    for (int i = 0; i < 500; ++i) {
      if (!r.progress->get().text.empty())
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

}  // namespace

TEST(BackgroundSteps, StepRunsOnItsOwnThreadWhileTheLoopTicksAndExplainShowsProgress) {
  Harness h;
  const PlanRun& r = h.submit(10 * kS);
  ASSERT_EQ(r.state, RunState::Applying);
  EXPECT_EQ(r.step, 0u);
  ASSERT_TRUE(h.wait_progress(r));
  // The loop goes on: ticks change nothing while the step runs.
  for (int i = 0; i < 5; ++i)
    h.ex->tick((11 + i) * kS);
  EXPECT_EQ(r.state, RunState::Applying);
  {
    std::lock_guard<std::mutex> l(gate().mu);
    EXPECT_NE(gate().apply_thread, std::this_thread::get_id());
  }
  auto detail = incident_detail(h.inc, &r, 22 * kS);
  const auto& step = detail["plan"]["steps"][0];
  EXPECT_EQ(step["result"], "running");
  EXPECT_EQ(step["progress"], "half-way through inc-1");
  EXPECT_DOUBLE_EQ(step["fraction"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(step["running_s"].get<double>(), 12.0);
  EXPECT_EQ(detail["plan"]["steps"][1]["result"], "");
  EXPECT_EQ(detail["plan"]["state"], "applying");

  gate().release();
  // Both steps end on the next ticks; the verify window starts after the last one.
  ASSERT_TRUE(h.tick_until_not(r, RunState::Applying, 30 * kS));
  EXPECT_EQ(r.state, RunState::Verifying);
  EXPECT_EQ(r.applied_ns, 30 * kS);
  EXPECT_EQ(gate().applied, 2);
  EXPECT_EQ(r.steps[0].result, "applied");
  EXPECT_EQ(r.steps[1].result, "applied");
  h.ex->tick(31 * kS);
  h.ex->tick(32 * kS);
  EXPECT_EQ(r.outcome, Outcome::Verified);
  std::vector<RecordKind> kinds;
  for (const auto& rec : h.records)
    kinds.push_back(rec.kind);
  EXPECT_EQ(kinds, (std::vector<RecordKind>{RecordKind::ActionStarted, RecordKind::ActionFinished,
                                            RecordKind::ActionStarted, RecordKind::ActionFinished,
                                            RecordKind::Verified}));
  EXPECT_TRUE(IntentJournal(h.dir).unfinished()->empty());
}

TEST(BackgroundSteps, IncidentGrowingDuringAStepIsTakenInAfterIt) {
  Harness h;
  const PlanRun& r = h.submit(0);
  ASSERT_TRUE(h.wait_progress(r));
  Incident grown = h.inc;
  grown.affected_units.insert("victim.service");
  h.ex->refresh(grown);
  EXPECT_EQ(r.incident.affected_units.count("victim.service"), 0u);  // not under the step
  gate().release();
  ASSERT_TRUE(h.tick_until_not(r, RunState::Applying, 1 * kS));
  EXPECT_EQ(r.incident.affected_units.count("victim.service"), 1u);
  EXPECT_EQ(r.incident.state, IncidentState::Remediating);  // the executor's own facts stay
}

TEST(BackgroundSteps, FailingStepRollsBackTheStepsBeforeItAndEscalates) {
  Harness h("{fail: true}");
  const PlanRun& r = h.submit(0);
  gate().release();
  ASSERT_TRUE(h.tick_until_not(r, RunState::Applying, 1 * kS));
  EXPECT_EQ(r.state, RunState::Done);
  EXPECT_EQ(r.outcome, Outcome::Escalated);
  EXPECT_EQ(gate().applied, 1);
  EXPECT_EQ(gate().rolled_back, 1);  // the first step; the failed one never applied
  EXPECT_EQ(r.steps[0].result, "rolled back");
  EXPECT_EQ(r.steps[1].result, "failed: gated step failed as told");
  EXPECT_NE(r.reason.find("gated step failed as told"), std::string::npos);
  EXPECT_TRUE(IntentJournal(h.dir).unfinished()->empty());
}

TEST(BackgroundSteps, ShutdownWaitsForTheRunningStepThenRollsBack) {
  Harness h;
  const PlanRun& r = h.submit(0);
  ASSERT_TRUE(h.wait_progress(r));
  h.ex->begin_shutdown();
  std::thread opener([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    gate().release();
  });
  h.ex->shutdown(1 * kS);  // returns only once the step is over
  opener.join();
  EXPECT_EQ(gate().applied, 1);
  EXPECT_EQ(gate().rolled_back, 1);
  EXPECT_EQ(r.outcome, Outcome::Escalated);
  EXPECT_EQ(r.steps[1].result, "");  // never started
  EXPECT_EQ(h.ex->verifying(), 0u);
  EXPECT_TRUE(IntentJournal(h.dir).unfinished()->empty());
}

TEST(BackgroundSteps, NoFurtherStepOrPlanStartsOnceStopping) {
  Harness h;
  const PlanRun& r = h.submit(0);
  ASSERT_TRUE(h.wait_progress(r));
  EXPECT_EQ(h.ex->verifying(), 1u);  // applying counts: the shutdown grace waits for it
  h.ex->begin_shutdown();
  gate().release();
  ASSERT_TRUE(h.tick_until_not(r, RunState::Applying, 1 * kS));
  EXPECT_EQ(gate().applied, 1);  // the second step never ran
  EXPECT_EQ(gate().rolled_back, 1);
  EXPECT_EQ(r.outcome, Outcome::Escalated);
  EXPECT_NE(r.reason.find("stopping"), std::string::npos);
  Incident other = h.inc;
  other.id = "inc-2";
  const PlanRun& r2 = h.ex->submit(other, select_plan(other, h.policies), 2 * kS);
  EXPECT_EQ(r2.state, RunState::Done);
  EXPECT_EQ(r2.outcome, Outcome::Refused);
  EXPECT_NE(r2.reason.find("stopping"), std::string::npos);
}

TEST(BackgroundSteps, AppliedStepIsJournaledByItsThreadBeforeTheLoopHearsOfIt) {
  // mendd killed -9 right after a step applied, before the loop took the result up: the
  // journal must already say "applied", or the restart would not roll the step back.
  Harness h;
  h.submit(0);
  gate().release();
  bool journaled = false;
  for (int i = 0; i < 500 && !journaled; ++i) {
    auto open = IntentJournal(h.dir).unfinished();
    ASSERT_TRUE(open.ok());
    journaled = open->size() == 1 && !(*open)[0].steps.empty() && (*open)[0].steps[0].applied;
    if (!journaled)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(journaled);  // no tick() has run
}

// A step that does not return until the test lets it (20 s at most): a FIFO opened for a log, a
// multi-terabyte sparse file to compress.
struct Stuck {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  int applied = 0, rolled_back = 0;
};
Stuck& stuck() {
  static Stuck s;
  return s;
}

class StuckAction final : public Action {
 public:
  std::string describe() const override { return "a step that never returns"; }
  Status check() override { return {}; }
  Status apply() override {
    std::unique_lock<std::mutex> l(stuck().mu);
    stuck().cv.wait_for(l, std::chrono::seconds(20), [] { return stuck().released; });
    ++stuck().applied;
    return {};
  }
  Result<bool> verify() override { return true; }
  Status rollback() override {
    std::lock_guard<std::mutex> l(stuck().mu);
    ++stuck().rolled_back;
    return {};
  }
  bool reversible() const override { return true; }
};

ActionSpec stuck_spec() {
  ActionSpec s;
  s.name = "test_stuck";
  s.summary = "test only: does not return until released";
  s.step_deadline_ns = 5 * kS;
  return s;
}

MEND_REGISTER_ACTION(test_stuck, stuck_spec(), [](const Params&, const ActionContext&) {
  return std::make_unique<StuckAction>();
});

// Issue 14: a step that never returns wedged the executor and its only concurrency slot. At
// its deadline it is abandoned: the plan is rolled back and escalated at once, the slot is free
// for the next plan, and the step is rolled back when its thread returns; the journal keeps
// the run open until then, so a restart in between would roll it back too.
TEST(BackgroundSteps, StepPastItsDeadlineIsAbandonedRolledBackAndTheNextPlanRuns) {
  Harness h;
  {
    std::lock_guard<std::mutex> l(stuck().mu);
    stuck().released = false;
    stuck().applied = stuck().rolled_back = 0;
  }
  auto irs = parse_policies(
      "policies:\n  - name: wedged\n    match: {root_cause: memory_limit}\n    mode: auto\n"
      "    actions:\n      - test_gated: {}\n      - test_stuck: {}\n"
      "    verify: {deadline: 60s, stable_for: 1s}\n",
      "w.yaml");
  ASSERT_TRUE(irs.ok()) << irs.error().message;
  auto wedged = compile_policies(*irs);
  ASSERT_TRUE(wedged.ok()) << wedged.error().message;
  EXPECT_EQ((*wedged)[0].actions[1].step_deadline_ns, 5 * kS);  // the action's default
  const PlanRun& r = h.ex->submit(h.inc, select_plan(h.inc, *wedged), 0);
  gate().release();
  for (int i = 0; i < 500 && r.step == 0; ++i) {  // step 1 ends, step 2 begins
    h.ex->tick(1 * kS);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(r.state, RunState::Applying);
  ASSERT_EQ(r.step, 1u);
  EXPECT_EQ(r.step_started_ns, 1 * kS);
  h.ex->tick(5 * kS);  // 4 s in: still its time
  EXPECT_EQ(r.state, RunState::Applying);
  h.ex->tick(7 * kS);  // past 5 s
  EXPECT_EQ(r.state, RunState::Done);
  EXPECT_EQ(r.outcome, Outcome::Escalated);
  EXPECT_EQ(gate().rolled_back, 1);  // the step before it, at once
  EXPECT_NE(r.reason.find("did not finish within its deadline of 5 s"), std::string::npos)
      << r.reason;
  EXPECT_EQ(h.ex->guardrails().running(), 0u);  // the slot is free
  EXPECT_EQ(h.ex->abandoned(), 1u);
  EXPECT_EQ(h.ex->counters().step_deadlines, 1u);
  EXPECT_EQ(IntentJournal(h.dir).unfinished()->size(), 1u);  // open until the step returns

  // The next plan runs meanwhile.
  Incident other = h.inc;
  other.id = "inc-2";
  other.root_cause.culprit_unit = "other.service";
  other.affected_units = {"other.service"};
  gate().reset();
  gate().release();
  const PlanRun& r2 = h.ex->submit(other, select_plan(other, h.policies), 8 * kS);
  ASSERT_TRUE(h.tick_until_not(r2, RunState::Applying, 9 * kS));
  EXPECT_EQ(r2.state, RunState::Verifying);

  // The stuck step returns at last: it applied, so it is rolled back, and the run ends.
  {
    std::lock_guard<std::mutex> l(stuck().mu);
    stuck().released = true;
    stuck().cv.notify_all();
  }
  for (int i = 0; i < 500 && h.ex->abandoned() > 0; ++i) {
    h.ex->tick(10 * kS);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(h.ex->abandoned(), 0u);
  EXPECT_EQ(stuck().applied, 1);
  EXPECT_EQ(stuck().rolled_back, 1);
  EXPECT_EQ(r.steps[1].result,
            "abandoned at its deadline; returned after its deadline and was "
            "rolled back");
  EXPECT_EQ(r2.outcome, Outcome::Verified);
  EXPECT_TRUE(IntentJournal(h.dir).unfinished()->empty());  // the abandoned run ended too
}
