// Disk scenarios end to end: a real unit fills a real loop filesystem with its log, mendd
// names fs_full with that unit as the writer, rotates the log while the unit keeps writing,
// verifies usage, and not a line is lost or doubled.
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <zlib.h>

#include "scenario.h"

using namespace mend::test;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

double used_pct(const std::string& mnt) {
  struct statvfs sv {};
  statvfs(mnt.c_str(), &sv);
  const double used = static_cast<double>(sv.f_blocks - sv.f_bfree);
  return 100.0 * used / (used + static_cast<double>(sv.f_bavail));
}

}  // namespace

TEST(DiskScenario, LogFillIsRotatedWhileTheUnitKeepsWritingAndNoLineIsLost) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "64M");
  UserManager m;
  const std::string unit = unique_name("logger") + ".service";
  const std::string policy = unique_name("logs");
  const std::string log = lfs.mnt() + "/app.log";
  // ~8 MB/s for 6 s (about 85% of the filesystem), then a trickle.
  const std::string script = dir.path() + "/writer.py";
  std::ofstream(script) << "import os, time\n"
                           "fd = os.open('"
                        << log
                        << "', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
                           "i = 0\nt0 = time.time()\n"
                           "while True:\n"
                           "    n = 800 if time.time() - t0 < 6 else 5\n"
                           "    for _ in range(n):\n"
                           "        os.write(fd, b'line %d %s\\n' % (i, b'x' * 100))\n"
                           "        i += 1\n"
                           "    time.sleep(0.01)\n";
  m.add_unit(unit, "[Service]\nExecStart=/usr/bin/python3 " + script + "\n");
  const std::string policies = dir.path() + "/policies.d";
  fs::create_directories(policies);
  std::ofstream(policies + "/logs.yaml")
      << "policies:\n  - name: " << policy << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs.mnt() << "]}\n    mode: auto\n    actions:\n      - rotate_logs: {paths: ["
      << lfs.mnt() << "/*.log], keep: 3, min_size: 1M, logrotate_configs: \"\"}\n"
      << "    verify: {deadline: 30s, stable_for: 3s, unit_active: false, usage_below: 50%}\n";
  chmod((policies + "/logs.yaml").c_str(), 0644);
  TraceRunner agent({"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state",
                     "--sensors", "fs,units", "--fs-used-threshold", "80%"},
                    false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(m.systemctl({"start", unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !policy_records(policy, kVerified).empty(); }, 60s))
      << agent.err();
  auto v = policy_records(policy, kVerified).at(0);
  EXPECT_EQ(v["MEND_ROOT_CAUSE"], "fs_full");
  EXPECT_EQ(v.value("MEND_CULPRIT_UNIT", v.value("OBJECT_SYSTEMD_UNIT", "")), unit) << v.dump();
  EXPECT_LT(used_pct(lfs.mnt()), 50);
  // The writer was never stopped or restarted.
  EXPECT_EQ(m.show(unit, "ActiveState"), "active");
  EXPECT_EQ(m.show(unit, "NRestarts"), "0");
  ASSERT_EQ(m.systemctl({"stop", unit}).status, 0);
  // Every line, in order, exactly once: the rotations (oldest first), then the live file.
  std::string all;
  for (int i = 3; i >= 1; --i)
    if (fs::exists(log + "." + std::to_string(i) + ".gz"))
      all += gunzip_file(log + "." + std::to_string(i) + ".gz");
  all += slurp(log);
  std::istringstream in(all);
  uint64_t expect = 0;
  for (std::string line; std::getline(in, line); ++expect) {
    ASSERT_EQ(line.rfind("line " + std::to_string(expect) + " ", 0), 0u)
        << "line " << expect << " is \"" << line.substr(0, 40) << "\"";
  }
  EXPECT_GT(expect, 300000u);  // ~40 MB of lines
  EXPECT_EQ(agent.stop(), 0);
}

