// mendd never dies, never stalls, never stops acting (issue 14), with the whole pipeline
// running on a real systemd user manager and journald, and real faults.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "scenario.h"
#include "soak.h"

using namespace mend::test;
namespace fs = std::filesystem;

namespace {

// A python that names itself with bytes that are not UTF-8 (prctl PR_SET_NAME), then runs
// `body`.
std::vector<std::string> python_named_badly(const std::string& body) {
  return {"/usr/bin/python3", "-c",
          "import ctypes, os\n"
          "ctypes.CDLL(None).prctl(15, b'\\xff\\xfebad', 0, 0, 0)\n" +
              body};
}

pid_t mendd_pid(const OomScenario& s) {
  auto st = s.mendctl({"status", "-o", "json"});
  auto j = nlohmann::json::parse(st.out, nullptr, false);
  return j.is_discarded() ? -1 : j["pid"].get<pid_t>();
}

}  // namespace

TEST(NeverDies, ProcessNamedWithInvalidUtf8HitsEnospcAndIsOomKilled) {
  MEND_REQUIRE_ROOT();
  const std::string memory = v1_hierarchy("memory");
  if (memory.empty())
    GTEST_SKIP() << "no v1 memory hierarchy on this host";
  OomScenario s("200M", "40s");
  LoopFs lfs(s.dir.path(), "ext4", "16M");
  run({"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/fill", "bs=1M", "count=64"});  // full
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  // Before: the correlator's sort key dump() threw type_error.316 and mendd aborted.
  auto w =
      run(python_named_badly("for i in range(20):\n"
                             "    try:\n"
                             "        fd = os.open('" +
                             lfs.mnt() +
                             "/x' + str(i), os.O_WRONLY | os.O_CREAT)\n"
                             "        os.write(fd, b'x' * 65536)\n"
                             "    except OSError:\n"
                             "        pass\n"));
  EXPECT_EQ(w.status, 0) << w.err;
  Cgroup cg(memory, unique_name("mend-badname"));
  cg.write("memory.limit_in_bytes", "50M");
  pid_t hog = spawn_in({cg.dir()}, python_named_badly("x = b'\\x01' * (200 << 20)\n"));
  EXPECT_EQ(wait_exit(hog), 128 + SIGKILL);
  // Both reach incidents, the name escaped, and mendd keeps answering.
  std::string seen;
  ASSERT_TRUE(wait_until(
      [&] {
        auto list =
            nlohmann::json::parse(s.mendctl({"incidents", "-o", "json"}).out, nullptr, false);
        if (list.is_discarded())
          return false;
        seen.clear();
        for (const auto& i : list)
          seen += s.mendctl({"explain", i["id"].get<std::string>(), "-o", "json"}).out;
        return seen.find(R"("comm": "\\xff\\xfebad")") != std::string::npos &&
               seen.find("\"oom_kill\"") != std::string::npos &&
               seen.find("\"fs_enospc\"") != std::string::npos;
      },
      30s))
      << seen.substr(0, 4000) << agent.err();
  // Text output: escaped too, never the raw bytes on the terminal.
  auto list = nlohmann::json::parse(s.mendctl({"incidents", "-o", "json"}).out);
  for (const auto& i : list) {
    auto text = s.mendctl({"explain", i["id"].get<std::string>()});
    EXPECT_EQ(text.out.find("\xff"), std::string::npos);
  }
  EXPECT_EQ(s.mendctl({"status"}).status, 0);
  EXPECT_EQ(agent.stop(), 0) << agent.err();
}

// A client that connects and never speaks held the event loop for 1 s per connection.
TEST(NeverDies, SilentControlClientsDoNotDelayOthers) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  std::vector<int> silent;
  for (int i = 0; i < 5; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, s.socket().c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    silent.push_back(fd);
  }
  // Five silent clients, each with 1 s before mendd answers it: mendctl is answered anyway,
  // before any of them has been dropped (each would first get its "no request" answer).
  auto st = s.mendctl({"status", "-o", "json"});
  ASSERT_EQ(st.status, 0) << st.err;
  char c;
  for (int fd : silent) {
    EXPECT_EQ(recv(fd, &c, 1, MSG_DONTWAIT), -1);  // nothing yet: still within its deadline
    EXPECT_EQ(errno, EAGAIN);
  }
  for (int fd : silent) {
    std::string late;
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
      late.append(buf, static_cast<size_t>(n));
    EXPECT_NE(late.find("bad_request"), std::string::npos) << late;
    close(fd);
  }
  EXPECT_EQ(agent.stop(), 0) << agent.err();
}

