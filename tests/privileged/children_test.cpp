// Commands as transient units of a real systemd manager (issue 15): the command gets its input
// and gives its output through mendd's pipes, keeps no capability it was not granted, has no
// network unless granted, is killed at its deadline, and leaves no unit behind.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "fixtures.h"
#include "remedy/spawn.h"
#include "systemd/transient_child.h"
#include "systemd_fixture.h"

using namespace mend;
using namespace mend::test;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kSecond = 1000000000ull;

SpawnOptions shell(const std::string& script, ChildLauncher& l) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.launcher = &l;
  o.purpose = "test";
  o.timeout_ns = 20 * kSecond;
  return o;
}

// The capability mask a command had, from its own /proc/self/status.
std::string cap_eff(const std::string& output) {
  auto at = output.find("CapEff:");
  if (at == std::string::npos)
    return "";
  auto line = output.substr(at + 7, output.find('\n', at) - at - 7);
  while (!line.empty() && (line[0] == '\t' || line[0] == ' '))
    line.erase(0, 1);
  return line;
}

}  // namespace

TEST(Children, TransientUnitsTakeInputGiveOutputAndKeepNothingOfMendd) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  TransientLauncher l(BusScope::User);

  // Input on stdin, output and exit status back, environment as given, nothing more.
  auto o =
      shell("read x; echo \"got $x from $MEND_TEST\"; grep CapEff /proc/self/status; exit 3", l);
  o.input = "hello\n";
  o.env["MEND_TEST"] = "mend";
  auto r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3) << r->summary();
  EXPECT_FALSE(r->timed_out);
  EXPECT_NE(r->output.find("got hello from mend"), std::string::npos) << r->output;
  EXPECT_EQ(r->where.rfind("mend-test-", 0), 0u) << r->where;
  // Root in the unit, yet no capability at all (the test process itself has them all).
  EXPECT_EQ(cap_eff(r->output), "0000000000000000") << r->output;
  EXPECT_EQ(r->note, "") << r->note;
  // Read and collected: the manager has no such unit any more.
  EXPECT_EQ(m.show(r->where, "LoadState"), "not-found");

  // Exactly the capabilities granted.
  o = shell("grep CapEff /proc/self/status", l);
  o.sandbox.capabilities = {"CAP_DAC_OVERRIDE", "CAP_CHOWN"};
  r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0) << r->summary();
  EXPECT_EQ(cap_eff(r->output), "0000000000000003") << r->output;
  EXPECT_EQ(m.show(r->where, "LoadState"), "not-found");
  o.sandbox.capabilities = {"CAP_NO_SUCH_THING"};
  r = spawn_and_wait(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("CAP_NO_SUCH_THING"), std::string::npos);

  // No network but loopback unless granted: the host's interfaces are one line each in
  // /proc/net/dev (two header lines), a private namespace has only lo.
  const std::string count = "echo $(($(wc -l < /proc/net/dev) - 2))";
  auto own = spawn_and_wait(shell(count, l));
  ASSERT_TRUE(own.ok()) << own.error().message;
  EXPECT_EQ(own->output, "1\n");
  o = shell(count, l);
  o.sandbox.network = true;
  auto host = spawn_and_wait(o);
  ASSERT_TRUE(host.ok()) << host.error().message;
  auto here = run({"/bin/sh", "-c", count});
  EXPECT_EQ(host->output, here.out) << "the granted network is not the host's";

  // Read-only: /usr, /etc, /var cannot be written (ProtectSystem=strict); by default only
  // /usr, /boot and /etc are read-only (ProtectSystem=full).
  const std::string var = "/var/lib/mend-children-test-" + std::to_string(getpid());
  std::filesystem::create_directories(var);
  struct Gone {
    std::string d;
    ~Gone() { std::filesystem::remove_all(d); }
  } gone{var};
  const std::string probe = "touch " + var + "/probe && echo wrote";
  o = shell(probe, l);
  r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->output, "wrote\n") << r->summary();
  o = shell(probe + "; touch /usr/mend-children-test || echo refused", l);
  o.sandbox.read_only = true;
  r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->output.find("wrote"), std::string::npos) << r->output;
  EXPECT_NE(r->output.find("refused"), std::string::npos) << r->output;
  // ... but for the paths granted (a missing one marked "-" is no error).
  o = shell(probe, l);
  o.sandbox.read_only = true;
  o.sandbox.write_paths = {var, "-/nonexistent/mend-children-test"};
  r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->output, "wrote\n") << r->summary();

  // A command the manager cannot start: its exit status is systemd's, and the record says so.
  const std::string bad = var + "/bad-interpreter";
  std::ofstream(bad) << "#!/nonexistent/interpreter\n";
  chmod(bad.c_str(), 0755);
  o = shell("", l);
  o.argv = {bad};
  r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 203) << r->summary();
  EXPECT_NE(r->summary().find("is systemd's"), std::string::npos) << r->summary();
  EXPECT_EQ(m.show(r->where, "LoadState"), "not-found");

  // argv reaches the command as given: no $VAR, ${VAR} or $$ of the manager's.
  o = shell("printf '%s|' \"$1\" \"$2\" \"$3\"", l);
  o.argv.insert(o.argv.end(), {"sh", "$$", "${MEND_TEST}", "a b"});
  o.env["MEND_TEST"] = "expanded";
  r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->output, "$$|${MEND_TEST}|a b|") << r->summary();
}

