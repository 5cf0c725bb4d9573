#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "correlate/incident_json.h"
#include "correlate/replay.h"
#include "sensors/event_json.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> corpus_names() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(MEND_CORPUS_DIR))
    if (e.path().extension() == ".jsonl")
      out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ReplayResult replay_text(const std::string& text, ReplayOptions opt = {}) {
  std::istringstream in(text);
  auto r = replay(in, "test", opt);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : ReplayResult{};
}

std::string incidents_json(const ReplayResult& r) {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const auto& i : r.incidents)
    j.push_back(to_json(i));
  return j.dump();
}

}  // namespace

class Corpus : public ::testing::TestWithParam<std::string> {};

TEST_P(Corpus, ExpectedIncidents) {
  const std::string base = std::string(MEND_CORPUS_DIR) + "/" + GetParam();
  auto expect = nlohmann::json::parse(read_file(base + ".expect.json"));
  auto r = replay_text(read_file(base + ".jsonl"));
  const auto& want = expect["incidents"];
  ASSERT_EQ(r.incidents.size(), want.size()) << incidents_json(r);
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& inc = r.incidents[i];
    SCOPED_TRACE(explain(inc, r.first_ts));
    EXPECT_EQ(inc.root_cause.kind, want[i]["kind"]);
    if (want[i].contains("culprit")) {
      EXPECT_EQ(inc.root_cause.culprit_unit, want[i]["culprit"]);
    }
    if (want[i].contains("entities")) {
      for (const auto& [k, v] : want[i]["entities"].items()) {
        EXPECT_EQ(inc.root_cause.entities.count(k) ? inc.root_cause.entities.at(k) : "", v) << k;
      }
    }
    EXPECT_GT(inc.root_cause.confidence, 0);
    EXPECT_FALSE(inc.evidence.empty());
  }
}

// Arrival order shuffled within the reorder tolerance: the same incidents, to the byte.
TEST_P(Corpus, ShuffleWithinToleranceDoesNotChangeTheResult) {
  const std::string text = read_file(std::string(MEND_CORPUS_DIR) + "/" + GetParam() + ".jsonl");
  const std::string want = incidents_json(replay_text(text));
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  const uint64_t tolerance = CorrelatorConfig{}.reorder_ns;
  for (int seed = 0; seed < 10; ++seed) {
    std::mt19937_64 rng(seed);
    // Each event arrives late by up to 90% of the tolerance.
    std::vector<std::pair<double, std::string>> arrival;
    for (const auto& l : lines) {
      auto e = event_from_json_line(l);
      ASSERT_TRUE(e.ok());
      double jitter =
          std::uniform_real_distribution<double>(0, 0.9)(rng) * static_cast<double>(tolerance);
      arrival.emplace_back(static_cast<double>(e->ts_ns) + jitter, l);
    }
    std::sort(arrival.begin(), arrival.end());
    std::string shuffled;
    for (const auto& [t, l] : arrival)
      shuffled += l + "\n";
    EXPECT_EQ(incidents_json(replay_text(shuffled)), want) << "seed " << seed;
  }
}

TEST_P(Corpus, ReplayIsDeterministic) {
  const std::string text = read_file(std::string(MEND_CORPUS_DIR) + "/" + GetParam() + ".jsonl");
  EXPECT_EQ(incidents_json(replay_text(text)), incidents_json(replay_text(text)));
}

INSTANTIATE_TEST_SUITE_P(Files, Corpus, ::testing::ValuesIn(corpus_names()));