// With one plan at a time (the default), the second of two OOM-looping units was escalated
// ("node budget: 1 plan(s) already running") and left looping. Now it waits for the slot.
TEST(NeverDies, TwoUnitsOomLoopingAtOnceAreBothHealedOneAfterTheOther) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  const std::string second = unique_name("hog2") + ".service";
  s.add_oom_unit(second);
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit, second}).status, 0);
  ASSERT_TRUE(wait_until(
      [&] { return !records(s.unit, kVerified).empty() && !records(second, kVerified).empty(); },
      120s))
      << agent.err();
  EXPECT_TRUE(records(s.unit, kEscalated).empty());
  EXPECT_TRUE(records(second, kEscalated).empty());
  EXPECT_EQ(s.memory_max(), 100u << 20);
  EXPECT_EQ(std::stoull(s.m.show(second, "MemoryMax")), 100u << 20);
  // One after the other: one of them waited for the slot, and its first step began only after
  // the other was verified.
  auto mono = [](const nlohmann::json& r) {
    return std::stoull(r["__MONOTONIC_TIMESTAMP"].get<std::string>());
  };
  const bool first_won = mono(records(s.unit, kVerified)[0]) < mono(records(second, kVerified)[0]);
  const std::string earlier = first_won ? s.unit : second;
  const std::string later = first_won ? second : s.unit;
  auto waited = journal({"OBJECT_SYSTEMD_UNIT=" + later, "MEND_RESULT=queued"});
  EXPECT_FALSE(waited.empty());
  auto began = journal({"OBJECT_SYSTEMD_UNIT=" + later, "MEND_RESULT=started"});
  ASSERT_FALSE(began.empty());
  EXPECT_GT(mono(began[0]), mono(records(earlier, kVerified)[0]));
  EXPECT_EQ(agent.stop(), 0) << agent.err();
}

// Closed incidents were never freed. 5,000 distinct unit failures pass through the live
// pipeline; after their quiet period mendd's memory is back near where it started, and a plan
// still runs.
TEST(NeverDies, FiveThousandIncidentsLeaveMemoryAtItsBaselineAndAPlanStillRuns) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  const std::string tmpl = unique_name("flap");
  // Collected once failed, so the manager does not keep 5,000 failed units either.
  s.m.add_unit(tmpl + "@.service",
               "[Unit]\nCollectMode=inactive-or-failed\n[Service]\nExecStart=/bin/false\n");
  const std::string config = s.dir.path() + "/mend.yaml";
  std::ofstream(config) << "correlation: {quiet: 3s}\n";
  chmod(config.c_str(), 0644);
  TraceRunner agent(s.args({"--config", config}), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  const pid_t pid = mendd_pid(s);
  ASSERT_GT(pid, 0);
  std::this_thread::sleep_for(2s);
  const long baseline = proc_rss_kb(pid);
  long peak = baseline;
  constexpr int kUnits = 5000, kBatch = 250;
  for (int b = 0; b < kUnits / kBatch; ++b) {
    std::vector<std::string> argv = {"start", "--no-block"};
    for (int i = 0; i < kBatch; ++i)
      argv.push_back(tmpl + "@" + std::to_string(b * kBatch + i) + ".service");
    ASSERT_EQ(s.m.systemctl(argv).status, 0);
    peak = std::max(peak, proc_rss_kb(pid));
  }
  uint64_t opened = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        peak = std::max(peak, proc_rss_kb(pid));
        auto j = nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out, nullptr, false);
        if (j.is_discarded())
          return false;
        opened = j["incidents"]["opened"].get<uint64_t>();
        return opened >= kUnits && j["incidents"]["open"].get<uint64_t>() == 0;
      },
      240s))
      << "opened " << opened << "\n"
      << agent.err().substr(0, 2000);
  std::this_thread::sleep_for(2s);
  const long after = proc_rss_kb(pid);
  std::cout << "mendd RSS: baseline " << baseline << " kB, peak " << peak << " kB, after " << after
            << " kB, " << opened << " incidents\n";
  auto status = nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out);
  EXPECT_LE(status["incidents"]["total"].get<uint64_t>(), 256u);  // the closed ones kept
  EXPECT_GE(status["incidents"]["forgotten"].get<uint64_t>(), kUnits - 256u);
