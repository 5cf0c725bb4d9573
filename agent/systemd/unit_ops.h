// Operations on systemd units, as remedies use them. Implemented by SystemdBus over sd-bus;
// tests of the executor may use a fake.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "mend/result.h"

namespace mend {

// A cgroup resource property's value: a number (MemoryMax, MemoryHigh, CPUQuotaPerSecUSec;
// UINT64_MAX is "infinity") or a per-device list (IOReadBandwidthMax, ...: (path, value)).
using DeviceLimits = std::vector<std::pair<std::string, uint64_t>>;
using PropertyValue = std::variant<uint64_t, DeviceLimits>;

class UnitOps {
 public:
  virtual ~UnitOps() = default;
  // Queue a job and wait for it (JobRemoved) until `timeout_ns`. Returns the job result:
  // "done", "failed", "timeout", "canceled", "dependency", "skipped", ... An error is returned
  // when the job could not be queued (no such unit, permission) or did not finish in time.
  virtual Result<std::string> start(const std::string& unit, uint64_t timeout_ns) = 0;
  virtual Result<std::string> stop(const std::string& unit, uint64_t timeout_ns) = 0;
  virtual Result<std::string> restart(const std::string& unit, uint64_t timeout_ns) = 0;
  virtual Result<std::string> try_restart(const std::string& unit, uint64_t timeout_ns) = 0;
  // ReloadUnit: the unit's ExecReload (e.g. a writer reopening its log files).
  virtual Result<std::string> reload(const std::string& unit, uint64_t timeout_ns) = 0;
  virtual Status reset_failed(const std::string& unit) = 0;
  // The unit the manager has `pid` in (GetUnitByPID): the manager's word, never a name parsed
  // from a cgroup path.
  virtual Result<std::string> unit_of_pid(int pid) {
    return Error{"no manager to ask which unit has pid " + std::to_string(pid), ENOTSUP};
  }
  // ActiveState ("active", "failed", ...) as systemd has it now.
  virtual Result<std::string> active_state(const std::string& unit) = 0;
  // The same without waiting: an error with code EAGAIN when the answer cannot be had at once
  // (the connection is busy with a remedy step's job). The event loop asks this way.
  virtual Result<std::string> try_active_state(const std::string& unit) {
    return active_state(unit);
  }
  // When the unit last entered "active" (ActiveEnterTimestampMonotonic: CLOCK_MONOTONIC in
  // microseconds, 0 if never): tells a unit that came back by itself after a fix from one that
  // has been up since before it.
  virtual Result<uint64_t> active_since_us(const std::string& unit) {
    return Error{"no manager to ask when " + unit + " became active", ENOTSUP};
  }
  // Known names: MemoryMax, MemoryHigh, CPUQuotaPerSecUSec, IOReadBandwidthMax,
  // IOWriteBandwidthMax, IOReadIOPSMax, IOWriteIOPSMax.
  virtual Result<PropertyValue> get_property(const std::string& unit, const std::string& name) = 0;
  // Runtime only (lost on reboot/daemon-reexec), so a remedy can never outlive mend's record.
  virtual Status set_property(const std::string& unit, const std::string& name,
                              const PropertyValue& value) = 0;
};

}  // namespace mend
