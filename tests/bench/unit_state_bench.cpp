// Unit-state event latency (systemd's state change, StateChangeTimestampMonotonic -> the event
// in mendd) and mendd's CPU while many units change state per second, against a real systemd
// user manager. Needs root; leaves nothing behind.
//
//   mend_unit_state_bench [--units N] [--seconds S]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "fixtures.h"
#include "systemd_fixture.h"
#include "trace_runner.h"

using namespace mend;
using namespace mend::test;

static double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto p = s.rfind(')');
  std::istringstream in(s.substr(p + 2));
  std::string field;
  unsigned long long ut = 0, st = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14)
      ut = std::stoull(field);
    if (i == 15)
      st = std::stoull(field);
  }
  return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int main(int argc, char** argv) {
  int units = 100, seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--units")
      units = std::atoi(argv[i + 1]);
    else if (a == "--seconds")
      seconds = std::atoi(argv[i + 1]);
  }
  if (!privileged_unavailable().empty()) {
    std::fprintf(stderr, "needs root: %s\n", privileged_unavailable().c_str());
    return 1;
  }
  UserManager m;
  m.add_unit("bench@.service", "[Service]\nExecStart=/bin/sleep 1000\n");
  std::vector<std::string> names;
  for (int i = 0; i < units; ++i)
    names.push_back("bench@" + std::to_string(i) + ".service");

  TraceRunner t({"--sensors", "units", "--bus", "user"});
  if (!t.wait_ready()) {
    std::fprintf(stderr, "mendd did not start\n%s", t.err().c_str());
    return 1;
  }
  // mendd's pid: the newest child named mendd.
  pid_t mendd = 0;
  {
    auto r = run({"pgrep", "-n", "-x", "mendd"});
    mendd = std::atoi(r.out.c_str());
  }
  const double cpu0 = cpu_seconds(mendd);
  const auto t0 = std::chrono::steady_clock::now();
  int cycles = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(seconds)) {
    std::vector<std::string> start = {"start", "--no-block"}, stop = {"stop", "--no-block"};
    start.insert(start.end(), names.begin(), names.end());
    stop.insert(stop.end(), names.begin(), names.end());
    m.systemctl(start);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    m.systemctl(stop);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ++cycles;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double cpu = cpu_seconds(mendd) - cpu0;
  t.stop();

  std::vector<double> lat_us;
  uint64_t events = 0;
  for (const auto& e : t.events()) {
    auto* s = std::get_if<UnitState>(&e.payload);
    if (!s || s->unit.rfind("bench@", 0) != 0)
      continue;
    ++events;
    if (s->state_change_ns && e.ts_ns >= s->state_change_ns)
      lat_us.push_back(static_cast<double>(e.ts_ns - s->state_change_ns) / 1000.0);
  }
  std::sort(lat_us.begin(), lat_us.end());
  auto pct = [&](double q) {
    return lat_us.empty()
               ? -1.0
               : lat_us[std::min(lat_us.size() - 1,
                                 static_cast<size_t>(q * static_cast<double>(lat_us.size())))];
  };
  nlohmann::json out = {
      {"units", units},
      {"cycles", cycles},
      {"unit_state_events", events},
      {"transitions_per_s", static_cast<double>(events) / wall},
      {"latency_us", {{"n", lat_us.size()}, {"p50", pct(0.5)}, {"p99", pct(0.99)}}},
      {"mendd_cpu_pct_of_one_core", 100.0 * cpu / wall}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