TEST(Correlate, StormOfOneFailureIsOneBoundedIncident) {
  std::string text;
  const uint64_t s = 1000000000ull;
  FsFill f;
  f.mount = "/var/log";
  f.device = "7:3";
  f.state = "firing";
  f.reason = "usage";
  f.used_pct = 99;
  f.top_writers = {{"app.service", "/system.slice/app.service", 1 << 30}};
  text += to_json_line(Event{s, f}) + "\n";
  for (int i = 0; i < 100000; ++i) {
    FsEnospc e;
    e.pid = 1000 + i % 7;
    e.comm = "app";
    e.unit = i % 3 ? "app.service" : "sidecar.service";
    e.mount = "/var/log";
    e.device = "7:3";
    e.err = 28;
    e.syscall = "write";
    text += to_json_line(Event{s + static_cast<uint64_t>(i) * 100000, e}) + "\n";
  }
  auto r = replay_text(text);
  ASSERT_EQ(r.events, 100001u);
  ASSERT_EQ(r.incidents.size(), 1u);
  const auto& inc = r.incidents[0];
  EXPECT_EQ(inc.root_cause.kind, "fs_full");
  EXPECT_EQ(inc.root_cause.culprit_unit, "app.service");
  EXPECT_EQ(inc.raw_events, 100001u);
  EXPECT_LE(inc.evidence.size(), 64u);
  uint64_t folded = 0;
  for (const auto& e : inc.evidence)
    folded += e.count;
  EXPECT_EQ(folded + inc.evidence_dropped, 100001u);
  EXPECT_EQ(inc.affected_units, (std::set<std::string>{"app.service", "sidecar.service"}));
}

// The report that finds the volume full may come after its writer stopped (the volume is full,
// or the writer gave up): the culprit is still the unit that filled it, from the earlier report
// that saw the writes. (An e2e run under load once escalated an XFS fill with no culprit.)
TEST(Correlate, FullVolumeReportedAfterTheWritesStillNamesTheWriter) {
  const uint64_t s = 1000000000ull;
  FsFill early;
  early.mount = "/data";
  early.device = "7:0";
  early.state = "firing";
  early.reason = "eta";
  early.used_pct = 72;
  early.eta_full_s = 20;
  early.top_writers = {{"filler.service", "/app.slice/filler.service", 200 << 20}};
  FsFill late = early;
  late.reason = "usage";
  late.used_pct = 92;
  late.eta_full_s = -1;
  late.top_writers.clear();
  auto r = replay_text(to_json_line(Event{10 * s, early}) + "\n" +
                       to_json_line(Event{40 * s, late}) + "\n");
  ASSERT_EQ(r.incidents.size(), 1u);
  EXPECT_EQ(r.incidents[0].root_cause.kind, "fs_full");
  EXPECT_EQ(r.incidents[0].root_cause.culprit_unit, "filler.service");
}

TEST(Correlate, QuietPeriodClosesAndALaterFaultOpensANewIncident) {
  UnitState u;
  u.unit = "x.service";
  u.active_state = "failed";
  u.sub_state = "failed";
  const uint64_t s = 1000000000ull;
  std::string text = to_json_line(Event{s, u}) + "\n" + to_json_line(Event{2 * s, u}) + "\n";
  text += to_json_line(Event{2000 * s, u}) + "\n";  // long after the quiet period
  auto r = replay_text(text);
  ASSERT_EQ(r.incidents.size(), 2u);
  EXPECT_TRUE(r.incidents[0].closed);
  EXPECT_EQ(r.incidents[0].raw_events, 2u);
}

TEST(Correlate, RecoveryResolvesWithMttr) {
  const uint64_t s = 1000000000ull;
  FsFill f;
  f.mount = "/m";
  f.state = "firing";
  f.reason = "usage";
  FsFill c = f;
  c.state = "cleared";
  auto r =
      replay_text(to_json_line(Event{10 * s, f}) + "\n" + to_json_line(Event{25 * s, c}) + "\n");
  ASSERT_EQ(r.incidents.size(), 1u);
  EXPECT_EQ(r.incidents[0].state, IncidentState::Resolved);
  EXPECT_EQ(r.incidents[0].mttr_ms(), 15000);
}