// Scenario 1 of the suite as written: a unit's own log fills its volume and the unit starts
// failing with ENOSPC (it exits, Restart=on-failure, and dies again at every start). One
// incident, fs_full with that unit as culprit (not "the unit crashed"); the log is rotated,
// then the unit restarted, and it stays up. Its own restarts are 10 s apart, so mend's restart
// is the one that brings it back (with 1 s, systemd's own restart after the rotation could
// come first, and mend rightly restarts nothing then: RestartUnit unit tests cover that).
TEST(DiskScenario, OwnLogFillCrashLoopIsRotatedThenTheUnitRestartedAndStable) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "64M");
  UserManager m;
  const std::string unit = unique_name("chatty") + ".service";
  const std::string policy = unique_name("own-log");
  const std::string log = lfs.mnt() + "/app.log";
  // A storm of log lines until the volume is full (once: a marker outside the volume), then a
  // line every 100 ms at each start; a service that cannot log exits.
  const std::string script = dir.path() + "/chatty.py";
  const std::string marker = dir.path() + "/stormed";
  std::ofstream(script)
      << "import os, sys, time\n"
         "storm = not os.path.exists('"
      << marker << "')\nfd = os.open('" << log
      << "', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
         "try:\n"
         "    while True:\n"
         "        os.write(fd, b'chatty line ' * (2000 if storm else 1) + b'\\n')\n"
         "        if not storm: time.sleep(0.1)\n"
         "except OSError as e:\n"
         "    open('"
      << marker
      << "', 'w').close()\n"
         "    print('cannot log:', e); sys.exit(1)\n";
  m.add_unit(unit, "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/python3 " +
                       script + "\nRestart=on-failure\nRestartSec=10s\n");
  const std::string policies = dir.path() + "/policies.d";
  fs::create_directories(policies);
  std::ofstream(policies + "/logs.yaml")
      << "policies:\n  - name: " << policy << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs.mnt() << "]}\n    mode: auto\n    actions:\n      - rotate_logs: {paths: ["
      << lfs.mnt() << "/*.log], keep: 2, logrotate_configs: \"\"}\n"
      << "      - restart_unit: {which: failed, timeout: 20s}\n"
      << "    verify: {deadline: 60s, stable_for: 4s, unit_active: true, usage_below: 50%}\n";
  chmod((policies + "/logs.yaml").c_str(), 0644);
  // The threshold at 100%: mend acts on the failure, not before it (the scenario's point).
  // The fill outruns one sample from an empty volume: the syscall-exit probe always attached
  // (in "auto" it arms only once a filesystem is at risk, after this fill's first writes).
  TraceRunner agent(
      {"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state", "--sensors",
       "fs,units", "--fs-used-threshold", "100%", "--fs-enospc-probe", "always"},
      false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(m.systemctl({"start", unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !policy_records(policy, kVerified).empty(); }, 90s))
      << agent.err();
  auto v = policy_records(policy, kVerified).at(0);
  EXPECT_EQ(v["MEND_ROOT_CAUSE"], "fs_full");
  EXPECT_EQ(v.value("MEND_CULPRIT_UNIT", ""), unit) << [&] {
    std::string o;
    for (const auto& r : journal({"MEND_INCIDENT_ID=" + v.value("MEND_INCIDENT_ID", "")}))
      o += r.dump(1) + "\n";
    return o;
  }();
  // One incident: every record of this unit names the same one.
  std::set<std::string> ids;
  for (const char* id :
       {"9d87041f009d451f971634f2032ae22a", "49094a6c7ca84536a6a2e24920d92434", kVerified})
    for (const auto& r : records(unit, id))
      ids.insert(r.value("MEND_INCIDENT_ID", ""));
  EXPECT_EQ(ids.size(), 1u);
  // It failed before mend acted (the fault was real: it wrote its marker on ENOSPC), and mend
  // restarted it after the disk (a manual restart resets NRestarts, so not counted there).
  EXPECT_TRUE(fs::exists(marker));
  std::vector<std::string> order;
  std::string restarted;
  for (const auto& r : policy_records(policy, "666e06a737c04222b04538ba13cb14b8")) {
    order.push_back(r.value("MEND_ACTION", "") + ":" + r.value("MEND_RESULT", ""));
    if (r.value("MEND_ACTION", "") == "restart_unit")
      restarted = r.value("MESSAGE", "");
  }
  EXPECT_EQ(order, (std::vector<std::string>{"rotate_logs:applied", "restart_unit:applied"}));
  EXPECT_NE(restarted.find("restart " + unit), std::string::npos) << restarted;
  EXPECT_TRUE(fs::exists(log + ".1.gz"));
  EXPECT_LT(used_pct(lfs.mnt()), 50);
  // Stable afterwards: still up a few seconds later, no new death.
  const std::string restarts = m.show(unit, "NRestarts");
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(m.show(unit, "ActiveState"), "active");
  EXPECT_EQ(m.show(unit, "NRestarts"), restarts);
  EXPECT_TRUE(policy_records(policy, kEscalated).empty());
  EXPECT_EQ(agent.stop(), 0);
}

