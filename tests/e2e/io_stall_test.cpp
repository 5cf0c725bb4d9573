// Scenario 4 of the suite: an I/O stall from a noisy neighbour. A unit keeps 16 direct 64 KiB
// writes in flight on a loop device stacked on another loop device, and the device below can
// serve that unit only 50 writes a second (blkio throttling of the lower device for the unit's
// cgroup: the stand-in for a saturated disk, TESTING.md). Every request on the upper device then
// waits ~320 ms in the queue. mendd names io_stall on the upper device with the unit as the
// noisy neighbour; the policy caps the unit's write bandwidth on that device at runtime, below
// what the device can serve, so requests stop queueing and the latency falls; verified from
// the io sensor's own reports. A cap that cannot help is rolled back exactly and escalated.
#include <gtest/gtest.h>

#include "scenario.h"

using namespace mend::test;
namespace fs = std::filesystem;

namespace {

struct IoStallScenario {
  TempDir dir;
  LoopFs lower{dir.path(), "ext4", "256M"};
  LoopFs upper{lower.mnt(), "ext4", "96M", /*direct_io=*/true};
  UserManager m;
  std::string noisy = unique_name("noisy") + ".service";
  std::string bystander = unique_name("bystander") + ".service";
  std::string policy = unique_name("io-throttle");
  std::string policies = dir.path() + "/policies.d";

  IoStallScenario() {
    fs::create_directories(policies);
    m.add_unit(noisy,
               "[Service]\nIOAccounting=yes\nExecStart=/usr/bin/fio --name=noisy --filename=" +
                   upper.mnt() +
                   "/noisy.dat --size=32M --rw=randwrite --bs=64k --direct=1 "
                   "--ioengine=libaio --iodepth=16 --time_based --runtime=600\n");
    // Shares the device, does a little I/O of its own, and must not be touched.
    m.add_unit(bystander,
               "[Service]\nIOAccounting=yes\nExecStart=/usr/bin/fio --name=by "
               "--filename=" +
                   upper.mnt() +
                   "/by.dat --size=4M --rw=randread --bs=4k --direct=1 "
                   "--rate_iops=20 --time_based --runtime=600\n");
  }

  void write_policy(const std::string& throttle, const std::string& deadline) {
    std::ofstream(policies + "/io.yaml")
        << "policies:\n  - name: " << policy
        << "\n    match: {root_cause: io_stall, min_confidence: 0.8, devices: [" << upper.majmin()
        << "]}\n    mode: auto\n    actions:\n      - throttle_io: {" << throttle
        << "}\n    verify: {deadline: " << deadline
        << ", stable_for: 3s, unit_active: false, latency_below: 100ms}\n";
    chmod((policies + "/io.yaml").c_str(), 0644);
  }

  std::string blkio_dir(const std::string& unit) {
    return v1_hierarchy("blkio") + m.show(unit, "ControlGroup");
  }

  // The fault: the lower device serves the noisy unit's writes at 50 a second.
  void inject() {
    const std::string f = blkio_dir(noisy) + "/blkio.throttle.write_iops_device";
    ASSERT_TRUE(fs::exists(f)) << f;
    std::ofstream(f) << lower.majmin() << " 50\n";
  }

  // Mean latency of the writes the upper device completed over `span` (from its stat file:
  // writes completed, field 5, and ms spent on them, field 8).
  double write_latency_ms(std::chrono::milliseconds span) {
    auto read = [&] {
      std::ifstream f("/sys/block/" + upper.name() + "/stat");
      std::vector<double> v;
      for (double x; f >> x;)
        v.push_back(x);
      return v;
    };
    auto a = read();
    std::this_thread::sleep_for(span);
    auto b = read();
    const double n = b.at(4) - a.at(4);
    return n > 0 ? (b.at(7) - a.at(7)) / n : 0;
  }

  std::vector<std::string> args() {
    return {"--bus",     "user",          "--policies",
            policies,    "--state-dir",   dir.path() + "/state",
            "--sensors", "io,units",      "--io-latency-threshold",
            "150ms",     "--io-duration", "1s"};
  }
};

}  // namespace

