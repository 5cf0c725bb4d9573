// Commands run as transient units of the manager (StartTransientUnit, as `systemd-run --pipe`
// does): the manager forks them, in a cgroup of their own, with the sandbox the caller states
// (ChildSandbox) and nothing of mendd's: not its capabilities, not its private network, not its
// file system view. Standard input and output are mendd's pipes, passed as descriptors.
//
// A unit is named mend-<purpose>-<random>.service, stays loaded after its command ends
// (RemainAfterExit=, so its exit status can be read) and is stopped or reset once read. If
// mendd dies first, the command is still bounded by RuntimeMaxSec=, and sweep() at the next start
// collects what was left.
#pragma once

#include <string>

#include "mend/child.h"
#include "systemd_bus.h"

namespace mend {

// Whether `unit` is named as this launcher names its units: mend-<a-z0-9, 1-32>-<16 hex>.service.
// Only root can make system units, so the name is mendd's; the units sensor leaves them out
// (a failing exec step is the step's record, never an incident of its own).
bool is_mend_child_unit(const std::string& unit);

class TransientLauncher final : public ChildLauncher {
 public:
  explicit TransientLauncher(BusScope scope) : scope_(scope) {}
  Result<std::unique_ptr<Child>> launch(const ChildCommand& c) override;
  std::string name() const override { return "transient"; }
  // Collects mend-*.service units whose command ended but nobody read (mendd was killed):
  // returns how many.
  Result<size_t> sweep();

 private:
  BusScope scope_;
};

}  // namespace mend
