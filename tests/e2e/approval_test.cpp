// Approve mode, deny, the approval deadline and pause, through mendctl and the control socket
// of a real mendd, against a unit that really OOM-loops under a real systemd.
#include <gtest/gtest.h>

#include "scenario.h"

using namespace mend::test;

namespace {

constexpr const char* kActionFinished = "666e06a737c04222b04538ba13cb14b8";

std::string approve_policy() {
  return "policies:\n  - name: mem-raise\n    match: {root_cause: memory_limit}\n"
         "    mode: approve\n    actions:\n"
         "      - raise_memory_limit: {step: 100%, ceiling: 200M}\n"
         "      - restart_unit: {timeout: 20s}\n"
         "    verify: {deadline: 40s, stable_for: 4s, no_new_oom: true}\n";
}

// The id of the incident waiting for approval, once mendctl shows one.
std::string wait_for_pending(const OomScenario& s) {
  std::string id;
  wait_until(
      [&] {
        auto r = s.mendctl({"incidents", "-o", "json"});
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        if (r.status != 0 || !j.is_array())
          return false;
        for (const auto& i : j)
          if (i.value("awaiting_approval", false))
            id = i["id"];
        return !id.empty();
      },
      30s);
  return id;
}

bool escalated_with(const std::string& unit, const std::string& reason) {
  for (const auto& e : records(unit, kEscalated))
    if (e.value("MEND_REASON", "").find(reason) != std::string::npos)
      return true;
  return false;
}

}  // namespace

TEST(Approval, NothingHappensUntilApprovedThenTheFixIsVerified) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  s.write_policy(approve_policy());
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  const std::string id = wait_for_pending(s);
  ASSERT_FALSE(id.empty()) << agent.err();
  // Waiting: the unit keeps failing and nothing is changed.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(s.memory_max(), 50u << 20);
  auto status = s.mendctl({"status", "-o", "json"});
  ASSERT_EQ(status.status, 0) << status.err;
  auto sj = nlohmann::json::parse(status.out);
  ASSERT_EQ(sj["pending_approvals"].size(), 1u);
  EXPECT_EQ(sj["pending_approvals"][0]["incident"], id);
  EXPECT_EQ(sj["pending_approvals"][0]["target"], s.unit);
  auto text = s.mendctl({"status"});
  EXPECT_NE(text.out.find("mendctl approve|deny " + id), std::string::npos) << text.out;
  auto explain = s.mendctl({"explain", id});
  ASSERT_EQ(explain.status, 0) << explain.err;
  EXPECT_NE(explain.out.find("awaiting_approval"), std::string::npos) << explain.out;
  EXPECT_NE(explain.out.find("raise_memory_limit"), std::string::npos) << explain.out;

  auto ok = s.mendctl({"approve", id});
  ASSERT_EQ(ok.status, 0) << ok.out << ok.err;
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kVerified).empty(); }, 60s)) << agent.err();
  EXPECT_EQ(s.memory_max(), 100u << 20);
  EXPECT_NE(agent.err().find("approve of " + id + " requested by uid 0"), std::string::npos);
  // Nothing is waiting any more: a second approve is refused with exit code 1.
  auto again = s.mendctl({"approve", id});
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find("no plan awaiting approval"), std::string::npos) << again.err;
  EXPECT_EQ(s.mendctl({"explain", "inc-none"}).status, 1);
  EXPECT_EQ(agent.stop(), 0);
}

TEST(Approval, DenyEscalatesAndChangesNothing) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  s.write_policy(approve_policy());
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  const std::string id = wait_for_pending(s);
  ASSERT_FALSE(id.empty()) << agent.err();
  auto r = s.mendctl({"deny", id});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(wait_until([&] { return escalated_with(s.unit, "denied by an operator"); }, 10s))
      << agent.err();
  EXPECT_EQ(s.memory_max(), 50u << 20);
  for (const auto& e : records(s.unit, kActionFinished))
    EXPECT_NE(e.value("MEND_RESULT", ""), "applied") << e.dump();
  EXPECT_EQ(agent.stop(), 0);
}

TEST(Approval, NoAnswerBeforeTheDeadlineEscalates) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  s.write_policy(approve_policy());
  const std::string config = s.dir.path() + "/mend.yaml";
  std::ofstream(config) << "executor:\n  approval_timeout: 10s\n";
  TraceRunner agent(s.args({"--config", config}), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_FALSE(wait_for_pending(s).empty()) << agent.err();
  ASSERT_TRUE(
      wait_until([&] { return escalated_with(s.unit, "no approval before the deadline"); }, 30s))
      << agent.err();
  EXPECT_EQ(s.memory_max(), 50u << 20);
  EXPECT_EQ(agent.stop(), 0);
}

// Pause holds every action (the plan is described, not run), survives a restart of mendd, and
// resume lifts it.
TEST(Approval, PauseHoldsEveryActionAcrossRestarts) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");  // an auto-mode policy
  {
    TraceRunner agent(s.args(), false);
    ASSERT_TRUE(agent.wait_ready()) << agent.err();
    auto p = s.mendctl({"pause"});
    ASSERT_EQ(p.status, 0) << p.err;
    EXPECT_NE(p.out.find("Paused"), std::string::npos);
    EXPECT_EQ(agent.stop(), 0);
  }
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  auto st = nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out);
  EXPECT_TRUE(st["paused"].get<bool>());
  EXPECT_EQ(st["paused_by"], "mendctl pause");
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& e : records(s.unit, kActionFinished))
          if (e.value("MEND_RESULT", "") == "not run")
            return true;
        return false;
      },
      30s))
      << agent.err();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(s.memory_max(), 50u << 20);
  for (const auto& e : records(s.unit, kActionFinished)) {
    EXPECT_EQ(e.value("MEND_RESULT", ""), "not run");
    EXPECT_NE(e.value("MESSAGE", "").find("paused"), std::string::npos) << e.dump();
  }
  auto r = s.mendctl({"resume"});
  ASSERT_EQ(r.status, 0);
  EXPECT_FALSE(nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out)["paused"]);
  EXPECT_EQ(agent.stop(), 0);
}
