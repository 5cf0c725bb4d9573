// Time to recovery and alert noise, side by side (issue 7): the same real fault, in one run,
// handled four ways: mend; monit 5.33 (the Debian package, run in the foreground with the
// monitrc a competent admin would write) at Debian's default cycle (120 s) and at 1 s; and
// systemd's Restart= alone. Needs root (mendd's BPF, loop devices, blkio); leaves nothing
// behind.
//
//   mend_mttr_bench [--runs N] [--scenarios log-fill,noisy-fill,...] [--contenders mend,...]
//                   [--out DIR]
//
// Scenarios (the scenario suite's numbering):
//   1 log-fill    a unit's log bursts (~9 MB/s) onto its 64 MiB ext4 volume; ENOSPC kills it
//                 and, full, every restart (Restart=on-failure, 1 s) dies again.
//   2 noisy-fill  a noisy unit's 70 MB log storm fills the 64 MiB volume another unit keeps its
//                 state on; that unit (the victim) crash-loops on ENOSPC.
//   3 oom-loop    a unit needs 80 MB under MemoryMax=50M: OOM-killed at every start.
//   4 io-stall    a unit keeps 16 direct writes in flight on a stacked loop device whose lower
//                 device serves it 50 writes/s: every request waits ~320 ms.
//   5 grow-early  a unit ingests 400 MB at 8 MB/s into a 300 MiB XFS volume; at ENOSPC it dies
//                 and its restarts die until the volume grows.
// Fault onset: the watched unit's first death, or the symptom (volume at 80%, write latency
// over 100 ms in the last second), whichever comes first. Validated recovery: the same
// instance of the unit active, without a death and without the symptom, for 10 s in a row; the
// time reported is onset -> the start of that stable stretch, "not recovered" when it never
// comes within the contender's limit, 0 ("prevented") when the workload ran its course and the
// fault never showed. Failures: the unit's deaths while the fault lasted. Notifications: what
// would page someone: mend's escalations (its incidents and the raw events they fold are
// reported apart), monit's error events (each an alert with `set alert`), systemd: none.
//
// Output: a Markdown table on stdout; DIR/mttr.dat and DIR/mttr.png (gnuplot) when --out.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
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
  bool prevented = false;   // the fault never showed: mend acted on a forecast
  double mttr_s = 0;        // onset -> start of the stable stretch
  double degraded_s = 0;    // after onset: time with the unit down or the symptom present
  uint64_t failures = 0;    // the unit's deaths
  uint64_t pages = 0;       // notifications: mend escalations, monit error events
  uint64_t incidents = 0;   // mend only
  uint64_t raw_events = 0;  // mend only: the sensor events its incidents fold
  std::string actions;      // what the contender did
};

// What a contender needs to know of a fault. Each scenario makes its volumes, scripts and
// units in `dir`, under the manager `m`.
class Scenario {
 public:
  virtual ~Scenario() = default;
  virtual void setup(const std::string& dir, UserManager& m) = 0;
  // The unit whose deaths are counted and whose stability is the recovery.
  const std::string& unit() const { return unit_; }
  // Starts the workload and injects the fault.
  virtual void start(UserManager& m) { m.systemctl({"start", unit_}); }
  // The symptom besides the unit's death, now.
  virtual bool degraded() = 0;
  // The workload ran its course (a fault that never showed was prevented).
  virtual bool finished() { return false; }
  // The policy a site would ship for this fault, narrowed to the bench's volume and units.
  virtual std::string mend_policy(const std::string& name) const = 0;
  // Fills a 64 MiB volume from empty in well under a sample: the ENOSPC/writer probe always on.
  virtual std::vector<std::string> mend_args() const {
    return {"--fs-used-threshold", "80%", "--fs-enospc-probe", "always"};
  }
  // monit's checks (after `set daemon`); `env` exports what systemctl --user needs.
  virtual std::string monit_checks(const std::string& dir, const std::string& env) = 0;
  virtual std::string monit_action() const = 0;  // what its exec does, for the table

