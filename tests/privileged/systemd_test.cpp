// The systemd stage against a real systemd user manager and a real journald.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "fixtures.h"
#include "host/clock.h"
#include "mend/incident.h"
#include "remedy/action.h"
#include "sinks/journal.h"
#include "systemd/systemd_bus.h"
#include "systemd_fixture.h"
#include "trace_runner.h"

using namespace mend;
using namespace mend::test;
using namespace std::chrono_literals;

namespace {

const UnitState* unit_event(const Event& e, const std::string& unit) {
  auto* s = std::get_if<UnitState>(&e.payload);
  return s && s->unit == unit ? s : nullptr;
}

constexpr uint64_t kSecond = 1000000000ull;

// The newest journal record matching `args` (journalctl match arguments) and `pred`, waiting up
// to 5 s for journald to have written it; null when none came.
nlohmann::json journal_find(const std::vector<std::string>& args,
                            const std::function<bool(const nlohmann::json&)>& pred) {
  for (int i = 0; i < 50; ++i) {
    std::vector<std::string> argv = {"journalctl", "-o", "json", "--no-pager"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::istringstream in(run(argv).out);
    nlohmann::json found;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && pred(j))
        found = j;
    }
    if (!found.is_null())
      return found;
    std::this_thread::sleep_for(100ms);
  }
  return nullptr;
}

}  // namespace