#ifndef __SANITIZE_ADDRESS__  // under ASan mendd's RSS is mostly shadow memory and quarantine
  // Back near the baseline: what 5,000 incidents cost is given back. What stays is bounded
  // (256 closed incidents, 256 unloaded failed units, the probe's per-unit times) plus
  // allocator slack; measured here: +12 MB, under the 32 MB steady goal of the issue.
  EXPECT_LE(after, baseline + 16 * 1024) << "peak " << peak;
  EXPECT_LE(after, 32 * 1024) << "peak " << peak;
#endif
  // And the pipeline still acts.
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kVerified).empty(); }, 90s))
      << agent.err().substr(0, 2000);
  EXPECT_EQ(agent.stop(), 0);
}

// A step that never returns (here an exec that sleeps) wedged the executor and its only slot.
TEST(NeverDies, StepThatNeverReturnsIsRolledBackAtItsDeadlineAndTheNextPlanRuns) {
  MEND_REQUIRE_ROOT();
  OomScenario s("200M", "40s");
  const std::string stuck = unique_name("stuck") + ".service";
  s.add_oom_unit(stuck);
  // A sleep no other process has: removed by its exact argument whatever happens.
  const std::string forever = "1799." + std::to_string(getpid());
  on_cleanup([forever] { run({"pkill", "-KILL", "-f", "^/usr/bin/sleep " + forever}); });
  s.write_policy(
      "policies:\n"
      "  - name: wedge\n    match: {root_cause: memory_limit, units: [" +
      stuck +
      "]}\n    mode: auto\n    actions:\n"
      "      - exec: {command: [/usr/bin/sleep, \"" +
      forever +
      "\"], rollback_command: [/usr/bin/true], timeout: 30m, step_deadline: 3s}\n"
      "    verify: {deadline: 30s, stable_for: 2s}\n"
      "  - name: mem-raise\n    match: {root_cause: memory_limit}\n"
      "    mode: auto\n    actions:\n"
      "      - raise_memory_limit: {step: 100%, ceiling: 200M}\n"
      "      - restart_unit: {timeout: 20s}\n"
      "    verify: {deadline: 40s, stable_for: 4s, no_new_oom: true}\n");
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", stuck}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(stuck, kEscalated).empty(); }, 60s))
      << agent.err().substr(0, 2000);
  auto esc = records(stuck, kEscalated);
  EXPECT_NE(esc[0]["MEND_REASON"].get<std::string>().find("deadline of 3 s"), std::string::npos)
      << esc[0]["MEND_REASON"];
  // The slot is free: the next fault is healed while the abandoned step still sleeps.
  ASSERT_EQ(s.m.systemctl({"stop", stuck}).status, 0);
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kVerified).empty(); }, 90s))
      << agent.err().substr(0, 2000);
  EXPECT_EQ(run({"pgrep", "-f", "^/usr/bin/sleep " + forever}).status, 0);  // still asleep
  auto st = nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out);
  EXPECT_EQ(st["executor"]["step_deadlines"], 1);
  EXPECT_EQ(st["executor"]["abandoned_steps"], 1);
  run({"pkill", "-KILL", "-f", "^/usr/bin/sleep " + forever});
  // The step returns (killed): it is undone and its run ends in the journal.
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = nlohmann::json::parse(s.mendctl({"status", "-o", "json"}).out, nullptr, false);
        return !j.is_discarded() && j["executor"]["abandoned_steps"] == 0;
      },
      20s));
  EXPECT_EQ(agent.stop(), 0);
}

// The soak benchmark's 60-second version: bounds on memory and liveness, not on time.
TEST(NeverDies, SixtySecondsOfStormsLeaveMenddBoundedAliveAndActing) {
  MEND_REQUIRE_ROOT();
  SoakOptions o;
  o.seconds = 60;
  o.crash_units = 200;
  SoakResult r = run_soak(o);
  print_soak(r, std::cout);
  EXPECT_TRUE(r.alive);
  EXPECT_TRUE(r.healed_after);
  EXPECT_GT(r.enospc_failures, 100000u);  // the storm happened
  EXPECT_GT(r.incidents, 100u);           // and reached the pipeline
  EXPECT_GT(r.rss_start_kb, 0);
#ifndef __SANITIZE_ADDRESS__  // under ASan mendd's RSS is mostly shadow memory and quarantine
  EXPECT_LE(r.rss_peak_kb, 96 * 1024);  // MemoryMax of the unit is 256M; far from it
  EXPECT_LE(r.rss_end_kb, 48 * 1024);   // given back once the storm's incidents are gone
#endif
}
