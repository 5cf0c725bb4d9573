// The storm/soak harness (issue 14), shared by the soak benchmark (tests/bench/soak_bench.cpp,
// minutes, numbers for the README) and its 60-second version in the e2e tier (bounds on memory
// and liveness, never on time). Everything runs against the whole mendd on a real systemd user
// manager and journald, with real faults at once:
//   - an ENOSPC storm: short-lived processes (tests/bench/enospc_storm.cpp), forked one after
//     another, each failing 20,000 writes to a full filesystem in a tight loop;
//   - crash-looping units (ExecStart=/bin/false, Restart=always, no start limit);
//   - repeated OOM kills in a v1 memory cgroup outside any unit.
// Then the storm stops and one OOM-looping unit must still be healed (mend still acts).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "scenario.h"

namespace mend::test {

struct SoakOptions {
  int seconds = 60;
  int crash_units = 200;
};

struct SoakResult {
  bool alive = false;  // mendd answered mendctl at the end
  bool healed_after = false;
  std::vector<std::string> why_not;  // the unit's records when it was not healed
  std::string plans;  // the executor's counters at the end  // the OOM-looping unit started after
                      // the storm was verified
  long rss_start_kb = 0, rss_peak_kb = 0, rss_end_kb = 0;
  double cpu_pct = 0;            // of one core, over the storm
  uint64_t enospc_failures = 0;  // failed writes the storm made (counted by the generator)
  uint64_t oom_kills = 0;        // OOM kills the memcg loop saw
  uint64_t kernel_drops = 0, incidents = 0, events = 0;
  double loop_p50_ms = 0, loop_p99_ms = 0, loop_max_ms = 0;
  double rss_growth_kb_per_hour = 0;  // second half of the storm vs first half
  int storm_seconds = 0;
  std::vector<std::string> slow;  // mendd's "Event loop: ... took N ms" lines
};

inline long proc_rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

inline uint64_t proc_cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14)
      utime = std::stoull(field);
    if (i == 15)
      stime = std::stoull(field);
  }
  return utime + stime;
}

