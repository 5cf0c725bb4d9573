// mendd's whole pipeline: sensors -> correlation -> policy -> executor -> journald.
#pragma once

#include <atomic>
#include <string>

#include "policy/config.h"

namespace mend {

struct AgentOptions {
  AgentConfig config;
  std::string policies_dir = "/etc/mend/policies.d";
  bool policies_required = false;  // named on the command line: missing is an error
  std::string bus = "system";
  std::string state_dir = "/var/lib/mend";
  bool dry_run = false;
};

// Runs until `stop`; returns the process exit code. When `reload` is set (SIGHUP), the policies
// are loaded again: a set with any error is refused whole and the previous one stays in force.
int run_agent(const AgentOptions& opt, const std::atomic<bool>& stop, std::atomic<bool>& reload);

}  // namespace mend