// Data (not logs) fills an XFS volume that is already at its maximum size: the log rotation
// finds nothing to rotate, the next policy's growth is refused past the maximum, and the
// incident is escalated once, naming the writer and every step tried. Nothing is changed.
TEST(DiskScenario, UnfixableFillIsEscalatedWithTheWriterAndEveryStep) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "xfs", "300M");
  UserManager m;
  const std::string unit = unique_name("filler") + ".service";
  const std::string rotate = unique_name("rotate"), grow = unique_name("grow");
  const std::string script = dir.path() + "/filler.py";
  std::ofstream(script) << "import os, time\n"
                           "fd = os.open('"
                        << lfs.mnt()
                        << "/data.bin', os.O_WRONLY | os.O_CREAT, 0o644)\n"
                           "chunk = b'd' * (1 << 20)\n"
                           "while True:\n"
                           "    s = os.statvfs('"
                        << lfs.mnt()
                        << "')\n"
                           "    if (s.f_blocks - s.f_bavail) * 100 >= 92 * s.f_blocks: break\n"
                           "    os.write(fd, chunk)\n"
                           "os.fsync(fd)\n"
                           "time.sleep(3600)\n";
  m.add_unit(unit, "[Service]\nExecStart=/usr/bin/python3 " + script + "\n");
  const std::string policies = dir.path() + "/policies.d";
  fs::create_directories(policies);
  std::ofstream(policies + "/disk.yaml")
      << "policies:\n"
      << "  - name: " << rotate << "\n    match: {root_cause: fs_full, mounts: [" << lfs.mnt()
      << "]}\n    mode: auto\n    actions:\n      - rotate_logs: {paths: [" << lfs.mnt()
      << "/*.log], logrotate_configs: \"\"}\n"
      << "    verify: {deadline: 20s, stable_for: 2s, unit_active: false, usage_below: 80%}\n"
      << "    on_failure: rollback_then_next\n"
      << "  - name: " << grow << "\n    match: {root_cause: fs_full, mounts: [" << lfs.mnt()
      << "]}\n    mode: auto\n    allow_irreversible: true\n    actions:\n"
      << "      - grow_volume: {step: 100M, max_size: 300M, reserve: 0}\n"
      << "    verify: {deadline: 20s, stable_for: 2s, unit_active: false, usage_below: 80%}\n";
  chmod((policies + "/disk.yaml").c_str(), 0644);
  const auto image_before = fs::file_size(lfs.image());
  TraceRunner agent({"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state",
                     "--sensors", "fs,units", "--fs-used-threshold", "80%"},
                    false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(m.systemctl({"start", unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !policy_records(grow, kEscalated).empty(); }, 60s))
      << agent.err();
  std::this_thread::sleep_for(2s);
  auto esc = policy_records(grow, kEscalated);
  ASSERT_EQ(esc.size(), 1u);  // one page
  EXPECT_TRUE(policy_records(rotate, kEscalated).empty());
  const std::string msg = esc[0]["MESSAGE"];
  EXPECT_EQ(esc[0]["PRIORITY"], "2");
  EXPECT_EQ(esc[0].value("MEND_CULPRIT_UNIT", ""), unit) << msg;
  EXPECT_NE(msg.find(rotate + "/rotate_logs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("grow_volume"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at or past the maximum"), std::string::npos) << msg;
  EXPECT_EQ(fs::file_size(lfs.image()), image_before);
  EXPECT_EQ(agent.stop(), 0);
}

