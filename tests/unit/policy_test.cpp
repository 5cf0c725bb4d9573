#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "policy/policy_loader.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

Result<std::vector<CompiledPolicy>> compile_text(const std::string& text) {
  auto irs = parse_policies(text, "p.yaml");
  if (!irs.ok())
    return irs.error();
  return compile_policies(*irs);
}

const char* kGood = R"(
policies:
  - name: mem
    match: {root_cause: memory_limit, units: ["app*.service"], min_confidence: 0.9}
    mode: {high: auto, low: approve}
    actions:
      - raise_memory_limit: {step: 50%, ceiling: 2G}
      - restart_unit
    verify: {deadline: 90s, stable_for: 20s, no_new_oom: true}
    on_failure: rollback_then_next
    guards: {cooldown: 5m, max_runs: 2, per: 1h}
)";

}  // namespace

TEST(Policy, CompilesTypedBoundedParamsWithDefaults) {
  auto r = compile_text(kGood);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const auto& p = (*r)[0];
  EXPECT_EQ(p.ir.name, "mem");
  EXPECT_EQ(p.ir.match.units.at(0), "app*.service");
  EXPECT_EQ(p.ir.mode.by_slo_impact.at("high"), Mode::Auto);
  EXPECT_EQ(p.ir.verify.deadline_ns, 90000000000u);
  EXPECT_TRUE(p.ir.verify.no_new_oom);
  EXPECT_EQ(p.ir.on_failure, OnFailure::RollbackThenNext);
  EXPECT_EQ(p.ir.guards.max_runs, 2u);
  ASSERT_EQ(p.actions.size(), 2u);
  EXPECT_EQ(std::get<double>(p.actions[0].params.at("step")), 50.0);
  EXPECT_EQ(std::get<int64_t>(p.actions[0].params.at("ceiling")), int64_t{2} << 30);
  EXPECT_EQ(std::get<std::string>(p.actions[0].params.at("property")), "MemoryMax");  // default
  EXPECT_EQ(std::get<int64_t>(p.actions[1].params.at("timeout")), 30000000000);       // default
  EXPECT_FALSE(p.actions[1].reversible);
}

