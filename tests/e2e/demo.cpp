// The demo (scripts/demo.sh): a real systemd user manager and journald, a unit that OOM-loops
// under its MemoryMax, mendd with one policy - and what an SRE sees: the incident, the
// explanation, the fix and its proof, the journald records. Everything it starts (manager,
// journald if none ran, units, cgroups, mendd) is removed when it ends, also on Ctrl-C.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "fixtures.h"
#include "systemd_fixture.h"
#include "trace_runner.h"

using namespace mend::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void say(const std::string& s) {
  std::cout << "\n\033[1m== " << s << "\033[0m\n" << std::flush;
}

void show(const std::vector<std::string>& argv) {
  std::cout << "$";
  for (const auto& a : argv)
    std::cout << " " << (a.find(' ') == std::string::npos ? a : "'" + a + "'");
  std::cout << "\n" << run(argv).out << std::flush;
}

}  // namespace

int main() {
  if (auto why = privileged_unavailable(); !why.empty()) {
    std::cerr << "demo: " << why << " (run it as root: sudo scripts/demo.sh)\n";
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  TempDir dir;
  UserManager m;
  const std::string unit = unique_name("demo-hog") + ".service";
  const std::string policies = dir.path() + "/policies.d", sock = dir.path() + "/control.sock";
  fs::create_directories(policies);
  std::ofstream(policies + "/memory.yaml")
      << "policies:\n  - name: memory-limit-raise\n    match: {root_cause: memory_limit}\n"
         "    mode: auto\n    actions:\n"
         "      - raise_memory_limit: {step: 100%, ceiling: 200M}\n"
         "      - restart_unit: {timeout: 20s}\n"
         "    verify: {deadline: 40s, stable_for: 4s, no_new_oom: true}\n";
  chmod((policies + "/memory.yaml").c_str(), 0644);
  m.add_unit(unit,
             "[Unit]\nDescription=needs 80 MB, limited to 50 MB\nStartLimitBurst=1000\n"
             "[Service]\nExecStart=/usr/bin/python3 -c \"import time; x = b'a' * (80 << 20); "
             "time.sleep(1000)\"\nMemoryMax=50M\nMemorySwapMax=0\nRestart=on-failure\n"
             "RestartSec=500ms\n");
  say("A unit that needs 80 MB under MemoryMax=50M, restarted by systemd on failure");
  std::cout << unit << ": MemoryMax=" << m.show(unit, "MemoryMax") << "\n";
  say("mendd: sensors (eBPF) -> correlation -> policy -> executor -> journald");
  TraceRunner agent({"--bus", "user", "--policies", policies, "--state-dir", dir.path() + "/state",
                     "--control-socket", sock},
                    false);
  if (!agent.wait_ready()) {
    std::cerr << agent.err();
    return 1;
  }
  std::cout << "mendd is running with policy memory-limit-raise (raise the limit one step within "
               "a 200M ceiling, restart, prove 4 s without an OOM kill)\n";
  say("The fault: start the unit; it is OOM-killed and loops");
  m.systemctl({"start", "--no-block", unit});
  std::string id;
  for (int i = 0; i < 600 && id.empty(); ++i) {
    auto r = run({MENDCTL_PATH, "--socket", sock, "incidents", "-o", "json"});
    if (r.out.find("\"verified\"") != std::string::npos) {
      auto p = r.out.find("\"id\": \"");
      id = r.out.substr(p + 7, r.out.find('"', p + 7) - p - 7);
    }
    std::this_thread::sleep_for(100ms);
  }
  if (id.empty()) {
    std::cerr << "demo: no verified fix within 60 s\n" << agent.err();
    return 1;
  }
  say("mendctl incidents");
  show({MENDCTL_PATH, "--socket", sock, "incidents"});
  say("mendctl explain " + id);
  show({MENDCTL_PATH, "--socket", sock, "explain", id});
  say("The unit now");
  std::cout << unit << ": " << m.show(unit, "ActiveState")
            << ", MemoryMax=" << m.show(unit, "MemoryMax")
            << " (runtime only: a reboot restores the unit file's value)\n";
  say("journald: mend's records for this incident (MESSAGE_ID, MEND_* fields)");
  show({"journalctl", "--no-pager", "-o", "short-monotonic", "MEND_INCIDENT_ID=" + id});
  show({"journalctl", "--no-pager", "-o", "verbose", "-n", "1", "MEND_INCIDENT_ID=" + id,
        "MEND_RECORD=verified"});
  agent.stop();
  const auto secs =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count() /
      1000.0;
  say("Done in " + std::to_string(secs).substr(0, 4) +
      " s; the manager, journald, units and cgroups are being removed");
  return 0;
}
