#include <fcntl.h>
// The spawn helper and the actions built on it (exec), and throttle_io against a fake systemd.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "correlate/incident_json.h"
#include "fake_units.h"
#include "policy/policy_loader.h"
#include "remedy/action.h"
#include "remedy/spawn.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/mend-exec-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string script(const std::string& name, const std::string& body, mode_t mode = 0755) {
    const std::string p = path + "/" + name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    chmod(p.c_str(), mode);
    return p;
  }
};

// Running (a zombie waiting for its reaper is dead for this purpose).
bool alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat))
    return false;
  auto p = stat.rfind(')');
  return p != std::string::npos && p + 2 < stat.size() && stat[p + 2] != 'Z';
}

}  // namespace

TEST(Spawn, CapturesOutputExitCodeAndStdin) {
  TempDir d;
  auto s = d.script("echo", "read line; echo \"got $line\"; echo oops >&2; exit 3");
  SpawnOptions o;
  o.argv = {s};
  o.input = "hello\n";
  auto r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->ok());
  EXPECT_NE(r->output.find("got hello"), std::string::npos);
  EXPECT_EQ(r->summary(), "exit 3: oops");
}

TEST(Spawn, NoShellArgumentsAreLiteral) {
  TempDir d;
  auto s = d.script("args", "for a in \"$@\"; do echo \"[$a]\"; done");
  SpawnOptions o;
  o.argv = {s, "a; touch " + d.path + "/pwned", "$(id)"};
  auto r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok());
  EXPECT_NE(r->output.find("[a; touch"), std::string::npos);
  EXPECT_NE(r->output.find("[$(id)]"), std::string::npos);
  EXPECT_FALSE(fs::exists(d.path + "/pwned"));
}

TEST(Spawn, TimeoutKillsTheWholeProcessGroup) {
  TempDir d;
  // The script leaves a child behind and waits: both must be gone after the timeout.
  auto s = d.script("hang", "sleep 300 & echo $! > " + d.path + "/child; wait");
  SpawnOptions o;
  o.argv = {s};
  o.timeout_ns = 300000000;  // 0.3 s
  auto r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->ok());
  pid_t child = 0;
  std::ifstream(d.path + "/child") >> child;
  ASSERT_GT(child, 0);
  for (int i = 0; i < 100 && alive(child); ++i)
    usleep(10000);
  EXPECT_FALSE(alive(child));
}

// A descriptor mendd holds without O_CLOEXEC (before: rotate_logs' and confine's dup()s) never
// reaches a command.
TEST(Spawn, NoDescriptorOfMenddLeaksIntoTheCommand) {
  TempDir d;
  const int leaky = open("/dev/null", O_RDONLY);  // no O_CLOEXEC
  ASSERT_GE(leaky, 3);
  auto s = d.script("fds", "ls /proc/$$/fd");
  SpawnOptions o;
  o.argv = {s};
  auto r = spawn_and_wait(o);
  close(leaky);
  ASSERT_TRUE(r.ok());
  std::istringstream fds(r->output);
  std::set<int> seen;
  for (int fd; fds >> fd;)
    seen.insert(fd);
  EXPECT_EQ(seen.count(leaky), 0u) << r->output;
  EXPECT_TRUE(seen.count(0) && seen.count(1) && seen.count(2)) << r->output;
}

// A command that exits on time but leaves a child holding its output: killed at the timeout
// through its own process group, while its pid is still its own (not reaped until the end).
TEST(Spawn, ExitedCommandWhoseChildHoldsTheOutputIsKilledAtTheTimeout) {
  TempDir d;
  auto s = d.script("fork", "sleep 300 & echo $! > " + d.path + "/child; exit 0");
  SpawnOptions o;
  o.argv = {s};
  o.timeout_ns = 300000000;
  auto r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  pid_t child = 0;
  std::ifstream(d.path + "/child") >> child;
  ASSERT_GT(child, 0);
  for (int i = 0; i < 100 && alive(child); ++i)
    usleep(10000);
  EXPECT_FALSE(alive(child));
}

