// Kernel timestamp -> userspace receipt for ENOSPC and OOM events, p50/p99; and loss of those
// events while a block-I/O storm runs through the io sensor. Needs root; leaves nothing behind.
//
//   mend_event_latency_bench [--enospc N] [--ooms N] [--storm-events N]
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "fixtures.h"
#include "sensors/cgroup_names.h"
#include "sensors/kernel_features.h"
#include "sensors/mounts.h"
#include "sensors/sensor_hub.h"
#include "sinks/logging.h"

using namespace mend;
using namespace mend::test;

namespace {

struct Collected {
  std::mutex mu;
  std::vector<double> enospc_us, oom_us;
  uint64_t enospc_events = 0;
};

double pct(std::vector<double> v, double q) {
  if (v.empty())
    return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Writes 4 KiB to a full filesystem `n` times, `gap` apart: each write fails with ENOSPC.
void enospc_burst(int fd, int n, std::chrono::microseconds gap) {
  char buf[4096];
  std::memset(buf, 1, sizeof buf);
  for (int i = 0; i < n; ++i) {
    if (write(fd, buf, sizeof buf) >= 0 || errno != ENOSPC) {
      std::fprintf(stderr, "expected ENOSPC\n");
      std::exit(1);
    }
    std::this_thread::sleep_for(gap);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int n_enospc = 2000, n_oom = 20, n_storm = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--enospc")
      n_enospc = v;
    else if (a == "--ooms")
      n_oom = v;
    else if (a == "--storm-events")
      n_storm = v;
  }
  init_logging(false);  // logs to stderr: stdout is the JSON result
  if (!privileged_unavailable().empty()) {
    std::fprintf(stderr, "needs root: %s\n", privileged_unavailable().c_str());
    return 1;
  }

  TempDir dir;
  LoopFs full(dir.path(), "ext4", "32M");
  Cgroup mem(v1_hierarchy("memory").empty() ? cgroup2_root() : v1_hierarchy("memory"),
             unique_name("mend-bench-oom"));
  if (v1_hierarchy("memory").empty())
    mem.write("memory.max", "52428800");
  else
    mem.write("memory.limit_in_bytes", "52428800");

  SensorConfig cfg;
  cfg.fs.enospc_fold_ns = 0;  // every failure is an event: we count them
  cfg.fs.exclude_mounts = {full.mnt()};
  cfg.fs.enospc_probe = "always";  // the volume is excluded, so nothing would arm the probe
  KernelFeatures features;
  MountTable mounts;
  (void)mounts.refresh();
  auto cgroups = CgroupNames::from_mountinfo();
  SensorContext ctx;
  ctx.config = &cfg;
  ctx.features = &features;
  ctx.mounts = &mounts;
  ctx.cgroups = &cgroups;
  SensorHub hub(ctx, {"oom", "fs", "io"});
  if (auto st = hub.start(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().message.c_str());
    return 1;
  }
  Collected c;
  const pid_t me = getpid();
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    (void)hub.run(stop, [&](Event&& e) {
      const double lat = static_cast<double>(monotonic_ns() - e.ts_ns) / 1000.0;
      std::lock_guard<std::mutex> g(c.mu);
      if (auto* f = std::get_if<FsEnospc>(&e.payload); f && f->pid == me) {
        c.enospc_us.push_back(lat);
        ++c.enospc_events;
      } else if (std::holds_alternative<OomKill>(e.payload)) {
        c.oom_us.push_back(lat);
      }
    });
  });

  // Fill the filesystem.
  std::string path = full.mnt() + "/fill";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  {
    std::vector<char> mb(1 << 20, 1);
    while (write(fd, mb.data(), mb.size()) > 0) {
    }
    char b[4096] = {};
    while (write(fd, b, sizeof b) > 0) {
    }
    fsync(fd);
  }

  // 1. ENOSPC latency, paced.
  enospc_burst(fd, n_enospc, std::chrono::microseconds(500));
  // 2. OOM latency.
  for (int i = 0; i < n_oom; ++i)
    wait_exit(spawn_in({mem.dir()}, {"python3", "-c", "x = bytearray(b'\\x01') * (200 << 20)"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::vector<double> enospc_lat, oom_lat;
  {
    std::lock_guard<std::mutex> g(c.mu);
    enospc_lat = c.enospc_us;
    oom_lat = c.oom_us;
    c.enospc_events = 0;
  }

  // 3. Storm: block requests as fast as fio can issue them on a RAM-backed loop device,
  //    while ENOSPC events are produced; every one of them must arrive.
  LoopFs ram("/dev/shm", "ext4", "512M", /*direct_io=*/true);
  const std::string fio_out = dir.path() + "/fio.json";
  pid_t fio =
      spawn_in({}, {"fio", "--name=storm", "--filename=" + ram.mnt() + "/f", "--size=256M",
                    "--rw=randread", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=32",
                    "--runtime=8", "--time_based", "--output-format=json", "--output=" + fio_out});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  enospc_burst(fd, n_storm, std::chrono::microseconds(50));
  wait_exit(fio);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  loop.join();
  close(fd);

  double iops = 0;
  {
    FILE* f = std::fopen(fio_out.c_str(), "r");
    if (f) {
      auto j = nlohmann::json::parse(f, nullptr, false);
      std::fclose(f);
      if (!j.is_discarded())
        iops = j["jobs"][0]["read"]["iops"].get<double>();
    }
  }
  uint64_t drops = 0;
  for (const auto& s : hub.stats())
    drops += s.kernel_drops;
  nlohmann::json out = {{"enospc",
                         {{"n", enospc_lat.size()},
                          {"p50_us", pct(enospc_lat, 0.5)},
                          {"p99_us", pct(enospc_lat, 0.99)},
                          {"max_us", pct(enospc_lat, 1.0)}}},
                        {"oom",
                         {{"n", oom_lat.size()},
                          {"p50_us", pct(oom_lat, 0.5)},
                          {"p99_us", pct(oom_lat, 0.99)},
                          {"max_us", pct(oom_lat, 1.0)}}},
                        {"storm",
                         {{"block_iops", iops},
                          {"enospc_sent", n_storm},
                          {"enospc_received", c.enospc_events},
                          {"kernel_drops", drops}}}};
  std::printf("%s\n", out.dump(2).c_str());
  return (c.enospc_events == static_cast<uint64_t>(n_storm) && drops == 0) ? 0 : 2;
}
