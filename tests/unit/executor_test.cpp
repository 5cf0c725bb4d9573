#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fake_units.h"
#include "policy/plan_selector.h"
#include "remedy/executor.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kS = 1000000000ull;

class FakeProbe : public RecoveryProbe {
 public:
  bool ok = true;
  int calls = 0;
  Result<bool> holds(const VerifyIR&, const Incident&, const std::string&, uint64_t,
                     std::string& why) override {
    ++calls;
    if (!ok)
      why = "app.service restarted again (OOM)";
    return ok;
  }
};

const char* kPolicy = R"(
policies:
  - name: mem
    match: {root_cause: memory_limit}
    mode: MODE
    actions:
      - raise_memory_limit: {step: 25%, ceiling: 1G}
      - restart_unit: {timeout: 10s}
    verify: {deadline: 60s, stable_for: 20s, no_new_oom: true}
    guards: {cooldown: 10m, max_runs: 2, per: 1h}
)";

struct Harness {
  std::string dir;
  FakeUnits units;
  FakeProbe probe;
  std::vector<Record> records;
  std::vector<CompiledPolicy> policies;
  Incident inc;
  std::unique_ptr<Executor> ex;
  ExecutorConfig cfg;

  explicit Harness(const std::string& mode = "auto") {
    char tmpl[] = "/tmp/mend-exec-XXXXXX";
    dir = mkdtemp(tmpl);
    std::ofstream(dir + "/meminfo") << "MemAvailable: 8000000 kB\n";
    std::string yaml = kPolicy;
    yaml.replace(yaml.find("MODE"), 4, mode);
    auto irs = parse_policies(yaml, "p.yaml");
    policies = *compile_policies(*irs);
    units.props["app.service/MemoryMax"] = uint64_t{100} << 20;
    inc.id = "inc-1";
    inc.root_cause.kind = "memory_limit";
    inc.root_cause.culprit_unit = "app.service";
    inc.root_cause.confidence = 0.95;
    inc.root_cause.summary = "memory limit hit by app.service";
    inc.affected_units = {"app.service"};
    cfg.state_dir = dir;
    cfg.procfs = dir;
    cfg.guardrails.pause_file = dir + "/pause";
    cfg.approval_timeout_ns = 300 * kS;
    reset_executor();
  }
  void reset_executor() {
    ex = std::make_unique<Executor>(cfg, units, probe,
                                    [this](const Record& r) { records.push_back(r); });
  }
  ~Harness() { fs::remove_all(dir); }
  const PlanRun& submit(uint64_t now) { return ex->submit(inc, select_plan(inc, policies), now); }
  uint64_t memmax() { return std::get<uint64_t>(units.props["app.service/MemoryMax"]); }
  std::vector<RecordKind> kinds() const {
    std::vector<RecordKind> k;
    for (const auto& r : records)
      k.push_back(r.kind);
    return k;
  }
};

}  // namespace

// An OOM kill in a cgroup that is no unit's gives a memory_limit incident without a culprit: a
// plan of unit actions has nothing to act on and must not spend a budget (a storm of them
// spent the node's hourly budget and the next real OOM loop was refused).
TEST(Executor, PlanWithUnitActionsAndNoTargetIsRefusedWithoutSpendingABudget) {
  Harness h;
  h.inc.root_cause.culprit_unit.clear();
  h.inc.affected_units.clear();
  for (int i = 0; i < 20; ++i) {
    h.inc.id = "inc-" + std::to_string(i);
    const PlanRun& r = h.submit(static_cast<uint64_t>(i) * kS);
    EXPECT_EQ(r.outcome, Outcome::Refused);
    EXPECT_NE(r.reason.find("names no unit"), std::string::npos) << r.reason;
  }
  EXPECT_EQ(h.ex->guardrails().runs_last_hour(20 * kS), 0u);
  EXPECT_TRUE(h.units.calls.empty());
  h.inc.root_cause.culprit_unit = "app.service";
  h.inc.id = "inc-real";
  EXPECT_EQ(h.submit(21 * kS).state, RunState::Verifying);
}

