#include <gtest/gtest.h>

#include "policy/config.h"
#include "policy/units.h"

using namespace mend;

TEST(Units, Durations) {
  EXPECT_EQ(*parse_duration_ns("250ms"), 250000000u);
  EXPECT_EQ(*parse_duration_ns("30s"), 30000000000u);
  EXPECT_EQ(*parse_duration_ns("5m"), 300000000000u);
  EXPECT_EQ(*parse_duration_ns("1.5s"), 1500000000u);
  EXPECT_FALSE(parse_duration_ns("30").ok());
  EXPECT_FALSE(parse_duration_ns("-1s").ok());
  EXPECT_FALSE(parse_duration_ns("s").ok());
  EXPECT_FALSE(parse_duration_ns("10 parsecs").ok());
  EXPECT_FALSE(parse_duration_ns("1e99d").ok());
}

TEST(Units, SizesAndPercents) {
  EXPECT_EQ(*parse_size_bytes("4096"), 4096u);
  EXPECT_EQ(*parse_size_bytes("10G"), 10ull << 30);
  EXPECT_EQ(*parse_size_bytes("512MiB"), 512ull << 20);
  EXPECT_FALSE(parse_size_bytes("12Q").ok());
  EXPECT_EQ(*parse_percent("85%"), 85);
  EXPECT_EQ(*parse_percent("85"), 85);
  EXPECT_FALSE(parse_percent("185%").ok());
  EXPECT_FALSE(parse_percent("x%").ok());
}

TEST(Config, ParsesSensorSection) {
  auto c = parse_agent_config(R"(
sensors:
  enabled: [oom, fs]
  sample_interval: 100ms
  io:
    latency_threshold: 150ms
    duration: 2s
  fs:
    used_threshold: 80%
    horizon: 15m
    exclude_mounts: [/boot]
  psi:
    io: 30
)",
                              "mend.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->enabled_sensors, (std::vector<std::string>{"oom", "fs"}));
  EXPECT_EQ(c->sensors.sample_interval_ns, 100000000u);
  EXPECT_EQ(c->sensors.io.latency_threshold_us, 150000u);
  EXPECT_EQ(c->sensors.io.duration_ns, 2000000000u);
  EXPECT_EQ(c->sensors.fs.used_pct, 80);
  EXPECT_EQ(c->sensors.fs.horizon_ns, 900000000000u);
  EXPECT_EQ(c->sensors.fs.exclude_mounts.at(0), "/boot");
  EXPECT_EQ(c->sensors.psi.io_some_avg10, 30);
}

struct Bad {
  const char* yaml;
  const char* where;  // "line:col"
  const char* what;
};

class BadConfig : public ::testing::TestWithParam<Bad> {};

TEST_P(BadConfig, NamesFileLineColumn) {
  auto c = parse_agent_config(GetParam().yaml, "/etc/mend/mend.yaml");
  ASSERT_FALSE(c.ok());
  const auto& m = c.error().message;
  EXPECT_EQ(m.rfind(std::string("/etc/mend/mend.yaml:") + GetParam().where + ":", 0), 0u) << m;
  EXPECT_NE(m.find(GetParam().what), std::string::npos) << m;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfig,
    ::testing::Values(Bad{"sensors:\n  io:\n    latency_treshold: 1s\n", "3:5", "unknown key"},
                      Bad{"sensors:\n  io:\n    latency_threshold: fast\n", "3:24",
                          "invalid duration"},
                      Bad{"sensors:\n  fs:\n    used_threshold: 120%\n", "3:21", "out of range"},
                      Bad{"sensors:\n  enabled: [oom, gpu]\n", "2:12", "unknown sensor"},
                      Bad{"sensors:\n  io: [1, 2]\n", "2:7", "expected a mapping"},
                      Bad{"sensors: {io: {latency_threshold: 1s}\n", "2:1", ""},
                      Bad{"sensorz: {}\n", "1:1", "unknown key \"sensorz\""},
                      Bad{"sensors:\n  sample_interval: 1ms\n", "2:20", "out of range"},
                      Bad{"sensors:\n  fs:\n    count_writers: maybe\n", "3:20", "true or false"}));
