// Running a site command the way remedies and paging hooks must: argv only (no shell), in its
// own process group, input on stdin, output captured up to a bound, killed (the whole group)
// at a deadline. Used by the exec action and the escalation notify command.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mend/result.h"

namespace mend {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path: no PATH lookup
  std::string input;              // written to stdin, which is then closed
  uint64_t timeout_ns = 10000000000ull;
  std::map<std::string, std::string> env;  // added to a minimal environment (PATH, LANG=C)
  size_t max_output = 4096;                // stdout+stderr kept, the rest counted only
};

struct SpawnResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string output;  // stdout and stderr interleaved, truncated to max_output
  size_t output_dropped = 0;
  // One line for a record: "exit 0", "exit 3: <last output line>", "killed after 30s timeout".
  std::string summary() const;
  bool ok() const { return exit_code == 0 && !timed_out; }
};

// Error only when the command could not be started (not found, not executable, ...).
Result<SpawnResult> spawn_and_wait(const SpawnOptions& opt);

}  // namespace mend