 protected:
  std::string unit_;
};

std::string systemctl_script(const std::string& env, const std::string& args) {
  return "#!/bin/sh\n" + env + "exec systemctl --user " + args + "\n";
}

// The symptom of the disk scenarios: the volume at 80% or more.
class VolumeScenario : public Scenario {
 public:
  bool degraded() override { return used_pct(lfs_->mnt()) >= 80; }

 protected:
  // Compress the logs to another filesystem (a full volume has no room for the copy), empty
  // them in place (the writer appends), move the archives back: logrotate's copytruncate, done
  // by hand because logrotate copies before it compresses.
  std::string write_rotate_script(const std::string& d, const std::string& log) {
    write_file(d + "/rotate.sh",
               "#!/bin/sh\nset -e\nts=$(date +%s%N)\ngzip -c < " + log + " > " + d +
                   "/rotated.$ts.gz\n: > " + log + "\nmv " + d + "/rotated.$ts.gz " + lfs_->mnt() +
                   "/ 2>/dev/null || true\n",
               0755);
    return d + "/rotate.sh";
  }
  std::unique_ptr<LoopFs> lfs_;
};

// 1: a unit's own log fills its volume.
class LogFill final : public VolumeScenario {
 public:
  void setup(const std::string& dir, UserManager& m) override {
    unit_ = unique_name("logger") + ".service";
    lfs_ = std::make_unique<LoopFs>(dir, "ext4", "64M");
    log_ = lfs_->mnt() + "/app.log";
    const std::string writer = dir + "/writer.py";
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
    m.add_unit(unit_, "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/python3 " +
                          writer + " " + log_ + " " + dir +
                          "/burst-done\nRestart=on-failure\nRestartSec=1s\n");
  }
  std::string mend_policy(const std::string& name) const override {
    std::ostringstream p;
    p << "policies:\n  - name: " << name << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs_->mnt() << "]}\n    mode: auto\n    actions:\n"
      << "      - rotate_logs: {paths: [" << lfs_->mnt()
      << "/*.log], keep: 3, min_size: 1M, logrotate_configs: \"\"}\n"
      << "      - restart_unit: {which: failed, timeout: 20s}\n"
      << "    verify: {deadline: 60s, stable_for: 3s, unit_active: false, usage_below: 80%}\n"
      // A burst can refill the volume after a verified rotation: rotating again is cheap and
      // safe, so this log volume's policy may run again after 5 s (up to 10 times an hour).
      << "    guards: {cooldown: 5s, max_runs: 10, per: 1h}\n";
    return p.str();
  }
  std::string monit_checks(const std::string& d, const std::string&) override {
    return "check filesystem applog with path " + lfs_->mnt() +
           "\n  if space usage > 80% then exec \"" + write_rotate_script(d, log_) + "\"\n";
  }
  std::string monit_action() const override { return "rotation"; }

 private:
  std::string log_;
};