TEST(Replay, MalformedLinesNameTheLineOrAreSkipped) {
  std::string text =
      "{\"type\":\"psi\",\"ts_ns\":1,\"resource\":\"io\",\"some_avg10\":1,\"state\":\"firing\"}\n"
      "\n"
      "{broken\n"
      "{\"type\":\"psi\",\"ts_ns\":2}\n";
  std::istringstream in(text);
  auto r = replay(in, "ev.jsonl", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("ev.jsonl:3: ", 0), 0u) << r.error().message;
  std::istringstream in2(text);
  ReplayOptions opt;
  opt.skip_bad = true;
  auto r2 = replay(in2, "ev.jsonl", opt);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->bad_lines, 1u);
  EXPECT_EQ(r2->events, 2u);
  EXPECT_EQ(r2->incidents.size(), 0u);  // PSI alone opens nothing
}

TEST(Explain, NamesTheCauseTheAlternativesAndTheLinks) {
  const std::string base = std::string(MEND_CORPUS_DIR) + "/noisy_neighbour_fills_data";
  auto r = replay_text(read_file(base + ".jsonl"));
  ASSERT_EQ(r.incidents.size(), 1u);
  std::string text = explain(r.incidents[0], r.first_ts);
  EXPECT_NE(text.find("Root cause: filesystem full: /data, written mostly by noisy.service"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Alternatives considered:"), std::string::npos) << text;
  EXPECT_NE(text.find("unit_crash"), std::string::npos) << text;
  EXPECT_NE(text.find("] fills ["), std::string::npos) << text;
  EXPECT_NE(text.find("] fails ["), std::string::npos) << text;
  auto j = to_json(r.incidents[0]);
  for (const char* k : {"id", "root_cause", "evidence", "state", "plan", "first_fault_ns",
                        "opened_ns", "recovered_ns", "mttr_ms"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["root_cause"]["culprit_unit"], "noisy.service");
  EXPECT_EQ(j["root_cause"]["mount"], "/data");
}

// Issue 14: closed incidents were never freed, so a long uptime or a storm of distinct faults
// grew mendd until its MemoryMax. Now closed ones are forgotten past a bound, open ones are
// bounded too, and every forgotten incident is announced (the agent drops its own state).
TEST(Correlate, ThousandsOfDistinctIncidentsStayBounded) {
  const uint64_t s = 1000000000ull;
  CorrelatorConfig cfg;
  cfg.quiet_ns = 10 * s;
  cfg.reorder_ns = 0;
  cfg.max_closed = 100;
  cfg.max_open = 500;
  Correlator c(cfg);
  size_t forgotten = 0;
  c.on_forget = [&](const Incident&) { ++forgotten; };
  for (int i = 0; i < 5000; ++i) {
    OomKill k;
    k.pid = 1000 + i;
    k.comm = "w";
    k.unit = "u" + std::to_string(i) + ".service";
    k.cgroup = "/app.slice/" + k.unit;
    k.constraint = "memcg";
    c.push(Event{s + static_cast<uint64_t>(i) * (s / 1000), k});  // 1000 per second
  }
  // 5000 incidents in 5 s, none quiet yet: the open bound closed the stalest early.
  EXPECT_LE(c.open_incidents(), 500u);
  EXPECT_EQ(c.closed_early(), 4500u);
  EXPECT_LE(c.incidents().size(), 600u);
  // The quiet period passes: every one closes and only max_closed stay.
  c.advance(100 * s);
  EXPECT_EQ(c.open_incidents(), 0u);
  EXPECT_EQ(c.incidents().size(), 100u);
  EXPECT_EQ(forgotten, 4900u);
  EXPECT_EQ(c.closed_forgotten(), 4900u);
  // The newest closed ones are the ones kept.
  EXPECT_EQ(c.incidents().back()->root_cause.culprit_unit, "u4999.service");
  // And the correlator still opens incidents afterwards.
  OomKill k;
  k.unit = "late.service";
  k.cgroup = "/late.service";
  k.constraint = "memcg";
  c.push(Event{101 * s, k});
  c.flush();
  EXPECT_EQ(c.open_incidents(), 1u);
}