TEST(Executor, AppliesVerifiesAfterTheStableWindowAndResolves) {
  Harness h;
  const PlanRun& r = h.submit(10 * kS);
  EXPECT_EQ(r.state, RunState::Verifying);
  EXPECT_EQ(h.memmax(), uint64_t{125} << 20);
  EXPECT_EQ(h.units.calls.back(), "restart app.service");
  EXPECT_EQ(r.incident.state, IncidentState::Remediating);
  EXPECT_EQ(r.incident.remediation_start_ns, 10 * kS);
  h.ex->tick(11 * kS);  // holds: the stable window starts
  h.ex->tick(25 * kS);
  EXPECT_EQ(r.state, RunState::Verifying);  // 14 s < 20 s
  h.ex->tick(31 * kS);
  EXPECT_EQ(r.outcome, Outcome::Verified);
  EXPECT_EQ(r.incident.state, IncidentState::Resolved);
  EXPECT_EQ(r.incident.recovered_ns, 31 * kS);
  EXPECT_EQ(h.kinds(),
            (std::vector<RecordKind>{RecordKind::ActionStarted, RecordKind::ActionFinished,
                                     RecordKind::ActionStarted, RecordKind::ActionFinished,
                                     RecordKind::Verified}));
  EXPECT_EQ(h.records[0].incident_id, "inc-1");
  EXPECT_EQ(h.records[0].policy, "mem");
  EXPECT_EQ(h.records[0].unit, "app.service");
  EXPECT_EQ(h.records[0].action, "raise_memory_limit");
  // The journal shows nothing unfinished.
  EXPECT_TRUE(IntentJournal(h.dir).unfinished()->empty());
}

TEST(Executor, FailedVerificationRollsBackExactlyAndEscalatesWithEverythingTried) {
  Harness h;
  h.probe.ok = false;
  const PlanRun& r = h.submit(0);
  EXPECT_EQ(h.memmax(), uint64_t{125} << 20);
  h.ex->tick(30 * kS);
  EXPECT_EQ(r.state, RunState::Verifying);
  h.ex->tick(61 * kS);  // past the deadline
  EXPECT_EQ(r.outcome, Outcome::Escalated);
  EXPECT_EQ(h.memmax(), uint64_t{100} << 20);  // exactly as before
  EXPECT_EQ(r.incident.state, IncidentState::Escalated);
  const Record& esc = h.records.back();
  EXPECT_EQ(esc.kind, RecordKind::Escalated);
  EXPECT_EQ(esc.priority, 2);
  EXPECT_NE(esc.message.find("raise_memory_limit"), std::string::npos) << esc.message;
  EXPECT_NE(esc.message.find("rolled back"), std::string::npos) << esc.message;
  EXPECT_NE(esc.message.find("restart_unit"), std::string::npos) << esc.message;
  EXPECT_NE(esc.message.find("restarted again"), std::string::npos) << esc.message;
  EXPECT_EQ(esc.extra.at("culprit_unit"), "app.service");
  int rolled = 0;
  for (const auto& rec : h.records)
    rolled += rec.kind == RecordKind::RolledBack;
  EXPECT_EQ(rolled, 1);  // the restart is not reversible; the limit is
}

TEST(Executor, FailingStepRollsBackEarlierStepsAndEscalates) {
  Harness h;
  h.units.job_result = "failed";
  const PlanRun& r = h.submit(0);
  EXPECT_EQ(r.outcome, Outcome::Escalated);
  EXPECT_EQ(h.memmax(), uint64_t{100} << 20);
  EXPECT_NE(r.reason.find("restart_unit failed"), std::string::npos) << r.reason;
}

TEST(Executor, ApproveModeWaitsThenApproveDenyOrDeadline) {
  {
    Harness h("approve");
    const PlanRun& r = h.submit(0);
    EXPECT_EQ(r.state, RunState::AwaitingApproval);
    EXPECT_EQ(r.incident.state, IncidentState::AwaitingApproval);
    EXPECT_TRUE(h.units.calls.empty());
    EXPECT_EQ(h.memmax(), uint64_t{100} << 20);
    h.ex->tick(100 * kS);
    EXPECT_TRUE(h.units.calls.empty());
    ASSERT_TRUE(h.ex->approve("inc-1", 100 * kS).ok());
    EXPECT_EQ(r.state, RunState::Verifying);
    EXPECT_EQ(h.memmax(), uint64_t{125} << 20);
    EXPECT_FALSE(h.ex->approve("inc-1", 101 * kS).ok());  // nothing awaits any more
  }
  {
    Harness h("approve");
    const PlanRun& r = h.submit(0);
    ASSERT_TRUE(h.ex->deny("inc-1", 5 * kS).ok());
    EXPECT_EQ(r.outcome, Outcome::Escalated);
    EXPECT_TRUE(h.units.calls.empty());
  }
  {
    Harness h("approve");
    const PlanRun& r = h.submit(0);
    h.ex->tick(301 * kS);
    EXPECT_EQ(r.outcome, Outcome::Escalated);
    EXPECT_NE(r.reason.find("no approval"), std::string::npos);
    EXPECT_TRUE(h.units.calls.empty());
  }
}