// A noisy unit fills the disk with its log; a victim crash-loops on ENOSPC. The root cause is
// the full disk with the noisy unit as culprit (not the victim's crash); the plan (approved
// once the victim is looping) frees space first, then restarts only what is still failing.
// The noisy unit keeps running.
TEST(DiskScenario, EnospcCrashLoopGetsTheDiskFixedFirstThenTheVictimRestarted) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "64M");
  UserManager m;
  const std::string noisy = unique_name("noisy") + ".service";
  const std::string victim = unique_name("victim") + ".service";
  const std::string policy = unique_name("enospc");
  const std::string writer = dir.path() + "/noisy.py";
  std::ofstream(writer)
      << "import os, time\n"
         "fd = os.open('"
      << lfs.mnt()
      << "/noisy.log', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
         "line = b'noise ' + b'n' * 200 + b'\\n'\n"
         "while True:\n"
         "    try:\n"
         "        os.write(fd, line * 256)\n"
         "    except OSError:\n"
         "        break\n"
         "time.sleep(3600)  # a burst that filled the disk; the file stays open\n";
  const std::string state = dir.path() + "/victim.py";
  std::ofstream(state) << "import os, sys, time\n"
                          "try:\n"
                          "    with open('"
                       << lfs.mnt()
                       << "/victim.state', 'wb') as f:\n"
                          "        f.write(b's' * (4 << 20)); f.flush(); os.fsync(f.fileno())\n"
                          "except OSError as e:\n"
                          "    print('cannot write state:', e); sys.exit(1)\n"
                          "time.sleep(3600)\n";
  m.add_unit(noisy, "[Service]\nExecStart=/usr/bin/python3 " + writer + "\n");
  m.add_unit(victim, "[Unit]\nStartLimitBurst=1000\n[Service]\nExecStart=/usr/bin/python3 " +
                         state + "\nRestart=on-failure\nRestartSec=2s\n");
  const std::string policies = dir.path() + "/policies.d";
  fs::create_directories(policies);
  std::ofstream(policies + "/enospc.yaml")
      << "policies:\n  - name: " << policy << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs.mnt() << "]}\n    mode: approve\n    actions:\n      - rotate_logs: {paths: ["
      << lfs.mnt() << "/*.log], keep: 2, logrotate_configs: \"\"}\n"
      << "      - restart_unit: {which: failed, timeout: 20s}\n"
      << "    verify: {deadline: 30s, stable_for: 3s, unit_active: false, usage_below: 50%}\n";
  chmod((policies + "/enospc.yaml").c_str(), 0644);
  const std::string sock = dir.path() + "/ctl.sock";
  // The fill outruns one sample from an empty volume: the syscall-exit probe always attached
  // (in "auto" it arms only once a filesystem is at risk, after this fill's first writes).
  TraceRunner agent({"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state",
                     "--sensors", "fs,units", "--fs-used-threshold", "95%", "--control-socket",
                     sock, "--fs-enospc-probe", "always"},
                    false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(m.systemctl({"start", noisy}).status, 0);
  // Full: the noisy writer gets ENOSPC; then the victim starts and crash-loops.
  ASSERT_TRUE(wait_until([&] { return used_pct(lfs.mnt()) > 99; }, 30s));
  ASSERT_EQ(m.systemctl({"start", "--no-block", victim}).status, 0);
  ASSERT_TRUE(wait_until([&] { return std::stoi("0" + m.show(victim, "NRestarts")) >= 2; }, 30s));
  std::string id;
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = nlohmann::json::parse(
            run({MENDCTL_PATH, "--socket", sock, "incidents", "-o", "json"}).out, nullptr, false);
        if (j.is_array())
          for (const auto& i : j)
            if (i.value("awaiting_approval", false))
              id = i["id"];
        return !id.empty();
      },
      20s))
      << agent.err();
  ASSERT_EQ(run({MENDCTL_PATH, "--socket", sock, "approve", id}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !policy_records(policy, kVerified).empty(); }, 90s))
      << agent.err();
  auto v = policy_records(policy, kVerified).at(0);
  EXPECT_EQ(v["MEND_ROOT_CAUSE"], "fs_full");
  EXPECT_EQ(v.value("MEND_CULPRIT_UNIT", ""), noisy) << v.dump();
  EXPECT_EQ(m.show(victim, "ActiveState"), "active");
  EXPECT_EQ(m.show(noisy, "ActiveState"), "active");
  EXPECT_EQ(m.show(noisy, "NRestarts"), "0");  // the culprit was not restarted
  // The order of the plan: the disk first, then the restart.
  std::vector<std::string> order;
  for (const auto& r : policy_records(policy, "14b7cdd70abd4e548e11a28f87926cf0"))
    if (!r.value("MEND_ACTION", "").empty())  // (the first record is the approval request)
      order.push_back(r["MEND_ACTION"]);
  EXPECT_EQ(order, (std::vector<std::string>{"rotate_logs", "restart_unit"}));
  std::string restarted;
  for (const auto& r : policy_records(policy, "666e06a737c04222b04538ba13cb14b8"))
    if (r.value("MEND_ACTION", "") == "restart_unit")
      restarted = r["MESSAGE"];
  EXPECT_NE(restarted.find("restart " + victim), std::string::npos) << restarted;
  EXPECT_EQ(restarted.find(noisy), std::string::npos) << restarted;
  EXPECT_EQ(agent.stop(), 0);
}

