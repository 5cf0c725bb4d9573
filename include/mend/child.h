// Where the commands mendd runs (exec steps, the paging hook, logrotate, journalctl, the LVM
// tools) are started. Inline: a child process of mendd's, with mendd's user, capabilities and
// sandbox (hosts without a system manager, tests). Transient: a unit of the manager's own
// (StartTransientUnit, as systemd-run does), with the sandbox below and nothing of mendd's, so a
// paging hook can reach the network mendd has not and an exec step holds no capability mendd
// holds unless its policy grants it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mend/result.h"

namespace mend {

// What a child may do. Every field defaults to the least.
struct ChildSandbox {
  std::string user;                       // run as this user; empty: root (without capabilities)
  std::vector<std::string> capabilities;  // "CAP_DAC_OVERRIDE", ...: all it keeps
  bool network = false;                   // false: a private network namespace (loopback only)
  bool read_only = false;  // true: /usr, /etc, /var read-only too (ProtectSystem=strict)
  // Writable all the same (ReadWritePaths=); "-/path": only if it exists.
  std::vector<std::string> write_paths;
};

// One command, its three standard descriptors already open (the launcher dups what it keeps).
struct ChildCommand {
  std::string purpose;  // "exec", "notify", "logrotate", ...: names the unit
  std::vector<std::string> argv;
  std::vector<std::string> env;  // KEY=VALUE, the whole environment
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  uint64_t timeout_ns = 0;  // the launcher's own backstop; the caller kills at its deadline
  ChildSandbox sandbox;
};

struct ChildExit {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string note;  // the launcher's word on a failure to start ("systemd: 217/USER")
};

// "CAP_DAC_OVERRIDE" -> 1; -1 for a name capabilities(7) does not know.
int capability_number(const std::string& name);
// The mask of the named capabilities, or an error naming the first unknown one.
Result<uint64_t> capability_mask(const std::vector<std::string>& names);

class Child {
 public:
  virtual ~Child() = default;
  // Non-blocking: true once the command has ended (its exit in `e`).
  virtual bool ended(ChildExit& e) = 0;
  // Kills the command and everything it started; then ended() turns true soon.
  virtual void kill() = 0;
  // The launcher holds copies of the command's descriptors until the child is dropped (a
  // manager keeps them with the unit): its output never reaches end-of-file, and the exit is
  // the end of it.
  virtual bool holds_descriptors() const { return false; }
  // Where it runs, for records: "pid 1234" or "mend-exec-3f2a….service".
  virtual std::string where() const = 0;
};

class ChildLauncher {
 public:
  virtual ~ChildLauncher() = default;
  virtual Result<std::unique_ptr<Child>> launch(const ChildCommand& c) = 0;
  virtual std::string name() const = 0;  // "inline", "transient"
};

}  // namespace mend