TEST(Executor, GuardsStopTheThirdRunAndProtectedUnitsAndPause) {
  Harness h;
  h.ex->submit(h.inc, select_plan(h.inc, h.policies), 0);
  h.ex->tick(1 * kS);
  h.ex->tick(30 * kS);
  Incident second = h.inc;
  second.id = "inc-2";
  const PlanRun& r2 = h.ex->submit(second, select_plan(second, h.policies), 60 * kS);
  EXPECT_EQ(r2.outcome, Outcome::Refused);  // cooldown
  EXPECT_NE(r2.reason.find("cooldown"), std::string::npos);
  Incident third = h.inc;
  third.id = "inc-3";
  h.ex->submit(third, select_plan(third, h.policies), 700 * kS);
  h.ex->tick(701 * kS);
  h.ex->tick(730 * kS);
  Incident fourth = h.inc;
  fourth.id = "inc-4";
  const PlanRun& r4 = h.ex->submit(fourth, select_plan(fourth, h.policies), 1400 * kS);
  EXPECT_EQ(r4.outcome, Outcome::Refused);  // max_runs 2 per hour
  EXPECT_NE(r4.reason.find("max_runs"), std::string::npos) << r4.reason;

  Harness p;
  p.inc.root_cause.culprit_unit = "sshd.service";
  const size_t before = p.units.calls.size();
  const PlanRun& rp = p.submit(0);
  EXPECT_EQ(rp.outcome, Outcome::Refused);
  EXPECT_NE(rp.reason.find("protected"), std::string::npos);
  EXPECT_EQ(p.units.calls.size(), before);

  Harness q;
  std::ofstream(q.cfg.guardrails.pause_file) << "";
  const PlanRun& rq = q.submit(0);
  EXPECT_EQ(rq.outcome, Outcome::Refused);
  EXPECT_TRUE(q.units.calls.empty());
  EXPECT_EQ(q.memmax(), uint64_t{100} << 20);
}

TEST(Executor, ObserveAndDryRunDescribeExactlyAndTouchNothing) {
  Harness h("observe");
  const PlanRun& r = h.submit(0);
  EXPECT_EQ(r.outcome, Outcome::Observed);
  EXPECT_EQ(h.memmax(), uint64_t{100} << 20);
  for (const auto& c : h.units.calls)
    EXPECT_EQ(c.rfind("set", 0), std::string::npos) << c;
  ASSERT_FALSE(h.records.empty());
  EXPECT_NE(h.records[0].message.find("Would have run raise_memory_limit: raise MemoryMax of "
                                      "app.service from 100M to 125M"),
            std::string::npos)
      << h.records[0].message;
}

TEST(Executor, CrashBetweenApplyAndVerifyIsRolledBackFromTheJournalNotRepeated) {
  Harness h;
  h.submit(0);
  EXPECT_EQ(h.memmax(), uint64_t{125} << 20);
  // mendd dies here (kill -9): no end line. A new mendd starts over the same state dir.
  h.records.clear();
  h.units.calls.clear();
  h.reset_executor();
  ASSERT_TRUE(h.ex->recover(100 * kS).ok());
  EXPECT_EQ(h.memmax(), uint64_t{100} << 20);  // undone from the journal's undo record
  for (const auto& c : h.units.calls)
    EXPECT_EQ(c.rfind("restart", 0), std::string::npos) << "repeated: " << c;
  ASSERT_EQ(h.records.size(), 1u);
  EXPECT_EQ(h.records[0].kind, RecordKind::Escalated);
  EXPECT_NE(h.records[0].message.find("raise_memory_limit: rolled back"), std::string::npos)
      << h.records[0].message;
  EXPECT_NE(h.records[0].message.find("restart_unit: irreversible"), std::string::npos);
  // Once: a second start finds nothing to do.
  h.records.clear();
  ASSERT_TRUE(h.ex->recover(200 * kS).ok());
  EXPECT_TRUE(h.records.empty());
}

// Killed after a step applied but before its "applied" record: the undo foreseen in the intent
// record undoes it all the same.
TEST(Executor, CrashBeforeTheAppliedRecordIsStillRolledBack) {
  Harness h;
  h.submit(0);
  EXPECT_EQ(h.memmax(), uint64_t{125} << 20);
  std::ifstream in(h.dir + "/intent.jsonl");
  std::string text, line;
  while (std::getline(in, line))
    if (line.find("\"applied\"") == std::string::npos)
      text += line + "\n";
  in.close();
  ASSERT_NE(text.find("\"undo\""), std::string::npos) << text;  // foreseen in the intent
  std::ofstream(h.dir + "/intent.jsonl", std::ios::trunc) << text;
  h.records.clear();
  h.reset_executor();
  ASSERT_TRUE(h.ex->recover(100 * kS).ok());
  EXPECT_EQ(h.memmax(), uint64_t{100} << 20);
  ASSERT_EQ(h.records.size(), 1u);
  EXPECT_NE(h.records[0].message.find("rolled back (killed while it applied)"), std::string::npos)
      << h.records[0].message;
}

