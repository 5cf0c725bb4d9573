// The kill -9 torture (issue 15): the whole mendd on a real systemd user manager runs a
// multi-step plan and is killed with SIGKILL at a step boundary (each record a plan writes) or
// at a random moment, then started again over the same state directory. Three plans:
//   raise+restart  an OOM-looping unit: MemoryMax 50M -> 100M, then a restart
//   rotate+restart a unit fills a loop ext4 volume with its log: rotate it, restart the writer
//   grow           a unit fills a loop xfs volume: its backing file and filesystem grow 100M
// After each trial the host must be rolled back or verified, or, for what cannot be undone (a
// rotation, a grown filesystem), left as it is with a record saying so; nothing applied twice
// (never 200M, never two rotations, never two growths), no log line lost, and nothing left
// unfinished in the intent journal. Shared by the e2e test (a few trials of each) and
// tests/bench/torture_bench.cpp (100).
#pragma once

#include <sys/statvfs.h>

#include <random>
#include <set>

#include "remedy/intent_journal.h"
#include "scenario.h"

namespace mend::test {

struct TortureResult {
  int trials = 0;
  int rolled_back = 0;         // killed mid-plan: undone (or taken back) at the restart, escalated
  int kept = 0;                // killed after an irreversible step: left as is, escalated, recorded
  int verified = 0;            // killed after the verdict (or never during the plan): the fix stays
  int untouched = 0;           // killed before any step ran: nothing to undo
  uint64_t doubled_lines = 0;  // log lines in two files (killed between a copy and its cut)
  std::vector<std::string> failures;
  std::map<std::string, int> by_point;                        // trials per "plan: kill point"
  std::map<std::string, std::map<std::string, int>> by_plan;  // plan -> outcome -> trials
};

// Where a trial kills mendd: after the record with this MESSAGE_ID and action (""), or at a
// random moment.
struct KillPoint {
  std::string name, message_id, action;
};

// The disk plans' mend.yaml: budgets that 100 trials in a few minutes do not exhaust; an
// incident closes 1 s after its last event, so the next trial's fill (on the same mount) is an
// incident of its own.
constexpr const char* kTortureConfig =
    "executor: {max_actions_per_hour: 1000, max_actions_per_unit_per_hour: 1000}\n"
    "correlation: {quiet: 1s}\n";
// No cooldown between trials on one mount.
constexpr const char* kTortureGuards = "    guards: {cooldown: 0s, max_runs: 100, per: 1m}\n";

constexpr const char* kStepStarted = "14b7cdd70abd4e548e11a28f87926cf0";
constexpr const char* kStepFinished = "666e06a737c04222b04538ba13cb14b8";

// The scenario's mend.yaml (root-owned 0644, as mendd requires).
inline std::string write_config(const OomScenario& s, const std::string& text) {
  const std::string config = s.dir.path() + "/mend.yaml";
  std::ofstream(config) << text;
  chmod(config.c_str(), 0644);
  return config;
}

inline std::vector<KillPoint> step_points(const std::vector<std::string>& actions) {
  std::vector<KillPoint> p;
  for (const auto& a : actions) {
    p.push_back({a + " started", kStepStarted, a});
    p.push_back({a + " finished", kStepFinished, a});
  }
  p.push_back({"verified", kVerified, ""});
  p.push_back({"random", "", ""});
  return p;
}

inline std::vector<KillPoint> kill_points() {
  return step_points({"raise_memory_limit", "restart_unit"});
}

// One plan under torture: its mendd, its kill points, how a trial's fault starts, and how its
// end is judged (once mendd is dead and the fault stopped, and once mendd has started again).
struct TortureKind {
  std::string name;
  std::vector<std::string> args;
  std::string state;
  std::vector<KillPoint> points;
  std::function<std::string(int)> start;  // the fault; returns the culprit unit
  // mendd dead, the fault stopped: what only the files can tell ("" when fine).
  std::function<std::string(const std::string& unit)> while_dead;
  // mendd started again: "rolled_back", "kept", "verified", "untouched", or a failure.
  std::function<std::string(const std::string& unit, bool acted, bool interrupted, bool verified)>
      judge;
  std::function<void(const std::string& unit)> end;  // after the trial: its fault is removed
};

inline void torture(TortureKind& k, int trials, std::mt19937& rng, TortureResult& res) {
  std::uniform_int_distribution<int> random_ms(300, 9000);
  std::unique_ptr<TraceRunner> agent;
  auto start_agent = [&] {
    agent = std::make_unique<TraceRunner>(k.args, false);
    return agent->wait_ready();
  };
  if (!start_agent()) {
    res.failures.push_back(k.name + ": mendd did not start: " + agent->err());
    return;
  }
  for (int t = 0; t < trials; ++t) {
    const KillPoint& kp = k.points[static_cast<size_t>(t) % k.points.size()];
    ++res.trials;
    ++res.by_point[k.name + ": " + kp.name];
    const std::string unit = k.start(t);
    bool seen = true;
    if (kp.message_id.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(random_ms(rng)));
    } else {
      seen = wait_until(
          [&] {
            for (const auto& r : records(unit, kp.message_id))
              if (kp.action.empty() || r.value("MEND_ACTION", "") == kp.action)
                return true;
            return false;
          },
          90s);
    }
    agent->kill_hard();
    const std::string where =
        k.name + " trial " + std::to_string(t) + " (" + kp.name + ", " + unit + ")";
    if (!seen)
      res.failures.push_back(where + ": the kill point was never reached");
    if (auto f = k.while_dead(unit); !f.empty())
      res.failures.push_back(where + ": " + f);
    if (!start_agent()) {
      res.failures.push_back(where + ": mendd did not start again: " + agent->err());
      return;
    }
    wait_until([&] { return !records(unit, kVerified).empty(); }, 1s);
    const bool verified = !records(unit, kVerified).empty();
    const bool interrupted = !records(unit, kEscalated).empty();
    const bool acted = !records(unit, kStepStarted).empty();
    auto open = IntentJournal(k.state).unfinished();
    if (!open.ok() || !open->empty()) {
      const std::string err = agent->err();
      res.failures.push_back(where +
                             ": the intent journal still has an unfinished run; mendd said: " +
                             err.substr(err.size() > 1500 ? err.size() - 1500 : 0));
    }
    const std::string v = k.judge(unit, acted, interrupted, verified);
    ++res.by_plan[k.name][v == "rolled_back" || v == "kept" || v == "verified" || v == "untouched"
                              ? v
                              : "failed"];
    if (v == "rolled_back")
      ++res.rolled_back;
    else if (v == "kept")
      ++res.kept;
    else if (v == "verified")
      ++res.verified;
    else if (v == "untouched")
      ++res.untouched;
    else
      res.failures.push_back(where + ": " + v);
    k.end(unit);
    std::this_thread::sleep_for(1500ms);  // the trial's incident closes (correlation.quiet)
  }
  agent->stop();
}

