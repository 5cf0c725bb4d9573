#include <gtest/gtest.h>

#include "sensors/event_json.h"

using namespace mend;

TEST(EventJson, OomKillRoundTripsWithContractFields) {
  OomKill k;
  k.pid = 42;
  k.comm = "python3";
  k.cgroup = "/mend-test/app.slice/x.service";
  k.unit = "x.service";
  k.constraint = "memcg";
  k.rss_bytes = 52428800;
  k.oom_score_adj = 200;
  Event e{123, k};
  auto j = to_json(e);
  for (const char* f : {"type", "ts_ns", "pid", "comm", "cgroup", "unit", "constraint", "rss_bytes",
                        "oom_score_adj"})
    EXPECT_TRUE(j.contains(f)) << f;
  EXPECT_EQ(j["type"], "oom_kill");
  auto back = event_from_json_line(to_json_line(e));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->type(), EventType::OomKill);
  EXPECT_EQ(back->ts_ns, 123u);
  const auto& b = std::get<OomKill>(back->payload);
  EXPECT_EQ(b.pid, 42);
  EXPECT_EQ(b.unit, "x.service");
  EXPECT_EQ(b.rss_bytes, 52428800u);
  EXPECT_EQ(b.oom_score_adj, 200);
}

TEST(EventJson, FsEnospcUsesErrnoField) {
  FsEnospc f;
  f.err = 28;
  f.device = "7:3";
  f.mount = "/mnt/x";
  auto j = to_json(Event{1, f});
  EXPECT_EQ(j["type"], "fs_enospc");
  EXPECT_EQ(j["errno"], 28);
  EXPECT_FALSE(j.contains("err"));
  for (const char* k : {"pid", "comm", "cgroup", "unit", "mount", "device", "syscall"})
    EXPECT_TRUE(j.contains(k)) << k;
}

TEST(EventJson, FsFillAndIoStallNestedListsRoundTrip) {
  FsFill f;
  f.mount = "/var/log";
  f.top_writers = {{"app.service", "/system.slice/app.service", 1000}};
  f.eta_full_s = -1;
  auto back = event_from_json(to_json(Event{5, f}));
  ASSERT_TRUE(back.ok());
  const auto& bf = std::get<FsFill>(back->payload);
  ASSERT_EQ(bf.top_writers.size(), 1u);
  EXPECT_EQ(bf.top_writers[0].unit, "app.service");
  EXPECT_EQ(bf.top_writers[0].bytes, 1000u);
  EXPECT_EQ(bf.eta_full_s, -1);

  IoStall s;
  s.device = "7:1";
  s.p99_us = 330000;
  s.top_units = {{"noisy.service", "/noisy.service", 30, 1966080, 29}};
  auto j = to_json(Event{6, s});
  for (const char* k :
       {"device", "name", "mount", "p50_us", "p99_us", "max_us", "oldest_inflight_us", "top_units"})
    EXPECT_TRUE(j.contains(k)) << k;
  auto back2 = event_from_json(j);
  ASSERT_TRUE(back2.ok());
  EXPECT_EQ(std::get<IoStall>(back2->payload).top_units.at(0).slow_ios, 29u);
}

TEST(EventJson, RejectsMalformedInputWithTheField) {
  EXPECT_FALSE(event_from_json_line("{not json").ok());
  auto r = event_from_json_line(R"({"type":"oom_kill"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ts_ns"), std::string::npos);
  r = event_from_json_line(R"({"type":"nope","ts_ns":1})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nope"), std::string::npos);
  r = event_from_json_line(R"({"type":"oom_kill","ts_ns":1,"pid":"x"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("pid"), std::string::npos);
  r = event_from_json_line(R"({"type":"fs_fill","ts_ns":1,"top_writers":[1]})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("top_writers"), std::string::npos);
  r = event_from_json_line(R"({"type":"psi","ts_ns":-5})");
  EXPECT_FALSE(r.ok());
}

TEST(EventJson, UnknownFieldsAreAcceptedForForwardCompatibility) {
  auto r = event_from_json_line(
      R"({"type":"unit_state","ts_ns":9,"unit":"a.service","future_field":[1,2]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<UnitState>(r->payload).unit, "a.service");
}

// Found by fuzz_event_json: a number outside a field's range was converted with undefined
// behaviour (4.6e55 into a uint64 field). Now it is an error naming the field.
TEST(EventJson, NumbersOutsideTheFieldsRangeAreErrors) {
  for (const char* line :
       {R"({"type":"io_stall","ts_ns":1,"device":"8:0","p99_us":4.6e55})",
        R"({"type":"io_stall","ts_ns":1,"device":"8:0","p99_us":-1})",
        R"({"type":"oom_kill","ts_ns":1,"pid":99999999999})",
        R"({"type":"oom_kill","ts_ns":1,"pid":1.5})",
        R"({"type":"unit_state","ts_ns":1,"unit":"a.service","n_restarts":true})"}) {
    auto e = event_from_json(nlohmann::json::parse(line));
    EXPECT_FALSE(e.ok()) << line;
  }
  auto ok = event_from_json(nlohmann::json::parse(R"({"type":"oom_kill","ts_ns":1,"pid":42.0})"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(std::get<OomKill>(ok->payload).pid, 42);
}