inline SoakResult run_soak(const SoakOptions& o) {
  SoakResult res;
  OomScenario s("200M", "60s");
  const std::string memory = v1_hierarchy("memory");
  const std::string crash = unique_name("crash");
  s.m.add_unit(crash + "@.service",
               "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\n"
               "Restart=always\nRestartSec=2s\n");
  const std::string config = s.dir.path() + "/mend.yaml";
  std::ofstream(config) << "correlation: {quiet: 5s}\n";
  chmod(config.c_str(), 0644);
  TraceRunner agent(s.args({"--config", config}), false);
  if (!agent.wait_ready()) {
    std::cerr << agent.err();
    return res;
  }
  auto status = [&] {
    return nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out, nullptr, false);
  };
  auto st0 = status();
  if (st0.is_discarded())
    return res;
  const pid_t pid = st0["pid"].get<pid_t>();
  std::this_thread::sleep_for(1s);
  res.rss_start_kb = res.rss_peak_kb = proc_rss_kb(pid);

  // The storm.
  const std::string counts = s.dir.path() + "/counts";
  std::filesystem::create_directories(counts);
  const double until = static_cast<double>(o.seconds);
  Cgroup storm(cgroup2_root(), unique_name("mend-soak-storm"));
  // A full tmpfs fails a write at once (ext4 first forces a journal commit and retries, which
  // makes a storm of its ENOSPC slow); the probe sees the syscall's return either way.
  const std::string tmpfs = s.dir.path() + "/full-tmpfs";
  std::filesystem::create_directories(tmpfs);
  run({"mount", "-t", "tmpfs", "-o", "size=1M", "mend-soak", tmpfs});
  const int unmount = on_cleanup([tmpfs] { run({"umount", "-l", tmpfs}); });
  run({"dd", "if=/dev/zero", "of=" + tmpfs + "/fill", "bs=64k", "count=64"});
  const std::string enospc =
      "import subprocess\n"
      "r = subprocess.run(['" ENOSPC_STORM_PATH "', '" +
      tmpfs + "/storm', '" + std::to_string(o.seconds) +
      "'], capture_output=True, text=True)\n"
      "open('" +
      counts + "/enospc', 'w').write(r.stdout.strip() or '0')\n";
  pid_t storm_pid = spawn_in({storm.dir()}, {"/usr/bin/python3", "-c", enospc});
  std::unique_ptr<Cgroup> memcg;
  pid_t oom_pid = -1;
  if (!memory.empty()) {
    memcg = std::make_unique<Cgroup>(memory, unique_name("mend-soak-oom"));
    memcg->write("memory.limit_in_bytes", "40M");
    const std::string ooms =
        "import subprocess, time\n"
        "t0 = time.time(); n = 0\n"
        "while time.time() - t0 < " +
        std::to_string(until) +
        ":\n"
        "    p = subprocess.run(['/usr/bin/python3', '-c', \"x = bytearray(b'\\\\x01') * (100 << "
        "20)\"])\n"
        "    n += p.returncode == -9\n"
        "    time.sleep(0.5)\n"
        "open('" +
        counts + "/oom', 'w').write(str(n))\n";
    oom_pid = spawn_in({memcg->dir()}, {"/usr/bin/python3", "-c", ooms});
  }
  for (int b = 0; b < o.crash_units; b += 50) {
    std::vector<std::string> argv = {"start", "--no-block"};
    for (int i = b; i < std::min(o.crash_units, b + 50); ++i)
      argv.push_back(crash + "@" + std::to_string(i) + ".service");
    s.m.systemctl(argv);
  }
  const uint64_t cpu0 = proc_cpu_ticks(pid);
  const auto t0 = std::chrono::steady_clock::now();
  long first_half_max = 0, second_half_max = 0;
  for (int sec = 0; sec < o.seconds; ++sec) {
    std::this_thread::sleep_for(1s);
    const long rss = proc_rss_kb(pid);
    if (rss < 0)
      break;  // mendd is gone
    res.rss_peak_kb = std::max(res.rss_peak_kb, rss);
    long& half = sec < o.seconds / 2 ? first_half_max : second_half_max;
    half = std::max(half, rss);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.storm_seconds = static_cast<int>(wall);
  res.cpu_pct = 100.0 * static_cast<double>(proc_cpu_ticks(pid) - cpu0) /
                static_cast<double>(sysconf(_SC_CLK_TCK)) / wall;
  res.rss_growth_kb_per_hour =
      static_cast<double>(second_half_max - first_half_max) / (wall / 2) * 3600;
  wait_exit(storm_pid);
  if (oom_pid > 0)
    wait_exit(oom_pid);
  {
    std::vector<std::string> argv = {"stop"};
    for (int i = 0; i < o.crash_units; ++i)
      argv.push_back(crash + "@" + std::to_string(i) + ".service");
    s.m.systemctl(argv);
  }
  std::ifstream(counts + "/enospc") >> res.enospc_failures;
  std::ifstream(counts + "/oom") >> res.oom_kills;
  auto st = status();
  if (!st.is_discarded()) {
    res.incidents = st["incidents"]["opened"].get<uint64_t>();
    for (const auto& x : st["sensors"]) {
      res.kernel_drops += x["kernel_drops"].get<uint64_t>();
      res.events += x["events"].get<uint64_t>();
    }
    res.loop_p50_ms = st["loop"]["p50_ms"].get<double>();
    res.loop_p99_ms = st["loop"]["p99_ms"].get<double>();
    res.loop_max_ms = st["loop"]["max_ms"].get<double>();
  }
  // Quiet: the storm's incidents close and are forgotten.
  std::this_thread::sleep_for(10s);
  res.rss_end_kb = proc_rss_kb(pid);
  // And mend still acts.
  s.m.systemctl({"start", "--no-block", s.unit});
  res.healed_after = wait_until([&] { return !records(s.unit, kVerified).empty(); }, 90s);
  if (!res.healed_after) {
    for (const auto& r : journal({"OBJECT_SYSTEMD_UNIT=" + s.unit}))
      res.why_not.push_back(r.value("MESSAGE", ""));
    for (const auto& r : policy_records("mem-raise", kEscalated))
      res.why_not.push_back("mem-raise escalated: " + r.value("MESSAGE", ""));
    // Where the unit and the manager are: its state, the manager's jobs, and what each of the
    // unit's processes is doing in the kernel.
    res.why_not.push_back("unit: " + s.m.show(s.unit, "ActiveState") + "/" +
                          s.m.show(s.unit, "SubState") +
                          ", jobs: " + s.m.systemctl({"list-jobs", "--no-legend"}).out);
    std::ifstream procs("/sys/fs/cgroup/systemd" + s.m.show(s.unit, "ControlGroup") +
                        "/cgroup.procs");
    for (std::string pid; std::getline(procs, pid);)
      res.why_not.push_back("pid " + pid + ": " +
                            run({"ps", "-o", "pid,stat,wchan:32,etime,cmd", "-p", pid}).out +
                            " stack: " + run({"cat", "/proc/" + pid + "/stack"}).out);
    res.why_not.push_back("manager: " + run({"ps", "-o", "pid,stat,wchan:32,pcpu,rss,cmd", "-p",
                                             std::to_string(s.m.manager_pid())})
                                            .out);
  }
  if (auto st1 = status(); !st1.is_discarded())
    res.plans = st1.value("executor", nlohmann::json::object()).dump();
  res.alive = !status().is_discarded();
  agent.stop();
  run({"umount", "-l", tmpfs});
  forget_cleanup(unmount);
  std::istringstream err(agent.err());
  for (std::string line; std::getline(err, line);)
    if (line.find("Event loop: ") != std::string::npos)
      res.slow.push_back(line);
  return res;
}

inline void print_soak(const SoakResult& r, std::ostream& out) {
  out << "storm " << r.storm_seconds << " s: " << r.enospc_failures << " ENOSPC failures ("
      << (r.storm_seconds ? r.enospc_failures / static_cast<uint64_t>(r.storm_seconds) : 0)
      << "/s), " << r.oom_kills << " OOM kills, crash-looping units\n"
      << "mendd RSS start " << r.rss_start_kb / 1024.0 << " MB, peak " << r.rss_peak_kb / 1024.0
      << " MB, end " << r.rss_end_kb / 1024.0 << " MB, growth " << r.rss_growth_kb_per_hour / 1024.0
      << " MB/h\n"
      << "mendd CPU " << r.cpu_pct << "% of a core; events " << r.events << ", kernel drops "
      << r.kernel_drops << ", incidents " << r.incidents << "\n"
      << "event loop per wake-up: p50 " << r.loop_p50_ms << " ms, p99 " << r.loop_p99_ms
      << " ms, max " << r.loop_max_ms << " ms\n"
      << "after the storm: alive " << (r.alive ? "yes" : "NO") << ", OOM loop healed "
      << (r.healed_after ? "yes" : "NO") << "\n"
      << "executor: " << r.plans << "\n";
  for (const auto& w : r.why_not)
    out << "  not healed: " << w << "\n";
  for (const auto& l : r.slow)
    out << "  " << l << "\n";
}

}  // namespace mend::test
