#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "fake_units.h"
#include "mend/incident.h"
#include "remedy/action.h"

using namespace mend;

namespace {

struct Env {
  FakeUnits units;
  ActionContext ctx;
  std::string procfs;
  explicit Env(uint64_t mem_available_kb = 8u << 20) {
    char tmpl[] = "/tmp/mend-proc-XXXXXX";
    procfs = mkdtemp(tmpl);
    std::ofstream(procfs + "/meminfo")
        << "MemTotal: 16000000 kB\nMemAvailable: " << mem_available_kb << " kB\n";
    ctx.units = &units;
    ctx.unit = "app.service";
    ctx.procfs = procfs;
  }
  ~Env() { std::filesystem::remove_all(procfs); }
};

std::unique_ptr<Action> raise(Env& env, double step, int64_t ceiling) {
  return ActionRegistry::instance().create(
      "raise_memory_limit",
      Params({{"step", step}, {"ceiling", ceiling}, {"property", std::string("MemoryMax")}}),
      env.ctx);
}

}  // namespace

TEST(RaiseMemoryLimit, RaisesByStepAndRollsBackExactly) {
  Env env;
  const uint64_t before = 100ull << 20;
  env.units.props["app.service/MemoryMax"] = before;
  auto a = raise(env, 25, int64_t{1} << 30);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->reversible());
  ASSERT_TRUE(a->check().ok());
  EXPECT_NE(a->describe().find("from 100M to 125M"), std::string::npos) << a->describe();
  ASSERT_TRUE(a->apply().ok());
  EXPECT_EQ(std::get<uint64_t>(env.units.props["app.service/MemoryMax"]), 125ull << 20);
  auto v = a->verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(*v);
  ASSERT_TRUE(a->rollback().ok());
  EXPECT_EQ(std::get<uint64_t>(env.units.props["app.service/MemoryMax"]), before);
}

// An undo record read back from the intent journal is taken only as mendd writes it.
TEST(RaiseMemoryLimit, RestoresOnlyWellFormedUndoRecords) {
  Env env;
  auto a = raise(env, 25, int64_t{1} << 30);
  EXPECT_TRUE(a->restore({{"previous", 100}, {"target", 125}, {"planned", true}}).ok());
  for (const auto& bad : {nlohmann::json{{"previous", -1}, {"target", 125}, {"planned", true}},
                          nlohmann::json{{"previous", 1.5}, {"target", 125}, {"planned", true}},
                          nlohmann::json{{"previous", 100}, {"target", "125"}, {"planned", true}},
                          nlohmann::json{{"previous", 100}, {"target", 125}, {"planned", 1}},
                          nlohmann::json{{"previous", 200}, {"target", 125}, {"planned", true}},
                          nlohmann::json{{"previous", 100}}}) {
    auto st = a->restore(bad);
    ASSERT_FALSE(st.ok()) << bad.dump();
    EXPECT_NE(st.error().message.find("bad undo record"), std::string::npos) << bad.dump();
  }
}

TEST(RaiseMemoryLimit, NeverPastTheCeiling) {
  Env env;
  env.units.props["app.service/MemoryMax"] = uint64_t{900} << 20;
  auto a = raise(env, 50, int64_t{1} << 30);
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok());
  EXPECT_EQ(std::get<uint64_t>(env.units.props["app.service/MemoryMax"]), 1ull << 30);
  // At the ceiling: refused, nothing set.
  env.units.calls.clear();
  auto b = raise(env, 50, int64_t{1} << 30);
  auto st = b->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("ceiling"), std::string::npos);
  EXPECT_FALSE(b->apply().ok());
  EXPECT_TRUE(env.units.calls.empty());
}

TEST(RaiseMemoryLimit, RefusesInfinityAndMoreThanTheHostHas) {
  Env env(/*mem_available_kb=*/10 * 1024);  // 10 MiB available
  env.units.props["app.service/MemoryMax"] = UINT64_MAX;
  auto a = raise(env, 25, int64_t{1} << 30);
  auto st = a->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("infinity"), std::string::npos);
  env.units.props["app.service/MemoryMax"] = uint64_t{200} << 20;  // +50M > 10M available
  auto b = raise(env, 25, int64_t{1} << 30);
  st = b->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("available memory"), std::string::npos);
  EXPECT_TRUE(env.units.calls.empty());
}

