#include "policy/slo.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace mend;

namespace {

constexpr uint64_t kS = 1000000000ull;
constexpr uint64_t kT0 = 1000000 * kS;  // any monotonic time

Event unit_state(const std::string& unit, uint64_t ts, const std::string& active,
                 const std::string& sub, const std::string& result = "") {
  Event e;
  e.ts_ns = ts;
  UnitState u;
  u.unit = unit;
  u.active_state = active;
  u.sub_state = sub;
  u.result = result;
  u.state_change_ns = ts;
  e.payload = u;
  return e;
}

Incident incident_on(const std::string& unit) {
  Incident inc;
  inc.root_cause.culprit_unit = unit;
  inc.affected_units = {unit};
  return inc;
}

}  // namespace

TEST(Slo, BadTimeBudgetAndImpactFromUnitState) {
  SloTracker t({{"web.service", 0.999, 30 * 86400 * kS}, {"batch.service", 0.85, 86400 * kS}}, "");
  EXPECT_EQ(t.impact(incident_on("web.service"), kT0), "none");
  EXPECT_EQ(t.impact(incident_on("other.service"), kT0), "none");
  t.observe(unit_state("web.service", kT0, "failed", "failed", "oom-kill"));
  // Down with a 99.9% objective: burning 1000x its budget.
  EXPECT_EQ(t.impact(incident_on("web.service"), kT0 + 1 * kS), "high");
  t.observe(unit_state("web.service", kT0 + 10 * kS, "activating", "auto-restart"));
  t.observe(unit_state("web.service", kT0 + 30 * kS, "active", "running"));
  auto st = t.status(kT0 + 60 * kS);
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].unit, "web.service");
  EXPECT_FALSE(st[0].down);
  EXPECT_EQ(st[0].bad_ns, 30 * kS);  // failed -> restarting -> active: one bad stretch
  EXPECT_EQ(st[0].budget_ns, static_cast<uint64_t>(0.001 * 30 * 86400) * kS);
  EXPECT_NEAR(st[0].budget_remaining, 1.0 - 30.0 / 2592.0, 1e-9);
  // Up again, but 30 s bad in the last 5 min: 30/300/0.001 = 100x -> still high.
  EXPECT_EQ(t.impact(incident_on("web.service"), kT0 + 60 * kS), "high");
  // An hour later, nothing burning.
  EXPECT_EQ(t.impact(incident_on("web.service"), kT0 + 3600 * kS), "none");
  // 85%: down burns 1/0.15 = 6.7x -> medium.
  t.observe(unit_state("batch.service", kT0 + 100 * kS, "failed", "failed"));
  EXPECT_EQ(t.impact(incident_on("batch.service"), kT0 + 101 * kS), "medium");
  // A clean stop ends bad time; a stop is not a failure.
  t.observe(unit_state("batch.service", kT0 + 110 * kS, "inactive", "dead", "success"));
  EXPECT_FALSE(t.status(kT0 + 120 * kS)[1].down);
  // Budget spent: high whatever the burn now.
  t.observe(unit_state("batch.service", kT0 + 200 * kS, "failed", "failed"));
  t.observe(unit_state("batch.service", kT0 + 200 * kS + 13000 * kS, "active", "running"));
  EXPECT_LT(t.status(kT0 + 20000 * kS)[1].budget_remaining, 0);
  EXPECT_EQ(t.impact(incident_on("batch.service"), kT0 + 20000 * kS), "high");
}

TEST(Slo, HistorySurvivesARestartOfMendd) {
  char tmpl[] = "/tmp/mend-slo-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string file = dir + "/slo.json";
  {
    SloTracker t({{"web.service", 0.999, 86400 * kS}}, file);
    t.observe(unit_state("web.service", kT0, "failed", "failed"));
    t.observe(unit_state("web.service", kT0 + 20 * kS, "active", "running"));
    t.save(kT0 + 21 * kS, 0);
  }
  SloTracker again({{"web.service", 0.999, 86400 * kS}}, file);
  ASSERT_TRUE(again.load().ok());
  EXPECT_EQ(again.status(kT0 + 60 * kS)[0].bad_ns, 20 * kS);
  SloTracker damaged({{"web.service", 0.999, 86400 * kS}}, dir + "/missing.json");
  EXPECT_TRUE(damaged.load().ok());  // no file yet: a fresh start
  std::ofstream(file) << "[1,2";
  auto st = again.load();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("damaged SLO history"), std::string::npos);
  // Well-formed, but not what mendd writes: refused as damage, never counted.
  for (const char* bad : {R"({"saved": 5, "bad": {"web.service": [[10, 4]]}})",
                          R"({"saved": 5, "bad": {"web.service": [[-10, 4]]}})",
                          R"({"saved": 5, "bad": {"web.service": [[1.5, 4]]}})",
                          R"({"saved": 1, "bad": {"web.service": [[10, 0]]}})",
                          R"({"saved": 5, "bad": {"web.service": "down"}})"}) {
    std::ofstream(file) << bad;
    auto d = again.load();
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.error().message.find("damaged SLO history"), std::string::npos) << bad;
  }
  std::filesystem::remove_all(dir);
}