TEST(Policy, DefaultModeIsApprove) {
  auto r = compile_text(
      "policies:\n  - name: x\n    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*(*r)[0].ir.mode.fixed, Mode::Approve);
}

struct Bad {
  const char* yaml;
  const char* where;
  const char* what;
};

class BadPolicy : public ::testing::TestWithParam<Bad> {};

TEST_P(BadPolicy, IsAPreciseError) {
  auto r = compile_text(GetParam().yaml);
  ASSERT_FALSE(r.ok());
  const auto& m = r.error().message;
  EXPECT_NE(m.find(std::string("p.yaml:") + GetParam().where + ": "), std::string::npos) << m;
  EXPECT_NE(m.find(GetParam().what), std::string::npos) << m;
}

#define POL(body) "policies:\n  - name: x\n" body

INSTANTIATE_TEST_SUITE_P(
    Table, BadPolicy,
    ::testing::Values(
        // broken YAML
        Bad{"policies:\n  - name: [x\n", "3:1", ""},
        // unknown keys, at each level
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n    colour: "
                "red\n"),
            "5:5", "unknown key \"policy.colour\""},
        Bad{POL("    match: {root_cause: unit_crash, unitz: [a]}\n    actions: [restart_unit]\n"),
            "3:37", "unknown key \"match.unitz\""},
        Bad{"polices: []\n", "1:1", "policies"},
        // wrong types
        Bad{POL("    match: unit_crash\n    actions: [restart_unit]\n"), "3:12",
            "match: expected a mapping"},
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: restart_unit\n"), "4:14",
            "expected a non-empty list"},
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n"
                "    guards: {max_runs: many}\n"),
            "5:24", "not a whole number"},
        // out of range
        Bad{POL("    match: {root_cause: memory_limit}\n"
                "    actions:\n      - raise_memory_limit: {step: 500%, ceiling: 1G}\n"),
            "5:36", "out of range"},
        Bad{POL("    match: {root_cause: memory_limit}\n"
                "    actions:\n      - raise_memory_limit: {ceiling: 5T}\n"),
            "5:39", "out of range"},
        Bad{POL("    match: {root_cause: unit_crash, min_confidence: 0.1}\n"
                "    actions: [restart_unit]\n"),
            "3:53", "out of range"},
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n"
                "    verify: {deadline: 3d}\n"),
            "5:24", "out of range"},
        // one number grammar: NaN, inf and trailing junk are errors (issue 14)
        Bad{POL("    match: {root_cause: unit_crash, min_confidence: nan}\n"
                "    actions: [restart_unit]\n"),
            "3:53", "expected a number"},
        Bad{POL("    match: {root_cause: unit_crash, min_confidence: .inf}\n"
                "    actions: [restart_unit]\n"),
            "3:53", "expected a number"},
        Bad{POL("    match: {root_cause: unit_crash, min_confidence: 0.9x}\n"
                "    actions: [restart_unit]\n"),
            "3:53", "expected a number"},
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n"
                "    guards: {max_runs: 3junk}\n"),
            "5:24", "not a whole number"},
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n"
                "    verify: {deadline: -5s}\n"),
            "5:24", "invalid duration"},
        Bad{POL("    match: {root_cause: unit_crash}\n"
                "    actions:\n      - restart_unit: {step_deadline: 0.5s}\n"),
            "5:39", "out of range"},
        Bad{POL("    match: {root_cause: memory_limit}\n    actions:\n"
                "      - raise_memory_limit: {ceiling: 1G, step: 25%junk}\n"),
            "5:49", "invalid percentage"},
        // unknown actions, root causes, parameters; missing required ones
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: [reboot_host]\n"), "4:15",
            "unknown action \"reboot_host\""},
        Bad{POL("    match: {root_cause: cosmic_rays}\n    actions: [restart_unit]\n"), "2:5",
            "unknown root cause \"cosmic_rays\""},
        Bad{POL("    match: {root_cause: unit_crash}\n"
                "    actions:\n      - restart_unit: {timeot: 5s}\n"),
            "5:32", "unknown parameter \"timeot\""},
        Bad{POL("    match: {root_cause: memory_limit}\n    actions: [raise_memory_limit]\n"),
            "4:15", "parameter \"ceiling\" is required"},
        Bad{POL("    match: {root_cause: memory_limit}\n"
                "    actions:\n      - raise_memory_limit: {ceiling: 1G, property: "
                "MemorySwapMax}\n"),
            "5:53", "is not one of MemoryMax, MemoryHigh"},
        // a command's sandbox: capabilities and users by name
        Bad{POL("    match: {root_cause: unit_crash}\n    allow_irreversible: true\n"
                "    actions:\n      - exec: {command: [/bin/true], capabilities: [CAP_GOD]}\n"),
            "6:9", "unknown capability \"CAP_GOD\""},
        Bad{POL("    match: {root_cause: unit_crash}\n    allow_irreversible: true\n"
                "    actions:\n      - exec: {command: [/bin/true], user: \"0\"}\n"),
            "6:9", "must start with a lowercase letter"},
        Bad{POL("    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n"
                "    mode: yolo\n"),
            "5:11", "not a mode"},
        Bad{"policies:\n  - match: {root_cause: unit_crash}\n    actions: [restart_unit]\n", "2:5",
            "\"name\" is required"},
        Bad{"policies:\n  - name: a\n    match: {root_cause: unit_crash}\n    actions: "
            "[restart_unit]\n"
            "  - name: a\n    match: {root_cause: unit_crash}\n    actions: [restart_unit]\n",
            "5:5", "defined twice"}));

TEST(Policy, ShippedPoliciesCompile) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(MEND_POLICIES_DIR)) {
    auto r = load_policy_file(e.path().string(), /*strict_modes=*/false);
    EXPECT_TRUE(r.ok()) << e.path() << ": " << (r.ok() ? "" : r.error().message);
    ++n;
  }
  EXPECT_GE(n, 2);
}

TEST(Policy, StrictModesRefuseWritableOrForeignFiles) {
  char tmpl[] = "/tmp/mend-policy-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string f = dir + "/p.yaml";
  std::ofstream(f) << kGood;
  chmod(f.c_str(), 0664);
  auto r = load_policy_file(f, true);
  ASSERT_FALSE(r.ok());
  if (geteuid() == 0) {
    EXPECT_NE(r.error().message.find("group- or world-writable"), std::string::npos);
    chmod(f.c_str(), 0644);
    EXPECT_TRUE(load_policy_file(f, true).ok());
    ASSERT_EQ(chown(f.c_str(), 65534, 65534), 0);
    r = load_policy_file(f, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("not owned by root"), std::string::npos);
  } else {
    EXPECT_NE(r.error().message.find("not owned by root"), std::string::npos);
  }
  // A directory with one bad file loads nothing at all.
  std::ofstream(dir + "/q.yaml") << "policies: [{name: q}]\n";
  chmod(f.c_str(), 0644);
  auto d = load_policy_dir(dir, false);
  EXPECT_FALSE(d.ok());
  fs::remove_all(dir);
}