TEST(Spawn, RefusesRelativePathsAndBoundsOutput) {
  SpawnOptions o;
  o.argv = {"sh", "-c", "true"};
  auto r = spawn_and_wait(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("absolute"), std::string::npos);
  TempDir d;
  auto s = d.script("loud", "i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done");
  o.argv = {s};
  o.max_output = 100;
  r = spawn_and_wait(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output.size(), 100u);
  EXPECT_EQ(r->output_dropped, 2000u * 11 - 100);
}

namespace {

Result<std::vector<CompiledPolicy>> compile(const std::string& actions, bool irreversible) {
  auto irs = parse_policies(std::string("policies:\n  - name: p\n    match: {root_cause: "
                                        "unit_crash}\n    mode: auto\n") +
                                (irreversible ? "    allow_irreversible: true\n" : "") +
                                "    actions:\n" + actions,
                            "p.yaml");
  if (!irs.ok())
    return irs.error();
  return compile_policies(*irs);
}

}  // namespace

TEST(Exec, PolicyRulesAbsolutePathAndRollbackOrIrreversible) {
  auto ok = compile(
      "      - exec: {command: [/usr/local/sbin/failover, db], rollback_command: "
      "[/usr/local/sbin/failback]}\n",
      false);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  auto no_rb = compile("      - exec: {command: [/usr/local/sbin/failover]}\n", false);
  ASSERT_FALSE(no_rb.ok());
  EXPECT_NE(no_rb.error().message.find("p.yaml:6:9: action exec: without a rollback_command"),
            std::string::npos)
      << no_rb.error().message;
  EXPECT_TRUE(compile("      - exec: {command: [/usr/local/sbin/failover]}\n", true).ok());
  auto rel = compile("      - exec: {command: [failover]}\n", true);
  ASSERT_FALSE(rel.ok());
  EXPECT_NE(rel.error().message.find("not an absolute path"), std::string::npos);
  auto slow = compile("      - exec: {command: [/bin/true], timeout: 2h}\n", true);
  ASSERT_FALSE(slow.ok());
  EXPECT_NE(slow.error().message.find("out of range"), std::string::npos);
}

TEST(Exec, RunsWithIncidentOnStdinAndRollsBack) {
  TempDir d;
  auto fix =
      d.script("fix", "cat > " + d.path + "/stdin.json; echo \"$MEND_UNIT $MEND_INCIDENT_ID\" > " +
                          d.path + "/env; touch " + d.path + "/fixed");
  auto undo = d.script("undo", "rm " + d.path + "/fixed");
  auto check = d.script("check", "test -e " + d.path + "/fixed");
  Incident inc;
  inc.id = "inc-7";
  inc.root_cause.kind = "unit_crash";
  FakeUnits units;
  ActionContext ctx;
  ctx.units = &units;
  ctx.incident = &inc;
  ctx.unit = "db.service";
  auto a = ActionRegistry::instance().create(
      "exec",
      Params({{"command", std::vector<std::string>{fix}},
              {"rollback_command", std::vector<std::string>{undo}},
              {"verify_command", std::vector<std::string>{check}},
              {"timeout", int64_t{5000000000}}}),
      ctx);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->reversible());
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  ASSERT_TRUE(a->apply().ok());
  EXPECT_TRUE(*a->verify());
  std::string env;
  std::getline(std::ifstream(d.path + "/env"), env);
  EXPECT_EQ(env, "db.service inc-7");
  auto j = nlohmann::json::parse(std::ifstream(d.path + "/stdin.json"));
  EXPECT_EQ(j["id"], "inc-7");
  ASSERT_TRUE(a->rollback().ok());
  EXPECT_FALSE(*a->verify());
}

TEST(Exec, FailureTimeoutAndUnsafeScriptAreErrors) {
  TempDir d;
  auto fail = d.script("fail", "echo 'db unreachable'; exit 2");
  auto hang = d.script("hang", "sleep 30");
  auto writable = d.script("writable", "true", 0777);
  FakeUnits units;
  ActionContext ctx;
  ctx.units = &units;
  auto make = [&](const std::string& cmd, int64_t timeout) {
    return ActionRegistry::instance().create(
        "exec",
        Params({{"command", std::vector<std::string>{cmd}},
                {"rollback_command", std::vector<std::string>{}},
                {"verify_command", std::vector<std::string>{}},
                {"timeout", timeout}}),
        ctx);
  };
  auto a = make(fail, 5000000000);
  EXPECT_FALSE(a->reversible());
  auto st = a->apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("exit 2: db unreachable"), std::string::npos)
      << st.error().message;
  st = make(hang, 200000000)->apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("timeout"), std::string::npos) << st.error().message;
  chmod(writable.c_str(), 0777);
  st = make(writable, 1000000000)->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("world-writable"), std::string::npos);
}