TEST(Executor, NotifyCommandGetsTheIncidentOnStdinWithoutAShell) {
  Harness h;
  const std::string out = h.dir + "/page.json";
  h.cfg.notify_command = {"/usr/bin/tee", out};
  h.reset_executor();
  h.units.job_result = "failed";
  h.submit(0);
  h.ex->drain_notifications();  // the page runs off the loop, on the notifier's thread
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ss.str();
  EXPECT_EQ(j["id"], "inc-1");
  EXPECT_EQ(j["state"], "escalated");
  EXPECT_EQ(j["root_cause"]["culprit_unit"], "app.service");
}

TEST(IntentJournal, TornLastLineIsSkipped) {
  char tmpl[] = "/tmp/mend-wal-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  IntentJournal j(dir);
  ASSERT_TRUE(j.begin("run-1", "inc-1", "mem", "a.service").ok());
  ASSERT_TRUE(j.intent("run-1", 0, "raise_memory_limit", {{"step", 25.0}}).ok());
  ASSERT_TRUE(j.applied("run-1", 0, {{"previous", 1}}).ok());
  std::ofstream(j.path(), std::ios::app) << "{\"run\":\"run-1\",\"pha";
  auto u = j.unfinished();
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->size(), 1u);
  EXPECT_TRUE((*u)[0].steps.at(0).applied);
  EXPECT_EQ((*u)[0].steps.at(0).undo["previous"], 1);
  fs::remove_all(dir);
}

// Before: a short write on a full disk left a fragment the next record was glued to, and
// recovery discarded both. Now the next record starts on a line of its own.
TEST(IntentJournal, TornRecordNeverTakesTheNextWithIt) {
  char tmpl[] = "/tmp/mend-wal-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  IntentJournal j(dir);
  ASSERT_TRUE(j.begin("run-1", "inc-1", "mem", "a.service").ok());
  std::ofstream(j.path(), std::ios::app) << "{\"run\":\"run-1\",\"pha";  // torn
  ASSERT_TRUE(j.intent("run-1", 0, "raise_memory_limit", {{"step", 25.0}}).ok());
  ASSERT_TRUE(j.applied("run-1", 0, {{"previous", 1}}).ok());
  auto u = j.unfinished();
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->size(), 1u);
  ASSERT_EQ((*u)[0].steps.size(), 1u);
  EXPECT_TRUE((*u)[0].steps[0].applied);
  EXPECT_EQ((*u)[0].steps[0].undo["previous"], 1);
  // The space held back for a full disk is there once a plan has begun.
  EXPECT_GE(j.reserve_bytes(), IntentJournal::kReserveBytes);
  fs::remove_all(dir);
}

// Compaction keeps exactly the unfinished runs, and the journal stays readable.
TEST(IntentJournal, CompactionKeepsEveryUnfinishedRun) {
  char tmpl[] = "/tmp/mend-wal-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  IntentJournal j(dir, 4096);
  ASSERT_TRUE(j.begin("open", "inc-0", "mem", "a.service").ok());
  ASSERT_TRUE(j.intent("open", 0, "raise_memory_limit", {{"step", 25.0}}).ok());
  for (int i = 0; i < 100; ++i) {
    const std::string run = "done-" + std::to_string(i);
    ASSERT_TRUE(j.begin(run, "inc", "mem", "b.service").ok());
    ASSERT_TRUE(j.end(run, "verified").ok());
  }
  EXPECT_LT(fs::file_size(j.path()), 8192u);
  auto u = j.unfinished();
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->size(), 1u);
  EXPECT_EQ((*u)[0].run_id, "open");
  EXPECT_EQ((*u)[0].steps.size(), 1u);
  fs::remove_all(dir);
}

// A plan whose verification succeeded is never rolled back by a restart that finds no end
// (mendd killed between the two records, or the end could not be written).
TEST(Executor, RestartAfterVerificationWithoutAnEndNeverUndoesTheFix) {
  Harness h;
  h.submit(10 * kS);
  h.ex->tick(11 * kS);
  h.ex->tick(31 * kS);
  ASSERT_EQ(h.ex->find("inc-1")->outcome, Outcome::Verified);
  // The journal as a kill -9 between "verified" and "end" leaves it.
  std::ifstream in(h.dir + "/intent.jsonl");
  std::string text, line;
  while (std::getline(in, line))
    if (line.find("\"end\"") == std::string::npos)
      text += line + "\n";
  in.close();
  ASSERT_NE(text.find("\"verified\""), std::string::npos) << text;
  std::ofstream(h.dir + "/intent.jsonl", std::ios::trunc) << text;
  h.records.clear();
  h.units.calls.clear();
  h.reset_executor();
  ASSERT_TRUE(h.ex->recover(100 * kS).ok());
  EXPECT_EQ(h.memmax(), uint64_t{125} << 20);  // the fix stays
  EXPECT_TRUE(h.units.calls.empty());
  ASSERT_EQ(h.records.size(), 1u);
  EXPECT_NE(h.records[0].message.find("was verified; nothing undone"), std::string::npos);
  EXPECT_TRUE(IntentJournal(h.dir).unfinished()->empty());
}

