// What mendd answers on its control socket (agent/ctl/control.h carries the bytes): status,
// incidents, explain, approve, deny, pause, resume. Read from and acting on the live pipeline
// through this view, so the commands are unit-tested with a fake systemd.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../correlate/correlator.h"
#include "../policy/slo.h"
#include "../remedy/executor.h"
#include "../sensors/sensor.h"
#include "control.h"

namespace mend {

struct AgentView {
  Correlator* correlator = nullptr;
  Executor* executor = nullptr;
  SloTracker* slo = nullptr;
  std::function<std::vector<SensorStats>()> sensor_stats;
  std::function<size_t()> policy_count;
  std::function<nlohmann::json()> loop_stats;  // the event loop's own latency
  bool dry_run = false;
  bool memory_locked = false;  // mendd --lock-memory took effect
  uint64_t started_ns = 0;
  std::string control_group;  // approve/deny/pause/resume: root or this group (socket check)
};

nlohmann::json handle_command(AgentView& v, const std::string& command, const nlohmann::json& args,
                              const Peer& peer, uint64_t now_ns);

// One row of `mendctl incidents`, and the whole record `mendctl explain` shows.
nlohmann::json incident_row(const Incident& inc, const PlanRun* run, uint64_t now_ns);
nlohmann::json incident_detail(const Incident& inc, const PlanRun* run, uint64_t now_ns);

}  // namespace mend