namespace {

// A block device of this machine, as "major:minor" (every machine has one).
std::string some_block_device() {
  for (const auto& e : fs::directory_iterator("/sys/dev/block")) {
    std::ifstream f(e.path() / "uevent");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("DEVNAME=", 0) == 0 && fs::exists("/dev/" + line.substr(8)))
        return e.path().filename().string();
  }
  return "";
}

}  // namespace

TEST(ThrottleIo, LimitsOnlyTheStalledDeviceNeverLoosensAndRestoresExactly) {
  const std::string dev = some_block_device();
  ASSERT_FALSE(dev.empty());
  Incident inc;
  inc.root_cause.kind = "io_stall";
  inc.root_cause.entities["device"] = dev;
  FakeUnits units;
  const DeviceLimits before_w = {{"/dev/other", 5000}};
  units.props["noisy.service/IOWriteBandwidthMax"] = before_w;
  units.props["noisy.service/IOWriteIOPSMax"] = DeviceLimits{};
  ActionContext ctx;
  ctx.units = &units;
  ctx.incident = &inc;
  ctx.unit = "noisy.service";
  auto a = ActionRegistry::instance().create("throttle_io",
                                             Params({{"device", std::string()},
                                                     {"read_bandwidth", int64_t{0}},
                                                     {"write_bandwidth", int64_t{1 << 20}},
                                                     {"read_iops", int64_t{0}},
                                                     {"write_iops", int64_t{100}}}),
                                             ctx);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  ASSERT_TRUE(a->apply().ok());
  ASSERT_TRUE(*a->verify());
  const auto& w = std::get<DeviceLimits>(units.props["noisy.service/IOWriteBandwidthMax"]);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], before_w[0]);
  EXPECT_EQ(w[1].second, uint64_t{1} << 20);
  EXPECT_EQ(w[1].first.rfind("/dev/", 0), 0u);
  EXPECT_EQ(units.props.count("noisy.service/IOReadBandwidthMax"), 0u);  // not asked for
  // From the journal after a restart: the same exact rollback.
  const auto undo = a->undo_state();
  auto b = ActionRegistry::instance().create("throttle_io",
                                             Params({{"device", std::string()},
                                                     {"read_bandwidth", int64_t{0}},
                                                     {"write_bandwidth", int64_t{1 << 20}},
                                                     {"read_iops", int64_t{0}},
                                                     {"write_iops", int64_t{100}}}),
                                             ctx);
  ASSERT_TRUE(b->restore(undo).ok());
  ASSERT_TRUE(b->rollback().ok());
  EXPECT_EQ(std::get<DeviceLimits>(units.props["noisy.service/IOWriteBandwidthMax"]), before_w);
  EXPECT_TRUE(std::get<DeviceLimits>(units.props["noisy.service/IOWriteIOPSMax"]).empty());

  // A tighter limit already in place stays.
  units.props["noisy.service/IOWriteBandwidthMax"] = DeviceLimits{{w[1].first, 1000}};
  auto c = ActionRegistry::instance().create("throttle_io",
                                             Params({{"device", std::string()},
                                                     {"read_bandwidth", int64_t{0}},
                                                     {"write_bandwidth", int64_t{1 << 20}},
                                                     {"read_iops", int64_t{0}},
                                                     {"write_iops", int64_t{0}}}),
                                             ctx);
  ASSERT_TRUE(c->check().ok());
  ASSERT_TRUE(c->apply().ok());
  EXPECT_EQ(std::get<DeviceLimits>(units.props["noisy.service/IOWriteBandwidthMax"])[0].second,
            1000u);
}

