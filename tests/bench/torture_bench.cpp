// The kill -9 torture benchmark (issue 15): mendd killed at every step boundary of a two-step
// plan (raise MemoryMax, restart) and at random moments, --trials times (default 100), and
// started again each time over the same state directory; prints how each trial ended and every
// failure (the goal: none). Root; see tests/e2e/torture.h.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "torture.h"

int main(int argc, char** argv) {
  CLI::App app{"mend_torture_bench - mendd killed -9 in the middle of its plans (root)",
               "mend_torture_bench"};
  int trials = 100;
  unsigned seed = 1;
  app.add_option("--trials", trials, "Kills (each point in turn: 5 boundaries, then random)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--seed", seed, "For the random kill moments")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (geteuid() != 0) {
    std::cerr << "mend_torture_bench: needs root (cgroups, BPF, a user manager)\n";
    return 1;
  }
  mend::test::ensure_journald();
  auto r = mend::test::run_torture(trials, seed);
  mend::test::print_torture(r, std::cout);
  return r.failures.empty() && r.trials == trials ? 0 : 1;
}
