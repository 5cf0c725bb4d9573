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
  EXPECT_NE(c.reason.find("no unit of the incident matches"), std::string::npos) << c.reason;
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
  g.started(p, "a.service", 0);
  g.finished();
  auto v = g.admit(p, "a.service", Mode::Auto, 30 * kS);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("cooldown"), std::string::npos);
  EXPECT_TRUE(g.admit(p, "b.service", Mode::Auto, 30 * kS).allowed);  // per target
  ASSERT_TRUE(g.admit(p, "a.service", Mode::Auto, 61 * kS).allowed);
  g.started(p, "a.service", 61 * kS);
  g.finished();
  v = g.admit(p, "a.service", Mode::Auto, 200 * kS);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("max_runs 2"), std::string::npos) << v.reason;
  EXPECT_TRUE(g.admit(p, "a.service", Mode::Auto, 3700 * kS).allowed);  // window passed
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
  g.started(p, "a.service", 0);
  auto v = g.admit(p, "b.service", Mode::Auto, kS);
  EXPECT_FALSE(v.allowed);  // one at a time
  EXPECT_NE(v.reason.find("already running"), std::string::npos);
  g.finished();
  g.started(p, "b.service", 2 * kS);
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
  g.set_paused(true);
  EXPECT_FALSE(g.admit(p, "c.service", Mode::Auto, 3601 * kS).allowed);
  g.set_paused(false);
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