TEST(Children, TransientUnitKilledAtItsDeadlineWithWhatItStarted) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  TransientLauncher l(BusScope::User);
  // The command forks a child that holds the output open and ignores SIGTERM.
  auto o = shell("(trap '' TERM; exec sleep 317) & echo started; exec sleep 317", l);
  o.timeout_ns = kSecond;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = spawn_and_wait(o);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->timed_out);
  EXPECT_NE(r->output.find("started"), std::string::npos) << r->output;
  EXPECT_LT(took, 8s);
  EXPECT_EQ(m.show(r->where, "LoadState"), "not-found");
  // Nothing of it is left running.
  auto left = run({"pgrep", "-f", "sleep 317"});
  EXPECT_EQ(left.out, "");

  // A command that is not there is refused before any unit is made.
  o = shell("true", l);
  o.argv = {"/nonexistent/mend-command"};
  r = spawn_and_wait(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/mend-command"), std::string::npos);
}

TEST(Children, SweepCollectsUnitsAKilledMenddLeftBehind) {
  MEND_REQUIRE_ROOT();
  UserManager m;
  // What a mendd killed -9 between a command's end and its collection leaves: a mend-* unit
  // that stays after its command ended.
  m.add_unit("mend-exec-00000000000000a1.service",
             "[Service]\nType=exec\nRemainAfterExit=yes\nExecStart=/bin/true\n");
  m.add_unit("mend-exec-00000000000000a2.service", "[Service]\nType=exec\nExecStart=/bin/false\n");
  m.add_unit("mend-exec-notours.service",
             "[Service]\nType=exec\nRemainAfterExit=yes\nExecStart=/bin/true\n");
  m.add_unit("other-left.service",
             "[Service]\nType=exec\nRemainAfterExit=yes\nExecStart=/bin/true\n");
  m.systemctl({"start", "mend-exec-00000000000000a1.service", "other-left.service",
               "mend-exec-notours.service"});
  m.systemctl({"start", "mend-exec-00000000000000a2.service"});
  for (int i = 0; i < 50 && m.show("mend-exec-00000000000000a2.service", "ActiveState") != "failed";
       ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_EQ(m.show("mend-exec-00000000000000a1.service", "SubState"), "exited");
  ASSERT_EQ(m.show("mend-exec-00000000000000a2.service", "ActiveState"), "failed");
  TransientLauncher l(BusScope::User);
  auto n = l.sweep();
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 2u);
  for (int i = 0;
       i < 50 && m.show("mend-exec-00000000000000a1.service", "ActiveState") != "inactive"; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(m.show("mend-exec-00000000000000a1.service", "ActiveState"), "inactive");
  EXPECT_EQ(m.show("mend-exec-00000000000000a2.service", "ActiveState"), "inactive");
  // Not named as mendd names its units: left alone.
  EXPECT_EQ(m.show("other-left.service", "SubState"), "exited");
  EXPECT_EQ(m.show("mend-exec-notours.service", "SubState"), "exited");
}