inline void torture_raise_restart(int trials, std::mt19937& rng, TortureResult& res) {
  OomScenario s("200M", "30s");
  // Budgets that 100 trials in a few minutes do not exhaust (each trial has its own unit).
  const std::string config = write_config(s,
                                          "executor: {max_actions_per_hour: 1000}\n"
                                          "correlation: {quiet: 5s}\n");
  TortureKind k;
  k.name = "raise+restart";
  k.args = s.args({"--config", config});
  k.state = s.state;
  k.points = kill_points();
  k.start = [&](int) {
    const std::string unit = unique_name("tort") + ".service";
    s.add_oom_unit(unit);
    s.m.systemctl({"start", "--no-block", unit});
    return unit;
  };
  // No new fault while the host is checked: the unit stops; mend starts again and recovers.
  k.while_dead = [&](const std::string& unit) {
    s.m.systemctl({"stop", unit});
    return std::string();
  };
  k.judge = [&](const std::string& unit, bool acted, bool interrupted,
                bool verified) -> std::string {
    const uint64_t mm = std::stoull(s.m.show(unit, "MemoryMax"));
    if (mm == uint64_t{200} << 20)
      return "MemoryMax raised twice";
    if (mm == uint64_t{100} << 20)
      return verified ? "verified" : "MemoryMax raised, never verified, not rolled back";
    if (mm != uint64_t{50} << 20)
      return "MemoryMax is " + std::to_string(mm);
    if (verified)
      return "a verified fix was rolled back";
    if (acted && !interrupted)
      return "rolled back without a record saying so";
    return acted ? "rolled_back" : "untouched";
  };
  k.end = [](const std::string&) {};
  torture(k, trials, rng, res);
}

