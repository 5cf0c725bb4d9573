// The storm/soak benchmark (issue 14): an ENOSPC storm from short-lived processes, crash-looping
// units and repeated OOM kills at once against the whole mendd on a real systemd user manager,
// for --seconds (default 600). Prints mendd's RSS (start, peak, end, growth per hour), CPU,
// events, kernel drops, incidents, and its event loop's time per wake-up (p50/p99/max): the
// margin the watchdog has. Root; see tests/e2e/soak.h.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "soak.h"

int main(int argc, char** argv) {
  CLI::App app{"mend_soak_bench - mendd under storms for minutes (root)", "mend_soak_bench"};
  mend::test::SoakOptions o;
  o.seconds = 600;
  app.add_option("--seconds", o.seconds, "How long the storm lasts")
      ->check(CLI::Range(10, 86400))
      ->capture_default_str();
  app.add_option("--units", o.crash_units, "Crash-looping units")
      ->check(CLI::Range(1, 2000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (geteuid() != 0) {
    std::cerr << "mend_soak_bench: needs root (loop devices, cgroups, BPF)\n";
    return 1;
  }
  mend::test::ensure_journald();
  auto r = mend::test::run_soak(o);
  mend::test::print_soak(r, std::cout);
  return r.alive && r.healed_after ? 0 : 1;
}
