// Two independent faults at once (scenario 7 of the suite): a unit OOM-looping under its
// MemoryMax and another unit's log filling its own filesystem. Two incidents, each with its own
// root cause and its own plan, both verified; neither plan touches the other's unit.
#include <gtest/gtest.h>
#include <sys/statvfs.h>

#include "scenario.h"

using namespace mend::test;
namespace fs = std::filesystem;

TEST(TwoFaults, TwoIncidentsTwoPlansBothVerified) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");  // the OOM-looping unit and its mem-raise policy
  LoopFs lfs(s.dir.path(), "ext4", "64M");
  const std::string logger = unique_name("logger") + ".service";
  const std::string logs = unique_name("logs");
  const std::string script = s.dir.path() + "/writer.py";
  std::ofstream(script) << "import os, time\n"
                           "fd = os.open('"
                        << lfs.mnt()
                        << "/app.log', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
                           "t0 = time.time()\n"
                           "while True:\n"
                           "    n = 800 if time.time() - t0 < 6 else 5\n"
                           "    os.write(fd, b'log line ' * 12 * n + b'\\n')\n"
                           "    time.sleep(0.01)\n";
  s.m.add_unit(logger, "[Service]\nExecStart=/usr/bin/python3 " + script + "\n");
  std::ofstream(s.policies + "/logs.yaml")
      << "policies:\n  - name: " << logs << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs.mnt() << "]}\n    mode: auto\n    actions:\n      - rotate_logs: {paths: ["
      << lfs.mnt() << "/*.log], logrotate_configs: \"\"}\n"
      << "    verify: {deadline: 30s, stable_for: 3s, unit_active: false, usage_below: 50%}\n";
  chmod((s.policies + "/logs.yaml").c_str(), 0644);
  TraceRunner agent(s.args({"--fs-used-threshold", "80%"}), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_EQ(s.m.systemctl({"start", logger}).status, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return !policy_records("mem-raise", kVerified).empty() &&
               !policy_records(logs, kVerified).empty();
      },
      90s))
      << agent.err();
  // The mem-raise records of earlier tests share the policy name: take this unit's.
  auto mem = records(s.unit, kVerified);
  ASSERT_EQ(mem.size(), 1u);
  auto disk = policy_records(logs, kVerified);
  ASSERT_EQ(disk.size(), 1u);
  EXPECT_EQ(mem[0]["MEND_ROOT_CAUSE"], "memory_limit");
  EXPECT_EQ(disk[0]["MEND_ROOT_CAUSE"], "fs_full");
  EXPECT_NE(mem[0]["MEND_INCIDENT_ID"], disk[0]["MEND_INCIDENT_ID"]);
  EXPECT_EQ(disk[0].value("MEND_CULPRIT_UNIT", ""), logger);
  EXPECT_EQ(s.memory_max(), 100u << 20);
  EXPECT_EQ(s.m.show(logger, "MemoryMax"), "infinity");  // untouched by the memory plan
  EXPECT_EQ(s.m.show(logger, "NRestarts"), "0");
  // mendctl sees two incidents, each with its plan and outcome.
  auto list = nlohmann::json::parse(s.mendctl({"incidents", "-o", "json"}).out);
  std::map<std::string, std::string> plan_by_cause;
  for (const auto& i : list)
    if (i["outcome"] == "verified")
      plan_by_cause[i["root_cause"]] = i["plan"];
  EXPECT_EQ(plan_by_cause["memory_limit"], "mem-raise");
  EXPECT_EQ(plan_by_cause["fs_full"], logs);
  EXPECT_EQ(agent.stop(), 0);
}