inline void torture_rotate_restart(int trials, std::mt19937& rng, TortureResult& res) {
  namespace fs = std::filesystem;
  OomScenario s("200M", "30s");  // for its manager, state and policy directories
  LoopFs lfs(s.dir.path(), "ext4", "32M");
  const std::string log = lfs.mnt() + "/app.log";
  s.write_policy("policies:\n  - name: tort-rotate\n    match: {root_cause: fs_full, mounts: [" +
                 lfs.mnt() + "]}\n    mode: auto\n    actions:\n      - rotate_logs: {paths: [" +
                 lfs.mnt() +
                 "/*.log], keep: 3, min_size: 1M, logrotate_configs: \"\"}\n"
                 "      - restart_unit: {timeout: 20s}\n"
                 "    verify: {deadline: 30s, stable_for: 2s, usage_below: 60%}\n" +
                 kTortureGuards);
  const std::string config = write_config(s, kTortureConfig);
  // Numbered lines, each process its own numbers, never one skipped: a line refused with
  // ENOSPC is written again until it goes in (a short write is finished, not restarted). As
  // fast as it can until the volume is full the first time (argv[1] marks that), then a
  // trickle: the writer restarted by the plan does not fill it again.
  const std::string writer = s.dir.path() + "/writer.py";
  std::ofstream(writer) << "import errno, os, sys, time\n"
                           "fd = os.open('"
                        << log
                        << "', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
                           "pid = os.getpid()\ni = 0\n"
                           "while True:\n"
                           "    line = b'%d %d %s\\n' % (pid, i, b'x' * 200)\n"
                           "    while line:\n"
                           "        try:\n"
                           "            line = line[os.write(fd, line):]\n"
                           "        except OSError as e:\n"
                           "            if e.errno != errno.ENOSPC:\n"
                           "                raise\n"
                           "            open(sys.argv[1], 'w').close()\n"
                           "            time.sleep(0.05)\n"
                           "    i += 1\n"
                           "    if os.path.exists(sys.argv[1]):\n"
                           "        time.sleep(0.01)\n";
  TortureKind k;
  k.name = "rotate+restart";
  // The volume fills from empty inside one sample: the ENOSPC/writer probe always attached.
  k.args = s.args({"--config", config, "--sensors", "fs,units", "--fs-used-threshold", "80%",
                   "--fs-enospc-probe", "always"});
  k.state = s.state;
  k.points = step_points({"rotate_logs", "restart_unit"});
  k.start = [&](int) {
    const std::string unit = unique_name("tlog") + ".service";
    s.m.add_unit(unit, "[Service]\nExecStart=/usr/bin/python3 " + writer + " " + s.dir.path() +
                           "/" + unit + ".full\n");
    s.m.systemctl({"start", "--no-block", unit});
    return unit;
  };
  // Every line of every writer, from the live log, the rotated one and any copy mendd kept:
  // none missing, at most one rotation.
  k.while_dead = [&](const std::string& unit) -> std::string {
    s.m.systemctl({"stop", unit});
    std::string all;
    int rotations = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(lfs.mnt(), ec)) {
      const std::string n = e.path().filename().string();
      // zlib reads a plain file as it is.
      if (n == "app.log")
        all += gunzip_file(e.path());
      else if (n.rfind("app.log.", 0) == 0)
        all += gunzip_file(e.path()), ++rotations;
    }
    for (const auto& e : fs::directory_iterator(s.state, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("rotate-", 0) == 0 && n.size() > 8 && n.substr(n.size() - 8) == ".rotated")
        all += gunzip_file(e.path());
    }
    // Judged: the volume is emptied, so the restarted mendd finds nothing to heal.
    k.end(unit);
    if (rotations > 1)
      return std::to_string(rotations) + " rotations of one fill";
    std::map<std::string, std::set<uint64_t>> seen;
    std::istringstream in(all);
    uint64_t lines = 0;
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string pid;
      uint64_t i = 0;
      if (!(f >> pid >> i))
        continue;  // the last line of a killed writer may be cut
      ++lines;
      if (!seen[pid].insert(i).second)
        ++res.doubled_lines;
    }
    for (const auto& [pid, nums] : seen)
      if (!nums.empty() && *nums.rbegin() + 1 != nums.size())
        return "writer " + pid + " lost " + std::to_string(*nums.rbegin() + 1 - nums.size()) +
               " of its " + std::to_string(*nums.rbegin() + 1) + " lines";
    return std::string();
  };
  k.judge = [&](const std::string&, bool acted, bool interrupted, bool verified) -> std::string {
    if (verified)
      return "verified";
    if (acted && !interrupted)
      return "stopped mid-plan without a record saying so";
    // A rotation is not undone: kept, with the escalation saying what was left as is.
    return acted ? "kept" : "untouched";
  };
  k.end = [&](const std::string&) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(lfs.mnt(), ec))
      if (e.path().filename() != "lost+found")
        fs::remove_all(e.path(), ec);
    for (const auto& e : fs::directory_iterator(s.state, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("rotate-", 0) == 0)
        fs::remove(e.path(), ec);
    }
  };
  torture(k, trials, rng, res);
}

