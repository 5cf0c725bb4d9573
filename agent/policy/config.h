// mend.yaml: staged loading, yaml-cpp -> plain IR (include/mend/*_config.h). Every error names
// file:line:column; unknown keys are errors.
#pragma once

#include <string>

#include "mend/agent_config.h"
#include "mend/result.h"
#include "mend/sensor_config.h"

namespace mend {

struct AgentConfig {
  SensorConfig sensors;
  std::vector<std::string> enabled_sensors = {"oom", "io", "fs", "psi", "units"};
  std::string state_dir = "/var/lib/mend";
  ControlSettings control;
  ExecutorSettings executor;
  CorrelationSettings correlation;
  std::vector<SloObjective> slos;
  MetricsSettings metrics;
};

Result<AgentConfig> load_agent_config(const std::string& path);
Result<AgentConfig> parse_agent_config(const std::string& text, const std::string& name);

}  // namespace mend