// A step whose undo record cannot be written is undone at once and the plan stops: a crash
// would otherwise leave a change nobody knows how to undo.
TEST(Executor, StepWhoseUndoRecordCannotBeWrittenIsUndoneAtOnce) {
  Harness h;
  // The journal becomes unwritable (for root too) while the step applies.
  const std::string wal = h.dir + "/intent.jsonl";
  h.units.on_set = [&] {
    fs::rename(wal, wal + ".saved");
    fs::create_directory(wal);
    h.units.on_set = nullptr;
  };
  const PlanRun& r = h.submit(0);
  fs::remove(wal);
  fs::rename(wal + ".saved", wal);
  EXPECT_NE(r.outcome, Outcome::Verified);
  EXPECT_EQ(h.memmax(), uint64_t{100} << 20);
  EXPECT_NE(r.steps[0].result.find("cannot write the undo record"), std::string::npos)
      << r.steps[0].result;
}

TEST(Executor, RollbackThenNextTriesTheNextPolicyThenEscalatesWithEveryStep) {
  Harness h;
  auto irs = parse_policies(R"(
policies:
  - name: raise
    match: {root_cause: memory_limit}
    mode: auto
    actions:
      - raise_memory_limit: {step: 25%, ceiling: 1G}
    verify: {deadline: 10s, stable_for: 5s}
    on_failure: rollback_then_next
  - name: restart
    match: {root_cause: memory_limit}
    mode: auto
    actions:
      - restart_unit: {timeout: 10s}
    verify: {deadline: 10s, stable_for: 5s}
)",
                            "p.yaml");
  ASSERT_TRUE(irs.ok()) << irs.error().message;
  h.policies = *compile_policies(*irs);
  h.ex->set_next_plan([&](const Incident& inc, const std::set<std::string>& tried) {
    return select_plan(inc, h.policies, inc.slo_impact, tried);
  });
  h.probe.ok = false;
  h.submit(0);
  h.ex->tick(11 * kS);  // the first plan's deadline: rolled back, the next one runs
  EXPECT_EQ(std::get<uint64_t>(h.units.props["app.service/MemoryMax"]), uint64_t{100} << 20);
  const PlanRun* r = h.ex->find("inc-1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->policy->ir.name, "restart");
  EXPECT_EQ(r->state, RunState::Verifying);
  EXPECT_EQ(h.units.calls.back(), "restart app.service");
  h.ex->tick(22 * kS);  // the last plan fails too: escalate, nothing further to try
  r = h.ex->find("inc-1");
  EXPECT_EQ(r->outcome, Outcome::Escalated);
  ASSERT_FALSE(h.records.empty());
  const Record& esc = h.records.back();
  EXPECT_EQ(esc.kind, RecordKind::Escalated);
  EXPECT_NE(esc.message.find("raise/raise_memory_limit"), std::string::npos) << esc.message;
  EXPECT_NE(esc.message.find("rolled back"), std::string::npos) << esc.message;
  EXPECT_NE(esc.message.find("restart/restart_unit"), std::string::npos) << esc.message;
  // Both runs are listed (the replaced one retired, not lost).
  EXPECT_EQ(h.ex->runs().size(), 2u);
}

