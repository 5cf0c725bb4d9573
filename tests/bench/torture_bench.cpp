// The kill -9 torture benchmark (issue 15): mendd killed at every step boundary of three plans
// (raise MemoryMax + restart, rotate + restart, grow a volume) and at random moments, --trials
// times in all (default 100, a third per plan), and started again each time over the same
// state directory; prints how each trial ended and every failure (the goal: none). Root; see
// tests/e2e/torture.h.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "torture.h"

int main(int argc, char** argv) {
  CLI::App app{"mend_torture_bench - mendd killed -9 in the middle of its plans (root)",
               "mend_torture_bench"};
  int trials = 100;
  unsigned seed = 1;
  app.add_option("--trials", trials, "Kills in all, a third per plan (each plan's points in turn)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--seed", seed, "For the random kill moments")->capture_default_str();
  std::string plan = "all";
  app.add_option("--plan", plan, "Only this plan's trials")
      ->check(CLI::IsMember({"all", "raise", "rotate", "grow"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (geteuid() != 0) {
    std::cerr << "mend_torture_bench: needs root (cgroups, BPF, a user manager)\n";
    return 1;
  }
  mend::test::ensure_journald();
  mend::test::TortureResult r;
  if (plan == "all") {
    r = mend::test::run_torture(trials, seed);
  } else {
    std::mt19937 rng(seed);
    if (plan == "raise")
      mend::test::torture_raise_restart(trials, rng, r);
    else if (plan == "rotate")
      mend::test::torture_rotate_restart(trials, rng, r);
    else
      mend::test::torture_grow(trials, rng, r);
  }
  mend::test::print_torture(r, std::cout);
  return r.failures.empty() && r.trials == trials ? 0 : 1;
}
