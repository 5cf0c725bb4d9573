#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "correlate/replay.h"
#include "policy/plan_selector.h"
#include "remedy/guardrails.h"

using namespace mend;

namespace {

constexpr uint64_t kS = 1000000000ull;

std::vector<CompiledPolicy> policies(const std::string& yaml) {
  auto irs = parse_policies(yaml, "p.yaml");
  EXPECT_TRUE(irs.ok()) << irs.error().message;
  auto c = compile_policies(*irs);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return *c;
}

Incident incident(const std::string& kind, const std::string& culprit, double confidence) {
  Incident i;
  i.root_cause.kind = kind;
  i.root_cause.culprit_unit = culprit;
  i.root_cause.confidence = confidence;
  i.affected_units = {culprit};
  return i;
}

const char* kPolicies = R"(
policies:
  - name: db-mem
    match: {root_cause: memory_limit, units: ["db@*.service"], min_confidence: 0.9}
    mode: auto
    actions: [{raise_memory_limit: {ceiling: 8G}}, restart_unit]
  - name: any-mem
    match: {root_cause: memory_limit}
    mode: {high: auto, low: approve}
    actions: [{raise_memory_limit: {ceiling: 2G}}]
  - name: logs
    match: {root_cause: unit_crash, units: ["web.service"]}
    actions: [restart_unit]
)";

}  // namespace

TEST(PlanSelector, FirstMatchingPolicyInOrder) {
  auto ps = policies(kPolicies);
  auto c = select_plan(incident("memory_limit", "db@main.service", 0.95), ps, "low");
  ASSERT_TRUE(c.policy);
  EXPECT_EQ(c.policy->ir.name, "db-mem");
  EXPECT_EQ(c.mode, Mode::Auto);
  EXPECT_EQ(c.target_unit, "db@main.service");

  c = select_plan(incident("memory_limit", "cache.service", 0.95), ps, "high");
  ASSERT_TRUE(c.policy);
  EXPECT_EQ(c.policy->ir.name, "any-mem");
  EXPECT_EQ(c.mode, Mode::Auto);  // by SLO impact
  c = select_plan(incident("memory_limit", "cache.service", 0.95), ps, "medium");
  EXPECT_EQ(c.mode, Mode::Observe);  // impact not listed: the safest mode
}

TEST(PlanSelector, RefusesUnknownOrUnsureRootCauses) {
  auto ps = policies(kPolicies);
  auto c = select_plan(incident("unknown", "x.service", 1), ps);
  EXPECT_FALSE(c.policy);
  EXPECT_NE(c.reason.find("unknown"), std::string::npos);
  // db-mem needs 0.9; any-mem (default 0.8) takes it at 0.85.
  c = select_plan(incident("memory_limit", "db@main.service", 0.85), ps);
  ASSERT_TRUE(c.policy);
  EXPECT_EQ(c.policy->ir.name, "any-mem");
  c = select_plan(incident("memory_limit", "db@main.service", 0.6), ps);
  EXPECT_FALSE(c.policy);
  EXPECT_NE(c.reason.find("min_confidence"), std::string::npos) << c.reason;
  c = select_plan(incident("unit_crash", "api.service", 0.9), ps);
  EXPECT_FALSE(c.policy);
  EXPECT_NE(c.reason.find("is not in its units"), std::string::npos) << c.reason;
}

// `units:` selects on the unit the actions act on: a bystander in the incident that the
// policy names does not make its culprit a target.
TEST(PlanSelector, UnitsSelectOnTheCulpritNotOnBystanders) {
  auto ps = policies(kPolicies);
  auto inc = incident("unit_crash", "api.service", 0.9);
  inc.affected_units.insert("web.service");
  auto c = select_plan(inc, ps);
  EXPECT_FALSE(c.policy) << c.reason;
  EXPECT_NE(c.reason.find("the culprit unit api.service is not in its units"), std::string::npos)
      << c.reason;
  c = select_plan(incident("unit_crash", "web.service", 0.9), ps);
  ASSERT_TRUE(c.policy) << c.reason;
  EXPECT_EQ(c.target_unit, "web.service");
}

