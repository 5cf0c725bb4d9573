// Time to recovery and alert noise, side by side (issue 7): the same real fault, in one run,
// handled four ways: mend; monit 5.33 (the Debian package, run in the foreground with the
// monitrc a competent admin would write) at Debian's default cycle (120 s) and at 1 s; and
// systemd's Restart= alone. Needs root (mendd's BPF, loop devices); leaves nothing behind.
//
//   mend_mttr_bench [--runs N] [--scenarios log-fill,oom-loop] [--contenders mend,monit-1s,...]
//                   [--out DIR]
//
// Scenarios (the scenario suite's numbering):
//   1 log-fill  a unit's log bursts (~9 MB/s) onto its 64 MiB ext4 volume; ENOSPC kills it and,
//               full, every restart (Restart=on-failure, 1 s) dies again.
//   3 oom-loop  a unit needs 80 MB under MemoryMax=50M: OOM-killed at every start.
// Fault onset: the unit's first death (log-fill: or the volume reaching 80%, whichever comes
// first). Validated recovery: the same instance of the unit active, without a death, for 10 s
// in a row (and, for log-fill, the volume under 80%); the time reported is onset -> the start
// of that stable stretch. "not recovered" when it never comes within the
// contender's limit. Signals: the unit's failures (systemd's NRestarts) while the fault lasted.
// Notifications: what would page someone: mend's escalations (and its incidents, reported
// apart), monit's error events (each an alert with `set alert`), systemd: none at all.
//
// Output: a Markdown table on stdout; DIR/mttr.dat and DIR/mttr.png (gnuplot) when --out.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "scenario.h"  // policy_records, the e2e scenarios' journald query