TEST(Executor, GuardrailHistoryAndPauseSurviveARestart) {
  Harness h;
  h.cfg.guardrails.state_file = h.dir + "/guardrails.json";
  h.reset_executor();
  ASSERT_TRUE(h.ex->guardrails().load(0).ok());
  h.submit(100 * kS);
  h.ex->tick(101 * kS);
  h.ex->tick(130 * kS);
  ASSERT_EQ(h.ex->find("inc-1")->outcome, Outcome::Verified);
  ASSERT_TRUE(h.ex->guardrails().set_paused(true).ok());
  // A new mendd: the same state file.
  h.reset_executor();
  ASSERT_TRUE(h.ex->guardrails().load(200 * kS).ok());
  EXPECT_TRUE(h.ex->guardrails().paused());
  EXPECT_EQ(h.ex->guardrails().successes(h.policies[0].ir, "app.service"), 1u);
  ASSERT_TRUE(h.ex->guardrails().set_paused(false).ok());
  Incident again = h.inc;
  again.id = "inc-2";
  const PlanRun& r = h.ex->submit(again, select_plan(again, h.policies), 200 * kS);
  EXPECT_EQ(r.outcome, Outcome::Refused);
  EXPECT_NE(r.reason.find("cooldown"), std::string::npos) << r.reason;
  // A damaged file is an error and fails closed: every budget spent, the file left as found,
  // until a person repairs or removes it and mendd reads it again.
  std::ofstream(h.cfg.guardrails.state_file) << "{not json";
  h.reset_executor();
  auto st = h.ex->guardrails().load(0);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("damaged"), std::string::npos);
  EXPECT_NE(st.error().message.find("counts as spent"), std::string::npos) << st.error().message;
  Incident third = h.inc;
  third.id = "inc-3";
  const PlanRun& r3 = h.ex->submit(third, select_plan(third, h.policies), 300 * kS);
  EXPECT_EQ(r3.outcome, Outcome::Refused);
  EXPECT_NE(r3.reason.find("damaged guardrail history"), std::string::npos) << r3.reason;
  std::ifstream in(h.cfg.guardrails.state_file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "{not json");
  // Well-formed JSON with values mendd never writes is damage too, not a budget reset.
  for (const char* bad :
       {R"({"paused": false, "node_runs": [1.5], "policy_runs": {}, "successes": {}})",
        R"({"paused": false, "node_runs": [-3], "policy_runs": {}, "successes": {}})",
        R"({"paused": "no", "node_runs": [], "policy_runs": {}, "successes": {}})",
        R"({"paused": false, "node_runs": [], "policy_runs": {"p": [true]}, "successes": {}})",
        R"({"paused": false, "node_runs": [], "policy_runs": {}, "successes": {"p": 1e99}})",
        R"({"paused": false, "node_runs": [], "policy_runs": {}, "successes": {"p": -1}})"}) {
    std::ofstream(h.cfg.guardrails.state_file) << bad;
    auto d = h.ex->guardrails().load(0);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.error().message.find("damaged"), std::string::npos) << d.error().message;
  }
  std::remove(h.cfg.guardrails.state_file.c_str());
  ASSERT_TRUE(h.ex->guardrails().load(400 * kS).ok());
  EXPECT_TRUE(h.ex->guardrails().damaged().empty());
  Incident fourth = h.inc;
  fourth.id = "inc-4";
  EXPECT_NE(h.ex->submit(fourth, select_plan(fourth, h.policies), 400 * kS).outcome,
            Outcome::Refused);
}

// A pause or a run the history cannot hold is an error to the caller, never a silent success.
TEST(Executor, GuardrailStateThatCannotBeSavedFailsClosed) {
  Harness h;
  h.cfg.guardrails.state_file = h.dir + "/no-such-dir/guardrails.json";
  h.reset_executor();
  ASSERT_TRUE(h.ex->guardrails().load(0).ok());  // missing: a fresh start
  EXPECT_FALSE(h.ex->guardrails().set_paused(true).ok());
  EXPECT_TRUE(h.ex->guardrails().paused());  // held in this process all the same
  ASSERT_FALSE(h.ex->guardrails().set_paused(false).ok());
  const PlanRun& r = h.submit(0);
  EXPECT_EQ(r.outcome, Outcome::Escalated);
  EXPECT_NE(r.reason.find("cannot persist the guardrail history"), std::string::npos) << r.reason;
  EXPECT_TRUE(h.units.calls.empty());  // nothing was changed
}

TEST(Executor, AutoAfterSuccessesSkipsApprovalOnceTrustIsEarned) {
  Harness h("approve");
  h.policies[0].ir.auto_after_successes = 1;
  h.submit(0);
  EXPECT_EQ(h.ex->find("inc-1")->state, RunState::AwaitingApproval);
  ASSERT_TRUE(h.ex->approve("inc-1", 1 * kS).ok());
  h.ex->tick(2 * kS);
  h.ex->tick(30 * kS);
  ASSERT_EQ(h.ex->find("inc-1")->outcome, Outcome::Verified);
  Incident next = h.inc;
  next.id = "inc-2";
  const PlanRun& r = h.ex->submit(next, select_plan(next, h.policies), 1000 * kS);
  EXPECT_TRUE(r.promoted);
  EXPECT_EQ(r.mode, Mode::Auto);
  EXPECT_EQ(r.state, RunState::Verifying);
}

TEST(Executor, ShutdownRollsBackWhatIsNotVerifiedAndEscalatesPendingApprovals) {
  Harness h;
  h.submit(0);
  ASSERT_EQ(h.ex->verifying(), 1u);
  EXPECT_EQ(std::get<uint64_t>(h.units.props["app.service/MemoryMax"]), uint64_t{125} << 20);
  h.ex->shutdown(5 * kS);
  EXPECT_EQ(h.ex->verifying(), 0u);
  EXPECT_EQ(std::get<uint64_t>(h.units.props["app.service/MemoryMax"]), uint64_t{100} << 20);
  EXPECT_EQ(h.ex->find("inc-1")->outcome, Outcome::Escalated);
  EXPECT_NE(h.ex->find("inc-1")->reason.find("stopping"), std::string::npos);

  Harness a("approve");
  a.submit(0);
  a.ex->shutdown(1 * kS);
  EXPECT_EQ(a.ex->find("inc-1")->outcome, Outcome::Escalated);
  EXPECT_EQ(a.units.calls.size(), 0u);
}