TEST(IoStallScenario, NoisyNeighbourIsCappedOnTheStalledDeviceAndLatencyRecovers) {
  MEND_REQUIRE_ROOT();
  if (v1_hierarchy("blkio").empty())
    GTEST_SKIP() << "no cgroup v1 blkio hierarchy for the fault";
  IoStallScenario s;
  s.write_policy("write_bandwidth: 1M", "60s");
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", s.noisy, s.bystander}).status, 0);
  s.inject();
  // The fault is real before mendd acts: requests wait hundreds of ms.
  EXPECT_GT(s.write_latency_ms(1000ms), 150);
  ASSERT_TRUE(wait_until([&] { return !policy_records(s.policy, kVerified).empty(); }, 90s))
      << agent.err();
  auto v = policy_records(s.policy, kVerified).at(0);
  EXPECT_EQ(v["MEND_ROOT_CAUSE"], "io_stall");
  EXPECT_EQ(v.value("MEND_CULPRIT_UNIT", ""), s.noisy) << v.dump();
  EXPECT_EQ(v.value("OBJECT_SYSTEMD_UNIT", ""), s.noisy);
  // The root-cause record names the stalled device (the upper one, not the throttled one).
  auto causes = records(s.noisy, "49094a6c7ca84536a6a2e24920d92434");
  ASSERT_FALSE(causes.empty());
  EXPECT_EQ(causes[0].value("MEND_DEVICE", ""), s.upper.majmin()) << causes[0].dump();
  EXPECT_EQ(causes[0].value("MEND_ROOT_CAUSE", ""), "io_stall");
  // The effect (mend sizes are binary: 1M = 1 MiB): a runtime cap on that one device, in the
  // kernel's blkio limits, and requests no longer queue.
  EXPECT_EQ(s.m.show(s.noisy, "IOWriteBandwidthMax"), s.upper.dev() + " 1048576");
  std::ifstream bps(s.blkio_dir(s.noisy) + "/blkio.throttle.write_bps_device");
  std::string line;
  std::getline(bps, line);
  EXPECT_EQ(line, s.upper.majmin() + " 1048576");
  EXPECT_LT(s.write_latency_ms(2000ms), 100);
  // The neighbour was capped, not stopped; the bystander was not touched.
  EXPECT_EQ(s.m.show(s.noisy, "ActiveState"), "active");
  EXPECT_EQ(s.m.show(s.noisy, "NRestarts"), "0");
  EXPECT_EQ(s.m.show(s.bystander, "IOWriteBandwidthMax"), "");
  EXPECT_EQ(s.m.show(s.bystander, "IOReadBandwidthMax"), "");
  EXPECT_EQ(s.m.show(s.bystander, "NRestarts"), "0");
  EXPECT_TRUE(policy_records(s.policy, kEscalated).empty());
  EXPECT_EQ(agent.stop(), 0);
}

TEST(IoStallScenario, CapThatCannotHelpIsRolledBackExactlyAndEscalated) {
  MEND_REQUIRE_ROOT();
  if (v1_hierarchy("blkio").empty())
    GTEST_SKIP() << "no cgroup v1 blkio hierarchy for the fault";
  IoStallScenario s;
  // 100 MB/s: far above the 3 MB/s the device serves the unit, so nothing changes.
  s.write_policy("write_bandwidth: 100M", "12s");
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", s.noisy, s.bystander}).status, 0);
  // A limit of the operator's own on another device stays exactly as it was.
  ASSERT_EQ(s.m.systemctl({"set-property", "--runtime", s.noisy,
                           "IOWriteBandwidthMax=" + s.lower.dev() + " 50M"})
                .status,
            0);
  const std::string before = s.m.show(s.noisy, "IOWriteBandwidthMax");
  ASSERT_EQ(before, s.lower.dev() + " 50000000");
  s.inject();
  ASSERT_TRUE(wait_until([&] { return !policy_records(s.policy, kEscalated).empty(); }, 90s))
      << agent.err();
  auto esc = policy_records(s.policy, kEscalated);
  ASSERT_EQ(esc.size(), 1u);
  EXPECT_EQ(esc[0]["MEND_ROOT_CAUSE"], "io_stall");
  EXPECT_EQ(esc[0].value("MEND_CULPRIT_UNIT", ""), s.noisy);
  const std::string msg = esc[0].value("MESSAGE", "");
  EXPECT_NE(msg.find("verification failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("throttle_io"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rolled back"), std::string::npos) << msg;
  EXPECT_FALSE(policy_records(s.policy, kRolledBack).empty());
  EXPECT_TRUE(policy_records(s.policy, kVerified).empty());
  EXPECT_EQ(s.m.show(s.noisy, "IOWriteBandwidthMax"), before);
  EXPECT_EQ(s.m.show(s.noisy, "NRestarts"), "0");
  EXPECT_EQ(agent.stop(), 0);
}