using namespace mend::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStable = 10s;

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double used_pct(const std::string& mnt) {
  struct statvfs sv {};
  if (statvfs(mnt.c_str(), &sv) != 0)
    return 100;
  const double used = static_cast<double>(sv.f_blocks - sv.f_bfree);
  return 100.0 * used / (used + static_cast<double>(sv.f_bavail));
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

struct Outcome {
  bool recovered = false;
  double mttr_s = 0;       // onset -> start of the stable stretch
  uint64_t failures = 0;   // the unit's failures (NRestarts, + the first)
  uint64_t pages = 0;      // notifications: mend escalations, monit error events
  uint64_t incidents = 0;  // mend only
  std::string actions;     // what the contender did
};

// One scenario's fault under one contender.
class Run {
 public:
  Run(const std::string& scenario, const std::string& contender)
      : scenario_(scenario), contender_(contender) {
    unit_ = unique_name(scenario == "log-fill" ? "logger" : "hog") + ".service";
    policy_ = unique_name("bench");
  }

  Outcome go(std::chrono::seconds limit) {
    if (scenario_ == "log-fill")
      setup_log_fill();
    else
      setup_oom_loop();
    if (contender_ == "mend")
      start_mend();
    else if (contender_.rfind("monit", 0) == 0)
      start_monit(contender_ == "monit-1s" ? 1 : 120);
    Outcome o = watch(limit);
    finish(o);
    return o;
  }

  ~Run() {
    if (monit_ > 0) {
      kill(monit_, SIGTERM);
      wait_exit(monit_);
    }
    if (monit_cleanup_)
      forget_cleanup(monit_cleanup_);
    if (m_)
      m_->systemctl({"stop", unit_});
  }

 private:
  void setup_log_fill() {
    lfs_ = std::make_unique<LoopFs>(dir_.path(), "ext4", "64M");
    log_ = lfs_->mnt() + "/app.log";
    const std::string writer = dir_.path() + "/writer.py";
    // The burst happens once (a marker outside the volume); later starts only trickle, and any
    // write error is fatal, as for a service that cannot log.
    write_file(writer,
               "import os, sys, time\n"
               "log, marker = sys.argv[1], sys.argv[2]\n"
               "burst = not os.path.exists(marker)\n"
               "fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
               "i, t0 = 0, time.time()\n"
               "try:\n"
               "    while True:\n"
               "        n = 800 if burst and time.time() - t0 < 12 else 5\n"
               "        for _ in range(n):\n"
               "            os.write(fd, b'line %d %s\\n' % (i, b'x' * 100))\n"
               "            i += 1\n"
               "        time.sleep(0.01)\n"
               "except OSError:\n"
               "    open(marker, 'w').close()\n"
               "    sys.exit(1)\n",
               0644);
    m_ = std::make_unique<UserManager>();
    m_->add_unit(unit_, "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/python3 " +
                            writer + " " + log_ + " " + dir_.path() +
                            "/burst-done\nRestart=on-failure\nRestartSec=1s\n");
  }

  void setup_oom_loop() {
    m_ = std::make_unique<UserManager>();
    m_->add_unit(unit_,
                 "[Unit]\nStartLimitIntervalSec=0\n[Service]\n"
                 "ExecStart=/usr/bin/python3 -c \"import time; x = b'a' * (80 << 20); "
                 "time.sleep(100000)\"\nMemoryMax=50M\nMemorySwapMax=0\nRestart=on-failure\n"
                 "RestartSec=1s\n");
  }

  // mend with the policy a site would ship for this fault (the shipped ones, narrowed to the
  // bench's mount and unit, with the same verification windows as the e2e tests).
  void start_mend() {
    const std::string policies = dir_.path() + "/policies.d";
    fs::create_directories(policies);
    std::ostringstream p;
    if (scenario_ == "log-fill") {
      p << "policies:\n  - name: " << policy_ << "\n    match: {root_cause: fs_full, mounts: ["
        << lfs_->mnt() << "]}\n    mode: auto\n    actions:\n"
        << "      - rotate_logs: {paths: [" << lfs_->mnt()
        << "/*.log], keep: 3, min_size: 1M, logrotate_configs: \"\"}\n"
        << "      - restart_unit: {which: failed, timeout: 20s}\n"
        << "    verify: {deadline: 60s, stable_for: 3s, unit_active: false, usage_below: 80%}\n";
    } else {
      p << "policies:\n  - name: " << policy_ << "\n    match: {root_cause: memory_limit}\n"
        << "    mode: auto\n    actions:\n"
        << "      - raise_memory_limit: {step: 100%, ceiling: 400M}\n"
        << "      - restart_unit: {timeout: 20s}\n"
        << "    verify: {deadline: 60s, stable_for: 4s, no_new_oom: true}\n";
    }
    write_file(policies + "/bench.yaml", p.str(), 0644);
    std::vector<std::string> args = {"--bus",
                                     "user",
                                     "--policies",
                                     policies,
                                     "--state-dir",
                                     dir_.path() + "/state",
                                     "--fs-used-threshold",
                                     "80%"};
    mend_ = std::make_unique<TraceRunner>(args, false);
    if (!mend_->wait_ready())
      throw std::runtime_error("mendd did not start: " + mend_->err());
  }

  // The monitrc a competent admin would write: check the symptom every cycle, run the fix on
  // failure. systemctl --user needs the manager's runtime directory: a wrapper carries it.
  void start_monit(int cycle) {
    const std::string d = dir_.path();
    const std::string env =
        std::string("export XDG_RUNTIME_DIR=") + getenv("XDG_RUNTIME_DIR") +
        " DBUS_SESSION_BUS_ADDRESS=" +
        (getenv("DBUS_SESSION_BUS_ADDRESS") ? getenv("DBUS_SESSION_BUS_ADDRESS") : "") + "\n";
    std::ostringstream rc;
    rc << "set daemon " << cycle << "\nset logfile " << d << "/monit.log\nset idfile " << d
       << "/monit.id\nset statefile " << d << "/monit.state\nset pidfile " << d << "/monit.pid\n";
    if (scenario_ == "log-fill") {
      // Compress the log to another filesystem (a full volume has no room for the copy), empty
      // it in place (the writer appends), move the archive back: logrotate's copytruncate, done
      // by hand because logrotate copies before it compresses.
      write_file(d + "/rotate.sh",
                 "#!/bin/sh\nset -e\nts=$(date +%s%N)\ngzip -c < " + log_ + " > " + d +
                     "/app.log.$ts.gz\n: > " + log_ + "\nmv " + d + "/app.log.$ts.gz " +
                     lfs_->mnt() + "/ 2>/dev/null || true\n",
                 0755);
      rc << "check filesystem applog with path " << lfs_->mnt()
         << "\n  if space usage > 80% then exec \"" << d << "/rotate.sh\"\n";
    } else {
      write_file(d + "/is-active.sh",
                 "#!/bin/sh\n" + env + "exec systemctl --user is-active --quiet " + unit_ + "\n",
                 0755);
      write_file(d + "/restart.sh",
                 "#!/bin/sh\n" + env + "exec systemctl --user restart " + unit_ + "\n", 0755);
      rc << "check program app with path \"" << d << "/is-active.sh\"\n"
         << "  if status != 0 then exec \"" << d << "/restart.sh\"\n";
    }
    write_file(d + "/monitrc", rc.str(), 0600);
    monit_ = spawn_in({}, {"/usr/bin/monit", "-I", "-c", d + "/monitrc"});
    const pid_t pid = monit_;
    monit_cleanup_ = on_cleanup([pid] { kill(pid, SIGKILL); });  // also on SIGINT/SIGTERM
    std::this_thread::sleep_for(300ms);                          // its first cycle runs at start
  }

  struct Sample {
    std::string state;
    uint64_t start_us = 0, exit_us = 0, restarts = 0;  // CLOCK_MONOTONIC, as systemd keeps them
  };
  Sample sample() {
    Sample x;
    auto r =
        m_->systemctl({"show", unit_, "-p", "ActiveState", "-p", "ExecMainStartTimestampMonotonic",
                       "-p", "ExecMainExitTimestampMonotonic", "-p", "NRestarts"});
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      const auto eq = line.find('=');
      if (eq == std::string::npos)
        continue;
      const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
      try {
        if (k == "ActiveState")
          x.state = v;
        else if (k == "ExecMainStartTimestampMonotonic")
          x.start_us = std::stoull(v);
        else if (k == "ExecMainExitTimestampMonotonic")
          x.exit_us = std::stoull(v);
        else if (k == "NRestarts")
          x.restarts = std::stoull(v);
      } catch (...) {
      }
    }
    return x;
  }

  // Fault onset -> the start of a stable stretch of kStable. The unit's deaths are read from
  // systemd's own timestamps (ExecMainExitTimestampMonotonic, same clock as steady_clock), so a
  // death between two samples is neither missed nor late; a manual restart (which resets
  // NRestarts) is seen as a new start.
  Outcome watch(std::chrono::seconds limit) {
    Outcome o;
    m_->systemctl({"start", unit_});
    const auto t_start = Clock::now();
    Clock::time_point onset{}, stable_from{};
    bool has_onset = false, has_stable = false;
    std::set<uint64_t> deaths;
    uint64_t stable_start_us = 0;
    while (Clock::now() - t_start < limit + 30s) {
      const Sample x = sample();
      const auto now = Clock::now();
      if (x.exit_us != 0)
        deaths.insert(x.exit_us);
      // Onset: the unit's first death; for log-fill, the volume reaching 80% if that comes
      // first (the threshold every contender watches: acting there can spare the failure).
      if (!has_onset && !deaths.empty()) {
        onset = Clock::time_point(std::chrono::microseconds(*deaths.begin()));
        has_onset = true;
      }
      const double used = scenario_ == "log-fill" ? used_pct(lfs_->mnt()) : 0;
      if (!has_onset && used >= 80) {
        onset = now;
        has_onset = true;
      }
      const bool healthy = x.state == "active" && used < 80 && x.exit_us == 0;
      if (has_onset) {
        if (!healthy || (has_stable && x.start_us != stable_start_us)) {
          has_stable = false;
        } else if (!has_stable) {
          // The stretch starts when this instance started (or now, for a unit that never died
          // but whose volume came back under 80%).
          stable_from =
              std::max(now - 100ms, Clock::time_point(std::chrono::microseconds(x.start_us)));
          stable_from = std::max(stable_from, onset);
          stable_start_us = x.start_us;
          has_stable = true;
        } else if (now - stable_from >= kStable) {
          o.recovered = true;
          o.mttr_s = secs(stable_from - onset);
          break;
        }
        if (now - onset > limit && !has_stable)
          break;
      }
      std::this_thread::sleep_for(100ms);
    }
    o.failures = deaths.size();
    return o;
  }

  void finish(Outcome& o) {
    if (contender_ == "mend") {
      std::set<std::string> incidents;
      for (const char* id : {"14b7cdd70abd4e548e11a28f87926cf0", "b4ddfefef4364a55ae919fd52183aa01",
                             "5fb1f1d3f46548ae889377939428dfb2"})
        for (const auto& r : policy_records(policy_, id))
          incidents.insert(r.value("MEND_INCIDENT_ID", ""));
      o.incidents = incidents.size();
      o.pages = policy_records(policy_, "5fb1f1d3f46548ae889377939428dfb2").size();
      std::map<std::string, int> applied;
      for (const auto& r : policy_records(policy_, "666e06a737c04222b04538ba13cb14b8"))
        if (r.value("MEND_RESULT", "") == "applied")
          ++applied[r.value("MEND_ACTION", "?")];
      for (const auto& [a, n] : applied)
        o.actions += (o.actions.empty() ? "" : ", ") + a + (n > 1 ? " x" + std::to_string(n) : "");
      mend_->stop();
    } else if (monit_ > 0) {
      kill(monit_, SIGTERM);
      wait_exit(monit_);
      monit_ = -1;
      std::ifstream log(dir_.path() + "/monit.log");
      uint64_t errors = 0, execs = 0;
      for (std::string line; std::getline(log, line);) {
        if (line.find("error    :") != std::string::npos)
          ++errors;
        if (line.find("exec:") != std::string::npos)
          ++execs;
      }
      o.pages = errors;
      o.actions = std::to_string(execs) + (scenario_ == "log-fill" ? " rotation" : " restart") +
                  (execs == 1 ? "" : "s") + " (exec)";
    }
    if (contender_ != "mend" && contender_.rfind("monit", 0) != 0)
      o.actions = std::to_string(sample().restarts) + " restarts (Restart=)";
    else if (o.actions.empty())
      o.actions = "none";
  }

  std::string scenario_, contender_, unit_, policy_, log_;
  TempDir dir_;
  std::unique_ptr<LoopFs> lfs_;
  std::unique_ptr<UserManager> m_;
  std::unique_ptr<TraceRunner> mend_;
  pid_t monit_ = -1;
  int monit_cleanup_ = 0;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string x; std::getline(in, x, ',');)
    if (!x.empty())
      out.push_back(x);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  std::vector<std::string> scenarios = {"log-fill", "oom-loop"};
  std::vector<std::string> contenders = {"mend", "monit-1s", "monit-120s", "systemd"};
  std::string out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--runs")
      runs = std::max(1, std::atoi(v.c_str()));
    else if (a == "--scenarios")
      scenarios = split(v);
    else if (a == "--contenders")
      contenders = split(v);
    else if (a == "--out")
      out = v;
  }
  if (!privileged_unavailable().empty()) {
    std::fprintf(stderr, "needs root: %s\n", privileged_unavailable().c_str());
    return 1;
  }
  ensure_journald();
  struct Row {
    std::string scenario, contender;
    std::vector<Outcome> runs;
  };
  std::vector<Row> rows;
  for (const auto& s : scenarios)
    for (const auto& c : contenders) {
      Row row{s, c, {}};
      // monit's default cycle needs up to 120 s to notice; everything else gets 60 s.
      const auto limit = c == "monit-120s" ? 200s : 60s;
      for (int r = 0; r < runs; ++r) {
        Outcome o;
        try {
          Run run(s, c);
          o = run.go(limit);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "%s/%s: %s\n", s.c_str(), c.c_str(), e.what());
          return 1;
        }
        std::fprintf(stderr, "%s %s run %d: %s %.1f s, %llu failures, %llu pages, %s\n", s.c_str(),
                     c.c_str(), r + 1, o.recovered ? "recovered" : "NOT recovered", o.mttr_s,
                     static_cast<unsigned long long>(o.failures),
                     static_cast<unsigned long long>(o.pages), o.actions.c_str());
        row.runs.push_back(o);
      }
      rows.push_back(row);
    }

  std::printf(
      "| scenario | contender | recovered | MTTR median (min-max) | unit failures | "
      "notifications | actions |\n|---|---|---|---|---|---|---|\n");
  // scenario -> contender -> median (or "-": not recovered), for the plot.
  std::map<std::string, std::map<std::string, std::string>> medians;
  for (const auto& row : rows) {
    std::vector<double> t;
    uint64_t fail = 0, pages = 0, inc = 0;
    for (const auto& o : row.runs) {
      if (o.recovered)
        t.push_back(o.mttr_s);
      fail += o.failures;
      pages += o.pages;
      inc += o.incidents;
    }
    std::sort(t.begin(), t.end());
    const size_t n = row.runs.size();
    char mttr[96] = "not recovered";
    if (!t.empty())
      std::snprintf(mttr, sizeof mttr, "%.1f s (%.1f-%.1f)", t[t.size() / 2], t.front(), t.back());
    std::string notes;
    if (row.contender == "mend")
      notes = std::to_string(pages) + " escalations, " + std::to_string(inc) + " incidents";
    else if (row.contender.rfind("monit", 0) == 0)
      notes = std::to_string(pages) + " error events";
    else
      notes = "none (nobody is told)";
    std::printf("| %s | %s | %zu/%zu | %s | %llu | %s | %s |\n", row.scenario.c_str(),
                row.contender.c_str(), t.size(), n, mttr, static_cast<unsigned long long>(fail),
                notes.c_str(), row.runs.back().actions.c_str());
    medians[row.scenario][row.contender] = t.empty() ? "-" : std::to_string(t[t.size() / 2]);
  }
  if (!out.empty()) {
    fs::create_directories(out);
    std::ofstream dat(out + "/mttr.dat");
    dat << "scenario";
    for (const auto& c : contenders)
      dat << " " << c;
    dat << "\n";
    for (const auto& sc : scenarios) {
      dat << sc;
      for (const auto& c : contenders)
        dat << " " << (medians[sc].count(c) ? medians[sc][c] : "-");
      dat << "\n";
    }
    dat.close();
    std::ofstream gp(out + "/mttr.gp");
    gp << "set terminal pngcairo size 900,420 font 'sans,10'\nset output '" << out
       << "/mttr.png'\n"
          "set title 'Fault onset to validated recovery, median (no bar: not recovered)'\n"
          "set datafile missing '-'\nset style data histograms\n"
          "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
          "set logscale y\nset yrange [0.3:300]\nset ylabel 'seconds (log scale)'\n"
          "set key top left\nset grid ytics\nplot '"
       << out << "/mttr.dat' using 2:xtic(1) title columnheader";
    for (size_t i = 1; i < contenders.size(); ++i)
      gp << ", '' using " << i + 2 << " title columnheader";
    gp << "\n";
    gp.close();
    auto g = run({"gnuplot", out + "/mttr.gp"});
    if (g.status != 0)
      std::fprintf(stderr, "gnuplot: %s\n", g.err.c_str());
  }
  return 0;
}