TEST(RestartUnit, JobResultOtherThanDoneIsAFailure) {
  Env env;
  auto a = ActionRegistry::instance().create("restart_unit",
                                             Params({{"timeout", int64_t{5000000000}}}), env.ctx);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->reversible());
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok());
  EXPECT_EQ(env.units.calls.back(), "restart app.service");
  env.units.job_result = "failed";
  auto st = a->apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("\"failed\""), std::string::npos);
  env.units.state = "failed";
  EXPECT_FALSE(*a->verify());
  ActionContext none = env.ctx;
  none.unit.clear();
  EXPECT_FALSE(ActionRegistry::instance()
                   .create("restart_unit", Params({{"timeout", int64_t{1}}}), none)
                   ->check()
                   .ok());
}

TEST(RestartUnit, FailedModeRestartsTheIncidentsFailingUnitsButNoProtectedOne) {
  Env env;
  Incident inc;
  inc.root_cause.culprit_unit = "writer.service";
  inc.affected_units = {"victim.service", "sshd.service", "writer.service"};
  env.ctx.incident = &inc;
  env.ctx.is_protected = [](const std::string& u) { return u == "sshd.service"; };
  env.units.state = "failed";  // every unit reads as failed in the fake
  // Defaults fill in what the parameters lack (an older intent journal): which = culprit.
  auto culprit = ActionRegistry::instance().create(
      "restart_unit", Params({{"timeout", int64_t{5000000000}}}), env.ctx);
  ASSERT_TRUE(culprit->check().ok());
  EXPECT_EQ(culprit->describe().rfind("restart app.service", 0), 0u) << culprit->describe();
  auto a = ActionRegistry::instance().create(
      "restart_unit", Params({{"timeout", int64_t{5000000000}}, {"which", std::string("failed")}}),
      env.ctx);
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok());
  // A failed unit's state is reset first: one that hit its start limit refuses a restart.
  EXPECT_EQ(env.units.calls,
            (std::vector<std::string>{"reset-failed victim.service", "restart victim.service",
                                      "reset-failed writer.service", "restart writer.service"}));
  env.units.state = "active";
  auto none = ActionRegistry::instance().create(
      "restart_unit", Params({{"timeout", int64_t{5000000000}}, {"which", std::string("failed")}}),
      env.ctx);
  ASSERT_TRUE(none->check().ok());  // nothing failing any more: nothing to do
  env.units.calls.clear();
  ASSERT_TRUE(none->apply().ok());
  EXPECT_TRUE(env.units.calls.empty());
  EXPECT_NE(none->describe().find("nothing"), std::string::npos) << none->describe();
}

// A crash loop (Restart=) caught between two deaths reads "active": a unit the incident shows
// failing that has been up since before the plan began is restarted like a failed one; one
// that came back after the plan began (the fix let it start) and one that never failed (the
// writer of the full disk) are left alone.
TEST(RestartUnit, FailedModeRestartsACrashLoopCaughtUpButNotOneThatCameBackAfterTheFix) {
  Env env;
  Incident inc;
  inc.affected_units = {"looping.service", "back.service", "writer.service"};
  for (const char* u : {"looping.service", "back.service"}) {
    UnitState s;
    s.unit = u;
    s.active_state = "activating";
    s.sub_state = "auto-restart";
    inc.evidence.push_back({Event{1, s}, 1, 1});
  }
  env.ctx.incident = &inc;
  env.ctx.progress = std::make_shared<StepProgress>();
  env.units.state = "active";
  const uint64_t began_ns = 5000000000000ull;
  env.ctx.progress->mark_plan_started(began_ns);
  env.ctx.progress->mark_plan_started(began_ns + 1);  // the first step's time stays
  ASSERT_EQ(env.ctx.progress->plan_started_ns(), began_ns);
  env.units.active_since["looping.service"] = began_ns / 1000 - 300000;  // up 0.3 s before
  env.units.active_since["back.service"] = began_ns / 1000 + 2000000;    // up 2 s after
  env.units.active_since["writer.service"] = 1;                          // up all along
  auto a = ActionRegistry::instance().create(
      "restart_unit", Params({{"timeout", int64_t{5000000000}}, {"which", std::string("failed")}}),
      env.ctx);
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok());
  EXPECT_EQ(env.units.calls, (std::vector<std::string>{"restart looping.service"}));
  // Without knowing when the plan began, "active" is taken as it reads.
  env.units.calls.clear();
  env.ctx.progress = std::make_shared<StepProgress>();
  auto b = ActionRegistry::instance().create(
      "restart_unit", Params({{"timeout", int64_t{5000000000}}, {"which", std::string("failed")}}),
      env.ctx);
  ASSERT_TRUE(b->check().ok());
  ASSERT_TRUE(b->apply().ok());
  EXPECT_TRUE(env.units.calls.empty());
}