TEST(SystemdUnits, CrashLoopTransitionsRestartsAndStartLimit) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  m.add_unit("crash.service",
             "[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=4\n"
             "[Service]\nExecStart=/bin/sleep 1000\nRestart=on-failure\nRestartSec=200ms\n");
  TraceRunner t({"--sensors", "units", "--bus", "user"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  ASSERT_EQ(m.systemctl({"start", "crash.service"}).status, 0);
  ASSERT_TRUE(t.wait_for(
      [](const Event& e) {
        auto* s = unit_event(e, "crash.service");
        return s && s->active_state == "active";
      },
      5s));

  for (uint32_t i = 1; i <= 4; ++i) {
    std::string pid = m.show("crash.service", "MainPID");
    ASSERT_NE(pid, "0");
    kill(std::stoi(pid), SIGKILL);
    if (i < 4) {
      auto e = t.wait_for(
          [&](const Event& ev) {
            auto* s = unit_event(ev, "crash.service");
            return s && s->active_state == "active" && s->n_restarts == i;
          },
          5s);
      ASSERT_TRUE(e) << "restart " << i << "\n" << t.err();
    }
  }
  auto limit = t.wait_for(
      [](const Event& e) {
        auto* s = unit_event(e, "crash.service");
        return s && s->pattern == "start_limit_hit";
      },
      5s);
  if (!limit)
    for (const auto& e : t.events())
      if (auto* s = unit_event(e, "crash.service"))
        ADD_FAILURE() << s->prev_active_state << " -> " << s->active_state << "/" << s->sub_state
                      << " result=" << s->result << " n=" << s->n_restarts
                      << " pattern=" << s->pattern;
  ASSERT_TRUE(limit) << t.err();
  EXPECT_EQ(std::get<UnitState>(limit->payload).active_state, "failed");
  // systemd keeps the crash's Result when an automatic restart is refused.
  EXPECT_EQ(std::get<UnitState>(limit->payload).result, "signal");
  EXPECT_EQ(m.show("crash.service", "ActiveState"), "failed");

  // The sequence, in order: each crash goes through auto-restart with Result=signal, the
  // restart count only grows, and the loop was named before the start limit hit.
  std::vector<UnitState> seq;
  for (const auto& e : t.events())
    if (auto* s = unit_event(e, "crash.service"))
      seq.push_back(*s);
  uint32_t last = 0;
  int auto_restarts = 0;
  bool loop_before_limit = false;
  for (const auto& s : seq) {
    EXPECT_GE(s.n_restarts, last);
    last = s.n_restarts;
    // (systemd resets Result to success when the restart job starts, still in auto-restart.)
    if (s.sub_state == "auto-restart" && s.result == "signal")
      ++auto_restarts;
    if (s.pattern == "restart_loop")
      loop_before_limit = true;
    if (s.pattern == "start_limit_hit")
      break;
  }
  EXPECT_GE(auto_restarts, 3);
  EXPECT_TRUE(loop_before_limit);
  EXPECT_EQ(t.stop(), 0);
}

TEST(SystemdUnits, OomKilledUnitIsNamedAndItsFailureLinked) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  m.add_unit("hog.service",
             "[Service]\nExecStart=/usr/bin/python3 -c \"x = b'a' * (300 << 20)\"\n"
             "MemoryMax=50M\nMemorySwapMax=0\n");
  TraceRunner t({"--sensors", "oom,units", "--bus", "user"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  m.systemctl({"start", "hog.service"});
  auto oom = t.wait_for(
      [](const Event& e) {
        auto* k = std::get_if<OomKill>(&e.payload);
        return k && k->unit == "hog.service";
      },
      10s);
  ASSERT_TRUE(oom) << t.err();
  const auto& k = std::get<OomKill>(oom->payload);
  EXPECT_EQ(k.comm, "python3");
  EXPECT_EQ(k.constraint, "memcg");
  EXPECT_NE(k.dfl_cgroup.find("/hog.service"), std::string::npos) << k.dfl_cgroup;
  auto failed = t.wait_for(
      [](const Event& e) {
        auto* s = unit_event(e, "hog.service");
        return s && s->pattern == "oom_killed";
      },
      10s);
  ASSERT_TRUE(failed) << t.err();
  EXPECT_EQ(std::get<UnitState>(failed->payload).oom_pid, k.pid);
  EXPECT_EQ(std::get<UnitState>(failed->payload).active_state, "failed");
  EXPECT_EQ(t.stop(), 0);
}

TEST(SystemdOps, RestartJobsPropertiesAndErrors) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  m.add_unit("ok.service", "[Service]\nExecStart=/bin/sleep 1000\n");
  m.add_unit("slow.service", "[Service]\nType=oneshot\nExecStart=/bin/sleep 3\n");
  UnitTracker tracker;
  SystemdBus bus(BusScope::User, tracker);
  std::vector<Event> out;
  ASSERT_TRUE(bus.connect(0, out).ok());
  EXPECT_FALSE(bus.manager_cgroup().empty());

  auto r = bus.start("ok.service", 5 * kSecond);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "done");
  std::string pid1 = m.show("ok.service", "MainPID");
  r = bus.restart("ok.service", 5 * kSecond);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "done");
  EXPECT_NE(m.show("ok.service", "MainPID"), pid1);
  EXPECT_EQ(m.show("ok.service", "ActiveState"), "active");

  r = bus.restart("missing.service", 5 * kSecond);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing.service"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("not found"), std::string::npos) << r.error().message;

  // A job that outlives its deadline is an error, not a hang.
  auto t0 = std::chrono::steady_clock::now();
  r = bus.start("slow.service", kSecond / 5);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.ok() ? 0 : r.error().code, ETIMEDOUT);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);

  // Runtime MemoryMax, then back to exactly what it was.
  auto before = bus.get_property("ok.service", "MemoryMax");
  ASSERT_TRUE(before.ok()) << before.error().message;
  ASSERT_TRUE(bus.set_property("ok.service", "MemoryMax", uint64_t{100} << 20).ok());
  auto during = bus.get_property("ok.service", "MemoryMax");
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(std::get<uint64_t>(*during), uint64_t{100} << 20);
  EXPECT_EQ(m.show("ok.service", "MemoryMax"), std::to_string(uint64_t{100} << 20));
  ASSERT_TRUE(bus.set_property("ok.service", "MemoryMax", *before).ok());
  auto after = bus.get_property("ok.service", "MemoryMax");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(std::get<uint64_t>(*after), std::get<uint64_t>(*before));

  // Per-device I/O limits round-trip too (empty list = none).
  auto io_before = bus.get_property("ok.service", "IOWriteBandwidthMax");
  ASSERT_TRUE(io_before.ok()) << io_before.error().message;
  ASSERT_TRUE(
      bus.set_property("ok.service", "IOWriteBandwidthMax", DeviceLimits{{"/dev/loop0", 1048576}})
          .ok());
  auto io_during = bus.get_property("ok.service", "IOWriteBandwidthMax");
  ASSERT_TRUE(io_during.ok());
  ASSERT_EQ(std::get<DeviceLimits>(*io_during).size(), 1u);
  // Setting a list sets exactly that list, and restoring one removes what was added since
  // (systemd itself would merge a non-empty list into the present one).
  const DeviceLimits both = {{"/dev/loop0", 1048576}, {"/dev/loop1", 2097152}};
  ASSERT_TRUE(bus.set_property("ok.service", "IOWriteBandwidthMax", both).ok());
  auto io_both = bus.get_property("ok.service", "IOWriteBandwidthMax");
  ASSERT_TRUE(io_both.ok());
  EXPECT_EQ(std::get<DeviceLimits>(*io_both), both);
  ASSERT_TRUE(bus.set_property("ok.service", "IOWriteBandwidthMax", *io_during).ok());
  EXPECT_EQ(std::get<DeviceLimits>(*bus.get_property("ok.service", "IOWriteBandwidthMax")),
            std::get<DeviceLimits>(*io_during));
  ASSERT_TRUE(bus.set_property("ok.service", "IOWriteBandwidthMax", *io_before).ok());
  EXPECT_EQ(std::get<DeviceLimits>(*bus.get_property("ok.service", "IOWriteBandwidthMax")),
            std::get<DeviceLimits>(*io_before));

  EXPECT_FALSE(bus.set_property("missing.service", "MemoryMax", uint64_t{1} << 30).ok());
  // reset-failed on a loaded unit that is not failed is allowed and changes nothing.
  EXPECT_TRUE(bus.reset_failed("ok.service").ok());
  EXPECT_EQ(m.show("ok.service", "ActiveState"), "active");
  r = bus.stop("ok.service", 5 * kSecond);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "done");
}

