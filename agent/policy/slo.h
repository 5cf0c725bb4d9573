// SLO accounting: each unit with an objective in mend.yaml (e.g. 99.9% over 30 days) has its
// bad time counted from unit state (failed, or waiting to be restarted, until active again),
// its error budget kept across restarts of mendd (a state file, wall-clock times), and a burn
// rate that gives every incident an slo_impact policies choose their mode by:
//   high    a unit is burning its budget at >= 14.4x (down now with an objective of >= 93.1%,
//           or a flapping unit over the last 5 minutes), or its budget is spent
//   medium  >= 6x
//   low     any burn
//   none    no unit of the incident has an objective, or none is burning
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "mend/agent_config.h"
#include "mend/event.h"
#include "mend/incident.h"
#include "mend/result.h"

namespace mend {

struct SloStatus {
  std::string unit;
  double objective = 0;
  uint64_t window_ns = 0;
  uint64_t bad_ns = 0;          // in the window
  uint64_t budget_ns = 0;       // (1 - objective) * window
  double budget_remaining = 1;  // fraction of the budget left (negative: overspent)
  double burn_rate = 0;         // now: down -> 1/(1-objective); up -> over the last 5 minutes
  bool down = false;
};

class SloTracker {
 public:
  SloTracker(std::vector<SloObjective> objectives, std::string state_file);
  // Bad time recorded by an earlier mendd (missing file: none). Damaged: an error, starts empty.
  Status load();
  // Objectives from a reloaded mend.yaml; the history of units still listed stays.
  void configure(std::vector<SloObjective> objectives);
  void observe(const Event& e);
  std::vector<SloStatus> status(uint64_t now_ns) const;
  std::string impact(const Incident& inc, uint64_t now_ns) const;
  // Writes the state file if anything changed and at least `min_interval` passed (0: now).
  void save(uint64_t now_ns, uint64_t min_interval_ns = 10000000000ull);

 private:
  struct Interval {
    int64_t start = 0, end = 0;  // wall-clock ns; end 0: still down
  };
  SloStatus compute(const SloObjective& o, uint64_t now) const;
  uint64_t bad_between(const std::deque<Interval>& v, int64_t from, int64_t to) const;

  std::vector<SloObjective> objectives_;
  std::string state_file_;
  int64_t offset_ns_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC at construction
  std::map<std::string, std::deque<Interval>> bad_;
  bool dirty_ = false;
  uint64_t saved_ns_ = 0;
};

}  // namespace mend
