// The incident model: one failure, its named root cause, the evidence chain that shows why,
// and the timestamps MTTR is measured from (docs/incidents.md is the JSON contract).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mend/event.h"

namespace mend {

enum class IncidentState { Open, AwaitingApproval, Remediating, Resolved, RolledBack, Escalated };
std::string_view to_string(IncidentState s);

struct RootCause {
  std::string kind;  // fs_full, fs_filling, memory_limit, memory_exhausted, io_stall, unit_crash
  std::map<std::string, std::string> entities;  // mount, device, unit, cgroup, ...
  std::string culprit_unit;                     // where known
  double confidence = 0;                        // 0..1
  std::string rule;                             // the rule that named it
  std::string summary;                          // one line a person reads first
};

// One piece of evidence: an event, folded with its repeats (an alert storm is one entry with a
// count, not a hundred thousand entries).
struct Evidence {
  Event event;  // the latest occurrence
  uint64_t first_ns = 0;
  uint64_t count = 0;
};

// A causal link between two evidence entries, e.g. fs_fill(/data) -> fs_enospc(victim).
struct Link {
  size_t from = 0;
  size_t to = 0;
  std::string relation;  // "fills", "fails", "kills", "stalls", "requires", ...
};

// A rule that matched, with what it would have named (the alternatives in the explanation).
struct Candidate {
  RootCause cause;
  int precedence = 0;  // lower wins
  std::vector<std::string> why;
  std::vector<Link> links;
  // Why the rule itself ranks this candidate last (a forecast that passed), for the
  // explanation of the alternatives; empty: ranked by precedence alone.
  std::string set_aside;
};

struct Incident {
  std::string id;
  RootCause root_cause;
  std::vector<Evidence> evidence;
  std::vector<Link> links;
  std::vector<Candidate> candidates;  // every rule that matched, best first
  std::set<std::string> affected_units;
  std::set<std::string> entities;  // "unit:x", "mount:/x", "device:7:1", "cgroup:/x", "pid:1"
  IncidentState state = IncidentState::Open;
  bool closed = false;  // no longer accepts events (quiet period over, or verified resolved)
  uint64_t raw_events = 0;
  uint64_t evidence_dropped = 0;  // distinct evidence beyond the bound, counted only
  // Timestamps (ns, the events' clock): MTTR = recovered_ns - first_fault_ns.
  uint64_t first_fault_ns = 0;
  uint64_t opened_ns = 0;  // detection: when the incident was opened
  uint64_t updated_ns = 0;
  uint64_t closed_ns = 0;
  uint64_t remediation_start_ns = 0;
  uint64_t recovered_ns = 0;
  std::string plan;                 // the chosen plan, once policy selection exists
  std::string slo_impact = "none";  // high, medium, low, none (agent/policy/slo.h), at plan time

  int64_t mttr_ms() const {
    return recovered_ns && first_fault_ns
               ? static_cast<int64_t>((recovered_ns - first_fault_ns) / 1000000)
               : -1;
  }
};

}  // namespace mend