// The operating connection sees every job's end (it is subscribed) and keeps the last 256
// results nobody waited for. They were dropped in the map's order, which is the order of the
// paths' digits: once the manager's job numbers grew a digit ("/job/1000" sorts before
// "/job/999"), every new result was the first dropped, the awaited one too, and a restart that
// took a second "did not finish" (the 5- and 10-minute soaks).
TEST(SystemdOps, JobsAreFollowedWhenTheManagersJobNumbersGrowADigit) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  m.add_unit("t@.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n");
  m.add_unit("ok.service", "[Service]\nExecStart=/bin/sleep 1000\n");
  UnitTracker tracker;
  SystemdBus bus(BusScope::User, tracker, SystemdBus::Role::Operate);
  std::vector<Event> out;
  ASSERT_TRUE(bus.connect(0, out).ok());
  // Other clients' jobs until the numbers pass 1000, their ends read as the event loop does.
  for (int batch = 0; batch < 12; ++batch) {
    std::vector<std::string> argv = {"start"};
    for (int i = 0; i < 100; ++i)
      argv.push_back("t@" + std::to_string(batch * 100 + i) + ".service");
    ASSERT_EQ(m.systemctl(argv).status, 0);
    ASSERT_TRUE(bus.process(0, out).ok());
  }
  for (int i = 0; i < 3; ++i) {
    auto r = bus.restart("ok.service", 5 * kSecond);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, "done");
  }
}

// A unit that failed for a cause since fixed: restart_unit (which: failed) resets its failed
// state and restarts it for real; a unit up since before the plan began that failed in the
// incident reads "active" and is restarted too; ActiveEnterTimestampMonotonic is the manager's,
// on mendd's clock.
TEST(SystemdOps, FailedUnitIsResetAndRestartedByRestartUnit) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  TempDir dir;
  const std::string flag = dir.path() + "/healthy";
  m.add_unit("limited.service",
             "[Service]\nExecStart=/bin/sh -c 'test -e " + flag + " && exec sleep 1000; exit 1'\n");
  m.systemctl({"start", "limited.service"});
  for (int i = 0; i < 100 && m.show("limited.service", "ActiveState") != "failed"; ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_EQ(m.show("limited.service", "ActiveState"), "failed");
  std::ofstream(flag) << "fixed\n";  // the cause is gone
  UnitTracker tracker;
  SystemdBus bus(BusScope::User, tracker, SystemdBus::Role::Operate);
  std::vector<Event> out;
  ASSERT_TRUE(bus.connect(0, out).ok());
  Incident inc;
  inc.affected_units = {"limited.service"};
  ActionContext ctx;
  ctx.units = &bus;
  ctx.incident = &inc;
  ctx.progress = std::make_shared<StepProgress>();
  ctx.progress->mark_plan_started(monotonic_ns());
  auto a = ActionRegistry::instance().create(
      "restart_unit", Params({{"timeout", int64_t{10000000000}}, {"which", std::string("failed")}}),
      ctx);
  ASSERT_TRUE(a->check().ok());
  auto st = a->apply();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(m.show("limited.service", "ActiveState"), "active");
  ASSERT_TRUE(*a->verify());
  auto since = bus.active_since_us("limited.service");
  ASSERT_TRUE(since.ok()) << since.error().message;
  EXPECT_GE(*since, ctx.progress->plan_started_ns() / 1000);
  EXPECT_LE(*since, monotonic_ns() / 1000);
  // Up since before a later plan began, after failing in its incident: restarted again.
  UnitState failed;
  failed.unit = "limited.service";
  failed.active_state = "failed";
  inc.evidence.push_back({Event{1, failed}, 1, 1});
  ctx.progress = std::make_shared<StepProgress>();
  ctx.progress->mark_plan_started(monotonic_ns());
  auto b = ActionRegistry::instance().create(
      "restart_unit", Params({{"timeout", int64_t{10000000000}}, {"which", std::string("failed")}}),
      ctx);
  ASSERT_TRUE(b->check().ok());
  EXPECT_NE(b->describe().find("restart limited.service"), std::string::npos) << b->describe();
  ASSERT_TRUE(b->apply().ok());
  EXPECT_GT(*bus.active_since_us("limited.service"), *since);
}