// Slices, user managers, session scopes and init.scope hold other units or a person's whole
// session: targets only when a policy names them literally (a glob is not enough).
TEST(PlanSelector, UnitsHoldingOthersAreTargetsOnlyWhenNamedLiterally) {
  auto ps = policies(R"(
policies:
  - name: literal
    match: {root_cause: memory_limit, units: ["user@1000.service"]}
    mode: auto
    actions: [{raise_memory_limit: {ceiling: 2G}}]
  - name: glob
    match: {root_cause: memory_limit, units: ["*"]}
    mode: auto
    actions: [{raise_memory_limit: {ceiling: 2G}}]
)");
  for (const char* u :
       {"user@1001.service", "session-3.scope", "user.slice", "init.scope", "system-getty.slice"}) {
    auto c = select_plan(incident("memory_limit", u, 0.95), ps);
    EXPECT_FALSE(c.policy) << u;
    EXPECT_NE(c.reason.find("name it literally"), std::string::npos) << c.reason;
  }
  auto c = select_plan(incident("memory_limit", "user@1000.service", 0.95), ps);
  ASSERT_TRUE(c.policy) << c.reason;
  EXPECT_EQ(c.policy->ir.name, "literal");
  c = select_plan(incident("memory_limit", "userx@1.service", 0.95), ps);
  ASSERT_TRUE(c.policy) << c.reason;
  EXPECT_EQ(c.policy->ir.name, "glob");
}

TEST(Guardrails, CooldownThenBudgetStopTheThirdRun) {
  GuardrailConfig cfg;
  cfg.pause_file.clear();
  cfg.node_max_per_hour = 100;
  Guardrails g(cfg);
  PolicyIR p;
  p.name = "mem";
  p.guards.cooldown_ns = 60 * kS;
  p.guards.max_runs = 2;
  p.guards.per_ns = 3600 * kS;
  ASSERT_TRUE(g.admit(p, "a.service", Mode::Auto, 0).allowed);
  ASSERT_TRUE(g.started(p, "a.service", 0).ok());
  g.finished();
  auto v = g.admit(p, "a.service", Mode::Auto, 30 * kS);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("cooldown"), std::string::npos);
  EXPECT_TRUE(g.admit(p, "b.service", Mode::Auto, 30 * kS).allowed);  // per target
  ASSERT_TRUE(g.admit(p, "a.service", Mode::Auto, 61 * kS).allowed);
  ASSERT_TRUE(g.started(p, "a.service", 61 * kS).ok());
  g.finished();
  v = g.admit(p, "a.service", Mode::Auto, 200 * kS);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("max_runs 2"), std::string::npos) << v.reason;
  EXPECT_TRUE(g.admit(p, "a.service", Mode::Auto, 3700 * kS).allowed);  // window passed
}

// One culprit cannot spend the node's budget: runs on one target are capped per hour across
// every policy, while other targets still get theirs.
TEST(Guardrails, PerTargetBudgetAcrossPolicies) {
  GuardrailConfig cfg;
  cfg.pause_file.clear();
  cfg.node_max_per_hour = 100;
  cfg.target_max_per_hour = 3;
  Guardrails g(cfg);
  std::vector<PolicyIR> ps(4);
  for (size_t i = 0; i < ps.size(); ++i) {
    ps[i].name = "p" + std::to_string(i);
    ps[i].guards.cooldown_ns = 0;
    ps[i].guards.max_runs = 100;
  }
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(g.admit(ps[i], "user-app.service", Mode::Auto, i * kS).allowed);
    ASSERT_TRUE(g.started(ps[i], "user-app.service", i * kS).ok());
    g.finished();
  }
  auto v = g.admit(ps[3], "user-app.service", Mode::Auto, 10 * kS);
  EXPECT_FALSE(v.allowed);
  EXPECT_TRUE(v.page);
  EXPECT_NE(v.reason.find("target budget: 3 plans on user-app.service"), std::string::npos)
      << v.reason;
  EXPECT_TRUE(g.admit(ps[3], "db.service", Mode::Auto, 10 * kS).allowed);
  EXPECT_TRUE(g.admit(ps[3], "user-app.service", Mode::Auto, 3700 * kS).allowed);
}

