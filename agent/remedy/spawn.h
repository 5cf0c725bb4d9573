// Running a site command the way remedies and paging hooks must: argv only (no shell), input on
// stdin, output captured up to a bound, killed (with everything it started) at a deadline. Where
// it runs is the launcher's business (include/mend/child.h): a transient unit of the manager's
// with its own sandbox, or, without a launcher, a child process of mendd's in its own process
// group. Used by the exec action, the escalation notify command, logrotate, journalctl and the
// volume tools.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mend/child.h"
#include "mend/result.h"

namespace mend {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path: no PATH lookup
  std::string input;              // written to stdin, which is then closed
  uint64_t timeout_ns = 10000000000ull;
  std::map<std::string, std::string> env;  // added to a minimal environment (PATH, LANG=C)
  size_t max_output = 4096;                // stdout+stderr kept, the rest counted only
  std::string purpose = "command";         // names the transient unit: mend-<purpose>-<id>
  ChildSandbox sandbox;                    // what the command may do (transient units)
  ChildLauncher* launcher = nullptr;       // null: a child process of mendd's (inline)
};

struct SpawnResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string output;  // stdout and stderr interleaved, truncated to max_output
  size_t output_dropped = 0;
  std::string where;  // "pid 1234", "mend-exec-….service"
  std::string note;   // the launcher's word on a failure to start
  // One line for a record: "exit 0", "exit 3: <last output line>", "killed after 30s timeout".
  std::string summary() const;
  bool ok() const { return exit_code == 0 && !timed_out; }
};

// Error only when the command could not be started (not found, not executable, no manager).
Result<SpawnResult> spawn_and_wait(const SpawnOptions& opt);

// Children of mendd's own process (the default when SpawnOptions::launcher is null).
ChildLauncher& inline_launcher();

}  // namespace mend
