// The recovery probe of a running agent: a policy's verify block checked against what systemd
// says now and what the sensors saw since the plan was applied.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "../systemd/unit_ops.h"
#include "executor.h"

namespace mend {

class LiveProbe final : public RecoveryProbe {
 public:
  explicit LiveProbe(UnitOps& units) : units_(units) {}
  // Every event of the pipeline: OOM kills and unit failures are remembered per unit.
  void observe(const Event& e);
  Result<bool> holds(const VerifyIR& v, const Incident& inc, const std::string& unit,
                     uint64_t since_ns, std::string& why) override;
  // Units (and devices) remembered per map; past it the oldest are forgotten (counted).
  static constexpr size_t kMaxEntries = 4096;
  uint64_t evicted() const { return evicted_; }

 private:
  uint64_t evicted_ = 0;
  UnitOps& units_;
  std::map<std::string, uint64_t> last_oom_;      // unit -> ts of the latest OOM kill
  std::map<std::string, uint64_t> last_failure_;  // unit -> ts of the latest failure
  struct DeviceLatency {
    uint64_t ts_ns = 0;
    uint64_t latency_us = 0;  // max(p99, oldest in flight) of the latest report
    bool cleared = false;
  };
  std::map<std::string, DeviceLatency> io_;  // device (major:minor) -> latest io_stall report
};

}  // namespace mend