TEST(ThrottleIo, RefusesWithoutDeviceOrUnitAndNeedsALimit) {
  Incident inc;
  FakeUnits units;
  ActionContext ctx;
  ctx.units = &units;
  ctx.incident = &inc;
  ctx.unit = "noisy.service";
  auto p = Params({{"device", std::string()},
                   {"read_bandwidth", int64_t{0}},
                   {"write_bandwidth", int64_t{1 << 20}},
                   {"read_iops", int64_t{0}},
                   {"write_iops", int64_t{0}}});
  auto st = ActionRegistry::instance().create("throttle_io", p, ctx)->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("names no device"), std::string::npos);
  inc.root_cause.entities["device"] = "250:250";
  st = ActionRegistry::instance().create("throttle_io", p, ctx)->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("250:250"), std::string::npos);
  EXPECT_TRUE(units.calls.empty());
  auto irs = parse_policies(
      "policies:\n  - name: t\n    match: {root_cause: io_stall}\n    mode: auto\n    actions:\n"
      "      - throttle_io: {}\n",
      "t.yaml");
  ASSERT_TRUE(irs.ok());
  auto c = compile_policies(*irs);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("set at least one of"), std::string::npos);
}

namespace {

// Runs commands inline, and keeps what each asked for.
class RecordingLauncher final : public ChildLauncher {
 public:
  Result<std::unique_ptr<Child>> launch(const ChildCommand& c) override {
    seen.push_back(c);
    return inline_launcher().launch(c);
  }
  std::string name() const override { return "recording"; }
  std::vector<ChildCommand> seen;
};

}  // namespace

TEST(Exec, CommandsGoToTheLauncherWithThePolicysSandboxAndNothingMore) {
  TempDir d;
  auto fix = d.script("fix", "echo fixed");
  RecordingLauncher l;
  FakeUnits units;
  ActionContext ctx;
  ctx.units = &units;
  ctx.unit = "db.service";
  ctx.children = &l;
  auto plain = ActionRegistry::instance().create(
      "exec", Params({{"command", std::vector<std::string>{fix}}}), ctx);
  ASSERT_TRUE(plain);
  ASSERT_TRUE(plain->apply().ok());
  ASSERT_EQ(l.seen.size(), 1u);
  EXPECT_EQ(l.seen[0].purpose, "exec");
  EXPECT_EQ(l.seen[0].argv, std::vector<std::string>{fix});
  // The least by default: root without capabilities, no network, and nothing of mendd's
  // environment but PATH, LANG and the MEND_* variables.
  EXPECT_EQ(l.seen[0].sandbox.user, "");
  EXPECT_TRUE(l.seen[0].sandbox.capabilities.empty());
  EXPECT_FALSE(l.seen[0].sandbox.network);
  for (const auto& e : l.seen[0].env)
    EXPECT_TRUE(e.rfind("PATH=", 0) == 0 || e.rfind("LANG=", 0) == 0 || e.rfind("MEND_", 0) == 0)
        << e;

  auto granted = ActionRegistry::instance().create(
      "exec",
      Params({{"command", std::vector<std::string>{fix}},
              {"user", std::string("app")},
              {"capabilities", std::vector<std::string>{"CAP_NET_BIND_SERVICE"}},
              {"network", true}}),
      ctx);
  ASSERT_TRUE(granted->apply().ok());
  ASSERT_EQ(l.seen.size(), 2u);
  EXPECT_EQ(l.seen[1].sandbox.user, "app");
  EXPECT_EQ(l.seen[1].sandbox.capabilities, std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  EXPECT_TRUE(l.seen[1].sandbox.network);
}

TEST(Capabilities, NamesAndMasks) {
  EXPECT_EQ(capability_number("CAP_CHOWN"), 0);
  EXPECT_EQ(capability_number("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(capability_number("CAP_BPF"), 39);
  EXPECT_EQ(capability_number("cap_chown"), -1);
  EXPECT_EQ(capability_number(""), -1);
  auto m = capability_mask({"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_CHOWN"});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, 3u);
  EXPECT_EQ(*capability_mask({}), 0u);
  auto bad = capability_mask({"CAP_CHOWN", "CAP_EVERYTHING"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("CAP_EVERYTHING"), std::string::npos);
}