// Data fills an XFS loop volume with room to grow: grow_volume takes it one step (within the
// maximum), the new size is visible, usage falls under the target, and the fix is verified.
TEST(DiskScenario, DataFillOnXfsIsGrownWithinItsBounds) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "xfs", "300M");
  UserManager m;
  const std::string unit = unique_name("data") + ".service";
  const std::string grow = unique_name("grow");
  const std::string script = dir.path() + "/filler.py";
  std::ofstream(script) << "import os, time\n"
                           "fd = os.open('"
                        << lfs.mnt()
                        << "/data.bin', os.O_WRONLY | os.O_CREAT, 0o644)\n"
                           "chunk = b'd' * (1 << 20)\n"
                           "while True:\n"
                           "    s = os.statvfs('"
                        << lfs.mnt()
                        << "')\n"
                           "    if (s.f_blocks - s.f_bavail) * 100 >= 90 * s.f_blocks: break\n"
                           "    os.write(fd, chunk)\n"
                           "os.fsync(fd)\n"
                           "time.sleep(3600)\n";
  m.add_unit(unit, "[Service]\nExecStart=/usr/bin/python3 " + script + "\n");
  const std::string policies = dir.path() + "/policies.d";
  fs::create_directories(policies);
  std::ofstream(policies + "/grow.yaml")
      << "policies:\n  - name: " << grow << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs.mnt() << "]}\n    mode: auto\n    allow_irreversible: true\n    actions:\n"
      << "      - grow_volume: {step: 300M, max_size: 1G, reserve: 1G}\n"
      << "    verify: {deadline: 30s, stable_for: 2s, unit_active: false, usage_below: 60%}\n";
  chmod((policies + "/grow.yaml").c_str(), 0644);
  // The fill outruns one sample from an empty volume: the syscall-exit probe always attached
  // (in "auto" it arms only once a filesystem is at risk, after this fill's first writes).
  TraceRunner agent(
      {"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state", "--sensors",
       "fs,units", "--fs-used-threshold", "85%", "--fs-enospc-probe", "always"},
      false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(m.systemctl({"start", unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !policy_records(grow, kVerified).empty(); }, 60s))
      << agent.err();
  EXPECT_EQ(fs::file_size(lfs.image()), 600u << 20);  // one step, 300M -> 600M
  EXPECT_LT(used_pct(lfs.mnt()), 60);
  auto v = policy_records(grow, kVerified).at(0);
  EXPECT_EQ(v.value("MEND_CULPRIT_UNIT", ""), unit);
  EXPECT_GE(std::stoll(v.value("MEND_MTTR_MS", "-1")), 0);
  EXPECT_EQ(agent.stop(), 0);
}