TEST(Executor, GuardrailRefusalWhileTheFaultGoesOnPagesOnceButObservePauseAndDryRunDoNot) {
  Harness h;
  h.submit(0);
  h.ex->tick(1 * kS);
  h.ex->tick(30 * kS);
  ASSERT_EQ(h.ex->find("inc-1")->outcome, Outcome::Verified);
  // The fix did not hold: a fault after the recovery is a recurrence.
  EXPECT_TRUE(h.ex->recurred("inc-1", 31 * kS));
  EXPECT_FALSE(h.ex->recurred("inc-1", 29 * kS));  // read late, from before the recovery
  EXPECT_FALSE(h.ex->recurred("inc-9", 31 * kS));
  h.records.clear();
  const PlanRun& again = h.submit(40 * kS);  // within the 10 min cooldown
  EXPECT_EQ(again.outcome, Outcome::Refused);
  EXPECT_EQ(again.incident.state, IncidentState::Escalated);
  ASSERT_EQ(h.kinds().back(), RecordKind::Escalated);
  EXPECT_NE(h.records.back().message.find("refused by a guardrail: cooldown"), std::string::npos)
      << h.records.back().message;
  EXPECT_FALSE(h.ex->recurred("inc-1", 50 * kS));  // refused, not verified: no retry storm
  EXPECT_EQ(h.memmax(), uint64_t{125} << 20);      // the second run changed nothing

  for (const std::string what : {"observe", "pause"}) {
    Harness q(what == "observe" ? "observe" : "auto");
    if (what == "pause") {
      ASSERT_TRUE(q.ex->guardrails().set_paused(true).ok());
    }
    q.submit(0);
    for (auto k : q.kinds())
      EXPECT_NE(k, RecordKind::Escalated) << what;
  }
}

namespace {
Incident incident_of(const std::string& id, const std::string& unit, const std::string& impact) {
  Incident inc;
  inc.id = id;
  inc.root_cause.kind = "memory_limit";
  inc.root_cause.culprit_unit = unit;
  inc.root_cause.confidence = 0.95;
  inc.root_cause.summary = "memory limit hit by " + unit;
  inc.affected_units = {unit};
  inc.slo_impact = impact;
  return inc;
}
}  // namespace

// Issue 14: with one plan at a time, a second incident was escalated and never retried while
// its fault went on. Now it waits for the slot, ordered by SLO impact then age.
TEST(Executor, PlansRefusedForConcurrencyWaitAndRunInImpactThenAgeOrder) {
  Harness h;
  h.units.props["a.service/MemoryMax"] = uint64_t{100} << 20;
  h.units.props["b.service/MemoryMax"] = uint64_t{100} << 20;
  h.units.props["c.service/MemoryMax"] = uint64_t{100} << 20;
  const PlanRun& first = h.submit(0);
  ASSERT_EQ(first.state, RunState::Verifying);
  Incident a = incident_of("inc-a", "a.service", "none");
  Incident b = incident_of("inc-b", "b.service", "none");
  Incident c = incident_of("inc-c", "c.service", "high");
  const PlanRun* ra = &h.ex->submit(a, select_plan(a, h.policies), 1 * kS);
  h.ex->submit(b, select_plan(b, h.policies), 2 * kS);
  h.ex->submit(c, select_plan(c, h.policies), 3 * kS);
  EXPECT_EQ(ra->state, RunState::Queued);
  EXPECT_EQ(h.ex->queued(), 3u);
  EXPECT_EQ(h.ex->counters().queued, 3u);
  const auto kinds = h.kinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), RecordKind::Escalated), 0);
  // The first plan is verified: the slot goes to the high-impact one, although it came last.
  h.ex->tick(5 * kS);
  h.ex->tick(30 * kS);
  EXPECT_EQ(first.outcome, Outcome::Verified);
  EXPECT_EQ(h.ex->find("inc-c")->state, RunState::Verifying);
  EXPECT_EQ(h.ex->find("inc-a")->state, RunState::Queued);
  EXPECT_EQ(h.units.calls.back(), "restart c.service");
  // Then the oldest of the others.
  h.ex->tick(31 * kS);
  h.ex->tick(60 * kS);
  EXPECT_EQ(h.ex->find("inc-c")->outcome, Outcome::Verified);
  EXPECT_EQ(h.ex->find("inc-a")->state, RunState::Verifying);
  EXPECT_EQ(h.ex->find("inc-b")->state, RunState::Queued);
  h.ex->tick(61 * kS);
  h.ex->tick(90 * kS);
  h.ex->tick(91 * kS);
  h.ex->tick(120 * kS);
  EXPECT_EQ(h.ex->find("inc-b")->outcome, Outcome::Verified);
  EXPECT_EQ(h.memmax(), uint64_t{125} << 20);
  EXPECT_EQ(std::get<uint64_t>(h.units.props["b.service/MemoryMax"]), uint64_t{125} << 20);
  EXPECT_TRUE(IntentJournal(h.dir).unfinished()->empty());
}

