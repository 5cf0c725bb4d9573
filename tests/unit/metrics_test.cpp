#include "sinks/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace mend;

namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

Record rec(RecordKind k, const std::string& cause, const std::string& action = "",
           const std::string& result = "") {
  Record r;
  r.kind = k;
  r.root_cause = cause;
  r.action = action;
  r.result = result;
  return r;
}

}  // namespace

TEST(Metrics, CountsFollowTheRecordsAndGaugesTheState) {
  Metrics m;
  m.incident_opened("memory_limit");
  m.incident_opened("memory_limit");
  m.incident_opened("fs_full");
  m.observe(rec(RecordKind::ActionFinished, "memory_limit", "raise_memory_limit", "applied"));
  m.observe(rec(RecordKind::ActionFinished, "fs_full", "clean_files", "not run"));
  m.observe(rec(RecordKind::RolledBack, "memory_limit", "raise_memory_limit", "rolled_back"));
  auto v = rec(RecordKind::Verified, "memory_limit");
  v.extra["mttr_ms"] = "4200";
  m.observe(v);
  m.observe(rec(RecordKind::Escalated, "fs_full"));
  m.set_sensor_stats({{"oom", true, "", 7, 0, 0, 0, {}, 0, ""},
                      {"io", false, "no tp_btf", 0, 0, 0, 0, {}, 0, ""}});
  m.set_sensor_stats({{"oom", true, "", 10, 2, 1, 0, {}, 0, ""}});
  m.set_approvals_pending(2);
  m.set_error_budget("web.service", 0.75);
  const std::string t = m.scrape();
  EXPECT_TRUE(has(t, "mend_incidents_opened_total{root_cause=\"memory_limit\"} 2")) << t;
  EXPECT_TRUE(has(t, "mend_incidents_opened_total{root_cause=\"fs_full\"} 1"));
  EXPECT_TRUE(has(t, "mend_incidents_resolved_total{root_cause=\"memory_limit\"} 1"));
  EXPECT_TRUE(has(t, "mend_incidents_escalated_total{root_cause=\"fs_full\"} 1"));
  EXPECT_TRUE(has(t, "mend_mttr_seconds_bucket{root_cause=\"memory_limit\",le=\"5\"} 1"));
  EXPECT_TRUE(has(t, "mend_mttr_seconds_bucket{root_cause=\"memory_limit\",le=\"2\"} 0"));
  EXPECT_TRUE(has(t, "mend_actions_total{action=\"raise_memory_limit\",outcome=\"applied\"} 1"));
  EXPECT_TRUE(has(t, "mend_actions_total{action=\"clean_files\",outcome=\"not_run\"} 1"));
  EXPECT_TRUE(
      has(t, "mend_rollbacks_total{action=\"raise_memory_limit\",result=\"rolled_back\"} 1"));
  EXPECT_TRUE(has(t, "mend_sensor_events_total{sensor=\"oom\"} 10"));
  EXPECT_TRUE(has(t, "mend_sensor_dropped_total{sensor=\"oom\"} 3"));
  EXPECT_TRUE(has(t, "mend_sensor_up{sensor=\"io\"} 0"));
  EXPECT_TRUE(has(t, "mend_approvals_pending 2"));
  EXPECT_TRUE(has(t, "mend_slo_error_budget_remaining_ratio{unit=\"web.service\"} 0.75"));
}

TEST(Metrics, ServesTheTextFormatOverHttpOnLocalhost) {
  Metrics m;
  ASSERT_TRUE(m.listen("127.0.0.1:0").ok());
  ASSERT_GT(m.port(), 0);
  m.incident_opened("io_stall");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(m.port()));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    resp.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_EQ(resp.rfind("HTTP/1.", 0), 0u);
  EXPECT_TRUE(has(resp, "mend_incidents_opened_total{root_cause=\"io_stall\"} 1")) << resp;
  Metrics other;
  EXPECT_FALSE(other.listen("127.0.0.1:" + std::to_string(m.port())).ok());
}

// BPF program run time and runs: the kernel's totals become counter increments, per sensor and
// program; a total that goes back (a sensor restarted) adds nothing.
TEST(Metrics, BpfProgramRunTimeFromTheKernelTotals) {
  Metrics m;
  SensorStats fs{"fs", true, "", 0, 0, 0, 0, {{"handle_exit", 2500000000ull, 1000}}, 0, ""};
  m.set_sensor_stats({fs});
  fs.programs[0] = {"handle_exit", 3000000000ull, 1500};
  m.set_sensor_stats({fs});
  fs.programs[0] = {"handle_exit", 100, 1};
  m.set_sensor_stats({fs});
  const std::string t = m.scrape();
  EXPECT_TRUE(has(t, "mend_bpf_program_run_seconds_total{program=\"handle_exit\",sensor=\"fs\"} 3"))
      << t;
  EXPECT_TRUE(has(t, "mend_bpf_program_runs_total{program=\"handle_exit\",sensor=\"fs\"} 1500"))
      << t;
}