// 2: a noisy unit's log fills the volume the victim keeps its state on.
class NoisyFill final : public VolumeScenario {
 public:
  void setup(const std::string& dir, UserManager& m) override {
    unit_ = unique_name("victim") + ".service";
    noisy_ = unique_name("noisy") + ".service";
    lfs_ = std::make_unique<LoopFs>(dir, "ext4", "64M");
    const std::string noisy = dir + "/noisy.py", victim = dir + "/victim.py";
    // A log storm: 70 MB in about 3 s (more than the volume holds: it stops at ENOSPC when
    // nobody frees space), then quiet with the file open.
    write_file(noisy,
               "import os, time\n"
               "fd = os.open('" +
                   lfs_->mnt() +
                   "/noisy.log', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
                   "line = b'noise ' + b'n' * 200 + b'\\n'\n"
                   "written = 0\n"
                   "try:\n"
                   "    while written < (70 << 20):\n"
                   "        written += os.write(fd, line * 256); time.sleep(0.002)\n"
                   "except OSError:\n"
                   "    pass\n"
                   "time.sleep(100000)\n",
               0644);
    // Saves 4 MB of state every second, the safe way (a new copy, fsync, rename over the old
    // one: it needs room for both); a service that cannot save its state exits.
    const std::string st = lfs_->mnt() + "/victim.state";
    write_file(victim,
               "import os, sys, time\n"
               "while True:\n"
               "    try:\n"
               "        with open('" +
                   st +
                   ".new', 'wb') as f:\n"
                   "            f.write(b's' * (4 << 20)); f.flush(); os.fsync(f.fileno())\n"
                   "        os.rename('" +
                   st + ".new', '" + st +
                   "')\n"
                   "    except OSError as e:\n"
                   "        print('cannot save state:', e); sys.exit(1)\n"
                   "    time.sleep(1)\n",
               0644);
    m.add_unit(noisy_, "[Service]\nExecStart=/usr/bin/python3 " + noisy + "\n");
    m.add_unit(unit_, "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/python3 " +
                          victim + "\nRestart=on-failure\nRestartSec=1s\n");
  }
  void start(UserManager& m) override {
    m.systemctl({"start", unit_});
    std::this_thread::sleep_for(1500ms);  // the victim has saved its state at least once
    m.systemctl({"start", noisy_});
  }
  std::string mend_policy(const std::string& name) const override {
    std::ostringstream p;
    p << "policies:\n  - name: " << name << "\n    match: {root_cause: fs_full, mounts: ["
      << lfs_->mnt() << "]}\n    mode: auto\n    actions:\n"
      << "      - rotate_logs: {paths: [" << lfs_->mnt()
      << "/*.log], keep: 2, min_size: 1M, logrotate_configs: \"\"}\n"
      << "      - restart_unit: {which: failed, timeout: 20s}\n"
      << "    verify: {deadline: 60s, stable_for: 3s, unit_active: false, usage_below: 80%}\n";
    return p.str();
  }
  std::string monit_checks(const std::string& d, const std::string& env) override {
    write_file(d + "/is-active.sh", systemctl_script(env, "is-active --quiet " + unit_), 0755);
    write_file(d + "/restart.sh", systemctl_script(env, "restart " + unit_), 0755);
    // `repeat every cycle`: a filesystem still full after a rotation is rotated again.
    return "check filesystem data with path " + lfs_->mnt() +
           "\n  if space usage > 80% then exec \"" +
           write_rotate_script(d, lfs_->mnt() + "/noisy.log") +
           "\" repeat every 1 cycles\n"
           "check program victim with path \"" +
           d + "/is-active.sh\"\n  if status != 0 then exec \"" + d + "/restart.sh\"\n";
  }
  std::string monit_action() const override { return "rotation or restart"; }

 private:
  std::string noisy_;
};

// 3: a unit's memory limit is too low for it.
class OomLoop final : public Scenario {
 public:
  void setup(const std::string&, UserManager& m) override {
    unit_ = unique_name("hog") + ".service";
    m.add_unit(unit_,
               "[Unit]\nStartLimitIntervalSec=0\n[Service]\n"
               "ExecStart=/usr/bin/python3 -c \"import time; x = b'a' * (80 << 20); "
               "time.sleep(100000)\"\nMemoryMax=50M\nMemorySwapMax=0\nRestart=on-failure\n"
               "RestartSec=1s\n");
  }
  bool degraded() override { return false; }
  std::string mend_policy(const std::string& name) const override {
    return "policies:\n  - name: " + name +
           "\n    match: {root_cause: memory_limit}\n    mode: auto\n    actions:\n"
           "      - raise_memory_limit: {step: 100%, ceiling: 400M}\n"
           "      - restart_unit: {timeout: 20s}\n"
           "    verify: {deadline: 60s, stable_for: 4s, no_new_oom: true}\n";
  }
  std::string monit_checks(const std::string& d, const std::string& env) override {
    write_file(d + "/is-active.sh", systemctl_script(env, "is-active --quiet " + unit_), 0755);
    write_file(d + "/restart.sh", systemctl_script(env, "restart " + unit_), 0755);
    return "check program app with path \"" + d + "/is-active.sh\"\n  if status != 0 then exec \"" +
           d + "/restart.sh\"\n";
  }
  std::string monit_action() const override { return "restart"; }
};