TEST(Executor, AWaitingPlanEscalatesAtItsDeadlineOrEndsWhenTheFaultClears) {
  Harness h;
  h.cfg.queue_timeout_ns = 40 * kS;
  h.reset_executor();
  h.probe.ok = false;  // the first plan never verifies: it holds the slot until its deadline
  h.submit(0);
  Incident a = incident_of("inc-a", "a.service", "none");
  Incident b = incident_of("inc-b", "b.service", "none");
  h.units.props["a.service/MemoryMax"] = uint64_t{100} << 20;
  h.units.props["b.service/MemoryMax"] = uint64_t{100} << 20;
  h.ex->submit(a, select_plan(a, h.policies), 1 * kS);
  h.ex->submit(b, select_plan(b, h.policies), 2 * kS);
  // b's fault clears by itself while it waits (the correlator says so through refresh).
  Incident b_now = b;
  b_now.state = IncidentState::Resolved;
  h.ex->refresh(b_now);
  h.ex->tick(3 * kS);
  // A loop looks recovered between its failures: not cleared until it stays so for the
  // policy's stable_for (20 s).
  EXPECT_EQ(h.ex->find("inc-b")->state, RunState::Queued);
  Incident b_again = b;  // the next failure of the loop
  h.ex->refresh(b_again);
  h.ex->tick(10 * kS);
  EXPECT_EQ(h.ex->find("inc-b")->state, RunState::Queued);
  h.ex->refresh(b_now);
  h.ex->tick(12 * kS);
  h.ex->tick(31 * kS);  // 19 s recovered: still waiting
  EXPECT_EQ(h.ex->find("inc-b")->state, RunState::Queued);
  h.ex->tick(33 * kS);
  EXPECT_EQ(h.ex->find("inc-b")->state, RunState::Done);
  EXPECT_EQ(h.ex->find("inc-b")->reason, "the fault cleared while the plan waited for a slot");
  EXPECT_EQ(h.ex->find("inc-a")->state, RunState::Queued);
  h.ex->tick(42 * kS);  // a waited 41 s > 40 s
  const PlanRun* ra = h.ex->find("inc-a");
  EXPECT_EQ(ra->outcome, Outcome::Escalated);
  EXPECT_NE(ra->reason.find("for a slot"), std::string::npos) << ra->reason;
  EXPECT_EQ(h.ex->counters().queue_timeouts, 1u);
  EXPECT_EQ(std::get<uint64_t>(h.units.props["a.service/MemoryMax"]), uint64_t{100} << 20);
}

// Issue 14: past 1024 incidents the executor erased the oldest run even while it was applying
// or verifying, leaking its concurrency slot: no plan ever ran again.
TEST(Executor, ALiveRunIsNeverEvictedAndPlansStillRunAfterThousandsOfIncidents) {
  Harness h;
  h.cfg.guardrails.node_max_per_hour = 1000000;
  h.reset_executor();
  const PlanRun& first = h.submit(0);
  ASSERT_EQ(first.state, RunState::Verifying);
  for (int i = 0; i < 1500; ++i) {
    Incident x =
        incident_of("inc-x" + std::to_string(i), "x" + std::to_string(i) + ".service", "none");
    // Observe: recorded and done at once, like most incidents of a storm.
    PlanChoice choice = select_plan(x, h.policies);
    choice.mode = Mode::Observe;
    h.ex->submit(x, choice, 1 * kS);
  }
  ASSERT_NE(h.ex->find("inc-1"), nullptr);
  EXPECT_EQ(h.ex->find("inc-1")->state, RunState::Verifying);
  EXPECT_LE(h.ex->runs().size(), Executor::kMaxRuns);
  EXPECT_GT(h.ex->counters().runs_evicted, 0u);
  h.ex->tick(2 * kS);
  h.ex->tick(30 * kS);
  EXPECT_EQ(first.outcome, Outcome::Verified);
  EXPECT_EQ(h.ex->guardrails().running(), 0u);
  // And the next plan runs.
  Incident y = incident_of("inc-y", "y.service", "none");
  h.units.props["y.service/MemoryMax"] = uint64_t{100} << 20;
  EXPECT_EQ(h.ex->submit(y, select_plan(y, h.policies), 31 * kS).state, RunState::Verifying);
}