TEST(SystemdUnits, RecoversWhenTheManagerRestarts) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  m.add_unit("after.service", "[Service]\nExecStart=/bin/sleep 1000\n");
  TraceRunner t({"--sensors", "units", "--bus", "user"});
  ASSERT_TRUE(t.wait_ready()) << t.err();
  m.crash_and_restart();
  // mendd notices, reconnects, resubscribes ...
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (t.err().find("reconnected") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  ASSERT_NE(t.err().find("reconnected"), std::string::npos) << t.err();
  // ... and sees units again.
  ASSERT_EQ(m.systemctl({"start", "after.service"}).status, 0);
  auto e = t.wait_for(
      [](const Event& ev) {
        auto* s = unit_event(ev, "after.service");
        return s && s->active_state == "active";
      },
      5s);
  EXPECT_TRUE(e) << t.err();
  EXPECT_EQ(t.stop(), 0);
}

TEST(Journald, RecordsCarryEveryFieldAndShowUnderTheUnit) {
  MEND_REQUIRE_ROOT();
  ensure_journald();
  const std::string id = unique_name("inc");
  const std::string unit = unique_name("victim") + ".service";
  Record r;
  r.kind = RecordKind::Escalated;
  r.priority = 2;
  r.message = "escalated: fs_full on /var/log";
  r.incident_id = id;
  r.root_cause = "fs_full";
  r.action = "rotate_logs";
  r.result = "failed";
  r.policy = "log-volume-full";
  r.unit = unit;
  r.extra = {{"culprit_unit", "noisy.service"}};
  ASSERT_TRUE(journal_send(r).ok());

  auto find = [&](const std::vector<std::string>& args) {
    return journal_find(
        args, [&](const nlohmann::json& j) { return j.value("MEND_INCIDENT_ID", "") == id; });
  };
  auto j = find({"MEND_INCIDENT_ID=" + id});
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["MESSAGE_ID"], "5fb1f1d3f46548ae889377939428dfb2");
  EXPECT_EQ(j["PRIORITY"], "2");
  EXPECT_EQ(j["MESSAGE"], "escalated: fs_full on /var/log");
  EXPECT_EQ(j["MEND_ROOT_CAUSE"], "fs_full");
  EXPECT_EQ(j["MEND_ACTION"], "rotate_logs");
  EXPECT_EQ(j["MEND_RESULT"], "failed");
  EXPECT_EQ(j["MEND_POLICY"], "log-volume-full");
  EXPECT_EQ(j["MEND_CULPRIT_UNIT"], "noisy.service");
  EXPECT_EQ(j["OBJECT_SYSTEMD_UNIT"], unit);
  EXPECT_EQ(j["SYSLOG_IDENTIFIER"], "mendd");
  // `journalctl -u <unit>` shows mend's record inline with the unit's own log.
  EXPECT_FALSE(find({"-u", unit}).is_null());
}

// mendd as a Type=notify service: READY=1 makes the start job finish, WATCHDOG=1 keeps it
// alive past WatchdogSec, and its log lands in the journal natively (PRIORITY, CODE_FILE).
TEST(SystemdService, NotifyWatchdogAndNativeJournalLogging) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  m.add_unit("mendd-test.service", std::string("[Service]\nType=notify\nWatchdogSec=1s\n") +
                                       "ExecStart=" + MENDD_PATH +
                                       " --trace --config /dev/null --sensors psi --bus none\n");
  auto r = m.systemctl({"start", "mendd-test.service"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(m.show("mendd-test.service", "ActiveState"), "active");
  std::this_thread::sleep_for(3s);  // three watchdog periods
  EXPECT_EQ(m.show("mendd-test.service", "ActiveState"), "active");
  EXPECT_EQ(m.show("mendd-test.service", "NRestarts"), "0");
  const std::string pid = m.show("mendd-test.service", "MainPID");
  ASSERT_EQ(m.systemctl({"stop", "mendd-test.service"}).status, 0);
  EXPECT_EQ(m.show("mendd-test.service", "Result"), "success");

  nlohmann::json found =
      journal_find({"_PID=" + pid, "SYSLOG_IDENTIFIER=mendd"},
                   [](const nlohmann::json& j) { return j.contains("CODE_FILE"); });
  ASSERT_FALSE(found.is_null()) << "no native journald record from mendd pid " << pid;
  EXPECT_TRUE(found.contains("CODE_LINE"));
  EXPECT_EQ(found["PRIORITY"], "6");
}