// 4: a noisy neighbour's queue on a device that cannot serve it (TESTING.md's stacked loops).
class IoStall final : public Scenario {
 public:
  void setup(const std::string& dir, UserManager& m) override {
    unit_ = unique_name("noisy") + ".service";
    lower_ = std::make_unique<LoopFs>(dir, "ext4", "256M");
    upper_ = std::make_unique<LoopFs>(lower_->mnt(), "ext4", "96M", /*direct_io=*/true);
    m.add_unit(unit_,
               "[Service]\nIOAccounting=yes\nExecStart=/usr/bin/fio --name=noisy "
               "--filename=" +
                   upper_->mnt() +
                   "/noisy.dat --size=32M --rw=randwrite --bs=64k --direct=1 "
                   "--ioengine=libaio --iodepth=16 --time_based --runtime=100000\n");
  }
  void start(UserManager& m) override {
    m.systemctl({"start", unit_});
    const std::string f =
        v1_hierarchy("blkio") + m.show(unit_, "ControlGroup") + "/blkio.throttle.write_iops_device";
    std::ofstream(f) << lower_->majmin() << " 50\n";
  }
  // Mean write latency on the upper device over the last second (its stat file: writes
  // completed, field 5; ms spent on them, field 8).
  bool degraded() override {
    std::ifstream f("/sys/block/" + upper_->name() + "/stat");
    std::vector<double> v;
    for (double x; f >> x;)
      v.push_back(x);
    if (v.size() < 8)
      return true;
    const auto now = Clock::now();
    hist_.push_back({now, v[4], v[7]});
    while (hist_.size() > 2 && now - hist_[1].t >= 1s)
      hist_.pop_front();
    const auto& a = hist_.front();
    const double n = v[4] - a.writes;
    if (now - a.t < 900ms)
      return degraded_;  // not a full second yet: the last verdict stands
    degraded_ = n > 0 ? (v[7] - a.ticks) / n >= 100 : false;
    return degraded_;
  }
  std::string mend_policy(const std::string& name) const override {
    return "policies:\n  - name: " + name +
           "\n    match: {root_cause: io_stall, min_confidence: 0.8, devices: [" +
           upper_->majmin() +
           "]}\n    mode: auto\n    actions:\n"
           "      - throttle_io: {write_bandwidth: 1M}\n"
           "    verify: {deadline: 60s, stable_for: 3s, unit_active: false, latency_below: "
           "100ms}\n";
  }
  std::vector<std::string> mend_args() const override {
    return {"--io-latency-threshold", "100ms"};
  }
  // monit measures the filesystem's service time itself; the admin knows who the noisy
  // neighbour is and caps it the way mend does.
  std::string monit_checks(const std::string& d, const std::string& env) override {
    write_file(d + "/throttle.sh",
               systemctl_script(env, "set-property --runtime " + unit_ +
                                         " \"IOWriteBandwidthMax=" + upper_->dev() + " 1M\""),
               0755);
    return "check filesystem upper with path " + upper_->mnt() +
           "\n  if service time > 100 milliseconds then exec \"" + d + "/throttle.sh\"\n";
  }
  std::string monit_action() const override { return "throttle"; }

 private:
  struct Stat {
    Clock::time_point t;
    double writes, ticks;
  };
  std::unique_ptr<LoopFs> lower_, upper_;
  std::deque<Stat> hist_;
  bool degraded_ = false;
};

