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

// Runs until `stop`; returns the process exit code.
int run_agent(const AgentOptions& opt, const std::atomic<bool>& stop);

}  // namespace mend
