// Shared by the e2e scenarios: journald queries, waiting, and the OOM-looping unit under a
// real user manager with its own policy directory, state directory and control socket.
#pragma once

#include <sys/stat.h>
#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "fixtures.h"
#include "systemd_fixture.h"
#include "trace_runner.h"

namespace mend::test {

using namespace std::chrono_literals;

// journald records matching every FIELD=value of `matches`.
inline std::vector<nlohmann::json> journal(const std::vector<std::string>& matches) {
  std::vector<std::string> argv = {"journalctl", "-o", "json", "--no-pager"};
  argv.insert(argv.end(), matches.begin(), matches.end());
  auto r = run(argv);
  std::vector<nlohmann::json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded())
      out.push_back(j);
  }
  return out;
}

// journald records of one unit with one MESSAGE_ID.
inline std::vector<nlohmann::json> records(const std::string& unit, const std::string& message_id) {
  return journal({"OBJECT_SYSTEMD_UNIT=" + unit, "MESSAGE_ID=" + message_id});
}

inline bool wait_until(const std::function<bool()>& f, std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f())
      return true;
    std::this_thread::sleep_for(200ms);
  }
  return f();
}

// The whole of a file, gzip or plain (zlib reads a plain file as it is).
inline std::string gunzip_file(const std::string& p) {
  gzFile g = gzopen(p.c_str(), "rb");
  std::string out;
  char buf[65536];
  int n;
  while (g && (n = gzread(g, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  if (g)
    gzclose(g);
  return out;
}

constexpr const char* kVerified = "b4ddfefef4364a55ae919fd52183aa01";
constexpr const char* kEscalated = "5fb1f1d3f46548ae889377939428dfb2";
constexpr const char* kRolledBack = "7ea0ae3874d44a649df7160679c818f7";

struct OomScenario {
  TempDir dir;
  UserManager m;
  std::string unit = unique_name("hog") + ".service";
  std::string policies, state;

  explicit OomScenario(const std::string& ceiling, const std::string& deadline) {
    policies = dir.path() + "/policies.d";
    state = dir.path() + "/state";
    std::filesystem::create_directories(policies);
    std::ofstream(policies + "/mem.yaml")
        << "policies:\n  - name: mem-raise\n    match: {root_cause: memory_limit}\n"
           "    mode: auto\n    actions:\n"
           "      - raise_memory_limit: {step: 100%, ceiling: "
        << ceiling
        << "}\n      - restart_unit: {timeout: 20s}\n"
           "    verify: {deadline: "
        << deadline << ", stable_for: 4s, no_new_oom: true}\n";
    chmod((policies + "/mem.yaml").c_str(), 0644);
    add_oom_unit(unit);
  }
  // 80 MB resident, then idle: dies under 50M, lives under 100M.
  void add_oom_unit(const std::string& name) {
    m.add_unit(name,
               "[Unit]\nStartLimitBurst=1000\n[Service]\n"
               "ExecStart=/usr/bin/python3 -c \"import time; x = b'a' * (80 << 20); "
               "time.sleep(1000)\"\nMemoryMax=50M\nMemorySwapMax=0\nRestart=on-failure\n"
               "RestartSec=500ms\n");
  }
  uint64_t memory_max() { return std::stoull(m.show(unit, "MemoryMax")); }
  std::string socket() const { return dir.path() + "/control.sock"; }
  // mendd's arguments for this scenario (plus `extra`).
  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"--bus",       "user", "--policies",       policies,
                                  "--state-dir", state,  "--control-socket", socket()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // mendctl against this scenario's mendd.
  RunResult mendctl(std::vector<std::string> a) const {
    a.insert(a.begin(), {MENDCTL_PATH, "--socket", socket()});
    return run(a);
  }
  void write_policy(const std::string& text) {
    std::ofstream(policies + "/mem.yaml") << text;
    chmod((policies + "/mem.yaml").c_str(), 0644);
  }
};

// Records with one MESSAGE_ID written for one policy (unique per run).
inline std::vector<nlohmann::json> policy_records(const std::string& policy,
                                                  const std::string& id) {
  return journal({"MEND_POLICY=" + policy, "MESSAGE_ID=" + id});
}

}  // namespace mend::test