inline void torture_grow(int trials, std::mt19937& rng, TortureResult& res) {
  OomScenario s("200M", "30s");
  const std::string vols = s.dir.path() + "/vols";
  std::filesystem::create_directories(vols);
  s.write_policy("policies:\n  - name: tort-grow\n    match: {root_cause: fs_full, mounts: [" +
                 vols +
                 "/xfs*.mnt]}\n    mode: auto\n    allow_irreversible: true\n    actions:\n"
                 "      - grow_volume: {step: 100M, max_size: 2G, reserve: 0}\n"
                 "    verify: {deadline: 30s, stable_for: 2s, usage_below: 95%}\n" +
                 kTortureGuards);
  const std::string config = write_config(s, kTortureConfig);
  const uint64_t M = 1 << 20;
  std::unique_ptr<LoopFs> vol;
  uint64_t fs_before = 0;
  auto fs_size = [&] {
    struct statvfs sv {};
    statvfs(vol->mnt().c_str(), &sv);
    return static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
  };
  TortureKind k;
  k.name = "grow";
  // The volume fills from empty inside one sample: the ENOSPC/writer probe always attached.
  k.args = s.args({"--config", config, "--sensors", "fs,units", "--fs-used-threshold", "80%",
                   "--fs-enospc-probe", "always"});
  k.state = s.state;
  k.points = step_points({"grow_volume"});
  k.start = [&](int) {
    vol = std::make_unique<LoopFs>(vols, "xfs", "300M");
    fs_before = fs_size();
    const std::string unit = unique_name("tgrow") + ".service";
    // Fills the volume, then keeps trying a little more every 200 ms.
    s.m.add_unit(unit, "[Service]\nExecStart=/bin/sh -c 'dd if=/dev/zero of=" + vol->mnt() +
                           "/fill bs=1M 2>/dev/null; while :; do dd if=/dev/zero of=" + vol->mnt() +
                           "/more bs=64k count=1 oflag=append conv=notrunc 2>/dev/null; "
                           "sleep 0.2; done'\n");
    s.m.systemctl({"start", "--no-block", unit});
    return unit;
  };
  k.while_dead = [&](const std::string& unit) -> std::string {
    s.m.systemctl({"stop", unit});
    const uint64_t now = fs_size();
    // Emptied, so the restarted mendd finds nothing to heal (the sizes are what is judged).
    std::error_code ec;
    std::filesystem::remove(vol->mnt() + "/fill", ec);
    std::filesystem::remove(vol->mnt() + "/more", ec);
    if (now > fs_before + 150 * M)
      return "grown twice: " + std::to_string(fs_before / M) + " -> " + std::to_string(now / M) +
             " MiB";
    return std::string();
  };
  k.judge = [&](const std::string&, bool acted, bool interrupted, bool verified) -> std::string {
    const bool grown = fs_size() > fs_before + 50 * M;
    const uint64_t file = std::filesystem::file_size(vol->image());
    if (verified)
      return grown ? "verified" : "verified, yet the filesystem did not grow";
    if (acted && !interrupted)
      return "stopped mid-plan without a record saying so";
    if (grown)
      return "kept";  // a filesystem does not shrink: left as is, and the record says so
    // Not grown: the loop file is back to its size, unless the device had its new capacity.
    const std::string dev_size = must_run({"blockdev", "--getsize64", vol->dev()});
    if (file != 300 * M && std::stoull(dev_size) == 300 * M)
      return "the loop file stayed " + std::to_string(file / M) + " MiB, the filesystem did not";
    if (file != 300 * M)
      return "kept";
    return acted ? "rolled_back" : "untouched";
  };
  k.end = [&](const std::string&) { vol.reset(); };
  torture(k, trials, rng, res);
}

// `trials` kills over the three plans (a third each; each plan's kill points in turn).
inline TortureResult run_torture(int trials, unsigned seed = 1) {
  TortureResult res;
  std::mt19937 rng(seed);
  const int each = trials / 3, first = trials - 2 * each;
  torture_raise_restart(first, rng, res);
  torture_rotate_restart(each, rng, res);
  torture_grow(each, rng, res);
  return res;
}

inline void print_torture(const TortureResult& r, std::ostream& out) {
  out << "trials " << r.trials << ": rolled back " << r.rolled_back
      << ", left as is (irreversible) " << r.kept << ", verified " << r.verified << ", untouched "
      << r.untouched << ", failures " << r.failures.size() << "; log lines doubled "
      << r.doubled_lines << ", lost 0 unless a "
      << "failure says so\n";
  for (const auto& [plan, outcomes] : r.by_plan) {
    out << "  " << plan << ":";
    for (const auto& [o, n] : outcomes)
      out << " " << o << " " << n;
    out << "\n";
  }
  for (const auto& [p, n] : r.by_point)
    out << "  killed at " << p << ": " << n << "\n";
  for (const auto& f : r.failures)
    out << "  FAIL " << f << "\n";
}

}  // namespace mend::test
