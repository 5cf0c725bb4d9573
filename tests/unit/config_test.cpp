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

TEST(Config, ParsesAgentSections) {
  auto c = parse_agent_config(R"(
state_dir: /srv/mend
control: {socket: /run/mend/ctl.sock, group: adm}
executor:
  dry_run: true
  max_actions_per_hour: 4
  max_concurrent: 2
  protected_units: [postgresql.service]
  pause_file: /run/mend/pause
  approval_timeout: 5m
  shutdown_grace: 20s
  notify: {command: [/usr/local/bin/page, --team, sre], timeout: 5s, user: pager}
  children: inline
correlation: {window: 2m, quiet: 5m, reorder: 1s}
metrics: {listen: "127.0.0.1:9464"}
slo:
  - {unit: web.service, objective: 99.9%, window: 30d}
  - {unit: api.service, objective: "99.5"}
)",
                              "mend.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->state_dir, "/srv/mend");
  EXPECT_EQ(c->control.socket, "/run/mend/ctl.sock");
  EXPECT_EQ(c->control.group, "adm");
  EXPECT_TRUE(c->executor.dry_run);
  EXPECT_EQ(c->executor.max_actions_per_hour, 4u);
  EXPECT_EQ(c->executor.max_concurrent, 2u);
  EXPECT_EQ(c->executor.protected_units.at(0), "postgresql.service");
  EXPECT_EQ(c->executor.approval_timeout_ns, 300000000000u);
  EXPECT_EQ(c->executor.shutdown_grace_ns, 20000000000u);
  EXPECT_EQ(c->executor.notify_command.size(), 3u);
  EXPECT_EQ(c->executor.notify_timeout_ns, 5000000000u);
  EXPECT_EQ(c->executor.notify_user, "pager");
  EXPECT_EQ(c->executor.children, "inline");
  EXPECT_EQ(c->correlation.window_ns, 120000000000u);
  EXPECT_EQ(c->correlation.reorder_ns, 1000000000u);
  ASSERT_EQ(c->slos.size(), 2u);
  EXPECT_DOUBLE_EQ(c->slos[0].objective, 0.999);
  EXPECT_EQ(c->slos[0].window_ns, 30ull * 86400000000000ull);
  EXPECT_DOUBLE_EQ(c->slos[1].objective, 0.995);
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:9464");
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
                      Bad{"sensors:\n  fs:\n    count_writers: maybe\n", "3:20", "true or false"},
                      Bad{"state_dir: var/lib/mend\n", "1:12", "absolute path"},
                      Bad{"executor:\n  notify: {command: [page]}\n", "2:21", "absolute path"},
                      Bad{"executor:\n  max_concurrent: 0\n", "2:19", "out of range"},
                      Bad{"executor:\n  children: fork\n", "2:13", "auto, transient or inline"},
                      Bad{"executor:\n  notify: {command: [/bin/page], user: \"r oot\"}\n", "2:40",
                          "a user name"},
                      Bad{"executor:\n  budget: 3\n", "2:3", "unknown key \"executor.budget\""},
                      Bad{"slo:\n  - {unit: a.service, objective: 100%}\n", "2:34", "out of range"},
                      Bad{"slo:\n  - {unit: a.service}\n", "2:5", "needs unit and objective"},
                      Bad{"slo:\n  - {unit: a.service, objective: 99%}\n  - {unit: a.service, "
                          "objective: 98%}\n",
                          "3:5", "two objectives"},
                      Bad{"control: {socket: run/mend.sock}\n", "1:19", "absolute path"},
                      // one number and one boolean grammar (issue 14)
                      Bad{"sensors:\n  io:\n    clear_ratio: nan\n", "3:18", "expected a number"},
                      Bad{"sensors:\n  io:\n    clear_ratio: 0.5x\n", "3:18", "expected a number"},
                      Bad{"sensors:\n  psi: {cpu: inf}\n", "2:14", "expected a number"},
                      Bad{"sensors:\n  io:\n    window: -1s\n", "3:13", "invalid duration"},
                      Bad{"executor:\n  dry_run: maybe\n", "2:12", "expected a boolean"},
                      Bad{"metrics: {listen: localhost}\n", "1:19", "HOST:PORT"}));

// The example shipped as /etc/mend/mend.yaml parses, and its values are the defaults, but for
// the control group the package creates (sysusers.d) so that its members may use mendctl.
TEST(Config, ShippedExampleIsValidAndShowsTheDefaults) {
  auto c = load_agent_config(std::string(MEND_POLICIES_DIR) + "/../packaging/mend.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const AgentConfig d;
  EXPECT_EQ(c->state_dir, d.state_dir);
  EXPECT_EQ(c->control.socket, d.control.socket);
  EXPECT_EQ(d.control.group, "");
  EXPECT_EQ(c->control.group, "mend");
  EXPECT_EQ(c->executor.max_actions_per_hour, d.executor.max_actions_per_hour);
  EXPECT_EQ(c->executor.approval_timeout_ns, d.executor.approval_timeout_ns);
  EXPECT_EQ(c->executor.shutdown_grace_ns, d.executor.shutdown_grace_ns);
  EXPECT_EQ(c->correlation.window_ns, d.correlation.window_ns);
  EXPECT_EQ(c->correlation.reorder_ns, d.correlation.reorder_ns);
  EXPECT_EQ(c->sensors.io.latency_threshold_us, d.sensors.io.latency_threshold_us);
  EXPECT_EQ(c->sensors.fs.used_pct, d.sensors.fs.used_pct);
  EXPECT_EQ(c->enabled_sensors, d.enabled_sensors);
  EXPECT_TRUE(c->slos.empty());
}

TEST(Units, OneNumberAndOneBooleanGrammar) {
  EXPECT_DOUBLE_EQ(*parse_number("0.9"), 0.9);
  EXPECT_DOUBLE_EQ(*parse_number("12"), 12);
  EXPECT_DOUBLE_EQ(*parse_number("-1"), -1);
  for (const char* bad : {"", "-", ".", "nan", "NaN", "inf", "-inf", ".inf", "1e3", "0x10", "1.2.3",
                          " 1", "1 ", "+1", "1,5", "12abc", "--1"})
    EXPECT_FALSE(parse_number(bad).ok()) << bad;
  EXPECT_EQ(*parse_integer("42"), 42);
  EXPECT_FALSE(parse_integer("4.2").ok());
  EXPECT_FALSE(parse_integer("99999999999999999999").ok());
  for (const char* t : {"1", "yes", "y", "true", "t", "on", "TRUE", "Yes"})
    EXPECT_TRUE(*parse_bool(t)) << t;
  for (const char* f : {"0", "no", "n", "false", "f", "off", "Off"})
    EXPECT_FALSE(*parse_bool(f)) << f;
  for (const char* bad : {"", "maybe", "2", "truee"})
    EXPECT_FALSE(parse_bool(bad).ok()) << bad;
  EXPECT_FALSE(parse_duration_ns("-5s").ok());
  EXPECT_FALSE(parse_duration_ns("5s junk").ok());
  EXPECT_FALSE(parse_size_bytes("nanG").ok());
}
