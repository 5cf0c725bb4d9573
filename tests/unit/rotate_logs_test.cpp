// rotate_logs without root: the reload method, deferring to logrotate's configuration, the
// bounds and what a policy may name. Copy-truncate on real ext4/xfs is in
// tests/privileged/disk_test.cpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fake_units.h"
#include "policy/policy_loader.h"
#include "remedy/action.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/mend-rot-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~Dir() { fs::remove_all(path); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string gunzip(const std::string& p) {
  gzFile g = gzopen(p.c_str(), "rb");
  std::string out;
  char buf[4096];
  int n;
  while (g && (n = gzread(g, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  if (g)
    gzclose(g);
  return out;
}

Params params(const std::vector<std::string>& paths, const std::string& method,
              const std::string& logrotate_dir = "", const std::string& state = "") {
  return Params({{"paths", paths},
                 {"keep", int64_t{2}},
                 {"min_size", int64_t{1000}},
                 {"max_files", int64_t{10}},
                 {"method", method},
                 {"compress", true},
                 {"logrotate_configs", logrotate_dir},
                 {"logrotate_state", state},
                 {"timeout", int64_t{30000000000}}});
}

}  // namespace

// reload: the unit of the process that writes the log is reloaded (found from /proc, named by
// the manager), not the incident's culprit; it reopens the log, then NAME.1 is compressed.
TEST(RotateLogs, ReloadMethodReloadsTheWriterCompressesAndKeepsN) {
  Dir d;
  FakeUnits units;
  units.pid_units[getpid()] = "writer.service";
  ActionContext ctx;
  ctx.units = &units;
  ctx.unit = "culprit.service";
  const std::string log = d.path + "/app.log";
  std::ofstream(d.path + "/small.log") << "tiny";
  int writer = -1;
  units.on_reload = [&](const std::string&) {  // the writer reopens its log
    close(writer);
    writer = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  };
  for (int round = 1; round <= 3; ++round) {
    std::ofstream(log) << std::string(5000, static_cast<char>('a' + round));
    if (writer < 0)
      writer = open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    auto a = ActionRegistry::instance().create("rotate_logs", params({d.path + "/*.log"}, "reload"),
                                               ctx);
    ASSERT_TRUE(a->check().ok()) << a->check().error().message;
    auto st = a->apply();
    ASSERT_TRUE(st.ok()) << round << ": " << st.error().message;
    EXPECT_TRUE(*a->verify());
    EXPECT_EQ(units.calls.back(), "reload writer.service");
  }
  close(writer);
  for (const auto& c : units.calls)
    EXPECT_EQ(c.find("culprit"), std::string::npos) << c;
  // keep 2: the newest two rotations, in order.
  EXPECT_EQ(gunzip(log + ".1.gz"), std::string(5000, 'd'));
  EXPECT_EQ(gunzip(log + ".2.gz"), std::string(5000, 'c'));
  EXPECT_FALSE(fs::exists(log + ".3.gz"));
  EXPECT_FALSE(fs::exists(log + ".1"));
  EXPECT_EQ(slurp(d.path + "/small.log"), "tiny");  // under min_size
}

// Never unlinks a file still open for writing, never renames over a left-over NAME.1, and a
// failed reload keeps the old content where it is.
TEST(RotateLogs, ReloadNeverLosesWhatIsStillWrittenOrLeftOver) {
  Dir d;
  FakeUnits units;
  units.pid_units[getpid()] = "writer.service";
  ActionContext ctx;
  ctx.units = &units;
  const std::string log = d.path + "/app.log";
  std::ofstream(log) << std::string(5000, 'a');
  int writer = open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);  // never reopens
  auto a =
      ActionRegistry::instance().create("rotate_logs", params({d.path + "/*.log"}, "reload"), ctx);
  auto st = a->apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("still open for writing"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(slurp(log + ".1"), std::string(5000, 'a'));  // kept, not compressed away
  EXPECT_FALSE(fs::exists(log + ".1.gz"));
  close(writer);
  // NAME.1 left over: a new rotation does not overwrite it.
  std::ofstream(log) << std::string(5000, 'b');
  auto b =
      ActionRegistry::instance().create("rotate_logs", params({d.path + "/*.log"}, "reload"), ctx);
  auto sb = b->apply();
  ASSERT_FALSE(sb.ok());
  EXPECT_NE(sb.error().message.find("exists"), std::string::npos) << sb.error().message;
  EXPECT_EQ(slurp(log + ".1"), std::string(5000, 'a'));
  EXPECT_EQ(slurp(log), std::string(5000, 'b'));
  // A failed reload keeps the old content under its .1 name.
  fs::remove(log + ".1");
  writer = open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  units.job_result = "failed";
  auto c =
      ActionRegistry::instance().create("rotate_logs", params({d.path + "/*.log"}, "reload"), ctx);
  EXPECT_FALSE(c->apply().ok());
  EXPECT_EQ(slurp(log + ".1"), std::string(5000, 'b'));
  close(writer);
}

TEST(RotateLogs, DefersToTheLogrotateConfigurationThatCoversTheFile) {
  if (access("/usr/sbin/logrotate", X_OK) != 0)
    GTEST_SKIP() << "logrotate is not installed (scripts/setup.sh installs it)";
  Dir d;
  fs::create_directories(d.path + "/logrotate.d");
  const std::string log = d.path + "/svc.log";
  std::ofstream(d.path + "/logrotate.d/svc")
      << "# ours\n\"" << log << "\" {\n  rotate 3\n  copytruncate\n  missingok\n}\n";
  std::ofstream(log) << std::string(4000, 'q');
  FakeUnits units;
  ActionContext ctx;
  ctx.units = &units;
  auto a = ActionRegistry::instance().create(
      "rotate_logs",
      params({d.path + "/*.log"}, "copytruncate", d.path + "/logrotate.d", d.path + "/state"), ctx);
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  EXPECT_NE(a->describe().find("logrotate --force " + d.path + "/logrotate.d/svc"),
            std::string::npos)
      << a->describe();
  ASSERT_TRUE(a->apply().ok()) << a->describe();
  // logrotate did it, its way (copytruncate, no compression: its configuration says so).
  EXPECT_EQ(slurp(log + ".1"), std::string(4000, 'q'));
  EXPECT_EQ(fs::file_size(log), 0u);
  EXPECT_TRUE(units.calls.empty());
}

TEST(RotateLogs, PolicyPathsMustBeConfinedGlobs) {
  auto compile = [](const std::string& paths) {
    auto irs = parse_policies(
        "policies:\n  - name: r\n    match: {root_cause: fs_full}\n"
        "    mode: auto\n    actions:\n      - rotate_logs: {paths: " +
            paths + "}\n",
        "r.yaml");
    EXPECT_TRUE(irs.ok());
    return compile_policies(*irs);
  };
  EXPECT_TRUE(compile("[/var/log/app/*.log]").ok());
  for (const char* bad : {"[var/log/*.log]", "[/var/log/../../etc/passwd]", "[/var/*/app.log]",
                          "[/var/log/app/]", "['/*.log']"}) {
    auto r = compile(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("r.yaml:6:9: action rotate_logs: paths"), std::string::npos)
          << r.error().message;
    }
  }
}