// A data volume filling steadily, still far from any threshold: time-to-full falls under the
// horizon (fs_filling), and the volume is grown before it is full (scenario 5 of the suite).
TEST(DiskScenario, FillingVolumeIsGrownBeforeItIsFull) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "xfs", "300M");
  UserManager m;
  const std::string unit = unique_name("ingest") + ".service";
  const std::string grow = unique_name("grow-early");
  const std::string script = dir.path() + "/ingest.py";
  // 8 MB/s until 95% used, then it stops: without mend the volume ends up nearly full.
  std::ofstream(script) << "import os, time\n"
                           "fd = os.open('"
                        << lfs.mnt()
                        << "/ingest.bin', os.O_WRONLY | os.O_CREAT, 0o644)\n"
                           "chunk = b'i' * (1 << 20)\n"
                           "while True:\n"
                           "    s = os.statvfs('"
                        << lfs.mnt()
                        << "')\n"
                           "    if (s.f_blocks - s.f_bavail) * 100 >= 95 * s.f_blocks: break\n"
                           "    os.write(fd, chunk); os.fsync(fd)\n"
                           "    time.sleep(0.125)\n"
                           "time.sleep(3600)\n";
  m.add_unit(unit, "[Service]\nExecStart=/usr/bin/python3 " + script + "\n");
  const std::string policies = dir.path() + "/policies.d";
  fs::create_directories(policies);
  std::ofstream(policies + "/grow.yaml")
      << "policies:\n  - name: " << grow << "\n    match: {root_cause: fs_filling, mounts: ["
      << lfs.mnt()
      << "], min_confidence: 0.6}\n    mode: auto\n    allow_irreversible: true\n    actions:\n"
      << "      - grow_volume: {step: 600M, max_size: 1G, reserve: 1G}\n"
      << "    verify: {deadline: 30s, stable_for: 2s, unit_active: false, usage_below: 90%}\n";
  chmod((policies + "/grow.yaml").c_str(), 0644);
  // The fill outruns one sample from an empty volume: the syscall-exit probe always attached
  // (in "auto" it arms only once a filesystem is at risk, after this fill's first writes).
  TraceRunner agent({"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state",
                     "--sensors", "fs,units", "--fs-used-threshold", "95%", "--fs-horizon", "40s",
                     "--fs-enospc-probe", "always"},
                    false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(m.systemctl({"start", unit}).status, 0);
  double peak = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        peak = std::max(peak, used_pct(lfs.mnt()));
        return !policy_records(grow, kVerified).empty();
      },
      60s))
      << agent.err();
  auto v = policy_records(grow, kVerified).at(0);
  EXPECT_EQ(v["MEND_ROOT_CAUSE"], "fs_filling");
  EXPECT_EQ(v.value("MEND_CULPRIT_UNIT", ""), unit);
  EXPECT_EQ(fs::file_size(lfs.image()), 900u << 20);
  EXPECT_LT(peak, 95) << "grown only after the volume was (nearly) full";
  EXPECT_EQ(agent.stop(), 0);
}

