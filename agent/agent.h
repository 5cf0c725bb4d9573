// mendd's whole pipeline: sensors -> correlation -> policy -> executor -> journald, with the
// control socket (mendctl) and SLO accounting on the same loop.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "policy/config.h"

namespace mend {

struct AgentOptions {
  AgentConfig config;  // mend.yaml with the command line's overrides applied
  // Reads mend.yaml again (SIGHUP), overrides applied; unset: the configuration never changes.
  std::function<Result<AgentConfig>()> reload_config;
  std::string policies_dir = "/etc/mend/policies.d";
  bool policies_required = false;  // named on the command line: missing is an error
  std::string bus = "system";
  // mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT): what mendd touches stays resident while
  // the host it heals is short of memory. A failure is logged; mendd runs on.
  bool lock_memory = false;
};

// Runs until `stop`; returns the process exit code. When `reload` is set (SIGHUP), mend.yaml
// and the policies are loaded again: any error in either and both previous ones stay in force.
int run_agent(const AgentOptions& opt, const std::atomic<bool>& stop, std::atomic<bool>& reload);

}  // namespace mend
