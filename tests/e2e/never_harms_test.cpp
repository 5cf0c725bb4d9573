// Remedies can never be turned against the host (issue 15), each test starting from the attack,
// with the whole pipeline on a real systemd user manager and journald, and real faults.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "scenario.h"
#include "torture.h"

using namespace mend::test;

namespace {

// Every incident mendd holds, explained, as one text.
std::string all_explained(const OomScenario& s) {
  auto list = nlohmann::json::parse(s.mendctl({"incidents", "-o", "json"}).out, nullptr, false);
  std::string seen;
  if (list.is_discarded())
    return seen;
  for (const auto& i : list)
    seen += s.mendctl({"explain", i["id"].get<std::string>(), "-o", "json"}).out;
  return seen;
}

}  // namespace

// Before: a cgroup that only ended in a unit's name (/X/app.slice/web.service) had its OOM
// kills named after the real unit, and mend raised that unit's MemoryMax from 64M to 128M.
// Now a cgroup is a unit's only when it lies in the manager's tree as the manager lays it out
// (and the manager's own map does not place the unit elsewhere).
TEST(NeverHarms, OomLoopInACgroupEndingInARealUnitsNameLeavesTheUnitUntouched) {
  MEND_REQUIRE_ROOT();
  const std::string memory = v1_hierarchy("memory");
  if (memory.empty())
    GTEST_SKIP() << "no v1 memory hierarchy on this host";
  OomScenario s("200M", "40s");
  const std::string victim = unique_name("web") + ".service";
  s.m.add_unit(victim, "[Service]\nExecStart=/bin/sleep 1000\nMemoryMax=64M\n");
  ASSERT_EQ(s.m.systemctl({"start", victim}).status, 0);
  const std::string before = s.m.show(victim, "MemoryMax");
  ASSERT_EQ(before, std::to_string(64u << 20));
  TraceRunner agent(s.args(), false);
  ASSERT_TRUE(agent.wait_ready()) << agent.err();

  // The attacker's tree, in the memory hierarchy and the unified one (both are read).
  const std::string top = unique_name("mend-fake");
  // Removed leaf first (a cgroup with children cannot be removed), pass or fail.
  struct Tree {
    std::vector<std::unique_ptr<Cgroup>> v;
    ~Tree() {
      while (!v.empty())
        v.pop_back();
    }
  } tree;
  std::vector<std::string> leaves;
  for (const std::string& h : {memory, cgroup2_root()}) {
    tree.v.push_back(std::make_unique<Cgroup>(h, top));
    tree.v.push_back(std::make_unique<Cgroup>(h, top + "/app.slice"));
    tree.v.push_back(std::make_unique<Cgroup>(h, top + "/app.slice/" + victim));
    leaves.push_back(tree.v.back()->dir());
  }
  tree.v[2]->write("memory.limit_in_bytes", "50M");
  for (int i = 0; i < 4; ++i) {
    pid_t hog = spawn_in(leaves, {"/usr/bin/python3", "-c", "x = b'\\x01' * (200 << 20)"});
    EXPECT_EQ(wait_exit(hog), 128 + SIGKILL);
    usleep(300000);
  }
  // mendd saw the kills, in the attacker's cgroup ...
  std::string seen;
  ASSERT_TRUE(wait_until(
      [&] {
        seen = all_explained(s);
        return seen.find("/" + top + "/app.slice/" + victim) != std::string::npos;
      },
      30s))
      << seen.substr(0, 4000) << agent.err();
  // ... and gave them to no unit: nothing names the victim, nothing acts on it.
  std::this_thread::sleep_for(8s);  // a plan would have started by now (stabilisation 4 s)
  seen = all_explained(s);
  EXPECT_EQ(seen.find("\"unit\": \"" + victim + "\""), std::string::npos) << seen.substr(0, 4000);
  EXPECT_EQ(seen.find("\"culprit_unit\": \"" + victim + "\""), std::string::npos)
      << seen.substr(0, 4000);
  EXPECT_TRUE(journal({"OBJECT_SYSTEMD_UNIT=" + victim}).empty());
  EXPECT_EQ(s.m.show(victim, "MemoryMax"), before);
  EXPECT_EQ(s.m.show(victim, "NRestarts"), "0");
  EXPECT_EQ(s.m.show(victim, "ActiveState"), "active");

  // The same pipeline still names and heals a real unit's OOM loop (the check above can fail).
  ASSERT_EQ(s.m.systemctl({"start", "--no-block", s.unit}).status, 0);
  ASSERT_TRUE(wait_until([&] { return !records(s.unit, kVerified).empty(); }, 60s)) << agent.err();
  EXPECT_EQ(s.memory_max(), uint64_t{100} << 20);
  EXPECT_EQ(s.m.show(victim, "MemoryMax"), before);
  s.m.systemctl({"stop", victim, s.unit});
}

// kill -9 at every boundary of a two-step plan (raise, restart) and once at a random moment,
// mendd started again each time: the host is rolled back with a record saying so, or verified;
// never raised twice, never left unfinished in the intent journal, never a verified fix undone.
// The 100-trial version is tests/bench/torture_bench.cpp.
// Each kill point of each plan once: raise+restart (6), rotate+restart (6), grow (4).
TEST(NeverHarms, KilledAtEveryStepBoundaryTheHostIsRolledBackOrVerified) {
  MEND_REQUIRE_ROOT();
  TortureResult r;
  std::mt19937 rng(7);
  torture_raise_restart(6, rng, r);
  torture_rotate_restart(6, rng, r);
  torture_grow(4, rng, r);
  std::ostringstream out;
  print_torture(r, out);
  EXPECT_TRUE(r.failures.empty()) << out.str();
  EXPECT_EQ(r.trials, 16) << out.str();
  EXPECT_GE(r.rolled_back, 3) << out.str();  // killed mid-plan at least at 3 boundaries
  EXPECT_GE(r.kept, 2) << out.str();         // a rotation and a growth are left, recorded
  EXPECT_GE(r.verified, 3) << out.str();     // killed after the verdict, in each plan
}
