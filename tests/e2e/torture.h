// The kill -9 torture (issue 15): the whole mendd on a real systemd user manager runs a
// two-step plan (raise MemoryMax 50M -> 100M, then restart) for an OOM-looping unit and is
// killed with SIGKILL at a step boundary (each record a plan writes) or at a random moment,
// then started again over the same state directory. After each trial the host must be either
// rolled back (MemoryMax 50M again, an escalation saying the plan was interrupted) or verified
// (100M, a verified record), with nothing applied twice (never 200M) and nothing left
// unfinished in the intent journal. Shared by the e2e test (a few trials) and
// tests/bench/torture_bench.cpp (100).
#pragma once

#include <random>

#include "remedy/intent_journal.h"
#include "scenario.h"

namespace mend::test {

struct TortureResult {
  int trials = 0;
  int rolled_back = 0;  // killed mid-plan: undone at the restart, escalated
  int verified = 0;     // killed after the verdict (or never during the plan): the fix stays
  int untouched = 0;    // killed before any step ran: nothing to undo
  std::vector<std::string> failures;
  std::map<std::string, int> by_point;  // trials per kill point
};

// Where a trial kills mendd: after the record with this MESSAGE_ID and action (""), or at a
// random moment.
struct KillPoint {
  std::string name, message_id, action;
};

inline std::vector<KillPoint> kill_points() {
  const std::string started = "14b7cdd70abd4e548e11a28f87926cf0";
  const std::string finished = "666e06a737c04222b04538ba13cb14b8";
  return {{"raise started", started, "raise_memory_limit"},
          {"raise finished", finished, "raise_memory_limit"},
          {"restart started", started, "restart_unit"},
          {"restart finished", finished, "restart_unit"},
          {"verified", kVerified, ""},
          {"random", "", ""}};
}

inline TortureResult run_torture(int trials, unsigned seed = 1) {
  TortureResult res;
  OomScenario s("200M", "30s");
  const std::string config = s.dir.path() + "/mend.yaml";
  // Budgets that 100 trials in a few minutes do not exhaust (each trial has its own unit).
  std::ofstream(config) << "executor: {max_actions_per_hour: 1000}\n"
                           "correlation: {quiet: 5s}\n";
  chmod(config.c_str(), 0644);
  const auto args = s.args({"--config", config});
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> random_ms(300, 9000);
  auto points = kill_points();
  std::unique_ptr<TraceRunner> agent;
  auto start_agent = [&] {
    agent = std::make_unique<TraceRunner>(args, false);
    return agent->wait_ready();
  };
  if (!start_agent()) {
    res.failures.push_back("mendd did not start: " + agent->err());
    return res;
  }
  for (int t = 0; t < trials; ++t) {
    const KillPoint& kp = points[static_cast<size_t>(t) % points.size()];
    const std::string unit = unique_name("tort") + ".service";
    s.add_oom_unit(unit);
    ++res.trials;
    ++res.by_point[kp.name];
    s.m.systemctl({"start", "--no-block", unit});
    bool seen = true;
    if (kp.message_id.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(random_ms(rng)));
    } else {
      seen = wait_until(
          [&] {
            for (const auto& r : records(unit, kp.message_id))
              if (kp.action.empty() || r.value("MEND_ACTION", "") == kp.action)
                return true;
            return false;
          },
          60s);
    }
    agent->kill_hard();
    // No new fault while the host is checked: the unit stops; mend starts again and recovers.
    s.m.systemctl({"stop", unit});
    if (!start_agent()) {
      res.failures.push_back("trial " + std::to_string(t) +
                             ": mendd did not start again: " + agent->err());
      break;
    }
    const std::string where = "trial " + std::to_string(t) + " (" + kp.name + ", " + unit + ")";
    if (!seen)
      res.failures.push_back(where + ": the kill point was never reached");
    const uint64_t mm = std::stoull(s.m.show(unit, "MemoryMax"));
    bool verified = false;
    wait_until([&] { return !records(unit, kVerified).empty(); }, 1s);
    verified = !records(unit, kVerified).empty();
    const bool interrupted = !records(unit, kEscalated).empty();
    const bool acted = !records(unit, "14b7cdd70abd4e548e11a28f87926cf0").empty();
    auto open = IntentJournal(s.state).unfinished();
    if (!open.ok() || !open->empty())
      res.failures.push_back(where + ": the intent journal still has an unfinished run");
    if (mm == uint64_t{200} << 20)
      res.failures.push_back(where + ": MemoryMax raised twice");
    else if (mm == uint64_t{100} << 20 && verified)
      ++res.verified;
    else if (mm == uint64_t{100} << 20)
      res.failures.push_back(where + ": MemoryMax raised, never verified, not rolled back");
    else if (mm == uint64_t{50} << 20 && verified)
      res.failures.push_back(where + ": a verified fix was rolled back");
    else if (mm == uint64_t{50} << 20 && acted && !interrupted)
      res.failures.push_back(where + ": rolled back without a record saying so");
    else if (mm == uint64_t{50} << 20 && acted)
      ++res.rolled_back;
    else if (mm == uint64_t{50} << 20)
      ++res.untouched;
    else
      res.failures.push_back(where + ": MemoryMax is " + std::to_string(mm));
  }
  agent->stop();
  return res;
}

inline void print_torture(const TortureResult& r, std::ostream& out) {
  out << "trials " << r.trials << ": rolled back " << r.rolled_back << ", verified " << r.verified
      << ", untouched " << r.untouched << ", failures " << r.failures.size() << "\n";
  for (const auto& [p, n] : r.by_point)
    out << "  killed at " << p << ": " << n << "\n";
  for (const auto& f : r.failures)
    out << "  FAIL " << f << "\n";
}

}  // namespace mend::test