TEST(Guardrails, NodeBudgetProtectedUnitsPauseObserveDryRun) {
  char tmpl[] = "/tmp/mend-pause-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  GuardrailConfig cfg;
  cfg.pause_file = dir + "/pause";
  cfg.node_max_per_hour = 2;
  cfg.node_max_concurrent = 1;
  Guardrails g(cfg);
  PolicyIR p;
  p.name = "x";
  p.guards.cooldown_ns = 0;
  p.guards.max_runs = 100;
  EXPECT_FALSE(g.admit(p, "sshd.service", Mode::Auto, 0).allowed);
  EXPECT_FALSE(g.admit(p, "systemd-journald.service", Mode::Auto, 0).allowed);
  EXPECT_FALSE(g.admit(p, "a.service", Mode::Observe, 0).allowed);
  ASSERT_TRUE(g.started(p, "a.service", 0).ok());
  auto v = g.admit(p, "b.service", Mode::Auto, kS);
  EXPECT_FALSE(v.allowed);  // one at a time
  EXPECT_NE(v.reason.find("already running"), std::string::npos);
  g.finished();
  ASSERT_TRUE(g.started(p, "b.service", 2 * kS).ok());
  g.finished();
  v = g.admit(p, "c.service", Mode::Auto, 3 * kS);
  EXPECT_FALSE(v.allowed);  // 2 per hour
  EXPECT_NE(v.reason.find("last hour"), std::string::npos);
  EXPECT_TRUE(g.admit(p, "c.service", Mode::Auto, 3601 * kS).allowed);
  std::ofstream(cfg.pause_file) << "";
  v = g.admit(p, "c.service", Mode::Auto, 3601 * kS);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("paused"), std::string::npos);
  unlink(cfg.pause_file.c_str());
  ASSERT_TRUE(g.set_paused(true).ok());
  EXPECT_FALSE(g.admit(p, "c.service", Mode::Auto, 3601 * kS).allowed);
  ASSERT_TRUE(g.set_paused(false).ok());
  GuardrailConfig dry = cfg;
  dry.dry_run = true;
  EXPECT_FALSE(Guardrails(dry).admit(p, "c.service", Mode::Auto, 0).allowed);
  rmdir(dir.c_str());
}

// Replay with the shipped policies: the OOM loop gets the memory policy, the full disk (not a
// log volume) the fix-the-disk-then-restart policy, in approve mode when no SLO is burning.
TEST(PlanSelector, ReplayedIncidentsGetTheShippedPolicies) {
  std::ifstream in(std::string(MEND_CORPUS_DIR) + "/two_independent_failures.jsonl");
  auto r = replay(in, "two_independent_failures.jsonl", {});
  ASSERT_TRUE(r.ok());
  auto pols = load_policy_dir(MEND_POLICIES_DIR, /*strict_modes=*/false);
  ASSERT_TRUE(pols.ok()) << pols.error().message;
  ASSERT_EQ(r->incidents.size(), 2u);
  auto mem = select_plan(r->incidents[0], *pols);
  ASSERT_TRUE(mem.policy);
  EXPECT_EQ(mem.policy->ir.name, "memory-limit-raise");
  EXPECT_EQ(mem.mode, Mode::Approve);
  EXPECT_EQ(mem.target_unit, "cache.service");
  auto disk = select_plan(r->incidents[1], *pols);
  ASSERT_TRUE(disk.policy) << disk.reason;
  EXPECT_EQ(disk.policy->ir.name, "enospc-crash-fix-disk-then-restart");
  EXPECT_EQ(disk.mode, Mode::Approve);
  EXPECT_EQ(select_plan(r->incidents[1], *pols, "high").mode, Mode::Auto);
}

// Shipped policy files load in lexical order and the first match wins: a full log volume gets
// the log rotation (10-disk-logs.yaml), not the catch-all ENOSPC policy (80-...), which still
// takes every other mount. The install-and-boot test found them the other way round.
TEST(PlanSelector, ShippedLogPolicyComesBeforeTheCatchAll) {
  auto pols = load_policy_dir(MEND_POLICIES_DIR, /*strict_modes=*/false);
  ASSERT_TRUE(pols.ok()) << pols.error().message;
  Incident logs = incident("fs_full", "app.service", 0.9);
  logs.root_cause.entities["mount"] = "/var/log/app";
  auto a = select_plan(logs, *pols, "none");
  ASSERT_TRUE(a.policy) << a.reason;
  EXPECT_EQ(a.policy->ir.name, "log-volume-rotate");
  Incident other = incident("fs_full", "app.service", 0.9);
  other.root_cause.entities["mount"] = "/srv/cache";
  auto b = select_plan(other, *pols, "none");
  ASSERT_TRUE(b.policy) << b.reason;
  EXPECT_EQ(b.policy->ir.name, "enospc-crash-fix-disk-then-restart");
}