// 5: a data volume that will be full in seconds, with room to grow.
class GrowEarly final : public VolumeScenario {
 public:
  void setup(const std::string& dir, UserManager& m) override {
    unit_ = unique_name("ingest") + ".service";
    lfs_ = std::make_unique<LoopFs>(dir, "xfs", "300M");
    done_ = dir + "/ingest-done";
    const std::string script = dir + "/ingest.py";
    // 8 MB/s until 400 MB are in; a write error is fatal (the restart appends where it was).
    write_file(script,
               "import os, sys, time\n"
               "fd = os.open('" +
                   lfs_->mnt() +
                   "/ingest.bin', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
                   "chunk = b'i' * (1 << 20)\n"
                   "try:\n"
                   "    while os.fstat(fd).st_size < (400 << 20):\n"
                   "        os.write(fd, chunk); os.fsync(fd); time.sleep(0.125)\n"
                   "except OSError as e:\n"
                   "    print('ingest failed:', e); sys.exit(1)\n"
                   "open('" +
                   done_ + "', 'w').close()\ntime.sleep(100000)\n",
               0644);
    m.add_unit(unit_, "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/python3 " +
                          script + "\nRestart=on-failure\nRestartSec=1s\n");
  }
  bool finished() override { return fs::exists(done_); }
  // Grow ahead of time-to-full (the shipped data-volume policy), and once full if the
  // forecast came too late.
  std::string mend_policy(const std::string& name) const override {
    std::string p = "policies:\n";
    for (const char* kind : {"fs_filling", "fs_full"})
      p += "  - name: " + name + "-" + kind + "\n    match: {root_cause: " + kind + ", mounts: [" +
           lfs_->mnt() +
           "], min_confidence: 0.6}\n    mode: auto\n    allow_irreversible: true\n"
           "    actions:\n"
           "      - grow_volume: {step: 600M, max_size: 1G, reserve: 1G}\n"
           "      - restart_unit: {which: failed, timeout: 20s}\n"
           "    verify: {deadline: 60s, stable_for: 3s, unit_active: false, usage_below: 80%}\n";
    return p;
  }
  std::string monit_checks(const std::string& d, const std::string&) override {
    write_file(d + "/grow.sh",
               "#!/bin/sh\nset -e\ntruncate -s +600M " + lfs_->image() + "\nlosetup -c " +
                   lfs_->dev() + "\nxfs_growfs " + lfs_->mnt() + " >/dev/null\n",
               0755);
    return "check filesystem data with path " + lfs_->mnt() +
           "\n  if space usage > 80% then exec \"" + d + "/grow.sh\"\n";
  }
  std::string monit_action() const override { return "growth"; }

 private:
  std::string done_;
};

std::unique_ptr<Scenario> make_scenario(const std::string& name) {
  if (name == "log-fill")
    return std::make_unique<LogFill>();
  if (name == "noisy-fill")
    return std::make_unique<NoisyFill>();
  if (name == "oom-loop")
    return std::make_unique<OomLoop>();
  if (name == "io-stall")
    return std::make_unique<IoStall>();
  if (name == "grow-early")
    return std::make_unique<GrowEarly>();
  throw std::runtime_error("unknown scenario " + name +
                           " (log-fill, noisy-fill, oom-loop, io-stall, grow-early)");
}

// One scenario's fault under one contender.
class Run {
 public:
  Run(const std::string& scenario, const std::string& contender)
      : s_(make_scenario(scenario)), contender_(contender), policy_(unique_name("bench")) {}

  Outcome go(std::chrono::seconds limit) {
    m_ = std::make_unique<UserManager>();
    s_->setup(dir_.path(), *m_);
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
    mend_.reset();
    m_.reset();  // its units stop before the scenario's volumes go
    s_.reset();
  }

