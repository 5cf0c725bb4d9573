// Whole scenarios: a real fault under a real systemd, the whole mendd pipeline, a real fix, and
// the journald records that prove it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "scenario.h"

using namespace mend::test;
using namespace std::chrono_literals;

TEST(Scenario, OomLoopingUnitGetsItsLimitRaisedAndIsVerified) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kVerified).empty(); }, 60s)) << agent.err();
  EXPECT_EQ(s.memory_max(), 100u << 20);  // 50M + 100%
  EXPECT_EQ(s.m.show(s.unit, "ActiveState"), "active");
  auto v = records(s.unit, kVerified).at(0);
  EXPECT_EQ(v["MEND_ROOT_CAUSE"], "memory_limit");
  EXPECT_EQ(v["MEND_POLICY"], "mem-raise");
  EXPECT_TRUE(records(s.unit, kEscalated).empty());
  // Every step has its record: both actions started and finished.
  auto started = records(s.unit, "14b7cdd70abd4e548e11a28f87926cf0");
  auto finished = records(s.unit, "666e06a737c04222b04538ba13cb14b8");
  EXPECT_EQ(started.size(), 2u);
  EXPECT_EQ(finished.size(), 2u);
  EXPECT_EQ(agent.stop(), 0);
}

TEST(Scenario, CeilingTooLowIsRolledBackExactlyAndEscalated) {
  MEND_REQUIRE_ROOT();
  OomScenario s("60M", "10s");
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  const uint64_t before = s.memory_max();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kEscalated).empty(); }, 60s)) << agent.err();
  EXPECT_EQ(s.memory_max(), before);  // exactly what it was
  EXPECT_FALSE(records(s.unit, kRolledBack).empty());
  auto e = records(s.unit, kEscalated).at(0);
  EXPECT_EQ(e["PRIORITY"], "2");
  const std::string msg = e["MESSAGE"];
  EXPECT_NE(msg.find("raise_memory_limit"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rolled back"), std::string::npos) << msg;
  EXPECT_NE(msg.find("OOM"), std::string::npos) << msg;
  EXPECT_EQ(agent.stop(), 0);
}

// kill -9 of mendd between apply and verify: the next mendd finds the plan unfinished in its
// intent journal and undoes it from there (never re-runs it blindly), and says so.
TEST(Scenario, MenddKilledMidPlanRollsBackFromTheIntentJournal) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "2m");
  // A long stabilisation window, so the plan is still verifying when mendd dies.
  std::ofstream(s.policies + "/mem.yaml")
      << "policies:\n  - name: mem-raise\n    match: {root_cause: memory_limit}\n"
         "    mode: auto\n    actions:\n      - raise_memory_limit: {step: 100%, ceiling: 200M}\n"
         "    verify: {deadline: 2m, stable_for: 90s, no_new_oom: true}\n";
  const uint64_t before = s.memory_max();
  {
    TraceRunner agent(s.args(), false);
    ASSERT_TRUE(agent.wait_ready()) << agent.err();
    ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
    ASSERT_TRUE(wait_until([&] { return s.memory_max() == 100u << 20; }, 30s)) << agent.err();
    const std::string pid = run({"pgrep", "-n", "-x", "mendd"}).out;
    ASSERT_EQ(run({"kill", "-9", pid.substr(0, pid.find('\n'))}).status, 0);
    agent.stop();
  }
  // The unit keeps its raised limit while no mendd runs: the journal is the only memory.
  EXPECT_EQ(s.memory_max(), 100u << 20);
  ASSERT_EQ(s.m.systemctl({"stop", s.unit}).status, 0);  // no new incident during recovery
  TraceRunner again(s.args(), false);
  ASSERT_TRUE(again.wait_ready()) << again.err();
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& e : records(s.unit, kEscalated))
          if (e.value("MEND_REASON", "") == "interrupted")
            return true;
        return false;
      },
      20s))
      << again.err();
  EXPECT_EQ(s.memory_max(), before);
  for (const auto& e : records(s.unit, kEscalated))
    if (e.value("MEND_REASON", "") == "interrupted") {
      const std::string msg = e["MESSAGE"];
      EXPECT_NE(msg.find("raise_memory_limit: rolled back"), std::string::npos) << msg;
    }
  EXPECT_EQ(again.stop(), 0);
}

// SIGHUP with a broken policy file: the reload is refused whole, the previous policies stay in
// force and still fix the fault.
TEST(Scenario, ReloadWithABrokenPolicyKeepsThePreviousOne) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  std::ofstream(s.policies + "/zz-broken.yaml")
      << "policies:\n  - name: broken\n    match: {root_cause: memory_limit}\n"
         "    actions: [{raise_memory_limit: {ceiling: lots}}]\n";
  chmod((s.policies + "/zz-broken.yaml").c_str(), 0644);
  const std::string pid = run({"pgrep", "-n", "-x", "mendd"}).out;
  ASSERT_EQ(run({"kill", "-HUP", pid.substr(0, pid.find('\n'))}).status, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return agent.err().find("Reload refused, keeping the previous 1 policies") !=
               std::string::npos;
      },
      10s))
      << agent.err();
  EXPECT_NE(agent.err().find("zz-broken.yaml:4:"), std::string::npos) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kVerified).empty(); }, 60s)) << agent.err();
  EXPECT_EQ(s.memory_max(), 100u << 20);
  EXPECT_EQ(agent.stop(), 0);
}

// SIGHUP with a broken mend.yaml: refused whole with file:line:column; the previous
// configuration and policies stay in force and still fix the fault.
TEST(Scenario, ReloadWithABrokenConfigKeepsThePreviousOne) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  const std::string config = s.dir.path() + "/mend.yaml";
  std::ofstream(config) << "executor:\n  approval_timeout: 10m\n";
  TraceRunner agent(s.args({"--config", config}), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  std::ofstream(config) << "executor:\n  max_concurrent: lots\n";
  const std::string pid = run({"pgrep", "-n", "-x", "mendd"}).out;
  ASSERT_EQ(run({"kill", "-HUP", pid.substr(0, pid.find('\n'))}).status, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return agent.err().find("Reload refused, keeping the previous configuration") !=
               std::string::npos;
      },
      10s))
      << agent.err();
  EXPECT_NE(agent.err().find("mend.yaml:2:19"), std::string::npos) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kVerified).empty(); }, 60s)) << agent.err();
  EXPECT_EQ(s.memory_max(), 100u << 20);
  // A good file is taken.
  std::ofstream(config) << "executor:\n  max_actions_per_hour: 3\n";
  ASSERT_EQ(run({"kill", "-HUP", pid.substr(0, pid.find('\n'))}).status, 0);
  ASSERT_TRUE(wait_until(
      [&] { return agent.err().find("Reloaded mend.yaml and 1 policies") != std::string::npos; },
      10s))
      << agent.err();
  auto st = nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out);
  EXPECT_EQ(st["budget"]["max_per_hour"], 3);
  EXPECT_EQ(agent.stop(), 0);
}