// A rotation that takes seconds (a ~200 MB log of poorly compressible lines): while it runs,
// mendd keeps serving mendctl and `explain` shows the running step with its progress; then the
// plan is verified as usual.
TEST(DiskScenario, LongRotationShowsItsProgressInExplainWhileItRuns) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "640M");
  UserManager m;
  const std::string unit = unique_name("bigwriter") + ".service";
  const std::string policy = unique_name("big-rotate");
  const std::string script = dir.path() + "/writer.py";
  // 200 MB of random hex lines in one go (gzip gets ~2:1 from them, slowly), then a trickle.
  std::ofstream(script) << "import os, time\n"
                           "fd = os.open('"
                        << lfs.mnt()
                        << "/big.log', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
                           "for _ in range(100):\n"
                           "    os.write(fd, (os.urandom(1 << 20).hex() + '\\n').encode())\n"
                           "while True:\n"
                           "    os.write(fd, b'tick\\n'); time.sleep(0.5)\n";
  m.add_unit(unit, "[Service]\nExecStart=/usr/bin/python3 " + script + "\n");
  const std::string policies = dir.path() + "/policies.d";
  fs::create_directories(policies);
  std::ofstream(policies + "/logs.yaml")
      << "policies:\n  - name: " << policy << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs.mnt() << "]}\n    mode: approve\n    actions:\n      - rotate_logs: {paths: ["
      << lfs.mnt() << "/*.log], min_size: 1M, logrotate_configs: \"\"}\n"
      << "    verify: {deadline: 60s, stable_for: 1s, unit_active: false, usage_below: 25%}\n";
  chmod((policies + "/logs.yaml").c_str(), 0644);
  const std::string sock = dir.path() + "/control.sock";
  auto mendctl = [&](std::vector<std::string> a) {
    a.insert(a.begin(), {MENDCTL_PATH, "--socket", sock});
    return run(a);
  };
  TraceRunner agent(
      {"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state",
       "--control-socket", sock, "--sensors", "fs,units", "--fs-used-threshold", "30%"},
      false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(m.systemctl({"start", unit}).status, 0);
  // Approval: the writer has written its 200 MB by then, so the rotation is long.
  std::string id;
  ASSERT_TRUE(wait_until(
      [&] {
        auto l = nlohmann::json::parse(mendctl({"incidents", "-o", "json"}).out, nullptr, false);
        for (const auto& x : l.is_array() ? l : nlohmann::json::array())
          if (x.value("awaiting_approval", false))
            id = x.value("id", "");
        return !id.empty();
      },
      60s))
      << agent.err();
  ASSERT_TRUE(
      wait_until([&] { return fs::file_size(lfs.mnt() + "/big.log") > (200u << 20); }, 30s));
  ASSERT_EQ(mendctl({"approve", id}).status, 0);
  // Poll explain while the step runs: it answers, and says how far the rotation is.
  std::vector<double> fractions;
  std::string progress, human;
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end) {
    auto e = nlohmann::json::parse(mendctl({"explain", id, "-o", "json"}).out, nullptr, false);
    ASSERT_FALSE(e.is_discarded());
    const auto& step = e["plan"]["steps"][0];
    if (step.value("result", "") == "running") {
      if (step.contains("fraction"))
        fractions.push_back(step["fraction"].get<double>());
      if (!step.value("progress", "").empty())
        progress = step.value("progress", "");
      if (human.empty())
        human = mendctl({"explain", id}).out;
    } else if (!fractions.empty() || step.value("result", "") == "applied") {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(fractions.empty()) << "explain never showed the rotation running\n" << agent.err();
  EXPECT_NE(progress.find("big.log: "), std::string::npos) << progress;
  EXPECT_NE(progress.find("MiB compressed (file 1 of 1)"), std::string::npos) << progress;
  for (double f : fractions) {
    EXPECT_GE(f, 0);
    EXPECT_LE(f, 1);
  }
  EXPECT_NE(human.find("rotate_logs: "), std::string::npos) << human;
  EXPECT_NE(human.find("-> running for "), std::string::npos) << human;
  ASSERT_TRUE(wait_until([&] { return !policy_records(policy, kVerified).empty(); }, 60s))
      << agent.err();
  EXPECT_LT(used_pct(lfs.mnt()), 25);
  EXPECT_EQ(m.show(unit, "NRestarts"), "0");
  EXPECT_EQ(agent.stop(), 0);
}