 private:
  void start_mend() {
    const std::string policies = dir_.path() + "/policies.d";
    fs::create_directories(policies);
    write_file(policies + "/bench.yaml", s_->mend_policy(policy_), 0644);
    std::vector<std::string> args = {"--bus",  "user",        "--policies",
                                     policies, "--state-dir", dir_.path() + "/state"};
    for (const auto& a : s_->mend_args())
      args.push_back(a);
    mend_ = std::make_unique<TraceRunner>(args, false);
    if (!mend_->wait_ready())
      throw std::runtime_error("mendd did not start: " + mend_->err());
  }

  // The monitrc a competent admin would write: check the symptom every cycle, run the fix on
  // failure. systemctl --user needs the manager's runtime directory: the scripts carry it.
  void start_monit(int cycle) {
    const std::string d = dir_.path();
    const std::string env =
        std::string("export XDG_RUNTIME_DIR=") + getenv("XDG_RUNTIME_DIR") +
        " DBUS_SESSION_BUS_ADDRESS=" +
        (getenv("DBUS_SESSION_BUS_ADDRESS") ? getenv("DBUS_SESSION_BUS_ADDRESS") : "") + "\n";
    std::ostringstream rc;
    rc << "set daemon " << cycle << "\nset logfile " << d << "/monit.log\nset idfile " << d
       << "/monit.id\nset statefile " << d << "/monit.state\nset pidfile " << d << "/monit.pid\n"
       << s_->monit_checks(d, env);
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
    auto r = m_->systemctl({"show", s_->unit(), "-p", "ActiveState", "-p",
                            "ExecMainStartTimestampMonotonic", "-p",
                            "ExecMainExitTimestampMonotonic", "-p", "NRestarts"});
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
    s_->start(*m_);
    const auto t_start = Clock::now();
    Clock::time_point onset{}, stable_from{};
    bool has_onset = false, has_stable = false, told_onset = false;
    std::set<uint64_t> deaths;
    uint64_t stable_start_us = 0;
    auto last = Clock::now();
    while (Clock::now() - t_start < limit + 30s) {
      const Sample x = sample();
      const auto now = Clock::now();
      const auto since_last = now - last;
      last = now;
      if (x.exit_us != 0)
        deaths.insert(x.exit_us);
      if (!has_onset && !deaths.empty()) {
        onset = Clock::time_point(std::chrono::microseconds(*deaths.begin()));
        has_onset = true;
      }
      // The symptom every contender watches: acting on it can spare the failure.
      const bool degraded = s_->degraded();
      if (!has_onset && degraded) {
        onset = now;
        has_onset = true;
      }
      if (has_onset && !told_onset) {
        told_onset = true;
        std::fprintf(stderr, "  onset %.1f s after the start (%s)\n", secs(onset - t_start),
                     deaths.empty() ? "symptom" : "death");
      }
      const bool healthy = x.state == "active" && !degraded && x.exit_us == 0;
      if (!has_onset && healthy && s_->finished()) {
        o.recovered = o.prevented = true;  // ran its course; the fault never showed
        break;
      }
      if (has_onset) {
        if (!healthy)
          o.degraded_s += secs(std::min<Clock::duration>(since_last, now - onset));
        if (!healthy || (has_stable && x.start_us != stable_start_us)) {
          has_stable = false;
        } else if (!has_stable) {
          // The stretch starts when this instance started (or now, for a unit that never died
          // but whose symptom went away).
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
        for (const auto& p : policy_names())
          for (const auto& r : policy_records(p, id))
            incidents.insert(r.value("MEND_INCIDENT_ID", ""));
      o.incidents = incidents.size();
      // The raw events folded into those incidents, as mendd counts them.
      auto list = nlohmann::json::parse(
          run({MENDCTL_PATH, "--socket", mend_->socket(), "incidents", "-o", "json"}).out, nullptr,
          false);
      if (list.is_array())
        for (const auto& i : list)
          if (incidents.count(i.value("id", "")))
            o.raw_events += i.value("raw_events", 0);
      std::map<std::string, int> applied;
      for (const auto& p : policy_names()) {
        o.pages += policy_records(p, "5fb1f1d3f46548ae889377939428dfb2").size();
        for (const auto& r : policy_records(p, "666e06a737c04222b04538ba13cb14b8"))
          if (r.value("MEND_RESULT", "") == "applied")
            ++applied[r.value("MEND_ACTION", "?")];
      }
      for (const auto& [a, n] : applied)
        o.actions += (o.actions.empty() ? "" : ", ") + a + (n > 1 ? " x" + std::to_string(n) : "");
      mend_->stop();
      if (getenv("MEND_BENCH_VERBOSE"))
        std::fprintf(stderr, "%s\n", mend_->err().c_str());
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
      o.actions =
          std::to_string(execs) + " " + s_->monit_action() + (execs == 1 ? "" : "s") + " (exec)";
    }
    if (contender_ != "mend" && contender_.rfind("monit", 0) != 0)
      o.actions = std::to_string(sample().restarts) + " restarts (Restart=)";
    else if (o.actions.empty())
      o.actions = "none";
  }

  // The bench's policies: one name, or several with it as prefix (grow-early).
  std::vector<std::string> policy_names() const {
    std::vector<std::string> out;
    std::istringstream in(s_->mend_policy(policy_));
    for (std::string line; std::getline(in, line);)
      if (auto p = line.find("- name: "); p != std::string::npos)
        out.push_back(line.substr(p + 8));
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Scenario> s_;
  std::string contender_, policy_;
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

// DIR/mttr.dat: the median per scenario and contender ("-": not recovered, "P": prevented),
// merged with what an earlier run wrote there (the slow contenders run apart); then the plot.
void plot(const std::string& out,
          std::map<std::string, std::map<std::string, std::string>> medians) {
  const std::vector<std::string> scenarios = {"log-fill", "noisy-fill", "oom-loop", "io-stall",
                                              "grow-early"};
  const std::vector<std::string> contenders = {"mend", "monit-1s", "monit-120s", "systemd"};
  fs::create_directories(out);
  {
    std::ifstream old(out + "/mttr.dat");
    std::string line;
    std::vector<std::string> header;
    if (std::getline(old, line)) {
      std::istringstream h(line);
      for (std::string w; h >> w;)
        header.push_back(w);
    }
    while (std::getline(old, line)) {
      std::istringstream r(line);
      std::string sc, v;
      r >> sc;
      for (size_t i = 1; i < header.size() && r >> v; ++i)
        medians[sc].try_emplace(header[i], v);  // this run's numbers win
    }
  }
  std::ofstream dat(out + "/mttr.dat"), bars(out + "/mttr.bars");
  dat << "scenario";
  bars << "scenario";
  for (const auto& c : contenders) {
    dat << " " << c;
    bars << " " << c;
  }
  dat << "\n";
  bars << "\n";
  std::string labels;
  for (size_t i = 0; i < scenarios.size(); ++i) {
    dat << scenarios[i];
    bars << scenarios[i];
    for (size_t j = 0; j < contenders.size(); ++j) {
      auto it = medians[scenarios[i]].find(contenders[j]);
      const std::string v = it == medians[scenarios[i]].end() ? "?" : it->second;
      dat << " " << v;
      const bool number = v != "-" && v != "P" && v != "?";
      bars << " " << (number ? v : "-");
      if (!number && v != "?") {
        // Clustered histogram: bar j of cluster i sits at i + (j - (n-1)/2) / (n + gap).
        const double x =
            static_cast<double>(i) + (static_cast<double>(j) - (contenders.size() - 1) / 2.0) /
                                         (static_cast<double>(contenders.size()) + 1);
        labels += "set label '" + std::string(v == "P" ? "prevented" : "not recovered") + "' at " +
                  std::to_string(x) + ",0.35 rotate by 90 font ',8'\n";
      }
    }
    dat << "\n";
    bars << "\n";
  }
  dat.close();
  bars.close();
  std::ofstream gp(out + "/mttr.gp");
  gp << "set terminal pngcairo size 1000,460 font 'sans,10'\nset output '" << out
     << "/mttr.png'\n"
        "set title 'Fault onset to validated recovery, median of the runs (bars: mend, monit 1 s, "
        "monit 120 s, systemd Restart= alone)'\n"
        "set datafile missing '-'\nset style data histograms\n"
        "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
        "set logscale y\nset yrange [0.3:300]\nset ylabel 'seconds (log scale)'\n"
        "set key top left\nset grid ytics\n"
     << labels << "plot '" << out << "/mttr.bars' using 2:xtic(1) title columnheader";
  for (size_t i = 1; i < contenders.size(); ++i)
    gp << ", '' using " << i + 2 << " title columnheader";
  gp << "\n";
  gp.close();
  auto g = run({"gnuplot", out + "/mttr.gp"});
  if (g.status != 0)
    std::fprintf(stderr, "gnuplot: %s\n", g.err.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  std::vector<std::string> scenarios = {"log-fill", "noisy-fill", "oom-loop", "io-stall",
                                        "grow-early"};
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
        std::fprintf(stderr,
                     "%s %s run %d: %s %.1f s (degraded %.1f s), %llu failures, %llu pages, %s\n",
                     s.c_str(), c.c_str(), r + 1,
                     o.prevented   ? "prevented"
                     : o.recovered ? "recovered"
                                   : "NOT recovered",
                     o.mttr_s, o.degraded_s, static_cast<unsigned long long>(o.failures),
                     static_cast<unsigned long long>(o.pages), o.actions.c_str());
        row.runs.push_back(o);
      }
      rows.push_back(row);
    }

  std::printf(
      "| scenario | contender | recovered | MTTR median (min-max) | time degraded, median | "
      "unit failures | notifications | actions |\n|---|---|---|---|---|---|---|---|\n");
  // scenario -> contender -> median (or "-": not recovered), for the plot.
  std::map<std::string, std::map<std::string, std::string>> medians;
  for (const auto& row : rows) {
    std::vector<double> t, degraded;
    uint64_t fail = 0, pages = 0, inc = 0, raw = 0;
    size_t prevented = 0;
    for (const auto& o : row.runs) {
      if (o.recovered)
        t.push_back(o.mttr_s);
      prevented += o.prevented;
      degraded.push_back(o.degraded_s);
      fail += o.failures;
      pages += o.pages;
      inc += o.incidents;
      raw += o.raw_events;
    }
    std::sort(t.begin(), t.end());
    const size_t n = row.runs.size();
    char mttr[96] = "not recovered";
    if (prevented == n)
      std::snprintf(mttr, sizeof mttr, "0 s: prevented (the fault never showed)");
    else if (!t.empty())
      std::snprintf(mttr, sizeof mttr, "%.1f s (%.1f-%.1f)%s", t[t.size() / 2], t.front(), t.back(),
                    prevented ? ", some prevented" : "");
    std::string notes;
    if (row.contender == "mend")
      notes = std::to_string(pages) + " escalations; " + std::to_string(raw) + " raw events -> " +
              std::to_string(inc) + " incidents";
    else if (row.contender.rfind("monit", 0) == 0)
      notes = std::to_string(pages) + " error events";
    else
      notes = "none (nobody is told)";
    std::sort(degraded.begin(), degraded.end());
    std::printf("| %s | %s | %zu/%zu | %s | %.1f s | %llu | %s | %s |\n", row.scenario.c_str(),
                row.contender.c_str(), t.size(), n, mttr, degraded[degraded.size() / 2],
                static_cast<unsigned long long>(fail), notes.c_str(),
                row.runs.back().actions.c_str());
    medians[row.scenario][row.contender] = prevented == n ? "P"
                                           : t.empty()    ? "-"
                                                          : std::to_string(t[t.size() / 2]);
  }
  if (!out.empty())
    plot(out, medians);
  return 0;
}
