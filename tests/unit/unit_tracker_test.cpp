#include <gtest/gtest.h>

#include "systemd/unit_tracker.h"

using namespace mend;

constexpr uint64_t kS = 1000000000ull;

static UnitProps state(const char* active, const char* sub, const char* result = nullptr,
                       std::optional<uint32_t> restarts = std::nullopt) {
  UnitProps p;
  p.active_state = active;
  p.sub_state = sub;
  if (result)
    p.result = result;
  p.n_restarts = restarts;
  return p;
}

static const UnitState& us(const Event& e) {
  return std::get<UnitState>(e.payload);
}

TEST(UnitTracker, TransitionsCarryThePreviousState) {
  UnitTracker t;
  UnitProps seed = state("active", "running");
  seed.cgroup = "/system.slice/app.service";
  t.seed("app.service", seed, 0);
  std::vector<Event> out;
  t.update("app.service", state("deactivating", "stop-sigterm"), 1 * kS, out);
  t.update("app.service", state("failed", "failed", "signal"), 2 * kS, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(us(out[0]).prev_active_state, "active");
  EXPECT_EQ(us(out[0]).active_state, "deactivating");
  EXPECT_EQ(us(out[1]).prev_active_state, "deactivating");
  EXPECT_EQ(us(out[1]).result, "signal");
  EXPECT_EQ(us(out[1]).cgroup, "/system.slice/app.service");
  EXPECT_EQ(us(out[1]).pattern, "");
  // No change, no event.
  t.update("app.service", state("failed", "failed"), 3 * kS, out);
  EXPECT_EQ(out.size(), 2u);
}

TEST(UnitTracker, RestartLoopIsReportedOncePerWindow) {
  UnitTracker t({3, 60 * kS, 90 * kS, 5 * kS});
  t.seed("crash.service", state("active", "running", "success", 0u), 0);
  std::vector<Event> out;
  int loops = 0;
  for (uint32_t i = 1; i <= 10; ++i) {
    t.update("crash.service", state("activating", "auto-restart", "signal"), i * kS, out);
    t.update("crash.service", state("active", "running", nullptr, i), i * kS + kS / 2, out);
  }
  for (const auto& e : out)
    loops += us(e).pattern == "restart_loop";
  EXPECT_EQ(loops, 1);
  // After a quiet window the next loop is reported again.
  for (uint32_t i = 11; i <= 13; ++i)
    t.update("crash.service", state("active", "running", nullptr, i), (100 + i) * kS, out);
  loops = 0;
  for (const auto& e : out)
    loops += us(e).pattern == "restart_loop";
  EXPECT_EQ(loops, 2);
}

TEST(UnitTracker, SlowRestartsAreNotALoop) {
  UnitTracker t({3, 60 * kS, 90 * kS, 5 * kS});
  t.seed("slow.service", state("active", "running", "success", 0u), 0);
  std::vector<Event> out;
  for (uint32_t i = 1; i <= 5; ++i)
    t.update("slow.service", state("active", "running", nullptr, i), i * 40 * kS, out);
  for (const auto& e : out)
    EXPECT_NE(us(e).pattern, "restart_loop");
}

TEST(UnitTracker, StartLimitHit) {
  UnitTracker t;
  t.seed("x.service", state("activating", "auto-restart"), 0);
  std::vector<Event> out;
  t.update("x.service", state("failed", "failed", "start-limit-hit"), kS, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(us(out[0]).pattern, "start_limit_hit");
}

TEST(UnitTracker, RefusedAutomaticRestartIsStartLimitHit) {
  // systemd 252: the crash's Result stays; the refused restart goes inactive -> failed.
  UnitTracker t;
  t.seed("x.service", state("activating", "auto-restart", "signal", 4u), 0);
  std::vector<Event> out;
  t.update("x.service", state("inactive", "dead"), kS, out);
  t.update("x.service", state("failed", "failed"), kS, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(us(out[1]).pattern, "start_limit_hit");
  EXPECT_EQ(us(out[1]).result, "signal");
}

TEST(UnitTracker, FailureRightAfterOomKillIsLinked) {
  UnitTracker t;
  t.seed("oom.service", state("active", "running"), 0);
  t.note_oom("oom.service", 4242, 10 * kS);
  std::vector<Event> out;
  t.update("oom.service", state("failed", "failed", "signal"), 11 * kS, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(us(out[0]).pattern, "oom_killed");
  EXPECT_EQ(us(out[0]).oom_pid, 4242);
  // Too long after the kill: not linked.
  t.update("oom.service", state("active", "running"), 20 * kS, out);
  t.note_oom("oom.service", 4343, 21 * kS);
  t.update("oom.service", state("failed", "failed", "signal"), 40 * kS, out);
  EXPECT_EQ(us(out.back()).pattern, "");
  // systemd's own verdict (cgroup v2 OOM notification) is enough.
  t.update("oom.service", state("active", "running"), 50 * kS, out);
  t.update("oom.service", state("failed", "failed", "oom-kill"), 51 * kS, out);
  EXPECT_EQ(us(out.back()).pattern, "oom_killed");
}

TEST(UnitTracker, StuckActivatingButNotAutoRestart) {
  UnitTracker t({3, 60 * kS, 90 * kS, 5 * kS});
  t.seed("a.service", state("inactive", "dead"), 0);
  t.seed("b.service", state("inactive", "dead"), 0);
  std::vector<Event> out;
  t.update("a.service", state("activating", "start"), kS, out);
  t.update("b.service", state("activating", "auto-restart"), kS, out);
  out.clear();
  t.tick(50 * kS, out);
  EXPECT_TRUE(out.empty());
  t.tick(92 * kS, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(us(out[0]).unit, "a.service");
  EXPECT_EQ(us(out[0]).pattern, "stuck_activating");
  t.tick(200 * kS, out);
  EXPECT_EQ(out.size(), 1u);  // once
}

TEST(UnitTracker, ByCgroupFindsTheOwningUnit) {
  UnitTracker t;
  UnitProps a;
  a.cgroup = "/system.slice/app.service";
  t.seed("app.service", a, 0);
  UnitProps s;
  s.cgroup = "/system.slice";
  t.seed("system.slice", s, 0);
  EXPECT_EQ(t.by_cgroup("/system.slice/app.service/sub")->name, "app.service");
  EXPECT_EQ(t.by_cgroup("/system.slice/other.service")->name, "system.slice");
  EXPECT_EQ(t.by_cgroup("/system.slice/app.servicex"), t.by_cgroup("/system.slice"));
  EXPECT_EQ(t.by_cgroup("/user.slice"), nullptr);
}

TEST(UnitTracker, SeedReportsWhatChangedWhileAway) {
  UnitTracker t;
  EXPECT_FALSE(t.seed("a.service", state("active", "running"), 0));
  EXPECT_FALSE(t.seed("a.service", state("active", "running"), kS));
  EXPECT_TRUE(t.seed("a.service", state("failed", "failed"), 2 * kS));
}