TEST(VacuumJournal, RunsJournaldsOwnVacuumWithTheBoundsAndNeedsTheFlag) {
  Dir d;
  FakeUnits units;
  ActionContext ctx;
  ctx.units = &units;
  auto a = ActionRegistry::instance().create("vacuum_journal",
                                             Params({{"max_size", int64_t{64} << 20},
                                                     {"max_age", int64_t{0}},
                                                     {"directory", d.path},
                                                     {"timeout", int64_t{30000000000}}}),
                                             ctx);
  EXPECT_EQ(a->describe(), "/usr/bin/journalctl --directory=" + d.path + " --vacuum-size=67108864");
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok()) << a->describe();  // an empty journal directory: nothing to do
  EXPECT_TRUE(*a->verify());
  EXPECT_FALSE(a->reversible());
  auto missing = ActionRegistry::instance().create("vacuum_journal",
                                                   Params({{"max_size", int64_t{64} << 20},
                                                           {"max_age", int64_t{0}},
                                                           {"directory", d.path + "/nope"},
                                                           {"timeout", int64_t{30000000000}}}),
                                                   ctx);
  EXPECT_FALSE(missing->apply().ok());
  auto compile = [](const std::string& action, bool allow) {
    auto irs = parse_policies(std::string("policies:\n  - name: v\n    match: {root_cause: "
                                          "fs_full}\n    mode: auto\n") +
                                  (allow ? "    allow_irreversible: true\n" : "") +
                                  "    actions:\n      - " + action + "\n",
                              "v.yaml");
    return compile_policies(*irs);
  };
  EXPECT_TRUE(compile("vacuum_journal: {max_size: 1G, max_age: 30d}", true).ok());
  EXPECT_FALSE(compile("vacuum_journal: {max_size: 1G}", false).ok());
  EXPECT_FALSE(compile("vacuum_journal: {}", true).ok());
  EXPECT_FALSE(compile("vacuum_journal: {max_size: 1K}", true).ok());
}
