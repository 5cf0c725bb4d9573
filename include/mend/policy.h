// Policies: the plain IR of /etc/mend/policies.d/*.yaml (agent/policy/policy_loader.cpp parses
// YAML into it; compile() checks it against the registries of root causes and actions).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace mend {

// Where something was written, for errors: "file:line:column".
struct SourceMark {
  std::string file;
  int line = 0;
  int column = 0;
  std::string str() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
};

// A typed, bounded action parameter value.
using ParamValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>>;

struct ActionIR {
  std::string name;
  // As written: a scalar string or a list of strings; typed by compile() against the action's
  // parameter spec.
  std::map<std::string, ParamValue> params;
  std::map<std::string, SourceMark> param_marks;
  SourceMark mark;
};

struct MatchIR {
  std::string root_cause;            // a root-cause kind
  std::vector<std::string> units;    // globs on the culprit or an affected unit
  std::vector<std::string> mounts;   // mount points (exact, or glob)
  std::vector<std::string> devices;  // major:minor
  double min_confidence = 0.8;       // below: never act
};

enum class Mode { Auto, Approve, Observe };

struct ModeIR {
  // A fixed mode, or one per SLO impact ("high", "medium", "low", "none").
  std::optional<Mode> fixed;
  std::map<std::string, Mode> by_slo_impact;
};

enum class OnFailure { RollbackThenNext, RollbackThenEscalate, Escalate };

struct VerifyIR {
  uint64_t deadline_ns = 60000000000ull;
  uint64_t stable_ns = 30000000000ull;  // conditions must hold this long
  bool unit_active = true;              // the unit is active/running, NRestarts not growing
  bool no_new_oom = false;
  std::optional<double> usage_below_pct;
  std::optional<uint64_t> latency_below_us;
};

struct GuardsIR {
  uint64_t cooldown_ns = 600000000000ull;  // between two runs of this policy on one target
  uint32_t max_runs = 3;                   // ... at most this many runs
  uint64_t per_ns = 3600000000000ull;      // ... per this window
};

struct PolicyIR {
  std::string name;
  SourceMark mark;
  MatchIR match;
  ModeIR mode;
  std::vector<ActionIR> actions;
  VerifyIR verify;
  OnFailure on_failure = OnFailure::RollbackThenEscalate;
  GuardsIR guards;
  bool allow_irreversible = false;
  uint32_t auto_after_successes = 0;  // promote approve -> auto after N verified successes
};

}  // namespace mend
