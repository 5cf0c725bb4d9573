// The sensors against the real kernel: real OOM kills, real ENOSPC on loop filesystems, a real
// I/O stall from a throttled stacked loop device, and the degradation paths.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fixtures.h"
#include "sensors/bpf_util.h"
#include "sensors/cgroup_names.h"
#include "sensors/kernel_features.h"
#include "sensors/mounts.h"
#include "sensors/sensor_hub.h"
#include "trace_runner.h"

using namespace mend;
using namespace mend::test;
using namespace std::chrono_literals;

namespace {

template <class T>
const T* as(const Event& e) {
  return std::get_if<T>(&e.payload);
}

std::string python_alloc(int mib) {
  // Touch every page (a zero-filled buffer may not be charged).
  return "x = bytearray(b'\\x01') * (" + std::to_string(mib) + " << 20)";
}

}  // namespace

TEST(OomSensor, MemcgOomKillIsReportedWithVictimAndCgroup) {
  MEND_REQUIRE_ROOT();
  std::string mem = v1_hierarchy("memory");
  std::string root = mem.empty() ? cgroup2_root() : mem;
  Cgroup cg(root, unique_name("mend-test-oom"));
  if (mem.empty()) {
    // Pure v2: the memory controller must be enabled for children of the root.
    std::ofstream(root + "/cgroup.subtree_control") << "+memory";
    cg.write("memory.max", "52428800");
  } else {
    cg.write("memory.limit_in_bytes", "52428800");
  }

  TraceRunner t({"--sensors", "oom"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  pid_t pid = spawn_in({cg.dir()}, {"python3", "-c", python_alloc(200)});
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);

  auto e = t.wait_for(
      [&](const Event& ev) {
        auto* k = as<OomKill>(ev);
        return k && k->pid == pid;
      },
      10s);
  ASSERT_TRUE(e) << "no oom_kill for pid " << pid << "\n" << t.err();
  const auto& k = std::get<OomKill>(e->payload);
  EXPECT_EQ(k.comm, "python3");
  EXPECT_EQ(k.cgroup, cg.path());
  EXPECT_EQ(k.constraint, "memcg");
  EXPECT_EQ(k.memcg_limit_bytes, 52428800u);
  EXPECT_GT(k.rss_bytes, 30u << 20);
  EXPECT_LE(k.rss_bytes, 100u << 20);  // RSS counts file pages the memcg may not
  EXPECT_EQ(k.unit, "");               // not started as a systemd unit
  EXPECT_GT(e->ts_ns, 0u);
  EXPECT_EQ(t.stop(), 0);
  auto oom = t.summary("oom");
  ASSERT_TRUE(oom.is_object()) << t.err();
  EXPECT_EQ(oom["kernel_drops"], 0);
  EXPECT_GE(oom["events"].get<int>(), 1);
}

class FsFillTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FsFillTest, EnospcAndFillNameTheWriterAndTheMount) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), GetParam(), GetParam() == "xfs" ? "320M" : "128M");
  Cgroup writer(cgroup2_root(), unique_name("mend-test-fill"));

  // Horizon 0 turns the time-to-full alarm off: this test is about the usage threshold. dd
  // fills the volume from empty inside one sample, before "auto" would arm the probe (the
  // arming has its own test): always attached.
  TraceRunner t({"--sensors", "fs", "--fs-used-threshold", "80%", "--fs-horizon", "0s",
                 "--fs-enospc-probe", "always"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  pid_t dd = spawn_in({writer.dir()},
                      {"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/fill", "bs=1M", "count=600"});
  EXPECT_EQ(wait_exit(dd), 1);  // dd: No space left on device

  auto enospc = t.wait_for(
      [&](const Event& ev) {
        auto* f = as<FsEnospc>(ev);
        return f && f->pid == dd;
      },
      10s);
  ASSERT_TRUE(enospc) << "no fs_enospc for dd " << dd << "\n" << t.err();
  const auto& f = std::get<FsEnospc>(enospc->payload);
  EXPECT_EQ(f.comm, "dd");
  EXPECT_EQ(f.mount, lfs.mnt());
  EXPECT_EQ(f.device, lfs.majmin());
  EXPECT_EQ(f.err, 28);
  EXPECT_EQ(f.syscall, "write");
  EXPECT_EQ(f.cgroup, writer.path());

  auto fill = t.wait_for(
      [&](const Event& ev) {
        auto* x = as<mend::FsFill>(ev);
        return x && x->mount == lfs.mnt() && x->state == "firing";
      },
      10s);
  ASSERT_TRUE(fill) << t.err();
  const auto& x = std::get<mend::FsFill>(fill->payload);
  EXPECT_EQ(x.device, lfs.majmin());
  EXPECT_EQ(x.fstype, GetParam());
  EXPECT_GE(x.used_pct, 80);
  EXPECT_EQ(x.reason, "usage");
  ASSERT_FALSE(x.top_writers.empty());
  EXPECT_EQ(x.top_writers[0].cgroup, writer.path());
  EXPECT_GT(x.top_writers[0].bytes, 64u << 20);

  // Freeing the space clears the alarm.
  std::filesystem::remove(lfs.mnt() + "/fill");
  sync();
  auto cleared = t.wait_for(
      [&](const Event& ev) {
        auto* c = as<mend::FsFill>(ev);
        return c && c->mount == lfs.mnt() && c->state == "cleared";
      },
      15s);
  EXPECT_TRUE(cleared) << t.err();
  EXPECT_EQ(t.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Filesystems, FsFillTest, ::testing::Values("ext4", "xfs"));

TEST(FsSensor, FillRateAndTimeToFullBeforeTheThreshold) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "xfs", "320M");
  // Usage alone would not fire (99%); a steady 16 MB/s writer fills it in ~15 s, under the
  // 60 s horizon.
  TraceRunner t({"--sensors", "fs", "--fs-used-threshold", "99%", "--fs-horizon", "60s"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  pid_t w = spawn_in({}, {"python3", "-c",
                          "import time,os\n"
                          "f=open('" +
                              lfs.mnt() +
                              "/data','wb')\n"
                              "for i in range(160):\n"
                              "  f.write(b'\\x01'*(1<<20)); f.flush(); os.fsync(f.fileno())\n"
                              "  time.sleep(1/16)\n"});
  auto fill = t.wait_for(
      [&](const Event& ev) {
        auto* x = as<mend::FsFill>(ev);
        return x && x->mount == lfs.mnt() && x->state == "firing";
      },
      20s);
  kill(w, SIGKILL);
  wait_exit(w);
  ASSERT_TRUE(fill) << t.err();
  const auto& x = std::get<mend::FsFill>(fill->payload);
  EXPECT_EQ(x.reason, "eta");
  EXPECT_LT(x.used_pct, 99);
  EXPECT_GT(x.fill_rate_bps, 4e6);
  EXPECT_LT(x.fill_rate_bps, 40e6);
  EXPECT_GT(x.eta_full_s, 0);
  EXPECT_LT(x.eta_full_s, 60);
  EXPECT_EQ(t.stop(), 0);
}

// A forecast that comes true: firing on time-to-full first, then, once the usage threshold is
// crossed, a new firing report says so (policies for a full volume match on it).
TEST(FsSensor, ForecastThatComesTrueIsReportedAgainAtTheThreshold) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "64M");
  TraceRunner t({"--sensors", "fs", "--fs-used-threshold", "60%", "--fs-horizon", "60s"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  // ~8 MB/s: time-to-full under the horizon at once, 60% after ~4 s.
  pid_t w = spawn_in({}, {"python3", "-c",
                          "import time,os\n"
                          "f=open('" +
                              lfs.mnt() +
                              "/data','wb')\n"
                              "for i in range(45):\n"
                              "  f.write(b'\\x01'*(1<<20)); f.flush(); os.fsync(f.fileno())\n"
                              "  time.sleep(1/8)\n"
                              "time.sleep(60)\n"});
  auto usage = t.wait_for(
      [&](const Event& ev) {
        auto* x = as<mend::FsFill>(ev);
        return x && x->mount == lfs.mnt() && x->state == "firing" && x->reason == "usage";
      },
      30s);
  kill(w, SIGKILL);
  wait_exit(w);
  ASSERT_TRUE(usage) << t.err();
  EXPECT_GE(std::get<mend::FsFill>(usage->payload).used_pct, 60);
  std::vector<std::string> reasons;
  for (const auto& ev : t.events())
    if (auto* x = as<mend::FsFill>(ev); x && x->mount == lfs.mnt() && x->state == "firing")
      reasons.push_back(x->reason);
  ASSERT_GE(reasons.size(), 2u);
  EXPECT_EQ(reasons.front(), "eta");  // the forecast came first, and did not hide the fill
  EXPECT_EQ(t.stop(), 0);
}

// The stacked-loop recipe of TESTING.md: ext4 on loop U over a file on xfs on loop L; the
// writer's blkio cgroup throttles L to 10 IOPS, so every request on U waits.
TEST(IoStallSensor, ThrottledStackedLoopIsAStallOnTheUpperDevice) {
  MEND_REQUIRE_ROOT();
  std::string blkio = v1_hierarchy("blkio");
  if (blkio.empty())
    GTEST_SKIP() << "needs the v1 blkio controller for throttling";
  TempDir dir;
  LoopFs lower(dir.path(), "xfs", "320M");
  std::string upper_img = lower.mnt() + "/upper.img";
  LoopFs upper(lower.mnt(), "ext4", "64M", /*direct_io=*/true);
  Cgroup cg(blkio, unique_name("mend-test-stall"));
  cg.write("blkio.throttle.write_iops_device", lower.majmin() + " 10");
  cg.write("blkio.throttle.read_iops_device", lower.majmin() + " 10");
  int release = on_cleanup([&] {
    // Release the throttle first so nothing stays stuck behind it.
    try {
      cg.write("blkio.throttle.write_iops_device", lower.majmin() + " 0");
      cg.write("blkio.throttle.read_iops_device", lower.majmin() + " 0");
    } catch (...) {
    }
  });

  TraceRunner t({"--sensors", "io", "--io-latency-threshold", "100ms", "--io-duration", "1s"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  pid_t dd = spawn_in({cg.dir()}, {"dd", "if=/dev/zero", "of=" + upper.mnt() + "/f", "bs=64k",
                                   "count=80", "oflag=direct"});
  auto e = t.wait_for(
      [&](const Event& ev) {
        auto* s = as<IoStall>(ev);
        return s && s->device == upper.majmin() && s->state == "firing";
      },
      20s);
  kill(dd, SIGKILL);
  wait_exit(dd);
  forget_cleanup(release);
  ASSERT_TRUE(e) << "no io_stall on " << upper.majmin() << "\n" << t.err();
  const auto& s = std::get<IoStall>(e->payload);
  EXPECT_EQ(s.name, upper.name());
  EXPECT_EQ(s.mount, upper.mnt());
  EXPECT_GE(std::max(s.p99_us, s.oldest_inflight_us), 100000u);
  EXPECT_LE(s.p99_us, 2000000u);
  EXPECT_GE(s.max_us, s.p50_us);
  ASSERT_FALSE(s.top_units.empty());
  EXPECT_EQ(s.top_units[0].cgroup, cg.path());
  EXPECT_GT(s.top_units[0].slow_ios, 0u);
  EXPECT_GE(s.psi_io_some_avg10, 0);
  EXPECT_EQ(t.stop(), 0);
}

TEST(IoStallSensor, NoStallOnIdleOrNormallyBusyDisk) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "256M", /*direct_io=*/true);
  TraceRunner t({"--sensors", "io", "--io-latency-threshold", "100ms", "--io-duration", "1s"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  std::this_thread::sleep_for(2s);  // idle
  auto r = run({"fio", "--name=busy", "--filename=" + lfs.mnt() + "/f", "--size=64M", "--rw=randrw",
                "--bs=4k", "--direct=1", "--ioengine=psync", "--runtime=4", "--time_based",
                "--output-format=terse"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::this_thread::sleep_for(1500ms);
  for (const auto& e : t.events())
    if (auto* s = as<IoStall>(e))
      ADD_FAILURE() << "false io_stall on " << s->device << " p99=" << s->p99_us;
  EXPECT_EQ(t.stop(), 0);
  auto io = t.summary("io");
  ASSERT_TRUE(io.is_object()) << t.err();
  EXPECT_TRUE(io["enabled"].get<bool>());
  EXPECT_EQ(io["events"], 0);
}

TEST(Degradation, MissingTracepointDisablesOnlyItsSensor) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "32M");
  // dd fills the volume from empty inside one sample: the ENOSPC probe always attached.
  TraceRunner t({"--sensors", "oom,fs", "--pretend-missing", "tp_btf/mark_victim",
                 "--fs-enospc-probe", "always"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  EXPECT_NE(t.err().find("oom sensor disabled: kernel lacks tp_btf/mark_victim"), std::string::npos)
      << t.err();
  pid_t dd = spawn_in({}, {"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/fill", "bs=1M"});
  wait_exit(dd);
  auto e = t.wait_for([&](const Event& ev) { return as<FsEnospc>(ev) != nullptr; }, 10s);
  EXPECT_TRUE(e) << "the fs sensor must keep running\n" << t.err();
  EXPECT_EQ(t.stop(), 0);
}

TEST(Degradation, NoSensorAtAllIsAnError) {
  MEND_REQUIRE_ROOT();
  auto r = run({MENDD_PATH, "--trace", "--config", "/dev/null", "--sensors", "oom",
                "--pretend-missing", "btf"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("oom sensor disabled: kernel lacks btf"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no sensor could start"), std::string::npos) << r.err;
}

TEST(BadInput, NotRootIsAClearError) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  std::string out = dir.path() + "/err";
  // nobody (65534), no capabilities.
  pid_t p = fork();
  if (p == 0) {
    int fd = open(out.c_str(), O_WRONLY | O_CREAT, 0666);
    dup2(fd, 2);
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(125);
    execl(MENDD_PATH, MENDD_PATH, "--trace", "--config", "/dev/null", nullptr);
    _exit(127);
  }
  EXPECT_EQ(wait_exit(p), 1);
  std::ifstream f(out);
  std::string err((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(err.find("CAP_BPF"), std::string::npos) << err;
}

TEST(BadInput, MalformedFlagsAndConfigAreClearErrors) {
  MEND_REQUIRE_ROOT();
  auto r = run({MENDD_PATH, "--trace", "--config", "/dev/null", "--io-latency-threshold", "fast"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("invalid duration"), std::string::npos) << r.err;

  r = run({MENDD_PATH, "--trace", "--config", "/dev/null", "--fs-used-threshold", "150%"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("out of range"), std::string::npos) << r.err;

  r = run({MENDD_PATH, "--trace", "--config", "/dev/null", "--sensors", "oom,gpu"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("unknown sensor \"gpu\""), std::string::npos) << r.err;

  TempDir dir;
  std::string cfg = dir.path() + "/mend.yaml";
  std::ofstream(cfg) << "sensors:\n  io:\n    latency_threshold: soon\n";
  r = run({MENDD_PATH, "--check-config", "--config", cfg});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(cfg + ":3:24: sensors.io.latency_threshold: invalid duration"),
            std::string::npos)
      << r.err;
  std::ofstream(cfg) << "sensors:\n  io:\n    latency_threshold: 300ms\n";
  chmod(cfg.c_str(), 0644);
  r = run({MENDD_PATH, "--check-config", "--config", cfg});
  EXPECT_EQ(r.status, 0) << r.err;
  // StrictModes for mend.yaml and the notify command, as for policies: whoever can write them
  // steers every remedy.
  chmod(cfg.c_str(), 0664);
  r = run({MENDD_PATH, "--check-config", "--config", cfg});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("group- or world-writable configuration file"), std::string::npos) << r.err;
  chmod(cfg.c_str(), 0644);
  ASSERT_EQ(chown(cfg.c_str(), 65534, 65534), 0);
  r = run({MENDD_PATH, "--check-config", "--config", cfg});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("configuration file not owned by root"), std::string::npos) << r.err;
  ASSERT_EQ(chown(cfg.c_str(), 0, 0), 0);
  const std::string page = dir.path() + "/page";
  std::ofstream(page) << "#!/bin/sh\ncat > /dev/null\n";
  chmod(page.c_str(), 0777);
  std::ofstream(cfg) << "executor:\n  notify: {command: [" << page << "]}\n";
  r = run({MENDD_PATH, "--check-config", "--config", cfg});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("group- or world-writable notify command"), std::string::npos) << r.err;
  chmod(page.c_str(), 0755);
  r = run({MENDD_PATH, "--check-config", "--config", cfg});
  EXPECT_EQ(r.status, 0) << r.err;
}

// What a SensorHub run inside the test process needs: the host's kernel features, mounts and
// cgroup names, no systemd bus.
struct InProcessSensors {
  explicit InProcessSensors(const SensorConfig& cfg) : cgroups(CgroupNames::from_mountinfo()) {
    EXPECT_TRUE(mounts.refresh().ok());
    ctx.config = &cfg;
    ctx.features = &features;
    ctx.mounts = &mounts;
    ctx.cgroups = &cgroups;
    ctx.bus = "none";
  }
  KernelFeatures features;
  MountTable mounts;
  CgroupNames cgroups;
  SensorContext ctx;
};

// mend_bpf_program_run_seconds_total's source: with run-time statistics on, the kernel accounts
// the fs sensor's sys_exit program for the syscalls this test makes; with them off (the
// descriptor closed) it stops counting time.
TEST(BpfStats, ProgramRunTimeIsAccountedWhileEnabled) {
  MEND_REQUIRE_ROOT();
  SensorConfig cfg;
  cfg.fs.enospc_probe = "always";
  InProcessSensors env(cfg);
  SensorHub hub(env.ctx, {"fs"});
  ASSERT_TRUE(hub.start().ok());
  auto fs_programs = [&] {
    for (const auto& s : hub.stats())
      if (s.name == "fs")
        return s.programs;
    return std::vector<ProgramStats>{};
  };
  auto totals = [&] {
    uint64_t ns = 0, runs = 0;
    for (const auto& p : fs_programs()) {
      ns += p.run_time_ns;
      runs += p.run_count;
    }
    return std::pair{ns, runs};
  };
  ASSERT_FALSE(fs_programs().empty());
  auto fd = enable_bpf_run_stats();
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  const auto before = totals();
  for (int i = 0; i < 2000; ++i)
    (void)getppid();
  const auto during = totals();
  EXPECT_GE(during.second - before.second, 2000u);
  EXPECT_GT(during.first, before.first);
  close(*fd);
  std::ifstream sysctl("/proc/sys/kernel/bpf_stats_enabled");
  int enabled = 0;
  sysctl >> enabled;
  if (enabled == 0) {  // nobody else (e.g. a sysctl) keeps statistics on
    for (int i = 0; i < 2000; ++i)
      (void)getppid();
    // At most the runs that were in flight on other CPUs when accounting stopped.
    EXPECT_LT(totals().second - during.second, 100u);
  }
}

// Issue 14: folding was per process, so a storm of short-lived processes was never folded.
// 200 forked children in one cgroup each fail once with ENOSPC: a handful of events carry all
// 200 failures (the fold count of a batch rides on the next event after the fold interval).
TEST(FsSensor, EnospcStormOfShortLivedProcessesFoldsPerCgroup) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "ext4", "16M");
  run({"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/fill", "bs=1M", "count=64"});
  Cgroup storm(cgroup2_root(), unique_name("mend-test-storm"));
  const std::string config = dir.path() + "/mend.yaml";
  std::ofstream(config) << "sensors:\n  fs: {enospc_fold: 2s, horizon: 0s}\n";
  TraceRunner t({"--sensors", "fs", "--config", config});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  // Each child exits 1 when its write failed with ENOSPC (a few may still find a free block);
  // the parent writes how many did.
  const std::string counted = dir.path() + "/failed";
  const std::string fail_once =
      "import os, errno\n"
      "n = 0\n"
      "for i in range(200):\n"
      "    if os.fork() == 0:\n"
      "        try:\n"
      "            fd = os.open('" +
      lfs.mnt() +
      "/f%d' % i, os.O_WRONLY | os.O_CREAT)\n"
      "            os.write(fd, b'x' * 65536)\n"
      "        except OSError as e:\n"
      "            os._exit(1 if e.errno == errno.ENOSPC else 0)\n"
      "        os._exit(0)\n"
      "    n += os.waitstatus_to_exitcode(os.wait()[1])\n"
      "open('" +
      counted + "', 'w').write(str(n))\n";
  pid_t p = spawn_in({storm.dir()}, {"/usr/bin/python3", "-c", fail_once});
  ASSERT_EQ(wait_exit(p), 0);
  // One more failure after the fold interval carries what was folded.
  std::this_thread::sleep_for(2500ms);
  const std::string once = "import os\ntry:\n    fd = os.open('" + lfs.mnt() +
                           "/last', os.O_WRONLY | os.O_CREAT)\n    os.write(fd, b'x' * 65536)\n"
                           "except OSError:\n    pass\n";
  p = spawn_in({storm.dir()}, {"/usr/bin/python3", "-c", once});
  ASSERT_EQ(wait_exit(p), 0);
  uint64_t expected = 0;
  std::ifstream(counted) >> expected;
  ASSERT_GT(expected, 150u);  // most children met the full volume
  ++expected;                 // and the last one
  uint64_t failures = 0, events = 0;
  for (int i = 0; i < 100 && failures < expected; ++i) {
    std::this_thread::sleep_for(100ms);
    failures = events = 0;
    for (const auto& ev : t.events())
      if (auto* f = as<FsEnospc>(ev); f && f->cgroup == storm.path()) {
        ++events;
        failures += 1 + f->folded;
      }
  }
  ASSERT_GT(events, 0u) << t.err();
  EXPECT_EQ(failures, expected);
  EXPECT_LE(events, 10u);  // not one per process
}

// Issue 16: the syscall-exit probe costs every syscall of every task, so with enospc_probe
// "auto" it is attached only while a filesystem is at risk. A write that fails for space on a
// volume far from full (an fallocate larger than the disk) is not seen while on standby; once
// the volume is over the arm threshold the probe is attached and the same failure is reported
// with its cgroup; once nothing is at risk for disarm_after it is detached again. Only the XFS
// loop volume is watched (fstypes, and every other XFS mount excluded), so the host's own
// filesystems cannot arm it.
TEST(FsSensor, EnospcProbeIsArmedOnlyWhileAFilesystemIsAtRisk) {
  MEND_REQUIRE_ROOT();
  TempDir dir;
  LoopFs lfs(dir.path(), "xfs", "320M");
  Cgroup writer(cgroup2_root(), unique_name("mend-test-arm"));
  MountTable host;
  ASSERT_TRUE(host.refresh().ok());
  std::string others;
  for (const auto& m : host.all())
    if (m.fstype == "xfs" && m.mountpoint != lfs.mnt())
      others += (others.empty() ? "" : ", ") + nlohmann::json(m.mountpoint).dump();
  const std::string config = dir.path() + "/mend.yaml";
  std::ofstream(config) << "sensors:\n  fs: {enospc_probe: auto, fstypes: [xfs], exclude_mounts: ["
                        << others
                        << "], used_threshold: 90%, arm_threshold: 50%, disarm_after: 1s, "
                           "horizon: 0s}\n";
  TraceRunner t({"--sensors", "fs", "--config", config});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  auto too_big = [&] {
    pid_t p = spawn_in({writer.dir()}, {"fallocate", "-l", "2G", lfs.mnt() + "/big"});
    EXPECT_EQ(wait_exit(p), 1);  // fallocate: No space left on device
    return p;
  };
  auto reported = [&](pid_t p, std::chrono::seconds limit) {
    return t.wait_for(
        [&](const Event& ev) {
          auto* f = as<FsEnospc>(ev);
          return f && f->pid == p;
        },
        limit);
  };
  std::this_thread::sleep_for(1s);  // a few samples: nothing at risk
  EXPECT_EQ(t.err().find("probe armed"), std::string::npos) << t.err();
  EXPECT_FALSE(reported(too_big(), 2s)) << "reported while on standby\n" << t.err();

  // 200 MiB of 320: over 50% (arm), under 90% (no fill report).
  run({"fallocate", "-l", "200M", lfs.mnt() + "/fill"});
  auto armed_deadline = std::chrono::steady_clock::now() + 5s;
  while (t.err().find("probe armed") == std::string::npos &&
         std::chrono::steady_clock::now() < armed_deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_NE(t.err().find("probe armed: " + lfs.mnt()), std::string::npos) << t.err();
  pid_t p = too_big();
  auto e = reported(p, 5s);
  ASSERT_TRUE(e) << "not reported while armed\n" << t.err();
  EXPECT_EQ(std::get<FsEnospc>(e->payload).mount, lfs.mnt());
  EXPECT_EQ(std::get<FsEnospc>(e->payload).cgroup, writer.path());
  EXPECT_EQ(std::get<FsEnospc>(e->payload).syscall, "fallocate");

  // Space freed: on standby again after disarm_after, and failures go unseen again.
  std::filesystem::remove(lfs.mnt() + "/fill");
  auto standby_deadline = std::chrono::steady_clock::now() + 5s;
  while (t.err().find("on standby") == std::string::npos &&
         std::chrono::steady_clock::now() < standby_deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_NE(t.err().find("on standby"), std::string::npos) << t.err();
  EXPECT_FALSE(reported(too_big(), 2s)) << "reported after the probe was detached\n" << t.err();
  EXPECT_EQ(t.stop(), 0);
}

// Issue 16: while every sampler is calm and nothing is in progress the hub ticks at the idle
// pace (idle CPU), and back at the sample interval the tick something needs it: here the
// pipeline saying it is busy (an open incident, a plan in progress).
TEST(SensorHub, TicksAtTheIdlePaceWhileCalmAndFastWhileBusy) {
  MEND_REQUIRE_ROOT();
  SensorConfig cfg;
  cfg.fs.fstypes = {"mend-no-such-fs"};  // nothing sampled: calm whatever the host's disks hold
  cfg.sample_interval_ns = 100000000;
  cfg.idle_interval_ns = 400000000;
  InProcessSensors env(cfg);
  SensorHub hub(env.ctx, {"fs"});
  ASSERT_TRUE(hub.start().ok());
  EXPECT_EQ(hub.tick_interval_ns(), cfg.sample_interval_ns);  // fast until a tick says calm
  std::atomic<bool> busy{false}, stop{false};
  std::atomic<int> ticks{0};
  hub.set_busy([&] { return busy.load(); });
  std::thread loop([&] {
    (void)hub.run(
        stop, [](Event&&) {}, [&] { ++ticks; });
  });
  auto wait_interval = [&](uint64_t want) {
    for (int i = 0; i < 40 && hub.tick_interval_ns() != want; ++i)
      std::this_thread::sleep_for(50ms);
    return hub.tick_interval_ns();
  };
  EXPECT_EQ(wait_interval(cfg.idle_interval_ns), cfg.idle_interval_ns);
  int before = ticks.load();
  std::this_thread::sleep_for(1200ms);
  EXPECT_LE(ticks.load() - before, 4);  // ~3 at 400 ms (12 at the sample interval)
  busy = true;
  EXPECT_EQ(wait_interval(cfg.sample_interval_ns), cfg.sample_interval_ns);
  before = ticks.load();
  std::this_thread::sleep_for(1000ms);
  EXPECT_GE(ticks.load() - before, 7);  // ~10 at 100 ms
  stop = true;
  loop.join();
}
